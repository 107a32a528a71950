// The failure-policy matrix end to end: two keygates over gRPC, real Redis behind the fault proxy,
// real time (short TTLs: records 300 ms, stale bound 700 ms). While the proxy blackholes Redis:
// a cached key is allowed unchecked (`x-keygate-quota: unchecked`, no rate-limit headers) by the
// lenient keygate (quota allow, stale 700 ms) until its TTL + stale bound, then UNAVAILABLE; the
// strict one (defaults: quota deny, no stale) answers UNAVAILABLE; a key never seen and an
// unknown key are never allowed; a cached disabled key stays denied; every answer within the
// deadline; the fallbacks are counted (keygate_store_fallbacks_total) and logged at warn; deadline
// failures count as error/deadline. After the heal both answer from the store again within 1 s.
import type Redis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDigester } from '../../src/keys/digest';
import { generateKey } from '../../src/keys/format';
import { RedisKeyStore } from '../../src/keys/redis-store';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { startTestKeygate, type TestKeygate } from '../helpers/keygate';
import { startRedis, type RedisServer } from '../helpers/redis';
import { DEADLINE_MS, MARGIN_MS, now, runQueueWaitMs, sendCheck, sleep, type Verdict } from './load';

const TTL = 300;
const STALE = 700;

let redis: RedisServer;
let admin: Redis;
let proxy: FaultProxy;
let strict: TestKeygate;
let lenient: TestKeygate;
const keys: Record<'known' | 'disabled' | 'cold' | 'unknown', string> = { known: '', disabled: '', cold: '', unknown: generateKey() };

beforeAll(async () => {
  redis = await startRedis();
  admin = redis.client();
  proxy = await startFaultProxy({ port: redis.port });
  const store = new RedisKeyStore(admin);
  await store.putPlan({ name: 'policy-plan', limits: [{ count: 1_000_000, window: 's' }] });
  const digest = makeDigester();
  for (const [label, status] of [['known', 'active'], ['disabled', 'disabled'], ['cold', 'active']] as const) {
    keys[label] = generateKey();
    await store.createKey(
      { id: `key_${label}`, owner: 'acme', plan: 'policy-plan', scopes: [], status, createdAt: Date.now(), cidrs: [], metadata: {} },
      { digest: digest(keys[label]) },
    );
  }
  const env = (policy: 'allow' | 'deny', staleMs: number) => ({
    REDIS_URL: proxy.url,
    KEYGATE_LOG_LEVEL: 'info',
    KEYGATE_LOG_ALLOWED: 'false',
    KEYGATE_QUOTA_ON_STORE_ERROR: policy,
    KEYGATE_CACHE_TTL_MS: String(TTL),
    KEYGATE_NEGATIVE_CACHE_TTL_MS: String(TTL),
    KEYGATE_CACHE_STALE_MS: String(staleMs),
  });
  strict = await startTestKeygate(env('deny', 0));
  lenient = await startTestKeygate(env('allow', STALE));
});

afterAll(async () => {
  await strict?.close();
  await lenient?.close();
  await proxy?.close();
  await redis?.close();
});

/**
 * One Check and its verdict; its client-side latency, less the time other processes kept this
 * one off the CPU, must stay within the deadline + margin.
 */
async function send(kg: TestKeygate, secret: string): Promise<Verdict> {
  const started = now();
  const offCpu = runQueueWaitMs();
  const verdict = await sendCheck(kg, secret);
  const ms = now() - started - (runQueueWaitMs() - offCpu);
  expect(ms, `latency of ${JSON.stringify(verdict)}`).toBeLessThanOrEqual(DEADLINE_MS + MARGIN_MS);
  return verdict;
}

/** Sends Checks until `pred` holds (every answer on the way passes `each`); returns when that Check was sent. */
async function until(kg: TestKeygate, secret: string, pred: (v: Verdict) => boolean, timeoutMs: number, each: (v: Verdict) => void = () => {}): Promise<number> {
  const deadline = now() + timeoutMs;
  for (;;) {
    const sentAt = now();
    const v = await send(kg, secret);
    each(v);
    if (pred(v)) return sentAt;
    if (now() > deadline) throw new Error(`no ${pred.toString()} within ${timeoutMs} ms; last: ${JSON.stringify(v)}`);
    await sleep(10);
  }
}

const isCharged = (v: Verdict) => v.kind === 'allow' && !v.unchecked && v.rateLimitHeaders;
const isUnavailable = (v: Verdict) => v.kind === 'unavailable';
const neverAllowed = (v: Verdict) => expect(v.kind).not.toBe('allow');

async function metric(kg: TestKeygate, name: string): Promise<string> {
  return kg.metrics.registry.getSingleMetricAsString(name);
}

