// Prometheus metrics of keygate (prom-client), one registry per keygate instance: Checks by
// decision and reason, Check latency, usage by owner and plan (owner label capped), quota
// denials, store calls (latency and errors), answers given despite a store failure (by fallback
// kind), key-cache events, readiness, in-flight Checks, build info and the Node.js process metrics.
//
// Label values come only from bounded, operator-defined sets: decisions, deny reasons (the
// reasons table), limit windows, store operations, plan names and key owners (capped). Never a
// key secret, a digest, a key id or a raw header value.
//
// The Check path must stay cheap: every label child it needs is bound once (src/observe/hot.ts),
// so answering a Check bumps a few plain numbers (plus two Map lookups for usage) instead of
// hashing label values per call; prom-client reads them at scrape time.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { ALL_DENY_REASONS, type DenyReason } from '../check/reasons';
import { STORE_FALLBACK_KINDS } from '../check/store-budget';
import type { CheckEvent, CheckObserver } from '../grpc/server';
import type { HealthState } from '../health';
import type { CacheEvents } from '../keys/cache';
import { HotCounter, HotHistogram, type HotCounterChild, type HotHistogramChild } from './hot';

/** The label value that owners beyond the cap share in keygate_usage_total. */
export const OTHER_OWNER = '_other';

/** Check failures, as CheckEvent.error names them; the `reason` of decision="error". */
export const CHECK_ERRORS = ['deadline', 'store', 'internal', 'overload'] as const;
export type CheckError = (typeof CHECK_ERRORS)[number];

/** The store calls the Check path (and the readiness probe) make; the `operation` label. */
export const STORE_OPERATIONS = ['lookup', 'plan', 'charge', 'usage', 'ping'] as const;
export type StoreOperation = (typeof STORE_OPERATIONS)[number];

/** Check latency: resolves 100 µs to 250 ms (the default Check deadline is 150 ms). */
export const CHECK_DURATION_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];
/** One store call: from a loopback round trip (~50 µs) to 1 s, past any sensible command timeout. */
export const STORE_DURATION_BUCKETS: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
];

/**
 * prom-client default metrics that `promtool check metrics` rejects (gauges named `_total`).
 * The same numbers stay available, by type, in nodejs_active_handles / _requests / _resources.
 */
const LINT_FAILING_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** Pre-bound children for one store operation. */
export interface StoreOperationMetrics {
  /** seconds of one call, successful or not */
  observe(seconds: number): void;
  /** one call that threw (connection lost, timeout, script error, ...) */
  error(): void;
}

export type StoreMetrics = Readonly<Record<StoreOperation, StoreOperationMetrics>>;

export interface KeygateMetrics extends CheckObserver {
  registry: Registry;
  cacheEvents: CacheEvents;
  /** For the instrumented store and limiter (src/observe/instrument.ts). */
  store: StoreMetrics;
  /** keygate_inflight_checks reads this function at every scrape. */
  trackInflight(read: () => number): void;
}

export interface MetricsOptions {
  version: string;
  /** Most distinct owners labelled in keygate_usage_total; later ones become OTHER_OWNER. */
  ownerCap?: number;
  /** keygate_ready follows it (1 SERVING, 0 otherwise); without it the gauge is not exported. */
  health?: HealthState;
  registry?: Registry;
}

interface UsageChildren {
  allow: HotCounterChild;
  deny: HotCounterChild;
}

