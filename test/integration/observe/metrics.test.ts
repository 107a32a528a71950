// The metrics module on its own: the owner cap of keygate_usage_total, quota and shadow
// denials, error reasons, key-cache events through a real CachedKeyLookup, and the hot-path
// children (src/observe/hot.ts) exporting exactly what prom-client's own Counter and Histogram
// would for the same events.
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { CheckOutcome } from '../../../src/check/check';
import { ManualClock } from '../../../src/clock';
import type { CheckEvent } from '../../../src/grpc/server';
import { HealthState } from '../../../src/health';
import { CachedKeyLookup } from '../../../src/keys/cache';
import { MemoryKeyStore } from '../../../src/keys/memory-store';
import type { KeyRecord } from '../../../src/keys/types';
import { HotCounter, HotHistogram } from '../../../src/observe/hot';
import { CHECK_DURATION_BUCKETS, createMetrics, OTHER_OWNER } from '../../../src/observe/metrics';
import { parseExposition, samples, value } from '../../e2e/observe/support';

const key = (owner: string, plan = 'pro', id = `key_${owner}`): KeyRecord => ({
  id,
  owner,
  plan,
  scopes: [],
  status: 'active',
  createdAt: 0,
  cidrs: [],
  metadata: {},
});

const allow = (k: KeyRecord, extra: Partial<Extract<CheckOutcome, { decision: 'allow' }>> = {}): CheckEvent => ({
  input: { headers: new Map(), contextExtensions: {} },
  outcome: { decision: 'allow', key: k, plan: k.plan, upstreamHeaders: [], removeHeaders: [], removeQueryParams: [], responseHeaders: [], ...extra },
  seconds: 0.0004,
});

const deny = (outcome: Partial<Extract<CheckOutcome, { decision: 'deny' }>>): CheckEvent => ({
  input: { headers: new Map(), contextExtensions: {} },
  outcome: { decision: 'deny', reason: 'invalid_api_key', responseHeaders: [], ...outcome },
  seconds: 0.002,
});

async function scrape(registry: Registry) {
  return parseExposition(await registry.metrics());
}

describe('keygate_usage_total owner cap', () => {
  it('labels the first `ownerCap` owners and folds every later one into _other', async () => {
    const m = createMetrics({ version: '1.2.3', ownerCap: 3 });
    for (const owner of ['a', 'b', 'c', 'd', 'e']) m.checked(allow(key(owner)));
    m.checked(allow(key('a')));
    m.checked(allow(key('e', 'free')));
    m.checked(deny({ reason: 'insufficient_scope', key: key('d') }));
    m.checked(deny({ reason: 'insufficient_scope', key: key('b') }));
    const all = await scrape(m.registry);
    const owners = new Set(samples(all, 'keygate_usage_total').map((s) => s.labels.owner));
    expect([...owners].sort()).toEqual(['_other', 'a', 'b', 'c']);
    expect(value(all, 'keygate_usage_total', { owner: 'a', plan: 'pro', decision: 'allow' })).toBe(2);
    expect(value(all, 'keygate_usage_total', { owner: OTHER_OWNER, plan: 'pro', decision: 'allow' })).toBe(2); // d, e
    expect(value(all, 'keygate_usage_total', { owner: OTHER_OWNER, plan: 'free', decision: 'allow' })).toBe(1);
    expect(value(all, 'keygate_usage_total', { owner: OTHER_OWNER, plan: 'pro', decision: 'deny' })).toBe(1);
    expect(value(all, 'keygate_usage_total', { owner: 'b', plan: 'pro', decision: 'deny' })).toBe(1);
  });

  it('keeps the label set bounded however many owners there are', async () => {
    const m = createMetrics({ version: '1', ownerCap: 10 });
    for (let i = 0; i < 5000; i++) m.checked(allow(key(`owner${i}`)));
    const usage = samples(await scrape(m.registry), 'keygate_usage_total');
    expect(new Set(usage.map((s) => s.labels.owner)).size).toBe(11);
    expect(usage.reduce((a, s) => a + s.value, 0)).toBe(5000);
  });

  it('does not count Checks without an identified key', async () => {
    const m = createMetrics({ version: '1' });
    m.checked(deny({ reason: 'missing_api_key' }));
    m.checked({ input: { headers: new Map(), contextExtensions: {} }, error: 'store', seconds: 0.15 });
    expect(samples(await scrape(m.registry), 'keygate_usage_total')).toEqual([]);
  });
});

