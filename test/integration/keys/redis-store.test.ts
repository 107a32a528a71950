// The Redis store against the shared KeyStore contract, on a real throw-away redis-server.
import Redis from 'ioredis';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { ManualClock } from '../../../src/clock';
import { RedisKeyStore } from '../../../src/keys/redis-store';
import type { KeyStore } from '../../../src/keys/types';
import { keyStoreSuite } from '../../shared/keystore-suite';
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
