// What `keygate-admin usage` computes and prints from UsageDay rows: totals, per-day sums over an
// owner's keys, and the per-day table. Pure functions; the chart is in usage-chart.ts.
import type { UsageDay } from '../limits/types';
import type { ChartDay } from './usage-chart';
import { table } from './views';

/** Counts over a span of days: the shape of a UsageDay without its day. */
export interface UsageTotal {
  /** requests let through (in shadow mode including those counted in wouldDeny) */
  allowed: number;
  /** requests refused, by reason */
  denied: Record<string, number>;
  /** shadow mode: requests let through that would have been refused, by reason */
  wouldDeny: Record<string, number>;
}

export const emptyTotal = (): UsageTotal => ({ allowed: 0, denied: {}, wouldDeny: {} });

export function countOf(byReason: Readonly<Record<string, number>>): number {
  let n = 0;
  for (const v of Object.values(byReason)) n += v;
  return n;
}

/** Adds `from` into `into` (mutates and returns `into`). */
export function addUsage(into: UsageTotal, from: Readonly<UsageTotal>): UsageTotal {
  into.allowed += from.allowed;
  for (const [reason, n] of Object.entries(from.denied)) into.denied[reason] = (into.denied[reason] ?? 0) + n;
  for (const [reason, n] of Object.entries(from.wouldDeny)) into.wouldDeny[reason] = (into.wouldDeny[reason] ?? 0) + n;
  return into;
}

/** The total of some days, reasons in a stable order (most first, then by name). */
export function usageTotal(days: readonly UsageDay[]): UsageTotal {
  const total = emptyTotal();
  for (const day of days) addUsage(total, day);
  return { allowed: total.allowed, denied: sortedReasons(total.denied), wouldDeny: sortedReasons(total.wouldDeny) };
}

/**
 * Per-day sums over several keys' usage of the same days (an owner's keys): day i of the result
 * adds up day i of every list. Every list must cover the same days in the same order.
 */
export function sumByDay(perKey: readonly (readonly UsageDay[])[], days: readonly string[]): UsageDay[] {
  return days.map((day, i) => {
    const sum = emptyTotal();
    for (const list of perKey) {
      const row = list[i];
      if (row.day !== day) throw new Error(`usage rows out of step: expected ${day}, got ${row.day}`);
      addUsage(sum, row);
    }
    return { day, allowed: sum.allowed, denied: sortedReasons(sum.denied), wouldDeny: sortedReasons(sum.wouldDeny) };
  });
}

/** Reasons most first, then by name; zero counts left out. */
export function sortedReasons(byReason: Readonly<Record<string, number>>): Record<string, number> {
  const entries = Object.entries(byReason).filter(([, n]) => n > 0);
  entries.sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(entries);
}

const reasonList = (byReason: Readonly<Record<string, number>>) =>
  Object.entries(sortedReasons(byReason))
    .map(([reason, n]) => `${reason} ${n}`)
    .join(', ');

/** `rate_limited 5, quota_exceeded 1; shadow: quota_exceeded 2`, or '' when nothing was refused. */
export function reasonsText(u: Readonly<UsageTotal>): string {
  const denied = reasonList(u.denied);
  const shadow = reasonList(u.wouldDeny);
  return [denied, shadow && `shadow: ${shadow}`].filter((part) => part !== '').join('; ');
}

/** DAY, ALLOWED, DENIED, WOULD DENY, REASONS per day, then a total row. */
export function usageTable(days: readonly UsageDay[], total: Readonly<UsageTotal>): string {
  const row = (label: string, u: Readonly<UsageTotal>) => [label, String(u.allowed), String(countOf(u.denied)), String(countOf(u.wouldDeny)), reasonsText(u)];
  return table(['DAY', 'ALLOWED', 'DENIED', 'WOULD DENY', 'REASONS'], [...days.map((d) => row(d.day, d)), row('total', total)], [1, 2, 3]);
}

/** The chart's input: one bar per day, allowed vs denied. */
export function chartDays(days: readonly UsageDay[]): ChartDay[] {
  return days.map((d) => ({ day: d.day, allowed: d.allowed, denied: countOf(d.denied) }));
}