describe('Check counters', () => {
  it('counts quota denials by plan and window, shadow denials by plan and reason, errors by reason', async () => {
    const m = createMetrics({ version: '1' });
    m.checked(deny({ reason: 'rate_limited', key: key('a', 'pro'), deniedWindow: 's' }));
    m.checked(deny({ reason: 'quota_exceeded', key: key('a', 'pro'), deniedWindow: 'month' }));
    m.checked(deny({ reason: 'quota_exceeded', key: key('a', 'pro'), deniedWindow: 'credits' }));
    m.checked(allow(key('a', 'trial'), { shadowDenial: 'rate_limited' }));
    for (const error of ['deadline', 'store', 'store', 'internal'] as const) {
      m.checked({ input: { headers: new Map(), contextExtensions: {} }, error, seconds: 0.15 });
    }
    const all = await scrape(m.registry);
    expect(value(all, 'keygate_quota_denials_total', { plan: 'pro', window: 's' })).toBe(1);
    expect(value(all, 'keygate_quota_denials_total', { plan: 'pro', window: 'month' })).toBe(1);
    expect(value(all, 'keygate_quota_denials_total', { plan: 'pro', window: 'credits' })).toBe(1);
    expect(value(all, 'keygate_shadow_denials_total', { plan: 'trial', reason: 'rate_limited' })).toBe(1);
    expect(value(all, 'keygate_checks_total', { decision: 'allow', reason: 'ok' })).toBe(1);
    expect(value(all, 'keygate_checks_total', { decision: 'error', reason: 'deadline' })).toBe(1);
    expect(value(all, 'keygate_checks_total', { decision: 'error', reason: 'store' })).toBe(2);
    expect(value(all, 'keygate_checks_total', { decision: 'error', reason: 'internal' })).toBe(1);
    expect(value(all, 'keygate_check_duration_seconds_count', { decision: 'error' })).toBe(4);
    expect(value(all, 'keygate_check_duration_seconds_bucket', { decision: 'error', le: '0.25' })).toBe(4);
    expect(value(all, 'keygate_check_duration_seconds_bucket', { decision: 'error', le: '0.1' })).toBe(0);
  });

  it('reads keygate_ready and keygate_inflight_checks at scrape time', async () => {
    const health = new HealthState();
    const m = createMetrics({ version: '1', health });
    let inflight = 7;
    m.trackInflight(() => inflight);
    expect(value(await scrape(m.registry), 'keygate_ready')).toBe(0); // 'starting'
    health.setStoreProblem(null);
    inflight = 2;
    let all = await scrape(m.registry);
    expect(value(all, 'keygate_ready')).toBe(1);
    expect(value(all, 'keygate_inflight_checks')).toBe(2);
    health.startDraining();
    all = await scrape(m.registry);
    expect(value(all, 'keygate_ready')).toBe(0);
  });
});

describe('key-cache events', () => {
  it('counts hits, misses and invalidations of a real CachedKeyLookup', async () => {
    const clock = new ManualClock(1_000_000);
    const store = new MemoryKeyStore(clock);
    const m = createMetrics({ version: '1' });
    const cache = new CachedKeyLookup(store, clock, { ttlMs: 60_000, negativeTtlMs: 60_000, maxKeys: 100 }, m.cacheEvents);
    await store.createKey(key('acme'), { digest: 'a'.repeat(64) }); // invalidation
    await cache.lookup('a'.repeat(64)); // miss
    await cache.lookup('a'.repeat(64)); // hit
    await cache.lookup('b'.repeat(64)); // miss (unknown)
    await cache.lookup('b'.repeat(64)); // hit (negative)
    await store.updateKey({ ...key('acme'), status: 'disabled' }); // invalidation
    await store.putPlan({ name: 'pro', limits: [] }); // invalidation
    const all = await scrape(m.registry);
    expect(value(all, 'keygate_key_cache_hits_total')).toBe(2);
    expect(value(all, 'keygate_key_cache_misses_total')).toBe(2);
    expect(value(all, 'keygate_key_cache_invalidations_total')).toBe(3);
    cache.close();
  });
});

describe('hot-path children (src/observe/hot.ts)', () => {
  it('export exactly what prom-client Counter and Histogram export for the same events', async () => {
    const hotReg = new Registry();
    const refReg = new Registry();
    const hotC = new HotCounter({ name: 'x_total', help: 'h', labelNames: ['a', 'b'], registers: [hotReg] });
    const refC = new Counter({ name: 'x_total', help: 'h', labelNames: ['a', 'b'], registers: [refReg] });
    const hotH = new HotHistogram({ name: 'y_seconds', help: 'h', labelNames: ['d'], buckets: CHECK_DURATION_BUCKETS, registers: [hotReg] });
    const refH = new Histogram({ name: 'y_seconds', help: 'h', labelNames: ['d'], buckets: [...CHECK_DURATION_BUCKETS], registers: [refReg] });
    const c1 = hotC.bind(['1', 'x']);
    const c2 = hotC.bind(['2', 'y']);
    const h1 = hotH.bind(['allow']);
    const h2 = hotH.bind(['deny']);
    // values on, just under and just over bucket bounds, 0, and past the last bound
    const values = [0, 0.0001, 0.00010001, 0.00025, 0.0003, 0.001, 0.0099, 0.01, 0.25, 0.2500001, 3];
    for (let round = 0; round < 2; round++) {
      values.forEach((v, i) => {
        h1.observe(v);
        refH.labels('allow').observe(v);
        if (i % 3 === 0) {
          h2.observe(v);
          refH.labels('deny').observe(v);
        }
      });
      c1.inc();
      c1.inc(4);
      refC.labels('1', 'x').inc(5);
      c2.inc();
      refC.labels('2', 'y').inc();
      // a scrape in between: pending counts are flushed once, never twice
      expect(sortSamples(await scrape(hotReg))).toEqual(sortSamples(await scrape(refReg)));
    }
    hotReg.resetMetrics();
    refReg.resetMetrics();
    expect(value(await scrape(hotReg), 'y_seconds_count', { d: 'allow' })).toBe(0);
  });
});

function sortSamples(all: ReturnType<typeof parseExposition>) {
  return all
    .map((s) => ({ ...s, value: Math.round(s.value * 1e9) / 1e9 }))
    .map((s) => ({ key: `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`, ...s }))
    .sort((a, b) => (a.key < b.key ? -1 : 1));
}
