// Quotas and rate limits as Envoy sees them: a running keygate on real Redis with a fixed clock,
// called over gRPC with official protos. Covers the acceptance of plans, per-route cost and
// scope, rate-limit headers, Retry-After and shadow mode.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock';
import { makeDigester } from '../../src/keys/digest';
import { generateKey } from '../../src/keys/format';
import { RedisKeyStore } from '../../src/keys/redis-store';
import type { KeyRecord } from '../../src/keys/types';
import { RedisLimiter } from '../../src/limits/redis-limiter';
import type { Limit } from '../../src/limits/types';
import { startRedis, type RedisServer } from '../helpers/redis';
import { checkRequest, headerMap, startTestKeygate, type TestKeygate } from '../helpers/keygate';

type Msg = Record<string, any>;
let redis: RedisServer;
let kg: TestKeygate;
let shadowKg: TestKeygate;
let store: RedisKeyStore;
const clock = new ManualClock(Date.UTC(2026, 2, 10, 12, 0, 0));
let seq = 0;

async function keyOnPlan(plan: string, limits: Limit[], over: Partial<KeyRecord> = {}): Promise<string> {
  await store.putPlan({ name: plan, limits });
  const key = generateKey();
  await store.createKey(
    { id: `key_q${++seq}`, owner: 'acme', plan, scopes: ['read'], status: 'active', createdAt: clock.now(), cidrs: [], metadata: {}, ...over },
    { digest: makeDigester()(key) },
  );
  return key;
}

async function send(target: TestKeygate, key: string, ext: Record<string, string> = {}): Promise<Msg> {
  return (await target.check(checkRequest({ headers: { 'x-api-key': key }, contextExtensions: ext }))) as Msg;
}
const reasonOf = (res: Msg): string => (res.http_response === 'ok_response' ? 'allow' : JSON.parse(res.denied_response.body).error.code);

beforeAll(async () => {
  redis = await startRedis();
  kg = await startTestKeygate({ REDIS_URL: redis.url }, clock);
  shadowKg = await startTestKeygate({ REDIS_URL: redis.url, KEYGATE_SHADOW: 'true' }, clock);
  store = new RedisKeyStore(redis.client(), clock);
});
afterAll(async () => {
  await kg?.close();
  await shadowKg?.close();
  await redis?.close();
});

describe('plans over gRPC', () => {
  it('5/m: five allowed, the sixth 429 rate_limited with Retry-After and rate-limit headers; allowed again after the window', async () => {
    const key = await keyOnPlan('five-a-minute', [{ count: 5, window: 'm' }]);
    for (let i = 0; i < 5; i++) {
      const res = await send(kg, key);
      expect(reasonOf(res)).toBe('allow');
      const h = headerMap(res.ok_response.response_headers_to_add);
      expect(h['x-ratelimit-remaining']).toBe(String(4 - i));
      expect(h['ratelimit-policy']).toBe('"5/m";q=5;w=60');
    }
    const sixth = await send(kg, key);
    expect(sixth.status.code).toBe(8);
    expect(sixth.denied_response.status.code).toBe('TooManyRequests');
    expect(reasonOf(sixth)).toBe('rate_limited');
    const h = headerMap(sixth.denied_response.headers);
    const retry = Number(h['retry-after']);
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    expect(h['x-ratelimit-limit']).toBe('5');
    expect(h['x-ratelimit-remaining']).toBe('0');
    expect(h['ratelimit']).toMatch(/^"5\/m";r=0;t=\d+$/);
    expect(h['content-type']).toBe('application/json');
    clock.advance(retry * 1000);
    expect(reasonOf(await send(kg, key))).toBe('allow');
  });

  it('keygate.cost=5 on a 10/m plan: the third Check is denied and charges nothing', async () => {
    const key = await keyOnPlan('ten-a-minute', [{ count: 10, window: 'm' }]);
    const costly = { 'keygate.cost': '5' };
    expect(reasonOf(await send(kg, key, costly))).toBe('allow');
    expect(reasonOf(await send(kg, key, costly))).toBe('allow');
    expect(reasonOf(await send(kg, key, costly))).toBe('rate_limited');
    // nothing was charged by the refused request: a cost-1 request still finds the window full,
    // and after the window both units are back
    clock.advance(60_000);
    const res = await send(kg, key, costly);
    expect(reasonOf(res)).toBe('allow');
    expect(headerMap(res.ok_response.response_headers_to_add)['x-ratelimit-remaining']).toBe('5');
  });

  it('a Check denied by the d quota leaves the s counter untouched', async () => {
    const key = await keyOnPlan('tiny-day', [{ count: 3, window: 's' }, { count: 2, window: 'd' }]);
    expect(reasonOf(await send(kg, key))).toBe('allow');
    expect(reasonOf(await send(kg, key))).toBe('allow');
    const denied = await send(kg, key);
    expect(reasonOf(denied)).toBe('quota_exceeded');
    const rl = headerMap(denied.denied_response.headers)['ratelimit'];
    // the 3/s limit still shows 1 left (2 charged by the allowed requests, none by the denied one)
    expect(rl).toMatch(/"3\/s";r=1;/);
  });

  it('a route scope the key lacks is refused before anything is charged', async () => {
    const key = await keyOnPlan('one-a-minute', [{ count: 1, window: 'm' }]);
    expect(reasonOf(await send(kg, key, { 'keygate.scope': 'admin' }))).toBe('insufficient_scope');
    expect(reasonOf(await send(kg, key, { 'keygate.cost': 'lots' }))).toBe('invalid_route_config');
    expect(reasonOf(await send(kg, key))).toBe('allow');
  });

  it('credits: used up → quota_exceeded without Retry-After', async () => {
    const key = await keyOnPlan('metered', [], { credits: true, id: 'key_credits1' });
    await new RedisLimiter(redis.client()).setCredits('key_credits1', 2);
    expect(reasonOf(await send(kg, key))).toBe('allow');
    expect(reasonOf(await send(kg, key))).toBe('allow');
    const res = await send(kg, key);
    expect(reasonOf(res)).toBe('quota_exceeded');
    expect(headerMap(res.denied_response.headers)['retry-after']).toBeUndefined();
  });

  it('shadow mode allows a request over quota and reports it to the upstream and the log', async () => {
    const key = await keyOnPlan('one-a-day', [{ count: 1, window: 'd' }]);
    expect(reasonOf(await send(shadowKg, key))).toBe('allow');
    const over = await send(shadowKg, key);
    expect(reasonOf(over)).toBe('allow');
    expect(headerMap(over.ok_response.headers)['x-keygate-shadow-denial']).toBe('quota_exceeded');
    expect(headerMap(over.ok_response.response_headers_to_add)['x-ratelimit-remaining']).toBe('0');
    expect(shadowKg.logs.some((l) => l.includes('"shadow_denial":"quota_exceeded"'))).toBe(true);
    // the enforcing keygate on the same Redis refuses it
    expect(reasonOf(await send(kg, key))).toBe('quota_exceeded');
  });
});
