// The failure policy of the Check path, row by row, with in-memory twins behind doubles that fail
// on demand (throw, or hang forever), a manual clock for cache TTLs and fake timers for the store
// budget (KEYGATE_CHECK_TIMEOUT_MS=100 → 80 ms of store time), so that "within the budget" is
// exact here; test/faults measures the same on real time against real Redis:
// key records and plans from a fresh cache, stale within KEYGATE_CACHE_STALE_MS, never a stale
// unknown key or missing plan, never an invalidated entry; the quota charge failing closed
// (deny) or open (allow: unchecked header, no rate-limit headers); a denial whose usage count
// fails; every fallback answered within the budget; metrics and the warn log line.
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { check, QUOTA_UNCHECKED, type Allowed, type CheckDeps, type CheckOutcome, type Denied } from '../../../src/check/check';
import { storeFallbackLogger } from '../../../src/check/fallback-log';
import type { CheckInput } from '../../../src/check/request';
import { STORE_FALLBACK_KINDS, StoreBudget, StoreDeadlineError, storeBudgetMs } from '../../../src/check/store-budget';
import { ManualClock } from '../../../src/clock';
import { loadConfig } from '../../../src/config';
import { toCheckResponse } from '../../../src/grpc/response';
import { CachedKeyLookup } from '../../../src/keys/cache';
import { makeDigester } from '../../../src/keys/digest';
import { generateKey } from '../../../src/keys/format';
import { MemoryKeyStore } from '../../../src/keys/memory-store';
import type { KeyRecord, KeyStore } from '../../../src/keys/types';
import { createLogger } from '../../../src/log';
import { MemoryLimiter } from '../../../src/limits/memory-limiter';
import type { ChargeRequest, ChargeResult, Limiter, UsageStore } from '../../../src/limits/types';
import { createMetrics } from '../../../src/observe/metrics';

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
const TTL = 1000;
const STALE = 5000;
const DEADLINE = 100;
const BUDGET = storeBudgetMs(DEADLINE); // 80 ms

type Failure = 'ok' | 'throw' | 'hang';
const never = <T>(): Promise<T> => new Promise<T>(() => {});
class StoreDown extends Error {
  constructor(what: string) {
    super(`connection refused (${what})`);
    this.name = 'StoreDown';
  }
}

