// The storage layout and the call format of one charge: Redis key names (all sharing the key
// id's hash tag), the KEYS/ARGV of charge.lua built from a ChargeRequest, and the script's reply
// turned back into a ChargeResult. Both limiters use it, so they address the same keys.
import {
  type ChargeDenial,
  type ChargeRequest,
  type ChargeResult,
  type Limit,
  type LimitState,
} from './types';
import { DAY_MS, MAX_LIMIT_COUNT, isSlidingWindow, windowBounds } from './plans';
import { SLIDING_BUCKETS } from './sliding-window';

export const DEFAULT_USAGE_RETENTION_DAYS = 90;

/**
 * Limit counters expire at least this long after they stop counting (mirrored in
 * lua/charge.lua, whose header says when each expiry is set). Counting never depends on expiry;
 * the slack keeps Redis's own clock, which may run ahead of the `now` keygate passes in, from
 * deleting a counter that still counts.
 */
export const EXPIRY_SLACK_MS = 60_000;

/** `kg:{<keyId>}`: the prefix (and Redis Cluster hash tag) of every key about one API key. */
export function keyTag(keyId: string): string {
  return `kg:{${keyId}}`;
}

function compactDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');
}

/** The calendar facts every charge of one UTC day needs: its bounds and names, and its month's. */
export interface CalendarDay {
  /** the day: [start, end) and YYYYMMDD */
  start: number;
  end: number;
  day: string;
  /** its month: end and YYYYMM */
  monthEnd: number;
  month: string;
}

let lastDay: CalendarDay | undefined;

/**
 * The CalendarDay of `now`, worked out once per UTC day (Date arithmetic and ISO formatting
 * cost more than the rest of building a charge) and then served from a one-day cache.
 */
export function calendarDay(now: number): CalendarDay {
  const cached = lastDay;
  if (cached !== undefined && now >= cached.start && now < cached.end) return cached;
  const day = windowBounds('d', now);
  const month = windowBounds('month', now);
  lastDay = { start: day.start, end: day.end, day: compactDay(day.start), monthEnd: month.end, month: compactDay(month.start).slice(0, 6) };
  return lastDay;
}

/** Hash of the UTC day containing `now`: fields `allowed`, `denied:<reason>`, `would_deny:<reason>`. */
export function usageKey(keyId: string, now: number): string {
  return `${keyTag(keyId)}:usage:${calendarDay(now).day}`;
}

export function creditsKey(keyId: string): string {
  return `${keyTag(keyId)}:credits`;
}

/**
 * The counter of one limit at `now`: s/m/h → hash `kg:{id}:rl:<window>` of buckets;
 * d → `kg:{id}:q:d:YYYYMMDD`; month → `kg:{id}:q:month:YYYYMM` (one string per calendar window).
 * The count is not part of the name, so editing a plan keeps the units already used.
 */
export function limitKey(keyId: string, limit: Limit, now: number): string {
  if (isSlidingWindow(limit.window)) return `${keyTag(keyId)}:rl:${limit.window}`;
  const day = calendarDay(now);
  return limit.window === 'd' ? `${keyTag(keyId)}:q:d:${day.day}` : `${keyTag(keyId)}:q:month:${day.month}`;
}

/** End (exclusive) of the calendar window (`d` or `month`) containing `now`. */
function calendarWindowEnd(window: Limit['window'], now: number): number {
  const day = calendarDay(now);
  return window === 'd' ? day.end : day.monthEnd;
}

/** ms from `now` until a day's usage hash may go: the day's end plus the retention. */
export function usageTtlMs(now: number, retentionDays: number): number {
  return calendarDay(now).end + retentionDays * DAY_MS - now;
}

export const USAGE_ALLOWED_FIELD = 'allowed';
export const USAGE_DENIED_PREFIX = 'denied:';
export const USAGE_WOULD_DENY_PREFIX = 'would_deny:';

/** Deny reasons are data-table names (snake case); anything else is a caller bug. */
const OUTCOME_TEXT = /^[a-z][a-z0-9_]{0,63}$/;

