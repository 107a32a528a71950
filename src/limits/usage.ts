// Usage history shared by both limiters: which days a read covers and how a day's hash of
// counters (`allowed`, `denied:<reason>`, `would_deny:<reason>`) becomes a UsageDay.
import type { UsageDay } from './types';
import { DAY_MS, parseUtcDay, utcDay } from './plans';
import { USAGE_ALLOWED_FIELD, USAGE_DENIED_PREFIX, USAGE_WOULD_DENY_PREFIX } from './charge-call';

/** A read covers at most this many days (ten years); more is a caller bug. */
export const MAX_USAGE_DAYS = 3660;

/** Start (ms) of each of `days` consecutive UTC days from `fromDay` (YYYY-MM-DD) on. */
export function usageDayStarts(fromDay: string, days: number): number[] {
  if (!Number.isSafeInteger(days) || days < 1 || days > MAX_USAGE_DAYS) {
    throw new RangeError(`usage days must be an integer from 1 to ${MAX_USAGE_DAYS}, got ${days}`);
  }
  const first = parseUtcDay(fromDay);
  return Array.from({ length: days }, (_, i) => first + i * DAY_MS);
}

/** The first day of the `days` days that end with the day containing `now` (for "last N days"). */
export function usageFromDay(now: number, days: number): string {
  return utcDay(now - (days - 1) * DAY_MS);
}

export function usageDayFromFields(dayStart: number, fields: Iterable<readonly [string, number | string]>): UsageDay {
  const usage: UsageDay = { day: utcDay(dayStart), allowed: 0, denied: {}, wouldDeny: {} };
  for (const [field, raw] of fields) {
    const value = Number(raw);
    if (field === USAGE_ALLOWED_FIELD) usage.allowed += value;
    else if (field.startsWith(USAGE_DENIED_PREFIX)) usage.denied[field.slice(USAGE_DENIED_PREFIX.length)] = value;
    else if (field.startsWith(USAGE_WOULD_DENY_PREFIX)) usage.wouldDeny[field.slice(USAGE_WOULD_DENY_PREFIX.length)] = value;
  }
  return usage;
}