/** A KeyStore double: the memory store, whose lookup and getPlan fail on demand. */
class FlakyStore {
  lookup: Failure = 'ok';
  plan: Failure = 'ok';
  lookups = 0;
  readonly store: KeyStore;
  constructor(readonly inner: MemoryKeyStore) {
    this.store = new Proxy(inner, {
      get: (target, prop, receiver) => {
        if (prop === 'lookup') {
          return (digest: string) => {
            this.lookups++;
            return this.fail(this.lookup, 'lookup') ?? target.lookup(digest);
          };
        }
        if (prop === 'getPlan') return (name: string) => this.fail(this.plan, 'getPlan') ?? target.getPlan(name);
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }
  private fail<T>(mode: Failure, what: string): Promise<T> | undefined {
    if (mode === 'throw') return Promise.reject(new StoreDown(what));
    if (mode === 'hang') return never<T>();
    return undefined;
  }
}

/** A Limiter + UsageStore double (`.limiter`): the memory limiter, whose charge and recordUsage fail on demand. */
class FlakyLimiter {
  charge: Failure = 'ok';
  usage: Failure = 'ok';
  charges = 0;
  readonly limiter: Limiter & UsageStore;
  constructor(inner: MemoryLimiter) {
    this.limiter = {
      charge: (req: ChargeRequest): Promise<ChargeResult> => {
        this.charges++;
        if (this.charge === 'throw') return Promise.reject(new StoreDown('charge'));
        if (this.charge === 'hang') return never();
        return inner.charge(req);
      },
      recordUsage: (id, outcome, now) => {
        if (this.usage === 'throw') return Promise.reject(new StoreDown('recordUsage'));
        if (this.usage === 'hang') return never();
        return inner.recordUsage(id, outcome, now);
      },
      readUsage: (id, from, days) => inner.readUsage(id, from, days),
      close: () => inner.close(),
    };
  }
}

interface World {
  clock: ManualClock;
  memory: MemoryKeyStore;
  store: FlakyStore;
  limiter: FlakyLimiter;
  cache: CachedKeyLookup;
  deps: CheckDeps;
}

let w: World;

function makeWorld(env: Record<string, string> = {}): World {
  const config = loadConfig({
    KEYGATE_CHECK_TIMEOUT_MS: String(DEADLINE),
    KEYGATE_CACHE_TTL_MS: String(TTL),
    KEYGATE_NEGATIVE_CACHE_TTL_MS: String(TTL),
    KEYGATE_CACHE_STALE_MS: String(STALE),
    ...env,
  });
  const clock = new ManualClock(T0);
  const memory = new MemoryKeyStore(clock);
  const store = new FlakyStore(memory);
  const limiter = new FlakyLimiter(new MemoryLimiter());
  const cache = new CachedKeyLookup(store.store, clock, {
    ttlMs: config.cacheTtlMs,
    negativeTtlMs: config.negativeCacheTtlMs,
    maxKeys: config.cacheMaxKeys,
    staleMs: config.cacheStaleMs,
  });
  const deps: CheckDeps = { config, clock, keys: cache, limiter: limiter.limiter, usage: limiter.limiter, digest: makeDigester() };
  return { clock, memory, store, limiter, cache, deps };
}

let seq = 0;
async function issue(extra: Partial<KeyRecord> = {}): Promise<{ secret: string; key: KeyRecord }> {
  const secret = generateKey();
  const key: KeyRecord = { id: `key_${++seq}`, owner: 'acme', plan: 'basic', scopes: [], status: 'active', createdAt: T0 - 1000, cidrs: [], metadata: {}, ...extra };
  await w.memory.createKey(key, { digest: w.deps.digest(secret) });
  return { secret, key };
}

const request = (secret: string, headers: Record<string, string> = {}): CheckInput => ({
  headers: new Map(Object.entries({ 'x-api-key': secret, ...headers }).map(([k, v]) => [k, [v]])),
  path: '/orders',
  method: 'GET',
  sourceAddress: '203.0.113.9',
  contextExtensions: {},
});

/**
 * Runs one Check on fake time: lets the fake clock run 1 ms at a time until the Check is answered
 * (at most three deadlines); `ms` is the fake time it took.
 */
async function timed(input: CheckInput): Promise<{ out?: CheckOutcome; err?: unknown; ms: number }> {
  const started = performance.now();
  let result: { out?: CheckOutcome; err?: unknown } | undefined;
  void check(input, w.deps).then(
    (out) => (result = { out }),
    (err: unknown) => (result = { err }),
  );
  await vi.advanceTimersByTimeAsync(0);
  for (let i = 0; result === undefined && i < 3 * DEADLINE; i++) await vi.advanceTimersByTimeAsync(1);
  if (!result) throw new Error(`the Check was not answered within ${3 * DEADLINE} ms`);
  return { ...result, ms: performance.now() - started };
}

function allowed(out: CheckOutcome | undefined): Allowed {
  expect(out?.decision === 'allow' ? 'allow' : `not allowed: ${JSON.stringify(out)}`).toBe('allow');
  return out as Allowed;
}
function denied(out: CheckOutcome | undefined, reason: string): Denied {
  expect(out?.decision === 'deny' ? out.reason : `not denied: ${JSON.stringify(out)}`).toBe(reason);
  return out as Denied;
}
const kinds = (out: CheckOutcome | undefined) => out?.storeFallbacks?.map((f) => f.kind) ?? [];
const header = (pairs: [string, string][], name: string) => pairs.find(([n]) => n === name)?.[1];

/** Checks once with the store healthy (fills the cache), then lets `ms` of cache time pass. */
async function warm(secret: string, ms: number): Promise<void> {
  allowed(await check(request(secret), w.deps));
  w.clock.advance(ms);
}

beforeEach(async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  w = makeWorld();
  await w.memory.putPlan({ name: 'basic', limits: [{ count: 100, window: 's' }] });
});

afterEach(() => {
  vi.useRealTimers();
});

describe('storeBudgetMs: store time out of the Check deadline', () => {
  it('reserves a fifth of the deadline, at most 25 ms, and leaves at least 1 ms', () => {
    expect(storeBudgetMs(150)).toBe(125);
    expect(storeBudgetMs(1000)).toBe(975);
    expect(storeBudgetMs(100)).toBe(80);
    expect(storeBudgetMs(20)).toBe(16);
    expect(storeBudgetMs(1)).toBe(1);
  });

  it('StoreBudget.run: a call past the budget is abandoned; after the budget, the store is not called at all', async () => {
    const budget = new StoreBudget(20);
    const abandoned = budget.run(() => never());
    const settled = vi.fn();
    abandoned.catch(settled);
    await vi.advanceTimersByTimeAsync(19);
    expect(settled).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    await expect(abandoned).rejects.toBeInstanceOf(StoreDeadlineError);
    let called = false;
    await expect(budget.run(async () => (called = true))).rejects.toBeInstanceOf(StoreDeadlineError);
    expect(called).toBe(false);
    budget.dispose();
    await expect(new StoreBudget(undefined).run(async () => 7)).resolves.toBe(7);
  });

  it('StoreBudget.run: a store failure within the budget is that failure; one that lands when the budget is over counts as the deadline', async () => {
    class CommandTimeout extends Error {}
    const failAfter = (ms: number) => () => new Promise<never>((_, reject) => setTimeout(() => reject(new CommandTimeout('Command timed out')), ms));
    const early = new StoreBudget(20).run(failAfter(10));
    early.catch(() => {});
    await vi.advanceTimersByTimeAsync(10);
    await expect(early).rejects.toBeInstanceOf(CommandTimeout);
    // a command timeout firing in the same timer phase as the budget's end (a late event loop)
    const late = new StoreBudget(20).run(failAfter(20));
    late.catch(() => {});
    await vi.advanceTimersByTimeAsync(20);
    await expect(late).rejects.toBeInstanceOf(StoreDeadlineError);
  });
});

describe('key record', () => {
  it('fresh in the cache: answered from it, the store is not asked', async () => {
    const { secret } = await issue();
    await warm(secret, TTL - 1);
    w.store.lookup = 'throw';
    const lookups = w.store.lookups;
    const { out } = await timed(request(secret));
    expect(allowed(out).charge).toBeDefined();
    expect(kinds(out)).toEqual([]);
    expect(w.store.lookups).toBe(lookups);
  });

  it('past its TTL, within the stale bound, store throws: the cached record is used and noted; the charge runs as usual', async () => {
    const { secret, key } = await issue();
    await warm(secret, TTL + 2000);
    w.store.lookup = 'throw';
    const { out, ms } = await timed(request(secret));
    const a = allowed(out);
    expect(a.key.id).toBe(key.id);
    expect(a.charge).toBeDefined();
    expect(a.storeFallbacks).toEqual([expect.objectContaining({ kind: 'stale_key', staleMs: 2000, cause: expect.any(StoreDown) })]);
    expect(ms).toBe(0);
  });

  it('store hangs: the stale record is used when the budget ends, which leaves no time for the plan or the charge', async () => {
    for (const policy of ['deny', 'allow'] as const) {
      w = makeWorld({ KEYGATE_QUOTA_ON_STORE_ERROR: policy });
      await w.memory.putPlan({ name: 'basic', limits: [{ count: 100, window: 's' }] });
      const { secret } = await issue();
      await warm(secret, TTL + 2000);
      w.store.lookup = 'hang';
      const charges = w.limiter.charges;
      const { out, err, ms } = await timed(request(secret));
      expect(ms).toBe(BUDGET);
      expect(w.limiter.charges).toBe(charges); // no budget left: the limiter is not even called
      if (policy === 'deny') {
        expect(err).toBeInstanceOf(StoreDeadlineError);
      } else {
        const a = allowed(out);
        // the plan (expired too) was not read either: stale as well
        expect(kinds(a)).toEqual(['stale_key', 'stale_plan', 'quota_unchecked']);
        expect(a.storeFallbacks?.[0]).toMatchObject({ staleMs: 2000, cause: expect.any(StoreDeadlineError) });
      }
    }
  });

  it('exactly at the stale bound: still used; 1 ms past it: the Check fails', async () => {
    const { secret } = await issue();
    await warm(secret, TTL + STALE);
    w.store.lookup = 'throw';
    expect(kinds((await timed(request(secret))).out)).toEqual(['stale_key']);
    w.clock.advance(1);
    const { err } = await timed(request(secret));
    expect(err).toBeInstanceOf(StoreDown);
  });

  it.each(['throw', 'hang'] as const)('past the stale bound, store %s: the Check fails (UNAVAILABLE) within the budget', async (mode) => {
    const { secret } = await issue();
    await warm(secret, TTL + STALE + 1);
    w.store.lookup = mode;
    const { err, ms } = await timed(request(secret));
    expect(err).toBeInstanceOf(mode === 'throw' ? StoreDown : StoreDeadlineError);
    expect(ms).toBe(mode === 'hang' ? BUDGET : 0);
  });

  it('KEYGATE_CACHE_STALE_MS=0 (the default): an expired record is never used', async () => {
    w = makeWorld({ KEYGATE_CACHE_STALE_MS: '0' });
    await w.memory.putPlan({ name: 'basic', limits: [{ count: 100, window: 's' }] });
    const { secret } = await issue();
    await warm(secret, TTL);
    w.store.lookup = 'throw';
    expect((await timed(request(secret))).err).toBeInstanceOf(StoreDown);
  });

  it('a key never seen: the Check fails', async () => {
    const { secret } = await issue();
    w.store.lookup = 'throw';
    expect((await timed(request(secret))).err).toBeInstanceOf(StoreDown);
  });

  it('an unknown key: denied while remembered, never served stale (the Check fails once the memory expires)', async () => {
    const unknown = generateKey();
    denied(await check(request(unknown), w.deps), 'invalid_api_key');
    w.store.lookup = 'throw';
    w.clock.advance(TTL - 1);
    denied(await check(request(unknown), w.deps), 'invalid_api_key'); // remembered: no store call
    w.clock.advance(1);
    expect((await timed(request(unknown))).err).toBeInstanceOf(StoreDown);
  });

  it('an entry an invalidation dropped is never served stale (a revocation is not undone by an outage)', async () => {
    const { secret, key } = await issue();
    await warm(secret, TTL + 10);
    await w.memory.updateKey({ ...key, status: 'revoked' }); // publishes the invalidation
    w.store.lookup = 'throw';
    expect((await timed(request(secret))).err).toBeInstanceOf(StoreDown);
  });

  it('a stale record decides denials too: a cached disabled key is denied disabled_api_key', async () => {
    const { secret } = await issue({ status: 'disabled' });
    denied(await check(request(secret), w.deps), 'disabled_api_key');
    w.clock.advance(TTL + 100);
    w.store.lookup = 'throw';
    const out = denied((await timed(request(secret))).out, 'disabled_api_key');
    expect(kinds(out)).toEqual(['stale_key']);
  });
});

describe('plan', () => {
  it('past its TTL, within the stale bound, store throws: the cached plan is used and noted', async () => {
    const { secret } = await issue();
    await warm(secret, TTL + 10);
    w.store.plan = 'throw';
    const { out, ms } = await timed(request(secret));
    expect(allowed(out).storeFallbacks).toEqual([expect.objectContaining({ kind: 'stale_plan', staleMs: 10 })]);
    expect(ms).toBe(0);
  });

  it('store hangs on the plan: the stale plan when the budget ends; then policy allow lets it through unchecked', async () => {
    w = makeWorld({ KEYGATE_QUOTA_ON_STORE_ERROR: 'allow' });
    await w.memory.putPlan({ name: 'basic', limits: [{ count: 100, window: 's' }] });
    const { secret } = await issue();
    await warm(secret, TTL + 10);
    w.store.plan = 'hang';
    const { out, ms } = await timed(request(secret));
    expect(kinds(allowed(out))).toEqual(['stale_plan', 'quota_unchecked']);
    expect(ms).toBe(BUDGET);
  });

  it('past the stale bound: the Check fails', async () => {
    const { secret } = await issue();
    await warm(secret, TTL + STALE + 1);
    w.store.plan = 'throw';
    expect((await timed(request(secret))).err).toBeInstanceOf(StoreDown);
  });

  it('a missing plan is never served stale: plan_not_found while remembered, then the Check fails', async () => {
    const { secret } = await issue({ plan: 'gone' });
    denied(await check(request(secret), w.deps), 'plan_not_found');
    w.clock.advance(TTL + 10);
    w.store.plan = 'throw';
    expect((await timed(request(secret))).err).toBeInstanceOf(StoreDown);
  });

  it('key and plan both stale: both noted', async () => {
    const { secret } = await issue();
    await warm(secret, TTL + 10);
    w.store.lookup = 'throw';
    w.store.plan = 'throw';
    expect(kinds((await timed(request(secret))).out)).toEqual(['stale_key', 'stale_plan']);
  });
});

describe('quota charge', () => {
  it.each(['throw', 'hang'] as const)('policy deny (the default), charge %s: the Check fails (UNAVAILABLE) within the budget', async (mode) => {
    w = makeWorld({ KEYGATE_QUOTA_ON_STORE_ERROR: 'deny' });
    await w.memory.putPlan({ name: 'basic', limits: [{ count: 100, window: 's' }] });
    const { secret } = await issue();
    w.limiter.charge = mode;
    const { err, ms } = await timed(request(secret));
    expect(err).toBeInstanceOf(mode === 'throw' ? StoreDown : StoreDeadlineError);
    expect(ms).toBe(mode === 'hang' ? BUDGET : 0);
  });

  it('the default policy is deny', () => {
    expect(loadConfig({}).quotaOnStoreError).toBe('deny');
  });

  it.each(['throw', 'hang'] as const)('policy allow, charge %s: allowed uncharged, `quota: unchecked` upstream, no rate-limit headers', async (mode) => {
    w = makeWorld({ KEYGATE_QUOTA_ON_STORE_ERROR: 'allow' });
    await w.memory.putPlan({ name: 'basic', limits: [{ count: 100, window: 's' }] });
    const { secret, key } = await issue();
    w.limiter.charge = mode;
    const { out, ms } = await timed(request(secret));
    const a = allowed(out);
    expect(a.charge).toBeUndefined();
    expect(a.responseHeaders).toEqual([]);
    expect(header(a.upstreamHeaders, 'x-keygate-quota')).toBe(QUOTA_UNCHECKED);
    expect(header(a.upstreamHeaders, 'x-keygate-key-id')).toBe(key.id);
    expect(kinds(a)).toEqual(['quota_unchecked']);
    expect(ms).toBe(mode === 'hang' ? BUDGET : 0);
    const wire = toCheckResponse(a);
    expect(wire.ok_response?.response_headers_to_add).toEqual([]);
    expect(wire.ok_response?.headers?.map((h) => h.header?.key)).toContain('x-keygate-quota');
  });

  it('policy allow on a stale record: allowed unchecked, both fallbacks noted', async () => {
    w = makeWorld({ KEYGATE_QUOTA_ON_STORE_ERROR: 'allow' });
    await w.memory.putPlan({ name: 'basic', limits: [{ count: 100, window: 's' }] });
    const { secret } = await issue();
    await warm(secret, TTL + 10);
    w.store.lookup = 'throw';
    w.limiter.charge = 'throw';
    expect(kinds((await timed(request(secret))).out)).toEqual(['stale_key', 'quota_unchecked']);
  });

  it('policy allow never lets an unknown key through', async () => {
    w = makeWorld({ KEYGATE_QUOTA_ON_STORE_ERROR: 'allow' });
    w.limiter.charge = 'throw';
    denied(await check(request(generateKey()), w.deps), 'invalid_api_key');
    w.store.lookup = 'throw';
    expect((await timed(request(generateKey()))).err).toBeInstanceOf(StoreDown);
  });

  it('a client-sent `<prefix>quota` header is removed on a charged allow and overwritten on an unchecked one; the prefix is configurable', async () => {
    w = makeWorld({ KEYGATE_QUOTA_ON_STORE_ERROR: 'allow', KEYGATE_UPSTREAM_HEADER_PREFIX: 'x-auth-' });
    await w.memory.putPlan({ name: 'basic', limits: [{ count: 100, window: 's' }] });
    const { secret } = await issue();
    const spoofed = request(secret, { 'x-auth-quota': 'unchecked' });
    const charged = allowed(await check(spoofed, w.deps));
    expect(charged.removeHeaders).toContain('x-auth-quota');
    expect(header(charged.upstreamHeaders, 'x-auth-quota')).toBeUndefined();
    w.limiter.charge = 'throw';
    const unchecked = allowed(await check(spoofed, w.deps));
    expect(unchecked.removeHeaders).not.toContain('x-auth-quota');
    expect(header(unchecked.upstreamHeaders, 'x-auth-quota')).toBe('unchecked');
  });

  it('one budget for all store calls: a slow lookup leaves the charge only the rest', async () => {
    w = makeWorld({ KEYGATE_QUOTA_ON_STORE_ERROR: 'allow' });
    await w.memory.putPlan({ name: 'basic', limits: [{ count: 100, window: 's' }] });
    const { secret } = await issue();
    await warm(secret, TTL - 1); // key and plan fresh in the cache
    const cache = w.cache;
    const slowLookup = async (digest: string) => {
      await new Promise((resolve) => setTimeout(resolve, 30));
      return cache.lookup(digest);
    };
    w.deps = { ...w.deps, keys: { lookup: slowLookup, plan: (name: string) => cache.plan(name) } };
    w.limiter.charge = 'hang';
    const { out, ms } = await timed(request(secret));
    expect(kinds(allowed(out))).toEqual(['quota_unchecked']);
    expect(ms).toBe(BUDGET); // 30 ms lookup + the 50 ms left for the charge
  });
});

describe("a denial's usage count", () => {
  it.each(['throw', 'hang'] as const)('recordUsage %s: the denial stands, within the budget, noted usage_unrecorded', async (mode) => {
    const { secret } = await issue({ status: 'disabled' });
    w.limiter.usage = mode;
    const { out, ms } = await timed(request(secret));
    expect(kinds(denied(out, 'disabled_api_key'))).toEqual(['usage_unrecorded']);
    expect(ms).toBe(mode === 'hang' ? BUDGET : 0);
  });
});

describe('counted and logged', () => {
  it('keygate_store_fallbacks_total{kind}: every kind exported at 0, then counted per answered Check', async () => {
    const metrics = createMetrics({ version: 'test' });
    const before = await metrics.registry.getSingleMetricAsString('keygate_store_fallbacks_total');
    for (const kind of STORE_FALLBACK_KINDS) expect(before).toContain(`keygate_store_fallbacks_total{kind="${kind}"} 0`);
    w = makeWorld({ KEYGATE_QUOTA_ON_STORE_ERROR: 'allow' });
    await w.memory.putPlan({ name: 'basic', limits: [{ count: 100, window: 's' }] });
    const { secret } = await issue();
    await warm(secret, TTL + 10);
    w.store.lookup = 'throw';
    w.limiter.charge = 'throw';
    const input = request(secret);
    const outcome = await check(input, w.deps);
    metrics.checked({ input, outcome, seconds: 0.001 });
    const after = await metrics.registry.getSingleMetricAsString('keygate_store_fallbacks_total');
    expect(after).toContain('keygate_store_fallbacks_total{kind="stale_key"} 1');
    expect(after).toContain('keygate_store_fallbacks_total{kind="quota_unchecked"} 1');
    expect(after).toContain('keygate_store_fallbacks_total{kind="stale_plan"} 0');
    const checks = await metrics.registry.getSingleMetricAsString('keygate_checks_total');
    expect(checks).toContain('keygate_checks_total{decision="allow",reason="ok"} 1');
  });

  it('one warn line naming the fallbacks, the key by id and the store error; never the key', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        cb();
      },
    });
    const log = storeFallbackLogger(createLogger('info', sink));
    w = makeWorld({ KEYGATE_QUOTA_ON_STORE_ERROR: 'allow' });
    await w.memory.putPlan({ name: 'basic', limits: [{ count: 100, window: 's' }] });
    const { secret, key } = await issue();
    await warm(secret, TTL + 10);
    w.store.lookup = 'throw';
    w.limiter.charge = 'throw';
    const input = { ...request(secret), requestId: 'req-42' };
    log.checked({ input, outcome: await check(input, w.deps), seconds: 0.002 });
    // Answers without a fallback, and failed Checks, are not this logger's business.
    log.checked({ input, outcome: { decision: 'deny', reason: 'missing_api_key', responseHeaders: [] }, seconds: 0 });
    log.checked({ input, error: 'store', cause: new StoreDown('lookup'), seconds: 0 });
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]);
    expect(line).toMatchObject({
      level: 'warn',
      msg: 'check answered despite a store failure',
      request_id: 'req-42',
      decision: 'allow',
      reason: 'ok',
      key_id: key.id,
      owner: 'acme',
      plan: 'basic',
      store_fallbacks: ['stale_key(10ms)', 'quota_unchecked'],
      error: 'StoreDown: connection refused (lookup)',
    });
    expect(lines[0]).not.toContain(secret);
    expect(lines[0]).not.toContain(w.deps.digest(secret));
  });
});
