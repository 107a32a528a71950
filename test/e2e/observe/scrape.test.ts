// A live /metrics scrape after mixed traffic: allowed Checks, every deny reason, and Checks that
// fail UNAVAILABLE because Redis was stopped. `promtool check metrics` must find nothing to say;
// the counters must match exactly what the test sent; the owner label must respect its cap; and
// the canary key (its secret, its digest) must appear nowhere in the scrape.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/clock';
import { ALL_DENY_REASONS } from '../../../src/check/reasons';
import { makeDigester } from '../../../src/keys/digest';
import { generateKey } from '../../../src/keys/format';
import { RedisKeyStore } from '../../../src/keys/redis-store';
import type { KeyRecord } from '../../../src/keys/types';
import { checkRequest, startTestKeygate, type RequestParts, type TestKeygate } from '../../helpers/keygate';
import { startRedis, type RedisServer } from '../../helpers/redis';
import { KEYGATE_METRICS } from '../../deploy/keygate-metrics';
import { httpGet, parseExposition, pollUntil, promtoolCheckMetrics, samples, value, type Sample } from './support';

const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
const digest = makeDigester();
const CANARY = generateKey();
const CANARY_DIGEST = createHash('sha256').update(CANARY).digest('hex');

let redis: RedisServer;
let kg: TestKeygate;
let scrape: string;
let all: Sample[];
const sent = { allow: 0, deny: new Map<string, number>(), error: new Map<string, number>() };

type Msg = Record<string, any>;

function record(id: string, over: Partial<KeyRecord> = {}): KeyRecord {
  return { id, owner: 'acme', plan: 'pro', scopes: ['orders:read'], status: 'active', createdAt: clock.now(), cidrs: [], metadata: {}, ...over };
}

/** Sends one Check and checks that keygate answered it as the test expects. */
async function send(parts: RequestParts, expected: string): Promise<void> {
  const res = (await kg.check(checkRequest(parts))) as Msg;
  if (expected === 'ok') {
    expect(res.status?.code ?? 0).toBe(0);
    sent.allow++;
  } else {
    expect(JSON.parse(res.denied_response.body).error.code).toBe(expected);
    sent.deny.set(expected, (sent.deny.get(expected) ?? 0) + 1);
  }
}

async function metricsNow(): Promise<Sample[]> {
  const res = await httpGet(kg.httpPort, '/metrics');
  expect(res.status).toBe(200);
  return parseExposition(res.body);
}

