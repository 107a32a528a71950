// KeyStore on Redis. Schema (every key of one record shares its hash tag, so Redis Cluster works):
//   kg:{<id>}:key          JSON KeyRecord (no secret, no digest)
//   kg:{<id>}:digests      hash digest → expiresAt ms ("" = no end): the digests that find the key
//   kg:digest:{<digest>}   "<id>" or "<id>|<expiresAt ms>": lookup by digest; a rotated-out digest
//                          keeps working until expiresAt (judged by keygate's clock), and Redis drops
//                          it a day after that
//   kg:keys                set of all key ids (listing)
//   kg:plan:{<name>}       JSON Plan;   kg:plans  set of plan names
//   channel kg:invalidate  JSON {"kind":"key"|"plan","id":…} published after every write, for the key
//                          caches; the batch writes (upsertKeys, updateKeys) publish one
//                          {"kind":"keys","ids":[…]} per call (at most MAX_IDS_PER_MESSAGE ids each)
//                          instead of one message per key
// Multi-key writes are sequenced (record, then digest, then index) rather than transactional,
// because their keys live in different cluster slots; an interrupted create leaves at worst an
// unreferenced record, never a digest that finds nothing.
import type { Cluster, Redis } from 'ioredis';
import type { Clock } from '../clock';
import { systemClock } from '../clock';
import type { Plan } from '../limits/types';
import { pingRedis } from '../redis';
import {
  StoreConflictError,
  type DigestEntry,
  type InvalidationListener,
  type KeyFilter,
  type KeyRecord,
  type KeyStore,
} from './types';

export const INVALIDATION_CHANNEL = 'kg:invalidate';
const DIGEST_CLEANUP_SLACK_MS = 24 * 3600 * 1000;
const KEY_INDEX = 'kg:keys';
const PLAN_INDEX = 'kg:plans';
/** Most ids in one {"kind":"keys"} invalidation message (a batch of more sends several). */
export const MAX_IDS_PER_MESSAGE = 1000;
/** Most keys in one MGET / MSET / SADD of a batch method: bounds how long Redis is busy with one command. */
const MULTI_KEY_CHUNK = 500;

export const redisKeys = {
  record: (id: string) => `kg:{${id}}:key`,
  digests: (id: string) => `kg:{${id}}:digests`,
  digest: (digest: string) => `kg:digest:{${digest}}`,
  plan: (name: string) => `kg:plan:{${name}}`,
};

type RedisClient = Redis | Cluster;

function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}

function parseDigestValue(value: string): { id: string; expiresAt?: number } {
  const bar = value.lastIndexOf('|');
  if (bar < 0) return { id: value };
  return { id: value.slice(0, bar), expiresAt: Number(value.slice(bar + 1)) };
}

/**
 * HSET of one field into each of many hashes, in one command: KEYS[i] gets field ARGV[2i - 1]
 * with value ARGV[2i] (a hash given several fields is named several times). Redis caches the
 * compiled script by its text.
 */
const HSET_MANY = `for i = 1, #KEYS do redis.call('HSET', KEYS[i], ARGV[2 * i - 1], ARGV[2 * i]) end
return #KEYS`;

/** One Redis command as a list: name, then arguments. */
type Command = [string, ...string[]];

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The ids of a {"kind":"keys","ids":[…]} message, or null when it is not one. */
function idsOfKeysMessage(event: { kind?: unknown; ids?: unknown }): string[] | null {
  if (event.kind !== 'keys' || !Array.isArray(event.ids)) return null;
  return event.ids.every((id) => typeof id === 'string') ? (event.ids as string[]) : null;
}

export class RedisKeyStore implements KeyStore {
  private subscriber: RedisClient | null = null;
  private subscribed: Promise<unknown> = Promise.resolve();
  private readonly listeners = new Set<InvalidationListener>();

  constructor(
    private readonly redis: RedisClient,
    private readonly clock: Clock = systemClock,
  ) {}

