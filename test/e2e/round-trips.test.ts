// What a Check costs in Redis round trips, seen by the server (MONITOR, without the commands a
// Lua script runs inside Redis): in steady
// state an allowed Check is exactly one EVALSHA (the key record and plan come from the cache);
// a flood of one unknown key costs one lookup per negative-cache TTL; junk keys cost nothing.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock';
import { makeDigester } from '../../src/keys/digest';
import { generateKey } from '../../src/keys/format';
import { RedisKeyStore } from '../../src/keys/redis-store';
import { startRedis, type CommandMonitor, type RedisServer } from '../helpers/redis';
import { checkRequest, startTestKeygate, type TestKeygate } from '../helpers/keygate';

let redis: RedisServer;
let kg: TestKeygate;
const clock = new ManualClock(Date.UTC(2026, 4, 5, 10));
let key = '';

let monitor: CommandMonitor;

/** Commands clients sent since the last call, counted by name, without the readiness probe's (PING, SCRIPT). */
async function traffic(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const name of await monitor.sent()) {
    if (name === 'ping' || name === 'script') continue;
    counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

type Msg = Record<string, any>;
const send = async (k: string) => (await kg.check(checkRequest({ headers: { 'x-api-key': k } }))) as Msg;

beforeAll(async () => {
  redis = await startRedis();
  const store = new RedisKeyStore(redis.client(), clock);
  await store.putPlan({ name: 'pro', limits: [{ count: 1_000_000, window: 's' }, { count: 1_000_000, window: 'h' }, { count: 1_000_000_000, window: 'month' }] });
  key = generateKey();
  await store.createKey(
    { id: 'key_rt', owner: 'acme', plan: 'pro', scopes: [], status: 'active', createdAt: clock.now(), cidrs: [], metadata: {} },
    { digest: makeDigester()(key) },
  );
  kg = await startTestKeygate({ REDIS_URL: redis.url, KEYGATE_LOG_ALLOWED: 'false' }, clock);
  monitor = await redis.monitor();
});
afterAll(async () => {
  monitor?.stop();
  await kg?.close();
  await redis?.close();
});

describe('Redis commands per Check', () => {
  beforeEach(async () => {
    await traffic(); // forget what came before
  });

  it('a cold allowed Check looks the key and plan up once, then charges', async () => {
    expect((await send(key)).http_response).toBe('ok_response');
    expect(await traffic()).toEqual({ get: 3, evalsha: 1 }); // digest → id, id → record, plan; charge
  });

  it('in steady state an allowed Check is exactly one EVALSHA, even with three limit windows', async () => {
    for (let i = 0; i < 100; i++) expect((await send(key)).http_response).toBe('ok_response');
    expect(await traffic()).toEqual({ evalsha: 100 });
  });

  it('a flood of one unknown key costs one lookup per negative-cache TTL', async () => {
    const unknown = generateKey();
    for (let i = 0; i < 200; i++) expect((await send(unknown)).http_response).toBe('denied_response');
    expect(await traffic()).toEqual({ get: 1 });
    clock.advance(1000); // KEYGATE_NEGATIVE_CACHE_TTL_MS default
    for (let i = 0; i < 200; i++) await send(unknown);
    expect(await traffic()).toEqual({ get: 1 });
  });

  it('junk keys (bad checksum, wrong shape) cost no command at all', async () => {
    const bad = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
    for (const junk of [bad, 'kg_123', 'kh' + key.slice(2), 'x'.repeat(1000)]) {
      for (let i = 0; i < 50; i++) expect((await send(junk)).http_response).toBe('denied_response');
    }
    expect(await traffic()).toEqual({});
  });
});