/** The usage hash field counting `outcome` (`allowed` or a deny reason). */
export function usageField(outcome: string): string {
  if (!OUTCOME_TEXT.test(outcome)) throw new RangeError(`invalid usage outcome "${outcome}": expected snake_case`);
  return outcome === USAGE_ALLOWED_FIELD ? USAGE_ALLOWED_FIELD : `${USAGE_DENIED_PREFIX}${outcome}`;
}

/** KEYS and ARGV for charge.lua (see the header of that file for each slot). */
export interface ChargeCall {
  keys: string[];
  args: string[];
}

export function assertChargeRequest(req: ChargeRequest): void {
  if (!Number.isSafeInteger(req.cost) || req.cost < 1 || req.cost > MAX_LIMIT_COUNT) {
    throw new RangeError(`charge cost must be a positive integer no larger than ${MAX_LIMIT_COUNT}, got ${req.cost}`);
  }
  if (!Number.isSafeInteger(req.now) || req.now < 0) throw new RangeError(`charge now must be ms since the epoch, got ${req.now}`);
  if (typeof req.keyId !== 'string' || req.keyId === '') throw new RangeError('charge keyId must be a non-empty string');
}

export function checkRetentionDays(days: number): number {
  if (!Number.isSafeInteger(days) || days < 1) throw new RangeError(`usageRetentionDays must be a positive integer, got ${days}`);
  return days;
}

/** Credit amounts are safe integers of at least `min`; anything else is a caller bug. */
export function checkCreditAmount(credits: number, what: string, min: number): void {
  if (!Number.isSafeInteger(credits) || credits < min) {
    throw new RangeError(`${what} must be an integer of at least ${min}, got ${credits}`);
  }
}

export function encodeCharge(req: ChargeRequest, usageRetentionDays: number): ChargeCall {
  assertChargeRequest(req);
  const keys = [usageKey(req.keyId, req.now), creditsKey(req.keyId)];
  const args = [
    String(req.now),
    String(req.cost),
    req.credits ? '1' : '0',
    req.shadow ? '1' : '0',
    String(usageTtlMs(req.now, usageRetentionDays)),
    String(req.limits.length),
  ];
  for (const limit of req.limits) {
    keys.push(limitKey(req.keyId, limit, req.now));
    if (isSlidingWindow(limit.window)) {
      const spec = SLIDING_BUCKETS[limit.window];
      args.push(String(limit.count), 'sliding', String(spec.bucketMs), String(spec.windowMs));
    } else {
      args.push(String(limit.count), 'calendar', String(calendarWindowEnd(limit.window, req.now)), '0');
    }
  }
  return { keys, args };
}

/** The reply of charge.lua: [verdict, charged, deniedBy, retryAfterMs, credits, remaining1, reset1, ...]. */
export type ChargeReply = [string, number, number, number, number, ...number[]];

export const NO_LIMIT_DENIED = -2;
export const NO_CREDITS = -1;

export function decodeChargeReply(reply: unknown, req: ChargeRequest): ChargeResult {
  if (!Array.isArray(reply) || reply.length !== 5 + 2 * req.limits.length) {
    throw new Error(`unexpected reply from charge.lua: ${JSON.stringify(reply)}`);
  }
  const [verdict, , deniedBy, retryAfterMs, credits] = reply as ChargeReply;
  const states: LimitState[] = req.limits.map((limit, i) => ({
    limit: { count: limit.count, window: limit.window },
    remaining: Number(reply[5 + 2 * i]),
    resetMs: Number(reply[6 + 2 * i]),
  }));
  const result: ChargeResult = { allowed: verdict === 'allowed', states, retryAfterMs: 0 };
  if (req.credits && Number(credits) !== NO_CREDITS) result.credits = Number(credits);
  if (verdict !== 'allowed') {
    const denial = verdict as ChargeDenial;
    result.deniedBy = Number(deniedBy);
    result.retryAfterMs = Number(retryAfterMs);
    if (req.shadow) {
      result.allowed = true;
      result.wouldDeny = denial;
    } else {
      result.reason = denial;
    }
  }
  return result;
}