  async lookup(digest: string): Promise<KeyRecord | null> {
    const value = await this.redis.get(redisKeys.digest(digest));
    if (value === null) return null;
    const { id, expiresAt } = parseDigestValue(value);
    if (expiresAt !== undefined && expiresAt <= this.clock.now()) return null;
    return this.getKey(id);
  }

  async getKey(id: string): Promise<KeyRecord | null> {
    const json = await this.redis.get(redisKeys.record(id));
    return json === null ? null : (JSON.parse(json) as KeyRecord);
  }

  async listKeys(filter: KeyFilter = {}): Promise<KeyRecord[]> {
    const ids = await this.redis.smembers(KEY_INDEX);
    const out: KeyRecord[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      // getKeys, not one pipeline of GETs: on a Cluster the records live in different slots
      // (a cross-slot pipeline is refused).
      for (const r of await this.getKeys(ids.slice(i, i + 500))) {
        if (r !== null && (filter.owner === undefined || r.owner === filter.owner)) out.push(r);
      }
    }
    return out.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  async getKeys(ids: readonly string[]): Promise<(KeyRecord | null)[]> {
    const jsons = await this.getMany(ids.map(redisKeys.record));
    return jsons.map((json) => (json === null ? null : (JSON.parse(json) as KeyRecord)));
  }

  async digestOwners(digests: readonly string[]): Promise<(string | null)[]> {
    const values = await this.getMany(digests.map(redisKeys.digest));
    const now = this.clock.now();
    return values.map((value) => {
      if (value === null) return null;
      const { id, expiresAt } = parseDigestValue(value);
      return expiresAt !== undefined && expiresAt <= now ? null : id;
    });
  }

  /**
   * Reads every record and digest the entries name (MGETs), decides each outcome and checks
   * each digest by replaying the entries in order over what was read (so repeated ids or
   * digests come out as consecutive upsertKey calls would), then writes in one pipeline in
   * upsertKey's order — records (MSET), digests (MSET, or SET PX for those with an end), the
   * digests hashes (HSET), the index (SADD) — and publishes one message listing the updated ids.
   */
  async upsertKeys(entries: readonly { record: KeyRecord; digest: DigestEntry }[]): Promise<('created' | 'updated' | 'unchanged')[]> {
    if (entries.length === 0) return [];
    const [recordsBefore, digestsBefore] = await Promise.all([
      this.getMany(entries.map((e) => redisKeys.record(e.record.id))),
      this.getMany(entries.map((e) => redisKeys.digest(e.digest.digest))),
    ]);
    const now = this.clock.now();
    // What the entries before the current one have written: record JSON by id, digest by digest.
    const records = new Map<string, string>();
    const digests = new Map<string, { id: string; entry: DigestEntry; value: string }>();
    const outcomes: ('created' | 'updated' | 'unchanged')[] = [];
    const updated = new Set<string>();
    let conflicts = 0;
    entries.forEach(({ record, digest }, i) => {
      const json = JSON.stringify(record);
      const before = records.get(record.id) ?? recordsBefore[i];
      const digestValue = digests.get(digest.digest)?.value ?? digestsBefore[i];
      const wanted = this.digestValue(digest, record.id);
      if (before === json && digestValue === wanted) {
        outcomes.push('unchanged');
        return;
      }
      if (digestValue !== null && digestValue !== wanted) {
        const current = parseDigestValue(digestValue);
        const live = current.expiresAt === undefined || current.expiresAt > now;
        if (live && current.id !== record.id) {
          conflicts++;
          outcomes.push('unchanged');
          return;
        }
      }
      records.set(record.id, json);
      digests.set(digest.digest, { id: record.id, entry: digest, value: wanted });
      outcomes.push(before === null ? 'created' : 'updated');
      if (before !== null) updated.add(record.id);
    });
    if (conflicts > 0) {
      const which = conflicts === 1 ? 'a secret of this batch already belongs' : `${conflicts} secrets of this batch already belong`;
      throw new StoreConflictError(`${which} to another key; nothing of the batch was written`);
    }
    if (records.size === 0) return outcomes;

    const plainDigests: [string, string][] = [];
    const expiringDigests: Command[] = [];
    const digestFields: [string, string, string][] = [];
    for (const [digest, { id, entry, value }] of digests) {
      const key = redisKeys.digest(digest);
      if (entry.expiresAt === undefined) plainDigests.push([key, id]);
      else expiringDigests.push(['set', key, value, 'PX', String(Math.max(entry.expiresAt - now, 0) + DIGEST_CLEANUP_SLACK_MS)]);
      digestFields.push([redisKeys.digests(id), digest, entry.expiresAt === undefined ? '' : String(entry.expiresAt)]);
    }
    await this.runInOrder([
      this.setMany([...records].map(([id, json]): [string, string] => [redisKeys.record(id), json])),
      [...this.setMany(plainDigests), ...expiringDigests],
      this.hsetMany(digestFields),
      chunks([...records.keys()], MULTI_KEY_CHUNK).map((ids): Command => ['sadd', KEY_INDEX, ...ids]),
    ]);
    await this.publishKeys([...updated]);
    return outcomes;
  }

  async updateKeys(records: readonly KeyRecord[]): Promise<void> {
    if (records.length === 0) return;
    const replies = await this.runInOrder([records.map((r): Command => ['set', redisKeys.record(r.id), JSON.stringify(r), 'XX'])]);
    const written = new Set<string>();
    const unknown = new Set<string>();
    records.forEach((r, i) => (replies[i] === null ? unknown : written).add(r.id));
    await this.publishKeys([...written]);
    if (unknown.size > 0) {
      const listed = [...unknown].slice(0, 10).join(', ');
      throw new StoreConflictError(`no key ${listed}${unknown.size > 10 ? ` and ${unknown.size - 10} more` : ''}`);
    }
  }

  async createKey(record: KeyRecord, digest: DigestEntry): Promise<void> {
    const created = await this.redis.set(redisKeys.record(record.id), JSON.stringify(record), 'NX');
    if (created === null) throw new StoreConflictError(`key ${record.id} already exists`);
    try {
      await this.claimDigest(digest, record.id);
    } catch (err) {
      await this.redis.del(redisKeys.record(record.id));
      throw err;
    }
    await this.redis.sadd(KEY_INDEX, record.id);
    await this.publish('key', record.id);
  }

  async upsertKey(record: KeyRecord, digest: DigestEntry): Promise<'created' | 'updated' | 'unchanged'> {
    const json = JSON.stringify(record);
    const [before, digestValue] = await Promise.all([
      this.redis.get(redisKeys.record(record.id)),
      this.redis.get(redisKeys.digest(digest.digest)),
    ]);
    const wanted = this.digestValue(digest, record.id);
    if (before === json && digestValue === wanted) return 'unchanged';
    if (digestValue !== null && digestValue !== wanted) {
      const current = parseDigestValue(digestValue);
      const live = current.expiresAt === undefined || current.expiresAt > this.clock.now();
      if (live && current.id !== record.id) throw new StoreConflictError('this secret already belongs to another key');
    }
    await this.redis.set(redisKeys.record(record.id), json);
    await this.writeDigest(digest, record.id);
    await this.redis.sadd(KEY_INDEX, record.id);
    await this.publish('key', record.id);
    return before === null ? 'created' : 'updated';
  }

  async updateKey(record: KeyRecord): Promise<void> {
    const updated = await this.redis.set(redisKeys.record(record.id), JSON.stringify(record), 'XX');
    if (updated === null) throw new StoreConflictError(`no key ${record.id}`);
    await this.publish('key', record.id);
  }

  async rotateKey(id: string, digest: DigestEntry, graceUntil: number): Promise<void> {
    if ((await this.redis.exists(redisKeys.record(id))) === 0) throw new StoreConflictError(`no key ${id}`);
    const existing = await this.redis.hgetall(redisKeys.digests(id));
    await this.claimDigest(digest, id);
    for (const [old, end] of Object.entries(existing)) {
      if (old === digest.digest) continue;
      if (end !== '' && Number(end) <= graceUntil) continue;
      await this.writeDigest({ digest: old, expiresAt: graceUntil }, id);
    }
    await this.publish('key', id);
  }

  async getPlan(name: string): Promise<Plan | null> {
    const json = await this.redis.get(redisKeys.plan(name));
    return json === null ? null : (JSON.parse(json) as Plan);
  }

  async listPlans(): Promise<Plan[]> {
    const names = (await this.redis.smembers(PLAN_INDEX)).sort();
    const plans: Plan[] = [];
    for (const name of names) {
      const p = await this.getPlan(name);
      if (p) plans.push(p);
    }
    return plans;
  }

  async putPlan(plan: Plan): Promise<'created' | 'updated' | 'unchanged'> {
    const json = JSON.stringify(plan);
    const before = await this.redis.get(redisKeys.plan(plan.name));
    if (before === json) return 'unchanged';
    await this.redis.set(redisKeys.plan(plan.name), json);
    await this.redis.sadd(PLAN_INDEX, plan.name);
    await this.publish('plan', plan.name);
    return before === null ? 'created' : 'updated';
  }

  async deletePlan(name: string): Promise<boolean> {
    const n = await this.redis.del(redisKeys.plan(name));
    await this.redis.srem(PLAN_INDEX, name);
    if (n > 0) await this.publish('plan', name);
    return n > 0;
  }

  async ping(): Promise<void> {
    // On a Cluster: every primary is pinged, one answer is enough (not a random node's answer).
    await pingRedis(this.redis);
  }

  onInvalidate(listener: InvalidationListener): () => void {
    this.listeners.add(listener);
    if (!this.subscriber) {
      // The subscriber queues SUBSCRIBE until it is connected and re-subscribes after every
      // reconnect (the command client fails fast instead and would drop it).
      const sub: RedisClient = isCluster(this.redis)
        ? this.redis.duplicate([], { enableOfflineQueue: true, lazyConnect: false })
        : this.redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, lazyConnect: false });
      sub.on('error', () => {});
      let connections = 0;
      sub.on('ready', () => {
        // Messages published while we were disconnected are lost: everyone forgets everything.
        if (++connections > 1) for (const l of this.listeners) l({ kind: 'all' });
      });
      sub.on('message', (_channel: string, message: string) => {
        let event: { kind?: unknown; id?: unknown; ids?: unknown };
        try {
          event = JSON.parse(message) as { kind?: unknown; id?: unknown; ids?: unknown };
        } catch {
          return; // a foreign message on our channel
        }
        if ((event.kind === 'key' || event.kind === 'plan') && typeof event.id === 'string') {
          for (const l of this.listeners) l({ kind: event.kind, id: event.id });
        }
        const ids = idsOfKeysMessage(event);
        if (ids) for (const id of ids) for (const l of this.listeners) l({ kind: 'key', id });
      });
      this.subscribed = sub.subscribe(INVALIDATION_CHANNEL);
      this.subscribed.catch(() => {});
      this.subscriber = sub;
    }
    return () => this.listeners.delete(listener);
  }

  async invalidationsLive(): Promise<void> {
    await this.subscribed;
  }

  async close(): Promise<void> {
    this.listeners.clear();
    if (this.subscriber) {
      this.subscriber.disconnect();
      this.subscriber = null;
    }
  }

  private digestValue(digest: DigestEntry, id: string): string {
    return digest.expiresAt === undefined ? id : `${id}|${digest.expiresAt}`;
  }

  /** Points the digest at the key unless a live digest of another key holds it. */
  private async claimDigest(digest: DigestEntry, id: string): Promise<void> {
    const current = await this.redis.get(redisKeys.digest(digest.digest));
    if (current !== null) {
      const owner = parseDigestValue(current);
      const live = owner.expiresAt === undefined || owner.expiresAt > this.clock.now();
      if (live && owner.id !== id) throw new StoreConflictError('this secret already belongs to another key');
    }
    await this.writeDigest(digest, id);
  }

  private async writeDigest(digest: DigestEntry, id: string): Promise<void> {
    const key = redisKeys.digest(digest.digest);
    if (digest.expiresAt === undefined) {
      await this.redis.set(key, id);
    } else {
      const ttl = Math.max(digest.expiresAt - this.clock.now(), 0) + DIGEST_CLEANUP_SLACK_MS;
      await this.redis.set(key, this.digestValue(digest, id), 'PX', ttl);
    }
    await this.redis.hset(redisKeys.digests(id), digest.digest, digest.expiresAt === undefined ? '' : String(digest.expiresAt));
  }

  private async publish(kind: 'key' | 'plan', id: string): Promise<void> {
    await this.redis.publish(INVALIDATION_CHANNEL, JSON.stringify({ kind, id }));
  }

  /** One {"kind":"keys","ids":[…]} message per MAX_IDS_PER_MESSAGE ids; none for no ids. */
  private async publishKeys(ids: readonly string[]): Promise<void> {
    for (const part of chunks(ids, MAX_IDS_PER_MESSAGE)) {
      await this.redis.publish(INVALIDATION_CHANNEL, JSON.stringify({ kind: 'keys', ids: part }));
    }
  }

  /** GET of many keys, in order: MGETs on one Redis; one GET each on a Cluster (keys in many slots). */
  private async getMany(keys: readonly string[]): Promise<(string | null)[]> {
    if (keys.length === 0) return [];
    if (isCluster(this.redis)) return Promise.all(keys.map((key) => this.redis.get(key)));
    const parts = await Promise.all(chunks(keys, MULTI_KEY_CHUNK).map((part) => this.redis.mget(part)));
    return parts.flat();
  }

  /**
   * HSET of fields into many hashes: on one Redis an EVAL of HSET_MANY per chunk (one command
   * instead of one per hash: per-command client overhead dominated bulk imports); on a Cluster
   * one HSET each (a script may only touch keys of one slot there).
   */
  private hsetMany(fields: readonly [key: string, field: string, value: string][]): Command[] {
    if (isCluster(this.redis)) return fields.map(([key, field, value]): Command => ['hset', key, field, value]);
    return chunks(fields, MULTI_KEY_CHUNK).map((part): Command => {
      const command: Command = ['eval', HSET_MANY, String(part.length)];
      for (const [key] of part) command.push(key);
      for (const [, field, value] of part) command.push(field, value);
      return command;
    });
  }

  /** SET of many keys: MSETs on one Redis, one SET each on a Cluster. */
  private setMany(pairs: readonly [string, string][]): Command[] {
    if (isCluster(this.redis)) return pairs.map(([key, value]): Command => ['set', key, value]);
    return chunks(pairs, MULTI_KEY_CHUNK).map((part): Command => {
      const command: Command = ['mset'];
      for (const [key, value] of part) command.push(key, value);
      return command;
    });
  }

  /**
   * Runs stages of commands, each after the one before, and returns every reply in order (the
   * first error throws): one pipeline on one Redis, which runs it in order; a stage at a time
   * on a Cluster, where one pipeline may not span nodes.
   */
  private async runInOrder(stages: readonly Command[][]): Promise<unknown[]> {
    if (isCluster(this.redis)) {
      const replies: unknown[] = [];
      for (const stage of stages) replies.push(...(await Promise.all(stage.map(([name, ...args]) => this.redis.call(name, ...args)))));
      return replies;
    }
    const commands = stages.flat();
    if (commands.length === 0) return [];
    const results = (await this.redis.pipeline(commands).exec()) ?? [];
    if (results.length !== commands.length) throw new Error('pipeline aborted');
    return results.map(([err, reply]) => {
      if (err) throw err;
      return reply;
    });
  }
}