beforeAll(async () => {
  redis = await startRedis();
  // Plans and keys are written before keygate starts: no invalidation message can race the
  // traffic and make the cache counts below depend on timing.
  const admin = new RedisKeyStore(redis.client(), clock);
  await admin.putPlan({ name: 'pro', limits: [{ count: 1000, window: 's' }, { count: 100000, window: 'd' }] });
  await admin.putPlan({ name: 'tiny', limits: [{ count: 1, window: 's' }] });
  await admin.putPlan({ name: 'daily', limits: [{ count: 1, window: 'd' }] });
  const keys: Record<string, string> = { canary: CANARY };
  await admin.createKey(record('key_canary'), { digest: digest(CANARY) });
  const more: [string, Partial<KeyRecord>][] = [
    ['disabled', { status: 'disabled' }],
    ['expired', { owner: 'globex', expiresAt: clock.now() - 1000 }],
    ['cidr', { owner: 'globex', cidrs: ['10.0.0.0/8'] }],
    ['tiny', { owner: 'initech', plan: 'tiny' }],
    ['daily', { owner: 'initech', plan: 'daily' }],
    ['orphan', { owner: 'umbrella', plan: 'no-such-plan' }],
  ];
  for (const [name, over] of more) {
    keys[name] = generateKey();
    await admin.createKey(record(`key_${name}`, over), { digest: digest(keys[name]) });
  }
  // Owner cap 2: acme and globex get their own label, initech and umbrella fold into _other.
  kg = await startTestKeygate({ REDIS_URL: redis.url, KEYGATE_METRICS_OWNER_CAP: '2' }, clock);

  const k = (name: string) => ({ 'x-api-key': keys[name] });
  // allowed: 4 with the canary (x-api-key and Bearer), the first Check of tiny and of daily
  for (let i = 0; i < 3; i++) await send({ headers: k('canary') }, 'ok');
  await send({ headers: { authorization: `Bearer ${CANARY}`, 'x-debug': CANARY } }, 'ok');
  // every deny reason
  await send({}, 'missing_api_key');
  await send({ headers: { 'x-other': CANARY } }, 'missing_api_key');
  await send({ headers: { 'x-api-key': CANARY.slice(0, -1) + (CANARY.endsWith('A') ? 'B' : 'A') } }, 'invalid_api_key');
  await send({ headers: { 'x-api-key': generateKey() } }, 'invalid_api_key');
  await send({ headers: k('canary'), contextExtensions: { 'keygate.scope': 'orders:write' } }, 'insufficient_scope');
  await send({ headers: k('canary'), contextExtensions: { 'keygate.cost': 'abc' } }, 'invalid_route_config');
  await send({ headers: k('disabled') }, 'disabled_api_key');
  await send({ headers: k('expired') }, 'expired_api_key');
  await send({ headers: k('cidr') }, 'ip_not_allowed');
  await send({ headers: k('tiny') }, 'ok');
  await send({ headers: k('tiny') }, 'rate_limited');
  await send({ headers: k('daily') }, 'ok');
  await send({ headers: k('daily') }, 'quota_exceeded');
  await send({ headers: k('orphan') }, 'plan_not_found');

  // errors: Redis gone (keygate notices: /readyz 503), then Checks fail UNAVAILABLE
  await redis.stop();
  await pollUntil('/readyz 503', async () => ((await httpGet(kg.httpPort, '/readyz')).status === 503 ? true : undefined));
  for (let i = 0; i < 3; i++) {
    await expect(kg.check(checkRequest({ headers: k('canary') }))).rejects.toMatchObject({ code: 14 });
    sent.error.set('store', (sent.error.get('store') ?? 0) + 1);
  }

  const res = await httpGet(kg.httpPort, '/metrics');
  scrape = res.body;
  all = parseExposition(scrape);
  // Bring Redis back: RedisServer.close() waits for an exit that a killed server already had.
  await redis.restart();
});

afterAll(async () => {
  await kg?.close();
  await redis?.close();
});

