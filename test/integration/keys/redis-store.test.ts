// The Redis store against the shared KeyStore contract, on a real throw-away redis-server.
import Redis from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, it } from 'vitest';
import { ManualClock } from '../../../src/clock';
import { RedisKeyStore } from '../../../src/keys/redis-store';
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