describe('the failure policy through a partition (proxy blackhole)', () => {
  it('healthy: store-backed answers', async () => {
    for (const kg of [strict, lenient]) {
      expect(isCharged(await send(kg, keys.known))).toBe(true);
      expect(await send(kg, keys.disabled)).toEqual({ kind: 'deny', reason: 'disabled_api_key' });
      expect(await send(kg, keys.unknown)).toEqual({ kind: 'deny', reason: 'invalid_api_key' });
    }
  });

  it('during the partition each keygate answers as its policy says, within the deadline', async () => {
    // Refresh the cached records right before the partition.
    for (const kg of [strict, lenient]) {
      await send(kg, keys.known);
      await send(kg, keys.disabled);
    }
    proxy.blackhole();
    const faultAt = now();

    // The cached key: lenient lets it through uncharged, marked for the upstream; strict cannot charge it.
    expect(await send(lenient, keys.known)).toEqual({ kind: 'allow', unchecked: true, rateLimitHeaders: false });
    expect(isUnavailable(await send(strict, keys.known))).toBe(true);
    // A key no keygate has seen: nothing to fall back on.
    expect(isUnavailable(await send(lenient, keys.cold))).toBe(true);
    expect(isUnavailable(await send(strict, keys.cold))).toBe(true);
    // A cached disabled key stays denied (lenient: from the stale record; its usage count is lost).
    expect(await send(lenient, keys.disabled)).toEqual({ kind: 'deny', reason: 'disabled_api_key' });
    // An unknown key: denied while remembered, then UNAVAILABLE, never allowed.
    await until(lenient, keys.unknown, isUnavailable, TTL + 1000, neverAllowed);
    await until(strict, keys.unknown, isUnavailable, TTL + 1000, neverAllowed);
    // strict keeps no stale records: the disabled key fails once its TTL is over.
    await until(strict, keys.disabled, isUnavailable, TTL + 1000, (v) => expect(v.kind).not.toBe('allow'));

    // lenient: unchecked allows until TTL + stale bound after the record's last refresh, then UNAVAILABLE.
    const endedAt = await until(lenient, keys.known, isUnavailable, TTL + STALE + 1000, (v) => {
      if (!isUnavailable(v)) expect(v).toEqual({ kind: 'allow', unchecked: true, rateLimitHeaders: false });
    });
    // The record was last refreshed between faultAt - TTL and faultAt, so its stale bound ended
    // between faultAt + STALE and faultAt + TTL + STALE. A Check decides at its store fallback
    // (~125 ms after it was sent) and the polls are one Check apart: ± 200 ms.
    expect(endedAt - faultAt).toBeGreaterThanOrEqual(STALE - 200);
    expect(endedAt - faultAt).toBeLessThanOrEqual(TTL + STALE + 200);
    // ... and stays out while the partition lasts.
    for (let i = 0; i < 5; i++) expect(isUnavailable(await send(lenient, keys.known))).toBe(true);
    expect(await send(lenient, keys.disabled)).toSatisfy(isUnavailable);
  });

  it('the fallbacks are counted and logged; deadline failures count as error/deadline', async () => {
    const fallbacks = await metric(lenient, 'keygate_store_fallbacks_total');
    for (const kind of ['stale_key', 'quota_unchecked', 'usage_unrecorded']) {
      expect(fallbacks).toMatch(new RegExp(`keygate_store_fallbacks_total\\{kind="${kind}"\\} [1-9]`));
    }
    const none = await metric(strict, 'keygate_store_fallbacks_total');
    expect(none).not.toMatch(/keygate_store_fallbacks_total\{kind="[a-z_]+"\} [1-9]/);
    expect(await metric(strict, 'keygate_checks_total')).toMatch(/keygate_checks_total\{decision="error",reason="deadline"\} [1-9]/);

    const warnings = lenient.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'check answered despite a store failure');
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings[0]).toMatchObject({ level: 'warn', key_id: expect.stringMatching(/^key_(known|disabled)$/), error: expect.stringContaining('StoreDeadlineError') });
    expect(warnings.some((l) => l.store_fallbacks.includes('quota_unchecked'))).toBe(true);
    for (const secret of Object.values(keys)) for (const kg of [strict, lenient]) expect(kg.logs.join('\n')).not.toContain(secret);
  });

  it('after the heal both answer from the store again within 1 s', async () => {
    proxy.pass();
    const healAt = now();
    const offCpuAtHeal = runQueueWaitMs();
    for (const kg of [strict, lenient]) {
      await until(kg, keys.known, isCharged, 3000);
      // answered from the store within 1 s of the heal (not counting time other processes took)
      expect(now() - healAt - (runQueueWaitMs() - offCpuAtHeal)).toBeLessThanOrEqual(1000);
      expect(await send(kg, keys.cold)).toSatisfy(isCharged);
      expect(await send(kg, keys.unknown)).toEqual({ kind: 'deny', reason: 'invalid_api_key' });
    }
  });
});
