// The Check path, top to bottom: from an Envoy request to a verdict. Each phase either returns
// a deny (a value, never an exception) or passes to the next. Only infrastructure failures
// (store unreachable) throw; the gRPC adapter turns those into UNAVAILABLE.
//
//   1. route settings    keygate.scope / keygate.cost from context_extensions
//   2. credential        where the key is (headers, query parameter)
//   3. shape             checksum and length, without any I/O
//   4. key record        cache, then store, by digest
//   5. status            revoked / disabled / expired
//   6. source address    CIDR allowlist
//   7. scope             the route's required scope
//   8. plan              the key's plan (or its own limits)
//   9. limits            one atomic charge of every limit (and credits)
//  10. allow             identity headers, key removal, rate-limit headers, metadata
//
// Store failures follow one policy (README "Store failures"): every store call of a Check draws
// on one StoreBudget that ends before the RPC deadline (src/check/store-budget.ts). When a call
// fails or runs out of budget, phase 4 and 8 may use a cached value past its TTL (at most
// KEYGATE_CACHE_STALE_MS; never a remembered unknown key or plan), phase 9 may allow the request
// uncharged (KEYGATE_QUOTA_ON_STORE_ERROR=allow, marked by the `quota: unchecked` upstream
// header), and a denial stands when its usage counter cannot be written. Anything else throws,
// and the adapter answers UNAVAILABLE. Each fallback taken is listed in the outcome's
// storeFallbacks for metrics and logs.
import type { Clock } from '../clock';
import type { Config } from '../config';
import { CidrAllowlist } from '../keys/cidr';
import type { Digester } from '../keys/digest';
import { classifyKey } from '../keys/format';
import type { KeyRecord } from '../keys/types';
import type { ChargeResult, Limit, Limiter, Plan, Window } from '../limits/types';
import { effectiveLimits } from '../limits/plans';
import { findCredential } from './credentials';
import type { DenyReason } from './reasons';
import type { CheckInput } from './request';
import { firstHeader } from './request';
import { rateLimitHeaders, retryAfterSeconds, type HeaderPair } from './ratelimit-headers';
import { StoreBudget, storeBudgetMs, storeReserveMs, type StaleValue, type StoreFallback, type StoreFallbackKind } from './store-budget';

export interface KeyLookup {
  lookup(digest: string): Promise<KeyRecord | null>;
  /**
   * Optional fast path: a fresh cached answer without waiting (record, or null for a remembered
   * unknown key), undefined when there is none (then lookup is called).
   */
  cachedKey?(digest: string): KeyRecord | null | undefined;
  /** The same for a plan. */
  cachedPlan?(name: string): Plan | null | undefined;
  plan(name: string): Promise<Plan | null>;
  /**
   * For when the store fails: the cached record of a digest within its stale bound, else
   * undefined. Never an unknown key (a remembered null), never an entry an invalidation dropped.
   */
  staleKey?(digest: string): StaleValue<KeyRecord> | undefined;
  /** The same for a plan. */
  stalePlan?(name: string): StaleValue<Plan> | undefined;
}

/** Usage counters for denials decided before the limiter runs (the limiter records its own). */
export interface UsageRecorder {
  recordUsage(keyId: string, outcome: string, now: number): Promise<void>;
}

export interface CheckDeps {
  config: Pick<
    Config,
    | 'keyHeaders'
    | 'queryParam'
    | 'upstreamHeaderPrefix'
    | 'keyPrefix'
    | 'acceptForeignKeys'
    | 'trustExternalAddress'
    | 'shadow'
    | 'authRealm'
    | 'checkTimeoutMs'
    | 'quotaOnStoreError'
  >;
  clock: Clock;
  keys: KeyLookup;
  limiter: Limiter;
  usage?: UsageRecorder;
  digest: Digester;
}

export interface RouteSettings {
  scope?: string;
  cost: number;
}

