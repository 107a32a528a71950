// Plans and their limits as text and data: parsing `COUNT/WINDOW`, validating plans, choosing
// a key's effective limits, and the UTC calendar arithmetic behind the `d` and `month` quotas.
import { WINDOWS, type Limit, type Plan, type Window } from './types';

/** The largest COUNT a limit may have (a trillion units per window). */
export const MAX_LIMIT_COUNT = 1e12;

export const SECOND_MS = 1_000;
export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;

/** Length of the sliding rate-limit windows. */
export const SLIDING_WINDOW_MS = { s: SECOND_MS, m: MINUTE_MS, h: HOUR_MS } as const;

export type SlidingWindow = keyof typeof SLIDING_WINDOW_MS;
export type CalendarWindow = 'd' | 'month';

/** A plan or limit that cannot be used; `problems` lists every problem found, not just the first. */
export class PlanError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'PlanError';
  }
}

export function isSlidingWindow(window: Window): window is SlidingWindow {
  return window === 's' || window === 'm' || window === 'h';
}

export function isWindow(text: string): text is Window {
  return (WINDOWS as readonly string[]).includes(text);
}

const LIMIT_TEXT = /^(\d+)\s*\/\s*([A-Za-z]+)$/;

/** Parses `COUNT/WINDOW` (e.g. `10/s`, `50000/month`). Throws PlanError naming the bad text. */
export function parseLimit(text: string): Limit {
  const trimmed = String(text).trim();
  const match = LIMIT_TEXT.exec(trimmed);
  if (!match) {
    throw new PlanError([
      `invalid limit "${text}": expected COUNT/WINDOW with WINDOW one of ${WINDOWS.join(', ')} (e.g. 10/s or 50000/month)`,
    ]);
  }
  const [, countText, window] = match;
  if (!isWindow(window)) {
    throw new PlanError([`invalid limit "${text}": unknown window "${window}", expected one of ${WINDOWS.join(', ')}`]);
  }
  const count = Number(countText);
  const countProblem = checkCount(count);
  if (countProblem) throw new PlanError([`invalid limit "${text}": ${countProblem}`]);
  return { count, window };
}

export function formatLimit(limit: Limit): string {
  return `${limit.count}/${limit.window}`;
}

function checkCount(count: unknown): string | null {
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1 || count > MAX_LIMIT_COUNT) {
    return `count must be a positive integer no larger than ${MAX_LIMIT_COUNT}, got ${JSON.stringify(count)}`;
  }
  return null;
}

/** Problems with one limit given as data (`{count, window}`) or text (`"10/s"`); empty when fine. */
function limitProblems(raw: unknown, where: string): { limit?: Limit; problems: string[] } {
  if (typeof raw === 'string') {
    try {
      return { limit: parseLimit(raw), problems: [] };
    } catch (err) {
      return { problems: (err as PlanError).problems.map((p) => `${where}: ${p}`) };
    }
  }
  if (typeof raw !== 'object' || raw === null) {
    return { problems: [`${where}: expected "COUNT/WINDOW" or {count, window}, got ${JSON.stringify(raw)}`] };
  }
  const { count, window } = raw as { count?: unknown; window?: unknown };
  const problems: string[] = [];
  const countProblem = checkCount(count);
  if (countProblem) problems.push(`${where}: ${countProblem}`);
  if (typeof window !== 'string' || !isWindow(window)) {
    problems.push(`${where}: unknown window ${JSON.stringify(window)}, expected one of ${WINDOWS.join(', ')}`);
  }
  if (problems.length > 0) return { problems };
  return { limit: { count: count as number, window: window as Window }, problems };
}

/**
 * Validates a list of limits (data or `COUNT/WINDOW` text) and returns it as Limit objects.
 * At most one limit per window: two counters on the same window would be one too many.
 */
export function validateLimits(raw: unknown, where = 'limits'): Limit[] {
  if (!Array.isArray(raw)) throw new PlanError([`${where}: expected a list of limits`]);
  const problems: string[] = [];
  const limits: Limit[] = [];
  const seen = new Set<Window>();
  raw.forEach((item, index) => {
    const checked = limitProblems(item, `${where}[${index}]`);
    problems.push(...checked.problems);
    if (!checked.limit) return;
    if (seen.has(checked.limit.window)) {
      problems.push(`${where}[${index}]: a second limit for window "${checked.limit.window}"; keep one per window`);
    }
    seen.add(checked.limit.window);
    limits.push(checked.limit);
  });
  if (problems.length > 0) throw new PlanError(problems);
  return limits;
}

