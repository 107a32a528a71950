// The Redis store against the shared KeyStore contract, on a real throw-away redis-server.
import Redis from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/clock';
import { INVALIDATION_CHANNEL, RedisKeyStore } from '../../../src/keys/redis-store';
import type { KeyStore } from '../../../src/keys/types';
import { keyStoreSuite, waitFor } from '../../shared/keystore-suite';
import { createRedisClient } from '../../../src/redis';
import { startRedis, type RedisServer } from '../../helpers/redis';

let server: RedisServer;
const opened: { stores: KeyStore[]; clients: Redis[] } = { stores: [], clients: [] };

beforeAll(async () => {
  server = await startRedis();
});
afterEach(async () => {
  for (const s of opened.stores.splice(0)) await s.close();
  for (const c of opened.clients.splice(0)) c.disconnect();
});
afterAll(async () => {
  await server.close();
});

keyStoreSuite('redis', async () => {
  const admin = server.client();
  await admin.flushall();
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const a = new Redis(server.url);
  const b = new Redis(server.url);
  opened.clients.push(a, b);
  const store = new RedisKeyStore(a, clock);
  const peer = new RedisKeyStore(b, clock);
  opened.stores.push(store, peer);
  return { store, clock, peer };
});

describe('RedisKeyStore invalidation feed on the production client', () => {
  it('subscribes through a fail-fast client, and tells listeners to forget everything after a reconnect', async () => {
    const own = await startRedis();
    const client = createRedisClient(own.url);
    const store = new RedisKeyStore(client, new ManualClock());
    const events: string[] = [];
    store.onInvalidate((e) => events.push(e.kind === 'all' ? 'all' : `${e.kind}:${e.id}`));
    try {
      await store.invalidationsLive();
      await new RedisKeyStore(own.client()).putPlan({ name: 'p1', limits: [] });
      await waitFor(() => events.includes('plan:p1'), () => events);
      await own.stop();
      await own.restart();
      await waitFor(() => events.includes('all'), () => events);
      await new RedisKeyStore(own.client()).putPlan({ name: 'p2', limits: [] });
      await waitFor(() => events.includes('plan:p2'), () => events);
    } finally {
      await store.close();
      client.disconnect();
      await own.close();
    }
  });
});

describe('RedisKeyStore batch methods: round trips and invalidation messages', () => {
  const digestOf = (i: number) => i.toString(16).padStart(64, '0');
  const entry = (i: number, owner = 'acme') => ({
    record: { id: `key_${i}`, owner, plan: 'free', scopes: [], status: 'active' as const, createdAt: 1, cidrs: [], metadata: {} },
    digest: { digest: digestOf(i) },
  });

  it('600 new keys: a few multi-key commands, no per-key GET or SET, no message; updating them: one message', async () => {
    const admin = server.client();
    await admin.flushall();
    const store = new RedisKeyStore(admin, new ManualClock(Date.UTC(2026, 0, 1)));
    const listener = server.client();
    const messages: string[] = [];
    listener.on('message', (_channel: string, message: string) => messages.push(message));
    await listener.subscribe(INVALIDATION_CHANNEL);
    const entries = Array.from({ length: 600 }, (_, i) => entry(i));

    await server.resetStats();
    expect(new Set(await store.upsertKeys(entries))).toEqual(new Set(['created']));
    const created = await server.commandStats();
    // MGET records + MGET digests (500 keys per command), MSET records + MSET digests, an EVAL
    // that runs one HSET per key (its digests hash; Redis counts those too), SADD to the index.
    expect(created).toEqual({ mget: 4, mset: 4, eval: 2, hset: 600, sadd: 2 });
    expect(await admin.scard('kg:keys')).toBe(600);
    expect((await store.lookup(digestOf(599)))?.id).toBe('key_599');

    await server.resetStats();
    expect(new Set(await store.upsertKeys(entries.map((_, i) => entry(i, i % 2 === 0 ? 'even' : 'acme'))))).toEqual(new Set(['updated', 'unchanged']));
    expect((await server.commandStats()).publish).toBe(1);
    await store.updateKeys(entries.map((e) => ({ ...e.record, owner: 'all' })));
    await waitFor(() => messages.length >= 2, () => messages);
    const [first, second] = messages.map((m) => JSON.parse(m) as { kind: string; ids: string[] });
    expect(first.kind).toBe('keys');
    expect(first.ids).toEqual(entries.filter((_, i) => i % 2 === 0).map((e) => e.record.id));
    expect(second).toEqual({ kind: 'keys', ids: entries.map((e) => e.record.id) });
    listener.disconnect();
  });

  it('a listener gets one key event per id of a "keys" message, and ignores malformed ones', async () => {
    const admin = server.client();
    const store = new RedisKeyStore(server.client(), new ManualClock());
    opened.stores.push(store);
    const events: string[] = [];
    store.onInvalidate((e) => events.push(e.kind === 'all' ? 'all' : `${e.kind}:${e.id}`));
    await store.invalidationsLive();
    await admin.publish(INVALIDATION_CHANNEL, JSON.stringify({ kind: 'keys', ids: ['k1', 7] }));
    await admin.publish(INVALIDATION_CHANNEL, JSON.stringify({ kind: 'keys', ids: 'k1' }));
    await admin.publish(INVALIDATION_CHANNEL, JSON.stringify({ kind: 'keys', ids: ['k1', 'k2'] }));
    await admin.publish(INVALIDATION_CHANNEL, JSON.stringify({ kind: 'plan', id: 'done' }));
    await waitFor(() => events.includes('plan:done'), () => events);
    expect(events).toEqual(['key:k1', 'key:k2', 'plan:done']);
  });
});