export interface Allowed {
  decision: 'allow';
  key: KeyRecord;
  plan: string;
  /** headers for the upstream request (set, overwriting what the client sent) */
  upstreamHeaders: HeaderPair[];
  /** request headers to remove before the request goes upstream */
  removeHeaders: string[];
  /** query parameters to remove before the request goes upstream */
  removeQueryParams: string[];
  /** headers added to the response the client gets */
  responseHeaders: HeaderPair[];
  /** set when a limit would have denied but shadow mode let the request pass */
  shadowDenial?: DenyReason;
  /** absent when the request was let through uncharged (fallback quota_unchecked) */
  charge?: ChargeResult;
  /** the store failures this answer survived, when any */
  storeFallbacks?: StoreFallback[];
}

export interface Denied {
  decision: 'deny';
  reason: DenyReason;
  /** the key, when one was identified (for logs and usage; never sent to the client) */
  key?: KeyRecord;
  /** detail for the operator's log line; never sent to the client */
  detail?: string;
  responseHeaders: HeaderPair[];
  retryAfterSeconds?: number;
  /** for rate_limited / quota_exceeded: the window of the limit that refused, or 'credits' */
  deniedWindow?: Window | 'credits';
  /** the store failures this answer survived, when any */
  storeFallbacks?: StoreFallback[];
}

export type CheckOutcome = Allowed | Denied;

const deny = (reason: DenyReason, extra: Partial<Denied> = {}): Denied => ({
  decision: 'deny',
  reason,
  responseHeaders: [],
  ...extra,
});