const PLAN_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/**
 * Checks a plan (e.g. from a seed file or the CLI) and returns it normalised: limits as
 * `{count, window}` objects. Throws PlanError listing every problem. A plan without limits
 * is valid and means "unlimited" (credits, when the key has them, still apply).
 */
export function validatePlan(raw: unknown): Plan {
  if (typeof raw !== 'object' || raw === null) throw new PlanError(['plan: expected an object']);
  const { name, limits, shadow, description } = raw as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof name !== 'string' || !PLAN_NAME.test(name)) {
    problems.push(
      `plan name ${JSON.stringify(name)}: expected 1-128 letters, digits, ".", "_", ":" or "-", starting with a letter or digit`,
    );
  }
  const label = typeof name === 'string' && name ? `plan "${name}"` : 'plan';
  let checkedLimits: Limit[] = [];
  try {
    checkedLimits = validateLimits(limits ?? [], `${label} limits`);
  } catch (err) {
    if (!(err instanceof PlanError)) throw err;
    problems.push(...err.problems);
  }
  if (shadow !== undefined && typeof shadow !== 'boolean') problems.push(`${label}: shadow must be true or false`);
  if (description !== undefined && typeof description !== 'string') problems.push(`${label}: description must be text`);
  if (problems.length > 0) throw new PlanError(problems);
  const plan: Plan = { name: name as string, limits: checkedLimits };
  if (shadow !== undefined) plan.shadow = shadow as boolean;
  if (description !== undefined) plan.description = description as string;
  return plan;
}

/**
 * The limits a key is charged against: its own limits when it has any (they replace the
 * plan's limits as a whole), else the plan's.
 */
export function effectiveLimits(plan: Plan, keyOverride?: readonly Limit[]): Limit[] {
  const chosen = keyOverride && keyOverride.length > 0 ? keyOverride : plan.limits;
  return chosen.map((limit) => ({ count: limit.count, window: limit.window }));
}

export interface WindowBounds {
  /** Start of the window in ms since the epoch (inclusive). */
  start: number;
  /** End of the window in ms since the epoch (exclusive; the next window starts here). */
  end: number;
  /** end - start */
  lengthMs: number;
}

/**
 * The window a limit counts in at `now`. For `d` and `month`: the UTC calendar day or month
 * containing `now` ([start, end), end = the next period's start). For `s`, `m`, `h`: the sliding
 * window ending at `now`, i.e. start = now - length, end = now.
 */
export function windowBounds(window: Window, now: number): WindowBounds {
  if (isSlidingWindow(window)) {
    const lengthMs = SLIDING_WINDOW_MS[window];
    return { start: now - lengthMs, end: now, lengthMs };
  }
  const date = new Date(now);
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth();
  const start = window === 'd' ? Date.UTC(year, month, date.getUTCDate()) : Date.UTC(year, month, 1);
  // Date.UTC normalises overflow: day 32 → next month, month 12 → January of the next year.
  const end = window === 'd' ? Date.UTC(year, month, date.getUTCDate() + 1) : Date.UTC(year, month + 1, 1);
  return { start, end, lengthMs: end - start };
}

/** Length of a sliding window in ms (`s`, `m`, `h`). */
export function slidingWindowMs(window: SlidingWindow): number {
  return SLIDING_WINDOW_MS[window];
}

/** The UTC day containing `ms` as `YYYY-MM-DD`. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

const DAY_TEXT = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Start (ms) of a `YYYY-MM-DD` UTC day; throws on text that is not a real date. */
export function parseUtcDay(day: string): number {
  const match = DAY_TEXT.exec(day);
  const ms = match ? Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3])) : NaN;
  if (!match || Number.isNaN(ms) || utcDay(ms) !== day) {
    throw new RangeError(`invalid day "${day}": expected YYYY-MM-DD`);
  }
  return ms;
}