export function createMetrics(opts: MetricsOptions): KeygateMetrics {
  const registry = opts.registry ?? new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });
  for (const name of LINT_FAILING_DEFAULT_METRICS) registry.removeSingleMetric(name);

  // --- Checks -------------------------------------------------------------------------------
  const checks = new HotCounter({
    name: 'keygate_checks_total',
    help: 'Checks answered, by decision (allow, deny, error) and reason (ok, a deny reason, or deadline/store/overload/internal)',
    labelNames: ['decision', 'reason'] as const,
    registers,
  });
  const duration = new HotHistogram({
    name: 'keygate_check_duration_seconds',
    help: 'Time from receiving a Check to answering it, in seconds, by decision',
    labelNames: ['decision'] as const,
    buckets: [...CHECK_DURATION_BUCKETS],
    registers,
  });
  // Every decision/reason pair exists from the start (at 0), so rate() and alerts see the
  // first occurrence.
  const zero = { zero: true };
  const allowed = checks.bind(['allow', 'ok'], zero);
  const allowedDuration = duration.bind(['allow']);
  const deniedDuration = duration.bind(['deny']);
  const erroredDuration = duration.bind(['error']);
  const denied = new Map<string, HotCounterChild>(ALL_DENY_REASONS.map((r) => [r, checks.bind(['deny', r], zero)]));
  const errored = new Map<string, HotCounterChild>(CHECK_ERRORS.map((e) => [e, checks.bind(['error', e], zero)]));
  /** a reason outside the table would be a bug; it still counts, under its own name */
  const deniedChild = (reason: DenyReason): HotCounterChild => {
    let c = denied.get(reason);
    if (!c) denied.set(reason, (c = checks.bind(['deny', reason])));
    return c;
  };

  // Answers the failure policy gave despite a store failure (src/check/store-budget.ts), by kind.
  const fallbacks = new HotCounter({
    name: 'keygate_store_fallbacks_total',
    help: 'Checks answered despite a store failure, by fallback kind (stale_key, stale_plan, quota_unchecked, usage_unrecorded)',
    labelNames: ['kind'] as const,
    registers,
  });
  const fallbackChildren = new Map<string, HotCounterChild>(STORE_FALLBACK_KINDS.map((k) => [k, fallbacks.bind([k], zero)]));

  // --- usage by owner / plan ----------------------------------------------------------------
  const usage = new HotCounter({
    name: 'keygate_usage_total',
    help: `Checks of identified keys by owner, plan and decision (allow, deny); owners beyond the cap share owner="${OTHER_OWNER}"`,
    labelNames: ['owner', 'plan', 'decision'] as const,
    registers,
  });
  const ownerCap = Math.max(0, opts.ownerCap ?? 1000);
  /** owner → plan → children; at most ownerCap owners, the rest share `others` */
  const byOwner = new Map<string, Map<string, UsageChildren>>();
  const others = new Map<string, UsageChildren>();
  const usageChildren = (owner: string, plan: string): UsageChildren => {
    let plans = byOwner.get(owner);
    let label = owner;
    if (!plans) {
      if (byOwner.size < ownerCap && owner !== OTHER_OWNER) byOwner.set(owner, (plans = new Map()));
      else {
        plans = others;
        label = OTHER_OWNER;
      }
    }
    let children = plans.get(plan);
    if (!children) {
      children = { allow: usage.bind([label, plan, 'allow']), deny: usage.bind([label, plan, 'deny']) };
      plans.set(plan, children);
    }
    return children;
  };

  const quotaDenials = new Counter({
    name: 'keygate_quota_denials_total',
    help: 'Checks refused by a limit (rate_limited, quota_exceeded), by plan and window (s, m, h, d, month, credits)',
    labelNames: ['plan', 'window'] as const,
    registers,
  });
  const shadowDenials = new Counter({
    name: 'keygate_shadow_denials_total',
    help: 'Checks allowed in shadow mode that a limit would have refused, by plan and reason',
    labelNames: ['plan', 'reason'] as const,
    registers,
  });

  // --- store calls ----------------------------------------------------------------------------
  const storeDuration = new HotHistogram({
    name: 'keygate_redis_duration_seconds',
    help: 'Time of one store call made by the Check path or the readiness probe, in seconds, by operation',
    labelNames: ['operation'] as const,
    buckets: [...STORE_DURATION_BUCKETS],
    registers,
  });
  const storeErrors = new HotCounter({
    name: 'keygate_redis_errors_total',
    help: 'Store calls that failed (connection lost, timeout, script error), by operation',
    labelNames: ['operation'] as const,
    registers,
  });
  const store = Object.fromEntries(
    STORE_OPERATIONS.map((op) => {
      const h: HotHistogramChild = storeDuration.bind([op]);
      const e: HotCounterChild = storeErrors.bind([op], zero);
      return [op, { observe: (s: number) => h.observe(s), error: () => e.inc() }];
    }),
  ) as Record<StoreOperation, StoreOperationMetrics>;

  // --- key cache --------------------------------------------------------------------------------
  const hits = new HotCounter({ name: 'keygate_key_cache_hits_total', help: 'Key lookups answered from the in-process cache', registers }).bind();
  const misses = new HotCounter({ name: 'keygate_key_cache_misses_total', help: 'Key lookups that went to the store', registers }).bind();
  const invalidations = new Counter({
    name: 'keygate_key_cache_invalidations_total',
    help: 'Invalidation messages received because a key or plan changed',
    registers,
  });

  // --- state ------------------------------------------------------------------------------------
  let readInflight: () => number = () => 0;
  new Gauge({
    name: 'keygate_inflight_checks',
    help: 'Checks being answered right now',
    registers,
    collect() {
      this.set(readInflight());
    },
  });
  const health = opts.health;
  if (health) {
    new Gauge({
      name: 'keygate_ready',
      help: 'Whether keygate is ready to serve Checks (store reachable, scripts loaded, not draining): 1 or 0',
      registers,
      // with KEYGATE_WORKERS > 1 the primary aggregates: ready only when every worker is
      aggregator: 'min',
      collect() {
        this.set(health.state === 'SERVING' ? 1 : 0);
      },
    });
  }
  new Gauge({
    name: 'keygate_build_info',
    help: 'keygate version and Node.js version; always 1',
    labelNames: ['version', 'node_version'] as const,
    registers,
    aggregator: 'first',
  })
    .labels(opts.version, process.version)
    .set(1);

  return {
    registry,
    store,
    cacheEvents: { hit: () => hits.inc(), miss: () => misses.inc(), invalidation: () => invalidations.inc() },
    trackInflight(read) {
      readInflight = read;
    },
    checked(e: CheckEvent) {
      const o = e.outcome;
      if (o === undefined) {
        (errored.get(e.error ?? 'internal') ?? errored.get('internal')!).inc();
        erroredDuration.observe(e.seconds);
        return;
      }
      if (o.storeFallbacks) for (const f of o.storeFallbacks) fallbackChildren.get(f.kind)?.inc();
      if (o.decision === 'allow') {
        allowed.inc();
        allowedDuration.observe(e.seconds);
        usageChildren(o.key.owner, o.plan).allow.inc();
        if (o.shadowDenial) shadowDenials.labels(o.plan, o.shadowDenial).inc();
        return;
      }
      // A reason outside the table would be a bug; it still counts, under its own name.
      deniedChild(o.reason).inc();
      deniedDuration.observe(e.seconds);
      if (o.key) usageChildren(o.key.owner, o.key.plan).deny.inc();
      if (o.reason === 'rate_limited' || o.reason === 'quota_exceeded') {
        quotaDenials.labels(o.key?.plan ?? 'unknown', o.deniedWindow ?? 'unknown').inc();
      }
    },
  };
}
