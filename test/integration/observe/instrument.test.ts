// The instrumented store and limiter on a real Redis: every Check-path call is timed under its
// operation, failures are counted and rethrown unchanged, results pass through untouched, admin
// methods are passed through untimed. And the readiness probe: PING, then the charge script
// loaded again after SCRIPT FLUSH, with the problem reported while Redis is gone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Writable } from 'node:stream';
import { ManualClock } from '../../../src/clock';
import { HealthState } from '../../../src/health';
import { RedisKeyStore } from '../../../src/keys/redis-store';
import type { KeyRecord } from '../../../src/keys/types';
import { RedisLimiter, chargeLuaScript } from '../../../src/limits/redis-limiter';
import { instrumentKeyStore, instrumentLimiter } from '../../../src/observe/instrument';
import { createMetrics, STORE_OPERATIONS } from '../../../src/observe/metrics';
import { readinessProbe, scriptLoaded, storeReachable } from '../../../src/observe/readiness';
import { createRedisClient } from '../../../src/redis';
import { startRedis, type RedisServer } from '../../helpers/redis';
import { parseExposition, pollUntil, value } from '../../e2e/observe/support';

const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  if (redis && redis.process().exitCode === null && redis.process().signalCode !== null) await redis.restart();
  await redis?.close();
});

const record: KeyRecord = { id: 'key_i1', owner: 'acme', plan: 'pro', scopes: [], status: 'active', createdAt: 0, cidrs: [], metadata: {} };

describe('instrumented store and limiter', () => {
  it('times each Check-path call under its operation and counts failures, passing results and errors through', async () => {
    const client = createRedisClient(redis.url, { commandTimeoutMs: 500 });
    await pollUntil('client ready', () => (client.status === 'ready' ? true : undefined));
    const m = createMetrics({ version: '1' });
    const store = instrumentKeyStore(new RedisKeyStore(client, clock), m.store);
    const limiter = instrumentLimiter(new RedisLimiter(client), m.store);
    // admin methods: passed through, not timed
    await store.putPlan({ name: 'pro', limits: [{ count: 5, window: 'm' }] });
    await store.createKey(record, { digest: 'd'.repeat(64) });
    expect((await store.listKeys()).map((k) => k.id)).toEqual(['key_i1']);
    let all = parseExposition(await m.registry.metrics());
    for (const operation of STORE_OPERATIONS) {
      expect(value(all, 'keygate_redis_duration_seconds_count', { operation })).toBe(0);
      expect(value(all, 'keygate_redis_errors_total', { operation })).toBe(0);
    }

    expect(await store.lookup('d'.repeat(64))).toEqual(record);
    expect(await store.lookup('e'.repeat(64))).toBeNull();
    expect(await store.getPlan('pro')).toEqual({ name: 'pro', limits: [{ count: 5, window: 'm' }] });
    await store.ping();
    const charged = await limiter.charge({ keyId: 'key_i1', limits: [{ count: 5, window: 'm' }], cost: 2, now: clock.now() });
    expect(charged).toMatchObject({ allowed: true, states: [{ remaining: 3 }] });
    await limiter.recordUsage('key_i1', 'expired_api_key', clock.now());
    expect((await limiter.readUsage('key_i1', '2026-06-01', 1))[0]).toMatchObject({ allowed: 1, denied: { expired_api_key: 1 } });

    all = parseExposition(await m.registry.metrics());
    const counts = Object.fromEntries(STORE_OPERATIONS.map((operation) => [operation, value(all, 'keygate_redis_duration_seconds_count', { operation })]));
    expect(counts).toEqual({ lookup: 2, plan: 1, charge: 1, usage: 1, ping: 1 });
    expect(value(all, 'keygate_redis_duration_seconds_sum', { operation: 'lookup' })).toBeGreaterThan(0);

    // Redis gone: every call fails with ioredis's own error, and is counted
    await redis.stop();
    await pollUntil('the client to notice', () => (client.status !== 'ready' ? true : undefined));
    const failures = await Promise.allSettled([
      store.lookup('d'.repeat(64)),
      store.getPlan('pro'),
      store.ping(),
      limiter.charge({ keyId: 'key_i1', limits: [{ count: 5, window: 'm' }], cost: 1, now: clock.now() }),
      limiter.recordUsage('key_i1', 'expired_api_key', clock.now()),
    ]);
    for (const f of failures) {
      expect(f.status).toBe('rejected');
      expect((f as PromiseRejectedResult).reason).toBeInstanceOf(Error);
    }
    all = parseExposition(await m.registry.metrics());
    for (const operation of STORE_OPERATIONS) expect(value(all, 'keygate_redis_errors_total', { operation }), operation).toBe(1);
    expect(value(all, 'keygate_redis_duration_seconds_count', { operation: 'lookup' })).toBe(3);
    await redis.restart();
    client.disconnect();
    await store.close();
  });
});

describe('readiness probe', () => {
  it('is ready with PING and the charge script loaded; loads the script again after SCRIPT FLUSH; reports Redis gone', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
    const client = createRedisClient(redis.url, { commandTimeoutMs: 500 });
    await pollUntil('client ready', () => (client.status === 'ready' ? true : undefined));
    const admin = redis.client();
    const script = chargeLuaScript();
    const health = new HealthState();
    const probe = readinessProbe(health, logger, [storeReachable(new RedisKeyStore(client)), scriptLoaded(client, 'charge', script)]);

    await admin.script('FLUSH');
    expect(health.problem).toBe('starting');
    await probe();
    expect(health.problem).toBeNull();
    expect(await admin.script('EXISTS', script.sha1)).toEqual([1]);

    await admin.script('FLUSH');
    await probe();
    expect(health.problem).toBeNull();
    expect(await admin.script('EXISTS', script.sha1)).toEqual([1]);

    await redis.stop();
    await pollUntil('not ready', async () => {
      await probe();
      return health.problem === 'store unreachable' ? true : undefined;
    });
    expect(health.state).toBe('NOT_SERVING');
    await redis.restart();
    await pollUntil('ready again', async () => {
      await probe();
      return health.problem === null ? true : undefined;
    });
    // a fresh Redis has an empty script cache: the probe loaded it before declaring ready
    expect(await redis.client().script('EXISTS', script.sha1)).toEqual([1]);
    const messages = lines.map((l) => JSON.parse(l).msg as string);
    expect(messages).toContain('store unreachable: not ready');
    expect(messages.filter((m) => m === 'store unreachable: not ready')).toHaveLength(1);
    client.disconnect();
  });

  it('joins a probe in progress instead of starting another', async () => {
    let calls = 0;
    let release!: () => void;
    const health = new HealthState();
    const probe = readinessProbe(health, pino({ level: 'silent' }), [
      { problem: 'slow', run: () => (calls++, new Promise<void>((r) => (release = r))) },
    ]);
    const a = probe();
    const b = probe();
    expect(calls).toBe(1);
    release();
    await Promise.all([a, b]);
    expect(health.problem).toBeNull();
  });
});
