// KeyStore on Redis. Schema (every key of one record shares its hash tag, so Redis Cluster works):
//   kg:{<id>}:key          JSON KeyRecord (no secret, no digest)
//   kg:{<id>}:digests      hash digest → expiresAt ms ("" = no end): the digests that find the key
//   kg:digest:{<digest>}   "<id>" or "<id>|<expiresAt ms>": lookup by digest; a rotated-out digest
//                          keeps working until expiresAt (judged by keygate's clock), and Redis drops
//                          it a day after that
//   kg:keys                set of all key ids (listing)
//   kg:plan:{<name>}       JSON Plan;   kg:plans  set of plan names
//   channel kg:invalidate  JSON {kind, id} published after every write, for the key caches
// Multi-key writes are sequenced (record, then digest, then index) rather than transactional,
// because their keys live in different cluster slots; an interrupted create leaves at worst an
// unreferenced record, never a digest that finds nothing.
import type { Cluster, Redis } from 'ioredis';
import type { Clock } from '../clock';
import { systemClock } from '../clock';
import type { Plan } from '../limits/types';
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
      const batch = ids.slice(i, i + 500);
      const pipe = this.redis.pipeline();
      for (const id of batch) pipe.get(redisKeys.record(id));
      const results = (await pipe.exec()) ?? [];
      for (const [err, json] of results) {
        if (err) throw err;
        if (typeof json === 'string') {
          const r = JSON.parse(json) as KeyRecord;
          if (filter.owner === undefined || r.owner === filter.owner) out.push(r);
        }
      }
    }
    return out.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
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
    await this.redis.ping();
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
        let event: { kind?: unknown; id?: unknown };
        try {
          event = JSON.parse(message) as { kind?: unknown; id?: unknown };
        } catch {
          return; // a foreign message on our channel
        }
        if ((event.kind === 'key' || event.kind === 'plan') && typeof event.id === 'string') {
          for (const l of this.listeners) l({ kind: event.kind, id: event.id });
        }
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
}
