// Limits as text, plan validation, effective limits and the UTC calendar windows.
import { describe, expect, it } from 'vitest';
import {
  DAY_MS,
  PlanError,
  effectiveLimits,
  formatLimit,
  parseLimit,
  parseUtcDay,
  utcDay,
  validateLimits,
  validatePlan,
  windowBounds,
} from '../../../src/limits/plans';

const at = (iso: string): number => Date.parse(iso);

describe('parseLimit / formatLimit', () => {
  it('reads every window', () => {
    expect(parseLimit('10/s')).toEqual({ count: 10, window: 's' });
    expect(parseLimit('600/m')).toEqual({ count: 600, window: 'm' });
    expect(parseLimit(' 1000 / h ')).toEqual({ count: 1000, window: 'h' });
    expect(parseLimit('5000/d')).toEqual({ count: 5000, window: 'd' });
    expect(parseLimit('50000/month')).toEqual({ count: 50000, window: 'month' });
    expect(parseLimit('1000000000000/s')).toEqual({ count: 1e12, window: 's' });
  });

  it('writes what it reads', () => {
    for (const text of ['10/s', '600/m', '1/h', '5000/d', '50000/month']) expect(formatLimit(parseLimit(text))).toBe(text);
  });

  it('names the bad text and what is wrong with it', () => {
    expect(() => parseLimit('10/w')).toThrow('invalid limit "10/w": unknown window "w", expected one of s, m, h, d, month');
    expect(() => parseLimit('0/s')).toThrow('invalid limit "0/s": count must be a positive integer no larger than 1000000000000');
    expect(() => parseLimit('1000000000001/d')).toThrow(/invalid limit "1000000000001\/d": count must be/);
    expect(() => parseLimit('ten/s')).toThrow('invalid limit "ten/s": expected COUNT/WINDOW');
    expect(() => parseLimit('1.5/s')).toThrow(/invalid limit "1.5\/s"/);
    expect(() => parseLimit('-1/s')).toThrow(/invalid limit "-1\/s"/);
    expect(() => parseLimit('10/S')).toThrow(/unknown window "S"/);
    expect(() => parseLimit('')).toThrow(PlanError);
  });
});

describe('validatePlan', () => {
  it('normalises limits given as text or data', () => {
    expect(validatePlan({ name: 'pro', limits: ['10/s', { count: 50000, window: 'month' }], shadow: false })).toEqual({
      name: 'pro',
      limits: [
        { count: 10, window: 's' },
        { count: 50000, window: 'month' },
      ],
      shadow: false,
    });
  });

  it('accepts a plan without limits (unlimited)', () => {
    expect(validatePlan({ name: 'internal' })).toEqual({ name: 'internal', limits: [] });
  });

  it('lists every problem at once', () => {
    let error: PlanError | undefined;
    try {
      validatePlan({ name: ' bad name', limits: ['10/x', { count: 0, window: 'd' }, '5/s', '6/s'], shadow: 'yes' });
    } catch (err) {
      error = err as PlanError;
    }
    expect(error).toBeInstanceOf(PlanError);
    expect(error?.problems).toEqual([
      'plan name " bad name": expected 1-128 letters, digits, ".", "_", ":" or "-", starting with a letter or digit',
      'plan " bad name" limits[0]: invalid limit "10/x": unknown window "x", expected one of s, m, h, d, month',
      'plan " bad name" limits[1]: count must be a positive integer no larger than 1000000000000, got 0',
      'plan " bad name" limits[3]: a second limit for window "s"; keep one per window',
      'plan " bad name": shadow must be true or false',
    ]);
  });

  it('refuses what is not a plan', () => {
    expect(() => validatePlan(null)).toThrow('plan: expected an object');
    expect(() => validatePlan({ name: 'p', limits: '10/s' })).toThrow('plan "p" limits: expected a list of limits');
    expect(() => validateLimits([42])).toThrow('limits[0]: expected "COUNT/WINDOW" or {count, window}, got 42');
  });
});

describe('effectiveLimits', () => {
  const plan = { name: 'pro', limits: [parseLimit('10/s'), parseLimit('50000/month')] };

  it("is the plan's limits without an override", () => {
    expect(effectiveLimits(plan)).toEqual(plan.limits);
    expect(effectiveLimits(plan, [])).toEqual(plan.limits);
  });

  it("is the key's limits, replacing the plan's, with an override", () => {
    expect(effectiveLimits(plan, [parseLimit('5/s')])).toEqual([{ count: 5, window: 's' }]);
  });

  it('returns copies the caller may change', () => {
    const limits = effectiveLimits(plan);
    limits[0].count = 1;
    expect(plan.limits[0].count).toBe(10);
  });
});

describe('windowBounds', () => {
  it('sliding windows end at now and last their length', () => {
    const now = at('2026-03-14T15:09:26.535Z');
    expect(windowBounds('s', now)).toEqual({ start: now - 1000, end: now, lengthMs: 1000 });
    expect(windowBounds('m', now).lengthMs).toBe(60_000);
    expect(windowBounds('h', now).lengthMs).toBe(3_600_000);
  });

  it('d is the UTC calendar day', () => {
    expect(windowBounds('d', at('2026-03-14T23:59:59.999Z'))).toEqual({
      start: at('2026-03-14T00:00:00.000Z'),
      end: at('2026-03-15T00:00:00.000Z'),
      lengthMs: DAY_MS,
    });
    expect(windowBounds('d', at('2026-03-15T00:00:00.000Z')).start).toBe(at('2026-03-15T00:00:00.000Z'));
  });

  it('month: February in leap and common years, and the December rollover', () => {
    expect(windowBounds('month', at('2028-02-29T23:59:59.999Z'))).toEqual({
      start: at('2028-02-01T00:00:00.000Z'),
      end: at('2028-03-01T00:00:00.000Z'),
      lengthMs: 29 * DAY_MS,
    });
    expect(windowBounds('month', at('2026-02-28T23:59:59.999Z')).lengthMs).toBe(28 * DAY_MS);
    expect(windowBounds('month', at('2100-02-15T00:00:00.000Z')).lengthMs).toBe(28 * DAY_MS); // not a leap year
    expect(windowBounds('month', at('2000-02-15T00:00:00.000Z')).lengthMs).toBe(29 * DAY_MS); // a leap year
    expect(windowBounds('month', at('2027-12-31T23:59:59.999Z'))).toEqual({
      start: at('2027-12-01T00:00:00.000Z'),
      end: at('2028-01-01T00:00:00.000Z'),
      lengthMs: 31 * DAY_MS,
    });
    expect(windowBounds('d', at('2027-12-31T12:00:00.000Z')).end).toBe(at('2028-01-01T00:00:00.000Z'));
    expect(windowBounds('month', at('2028-01-01T00:00:00.000Z')).start).toBe(at('2028-01-01T00:00:00.000Z'));
  });
});

describe('utcDay / parseUtcDay', () => {
  it('round-trips UTC days and refuses dates that do not exist', () => {
    expect(utcDay(at('2028-02-29T23:59:59.999Z'))).toBe('2028-02-29');
    expect(parseUtcDay('2028-02-29')).toBe(at('2028-02-29T00:00:00.000Z'));
    expect(() => parseUtcDay('2026-02-29')).toThrow('invalid day "2026-02-29": expected YYYY-MM-DD');
    expect(() => parseUtcDay('2026-3-1')).toThrow(/invalid day/);
  });
});
