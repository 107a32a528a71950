// Plans, limits and the Limiter interface shared by the Redis limiter and its in-memory twin.

/** s, m, h are sliding rate limits; d and month are quotas on UTC calendar days and months. */
export type Window = 's' | 'm' | 'h' | 'd' | 'month';

export const WINDOWS: readonly Window[] = ['s', 'm', 'h', 'd', 'month'];

export interface Limit {
  count: number;
  window: Window;
}

export interface Plan {
  name: string;
  limits: Limit[];
  /** Shadow mode for this plan: decisions are computed and reported, never enforced. */
  shadow?: boolean;
  description?: string;
}

/** The state of one limit after a charge (or a refused charge), for rate-limit headers. */
export interface LimitState {
  limit: Limit;
  remaining: number;
  /**
   * Milliseconds until this limit has room again (window reset or oldest hit leaving):
   * s/m/h: until its oldest counted bucket leaves the window (0 when nothing counts);
   * d/month: until the UTC calendar window ends.
   */
  resetMs: number;
}

export interface ChargeRequest {
  keyId: string;
  limits: readonly Limit[];
  /** Units charged to every limit (and to credits when the key carries credits). */
  cost: number;
  now: number;
  /** The key carries a credit balance: the charge also needs and takes `cost` credits. */
  credits?: boolean;
  /**
   * Shadow mode: the decision is computed and reported (`wouldDeny`), counters and credits are
   * charged as if the request passed, and the result is always allowed.
   */
  shadow?: boolean;
}

export type ChargeDenial = 'rate_limited' | 'quota_exceeded';

export interface ChargeResult {
  allowed: boolean;
  /** Why the charge was refused; set when allowed is false. */
  reason?: ChargeDenial;
  /**
   * Index in `limits` of the limit that refused (the one with the longest wait when several
   * do), or -1 for credits. Also set in shadow mode alongside `wouldDeny`.
   */
  deniedBy?: number;
  states: LimitState[];
  /** Remaining credits after the charge, when the key carries credits. */
  credits?: number;
  /**
   * Milliseconds until the same request (same cost) could succeed; 0 when allowed.
   * RETRY_NEVER (-1) when waiting alone cannot help: credits exhausted, or cost above a limit's
   * count. In shadow mode with `wouldDeny`, the value the request would have been refused with.
   */
  retryAfterMs: number;
  /** Shadow mode only: the reason the request would have been refused (it was allowed). */
  wouldDeny?: ChargeDenial;
}

/** retryAfterMs when no amount of waiting lets the request through (credits do not refill). */
export const RETRY_NEVER = -1;

/**
 * Evaluates and charges every limit of one Check atomically: a request refused by any
 * limit charges none of them. Only infrastructure failures throw.
 */
export interface Limiter {
  charge(req: ChargeRequest): Promise<ChargeResult>;
  close(): Promise<void>;
}

/**
 * Credit balances: remaining uses of a key that never reset by themselves. A key that carries
 * credits but has no stored balance has 0. Balances are integers and never negative.
 */
export interface CreditStore {
  setCredits(keyId: string, credits: number): Promise<void>;
  /** Adds a positive number of credits (use setCredits to lower a balance); returns the new balance. */
  addCredits(keyId: string, credits: number): Promise<number>;
  getCredits(keyId: string): Promise<number>;
}

/** One key's requests on one UTC day. Requests are counted, not units of cost. */
export interface UsageDay {
  /** YYYY-MM-DD (UTC) */
  day: string;
  /** Requests let through (in shadow mode this includes requests that would have been denied). */
  allowed: number;
  /** Requests refused, by deny reason (`rate_limited`, `expired_api_key`, ...). */
  denied: Record<string, number>;
  /** Shadow mode: requests let through that would have been refused, by reason. */
  wouldDeny: Record<string, number>;
}

/** Per key, per UTC day counters of allowed and denied requests, kept for a retention period. */
export interface UsageStore {
  /**
   * Counts one request decided outside the limiter (e.g. `expired_api_key`, `insufficient_scope`),
   * or `allowed`. The limiter's own charges are counted by `charge` itself.
   */
  recordUsage(keyId: string, outcome: string, now: number): Promise<void>;
  /** `days` consecutive days from `fromDay` (YYYY-MM-DD) on, oldest first; days without data are zeros. */
  readUsage(keyId: string, fromDay: string, days: number): Promise<UsageDay[]>;
}