const COST_RE = /^[1-9][0-9]{0,8}$/;
const SCOPE_RE = /^[A-Za-z0-9][A-Za-z0-9._:/*-]{0,127}$/;

/** Parses keygate.* context extensions; a bad value is a route misconfiguration. */
export function routeSettings(ext: Record<string, string>): RouteSettings | { problem: string } {
  const cost = ext['keygate.cost'];
  const scope = ext['keygate.scope'];
  if (cost !== undefined && !COST_RE.test(cost)) return { problem: `keygate.cost "${cost.slice(0, 40)}" is not a positive whole number` };
  if (scope !== undefined && !SCOPE_RE.test(scope)) return { problem: `keygate.scope "${scope.slice(0, 40)}" is not a valid scope` };
  return { cost: cost === undefined ? 1 : Number(cost), scope };
}

/** The scopes a key holds grant `required` exactly, or through a trailing wildcard (`orders:*`, `*`). */
export function scopeGranted(scopes: readonly string[], required: string): boolean {
  for (const s of scopes) {
    if (s === required || s === '*') return true;
    if (s.endsWith('*') && required.startsWith(s.slice(0, -1))) return true;
  }
  return false;
}

const allowlists = new WeakMap<KeyRecord, CidrAllowlist>();
function allowlistOf(key: KeyRecord): CidrAllowlist {
  let list = allowlists.get(key);
  if (!list) allowlists.set(key, (list = new CidrAllowlist(key.cidrs)));
  return list;
}

/**
 * effectiveLimits(plan, key.limits), computed once per (cached, immutable) record: the key's own
 * limits when it has any, else the plan's. Keyed by the key's limits array or by the plan object,
 * which the cache replaces (never mutates) on every change.
 */
const limitsMemo = new WeakMap<object, readonly Limit[]>();
function limitsOf(plan: Plan, key: KeyRecord): readonly Limit[] {
  const own = key.limits;
  const source: object = own && own.length > 0 ? own : plan;
  let limits = limitsMemo.get(source);
  if (!limits) limitsMemo.set(source, (limits = Object.freeze(effectiveLimits(plan, own))));
  return limits;
}

/** Value of the `quota` upstream header when the request passed without its quota charge. */
export const QUOTA_UNCHECKED = 'unchecked';

/** One Check's store budget and the fallbacks it took. */
interface StoreState {
  budget: StoreBudget;
  fallbacks: StoreFallback[];
}

/**
 * When the Check began and when its RPC deadline is (performance.now() ms), as the gRPC adapter
 * measured them; without it the budget starts now. The store budget ends the reserve before
 * `deadlineAt`: a Check that waited long before it ran gets what is left, and one that got to
 * run only after its budget starts no store call at all (no quota is charged for an answer that
 * would come too late).
 */
export interface CheckTiming {
  startedAt: number;
  deadlineAt: number;
}

export async function check(input: CheckInput, deps: CheckDeps, timing?: CheckTiming): Promise<CheckOutcome> {
  const timeoutMs = deps.config.checkTimeoutMs;
  const budgetMs = storeBudgetMs(timeoutMs);
  const endsAt = timing === undefined ? undefined : Math.min(timing.startedAt + budgetMs, timing.deadlineAt - storeReserveMs(timeoutMs));
  const store: StoreState = { budget: new StoreBudget(budgetMs, endsAt), fallbacks: [] };
  try {
    const outcome = await decide(input, deps, store);
    if (store.fallbacks.length > 0) outcome.storeFallbacks = store.fallbacks;
    return outcome;
  } finally {
    store.budget.dispose();
  }
}

async function decide(input: CheckInput, deps: CheckDeps, store: StoreState): Promise<CheckOutcome> {
  const { config } = deps;
  const now = deps.clock.now();

  // 1. route settings
  const route = routeSettings(input.contextExtensions);
  if ('problem' in route) return deny('invalid_route_config', { detail: route.problem });

  // 2. credential
  const cred = findCredential(input, config.keyHeaders, config.queryParam);
  if (cred.kind === 'missing') return deny('missing_api_key', { responseHeaders: [authenticate(config.authRealm, false)] });
  if (cred.kind === 'conflict') {
    return deny('invalid_api_key', { detail: 'two different keys in one request', responseHeaders: [authenticate(config.authRealm, true)] });
  }

  // 3. shape
  const shape = classifyKey(cred.secret, [config.keyPrefix]);
  if (shape === 'malformed' || (shape === 'foreign' && !config.acceptForeignKeys)) {
    return deny('invalid_api_key', { detail: `${shape} key`, responseHeaders: [authenticate(config.authRealm, true)] });
  }

  // 4. key record (stale within bounds when the store fails)
  const digest = deps.digest(cred.secret);
  let key = deps.keys.cachedKey?.(digest);
  if (key === undefined) key = await orStale(store, 'stale_key', () => deps.keys.lookup(digest), () => deps.keys.staleKey?.(digest));
  if (!key) return deny('invalid_api_key', { detail: 'unknown key', responseHeaders: [authenticate(config.authRealm, true)] });

  // 5. status
  if (key.status === 'revoked') return deny('invalid_api_key', { key, detail: 'revoked key', responseHeaders: [authenticate(config.authRealm, true)] });
  if (key.status !== 'active') return await denyKnown('disabled_api_key', key, deps, store, now, [authenticate(config.authRealm, true)]);
  if (key.expiresAt !== undefined && key.expiresAt <= now) {
    return await denyKnown('expired_api_key', key, deps, store, now, [authenticate(config.authRealm, true)]);
  }

  // 6. source address
  if (key.cidrs.length > 0) {
    const address = config.trustExternalAddress ? firstHeader(input, 'x-envoy-external-address') : input.sourceAddress;
    if (!allowlistOf(key).allows(address)) return await denyKnown('ip_not_allowed', key, deps, store, now);
  }

  // 7. scope
  if (route.scope !== undefined && !scopeGranted(key.scopes, route.scope)) {
    return await denyKnown('insufficient_scope', key, deps, store, now);
  }

  // 8. plan (stale within bounds when the store fails)
  let plan = deps.keys.cachedPlan?.(key.plan);
  if (plan === undefined) plan = await orStale(store, 'stale_plan', () => deps.keys.plan(key.plan), () => deps.keys.stalePlan?.(key.plan));
  if (!plan) return await denyKnown('plan_not_found', key, deps, store, now);
  const limits: readonly Limit[] = limitsOf(plan, key);
  const shadow = config.shadow || plan.shadow === true;

  // 9. limits (on a store failure: UNAVAILABLE, or uncharged when the policy says allow)
  let charge: ChargeResult | undefined;
  try {
    charge = await store.budget.run(() => deps.limiter.charge({ keyId: key.id, limits, cost: route.cost, now, credits: key.credits === true, shadow }));
  } catch (cause) {
    if (config.quotaOnStoreError !== 'allow') throw cause;
    store.fallbacks.push({ kind: 'quota_unchecked', cause });
  }
  if (!charge) return allow(input, key, cred, config, undefined, []);
  const limitHeaders = rateLimitHeaders(charge.states, now);
  if (!charge.allowed) {
    const retry = charge.retryAfterMs >= 0 ? retryAfterSeconds(charge.retryAfterMs) : undefined;
    const headers: HeaderPair[] = retry === undefined ? limitHeaders : [['retry-after', String(retry)], ...limitHeaders];
    const deniedWindow = charge.deniedBy !== undefined && charge.deniedBy >= 0 ? limits[charge.deniedBy]?.window : 'credits';
    return deny(charge.reason ?? 'quota_exceeded', { key, responseHeaders: headers, retryAfterSeconds: retry, deniedWindow });
  }

  // 10. allow
  return allow(input, key, cred, config, charge, limitHeaders);
}

/**
 * The allowed answer. `charge` undefined: the quota was not charged (store failure, policy
 * allow): the upstream learns it from `<prefix>quota: unchecked`, the client gets no rate-limit
 * headers (there is no count to report).
 */
function allow(
  input: CheckInput,
  key: KeyRecord,
  cred: { headers: readonly string[]; inQuery: boolean },
  config: CheckDeps['config'],
  charge: ChargeResult | undefined,
  limitHeaders: HeaderPair[],
): Allowed {
  const prefix = config.upstreamHeaderPrefix;
  const upstreamHeaders: HeaderPair[] = [
    [`${prefix}key-id`, key.id],
    [`${prefix}owner`, key.owner],
    [`${prefix}plan`, key.plan],
  ];
  if (charge?.wouldDeny) upstreamHeaders.push([`${prefix}shadow-denial`, charge.wouldDeny]);
  if (!charge) upstreamHeaders.push([`${prefix}quota`, QUOTA_UNCHECKED]);
  const removeHeaders = cred.headers.slice();
  for (const name of input.headers.keys()) {
    if (name.startsWith(prefix) && !isOurs(upstreamHeaders, name)) removeHeaders.push(name);
  }
  return {
    decision: 'allow',
    key,
    plan: key.plan,
    upstreamHeaders,
    removeHeaders,
    removeQueryParams: cred.inQuery && config.queryParam ? [config.queryParam] : [],
    responseHeaders: limitHeaders,
    shadowDenial: charge?.wouldDeny,
    charge,
  };
}

/** One of the (3 to 5) headers keygate sets upstream: a scan, no Set built per Check. */
function isOurs(headers: readonly HeaderPair[], name: string): boolean {
  for (const [n] of headers) if (n === name) return true;
  return false;
}

/**
 * A store read within the Check's budget; when it fails (throws or runs out of budget), the
 * cached value within its stale bound, noted as a fallback; else the failure propagates.
 */
async function orStale<T>(store: StoreState, kind: StoreFallbackKind, read: () => Promise<T | null>, stale: () => StaleValue<T> | undefined): Promise<T | null> {
  try {
    return await store.budget.run(read);
  } catch (cause) {
    const kept = stale();
    if (!kept) throw cause;
    store.fallbacks.push({ kind, staleMs: kept.staleMs, cause });
    return kept.value;
  }
}

/**
 * A denial of an identified key, counted in its usage history. The denial does not depend on
 * the count: when the store cannot take it within the budget, the denial stands (fail closed)
 * and the lost count is noted as a fallback.
 */
async function denyKnown(reason: DenyReason, key: KeyRecord, deps: CheckDeps, store: StoreState, now: number, headers: HeaderPair[] = []): Promise<Denied> {
  const usage = deps.usage;
  if (usage) {
    try {
      await store.budget.run(() => usage.recordUsage(key.id, reason, now));
    } catch (cause) {
      store.fallbacks.push({ kind: 'usage_unrecorded', cause });
    }
  }
  return deny(reason, { key, responseHeaders: headers });
}

function authenticate(realm: string, invalid: boolean): HeaderPair {
  return ['www-authenticate', invalid ? `Bearer realm="${realm}", error="invalid_token"` : `Bearer realm="${realm}"`];
}