describe('/metrics after mixed traffic', () => {
  it('passes promtool check metrics with no lint problem', async () => {
    const { code, output } = await promtoolCheckMetrics(scrape);
    expect(output).toBe('');
    expect(code).toBe(0);
  });

  it('counts Checks by decision and reason exactly as sent', () => {
    expect(value(all, 'keygate_checks_total', { decision: 'allow', reason: 'ok' })).toBe(sent.allow);
    expect(sent.allow).toBe(6);
    for (const reason of ALL_DENY_REASONS) {
      expect(value(all, 'keygate_checks_total', { decision: 'deny', reason }), reason).toBe(sent.deny.get(reason) ?? 0);
    }
    expect([...sent.deny.keys()].sort()).toEqual([...ALL_DENY_REASONS].sort());
    for (const reason of ['deadline', 'store', 'internal']) {
      expect(value(all, 'keygate_checks_total', { decision: 'error', reason }), reason).toBe(sent.error.get(reason) ?? 0);
    }
    // no other series
    const denies = [...sent.deny.values()].reduce((a, b) => a + b, 0);
    const total = samples(all, 'keygate_checks_total').reduce((a, s) => a + s.value, 0);
    expect(total).toBe(sent.allow + denies + 3);
  });

  it('times every Check in the latency histogram, by decision', () => {
    const denies = [...sent.deny.values()].reduce((a, b) => a + b, 0);
    expect(value(all, 'keygate_check_duration_seconds_count', { decision: 'allow' })).toBe(sent.allow);
    expect(value(all, 'keygate_check_duration_seconds_count', { decision: 'deny' })).toBe(denies);
    expect(value(all, 'keygate_check_duration_seconds_count', { decision: 'error' })).toBe(3);
    const les = samples(all, 'keygate_check_duration_seconds_bucket', { decision: 'allow' }).map((s) => s.labels.le);
    expect(les).toEqual(['0.0001', '0.00025', '0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '+Inf']);
  });

  it('counts usage by owner, plan and decision, folding owners beyond the cap into _other', () => {
    const usage = samples(all, 'keygate_usage_total').map((s) => `${s.labels.owner}/${s.labels.plan}/${s.labels.decision}=${s.value}`);
    expect(usage.sort()).toEqual(
      [
        'acme/pro/allow=4',
        'acme/pro/deny=2', // insufficient_scope, disabled_api_key
        'globex/pro/deny=2', // expired_api_key, ip_not_allowed
        '_other/tiny/allow=1',
        '_other/tiny/deny=1',
        '_other/daily/allow=1',
        '_other/daily/deny=1',
        '_other/no-such-plan/deny=1',
      ].sort(),
    );
  });

  it('counts quota denials by plan and window', () => {
    expect(value(all, 'keygate_quota_denials_total', { plan: 'tiny', window: 's' })).toBe(1);
    expect(value(all, 'keygate_quota_denials_total', { plan: 'daily', window: 'd' })).toBe(1);
    expect(samples(all, 'keygate_quota_denials_total')).toHaveLength(2);
  });

  it('times store calls by operation and counts their failures', () => {
    const count = (operation: string) => value(all, 'keygate_redis_duration_seconds_count', { operation });
    const errors = (operation: string) => value(all, 'keygate_redis_errors_total', { operation });
    // eight distinct keys were looked up once each (the cache answered every repeat)
    expect(count('lookup')).toBe(8);
    expect(errors('lookup')).toBe(0);
    // eight charges (4 canary, 2 tiny, 2 daily) plus the three that failed with Redis gone
    expect(count('charge')).toBe(8 + 3);
    expect(errors('charge')).toBe(3);
    // usage recorded outside the limiter: disabled, expired, ip, scope, plan_not_found
    expect(count('usage')).toBe(5);
    expect(errors('usage')).toBe(0);
    expect(count('ping')).toBeGreaterThan(0);
    expect(errors('ping')).toBeGreaterThanOrEqual(1);
    // four plans read once each (pro, tiny, daily, no-such-plan), then cached
    expect(count('plan')).toBe(4);
  });

  it('counts key-cache hits and misses', () => {
    expect(value(all, 'keygate_key_cache_misses_total')).toBe(8);
    // 17 Checks reached the key lookup; 8 went to the store
    expect(value(all, 'keygate_key_cache_hits_total')).toBe(17 - 8);
    // nothing changed while keygate ran (invalidation counting: test/integration/observe)
    expect(value(all, 'keygate_key_cache_invalidations_total')).toBe(0);
  });

  it('exports readiness, in-flight Checks, build info and process metrics', () => {
    expect(value(all, 'keygate_ready')).toBe(0);
    expect(value(all, 'keygate_inflight_checks')).toBe(0);
    const [build] = samples(all, 'keygate_build_info');
    expect(build.labels).toEqual({ version: expect.stringMatching(/^\d+\.\d+\.\d+/), node_version: process.version });
    expect(build.value).toBe(1);
    expect(samples(all, 'process_cpu_seconds_total')).toHaveLength(1);
    expect(samples(all, 'nodejs_eventloop_lag_seconds')).toHaveLength(1);
  });

  it('never exposes the key, its digest or a raw header value', () => {
    expect(scrape).not.toContain(CANARY);
    expect(scrape).not.toContain(CANARY.slice(0, -1));
    expect(scrape).not.toContain(CANARY_DIGEST);
    expect(scrape).not.toContain('key_canary');
    // only these label names anywhere in keygate's own metrics
    const names = new Set(all.filter((s) => s.name.startsWith('keygate_')).flatMap((s) => Object.keys(s.labels)));
    expect([...names].sort()).toEqual(['decision', 'kind', 'le', 'node_version', 'operation', 'owner', 'plan', 'reason', 'version', 'window']);
  });

  it('exports every metric the Grafana dashboard may query, with its type and labels (test/deploy/keygate-metrics.ts)', () => {
    const types = new Map([...scrape.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
    for (const metric of KEYGATE_METRICS) {
      expect(types.get(metric.name), metric.name).toBe(metric.type);
      const series = metric.type === 'histogram' ? `${metric.name}_count` : metric.name;
      const found = samples(all, series);
      expect(found.length, `${series} has samples`).toBeGreaterThan(0);
      for (const s of found) expect(Object.keys(s.labels).sort(), series).toEqual([...metric.labels].sort());
    }
  });
});
