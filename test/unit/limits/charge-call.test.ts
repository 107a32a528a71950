// The KEYS/ARGV layout of charge.lua built from a ChargeRequest, and the reply read back.
import { describe, expect, it } from 'vitest';
import { calendarDay, decodeChargeReply, encodeCharge, limitKey, usageField, usageKey, usageTtlMs } from '../../../src/limits/charge-call';
import { DAY_MS, parseLimit, utcDay, windowBounds } from '../../../src/limits/plans';
import type { ChargeRequest } from '../../../src/limits/types';

const now = Date.parse('2026-03-14T15:09:26.535Z');

describe('encodeCharge', () => {
  it('lays out KEYS and ARGV as the header of charge.lua says', () => {
    const request: ChargeRequest = {
      keyId: 'k1',
      limits: ['10/s', '100/m', '1000/h', '5000/d', '100000/month'].map(parseLimit),
      cost: 3,
      now,
      credits: true,
      shadow: false,
    };
    const dayEnd = Date.parse('2026-03-15T00:00:00.000Z');
    expect(encodeCharge(request, 90)).toEqual({
      keys: [
        'kg:{k1}:usage:20260314',
        'kg:{k1}:credits',
        'kg:{k1}:rl:s',
        'kg:{k1}:rl:m',
        'kg:{k1}:rl:h',
        'kg:{k1}:q:d:20260314',
        'kg:{k1}:q:month:202603',
      ],
      args: [
        String(now), '3', '1', '0', String(dayEnd + 90 * DAY_MS - now), '5',
        '10', 'sliding', '100', '1000',
        '100', 'sliding', '1000', '60000',
        '1000', 'sliding', '60000', '3600000',
        '5000', 'calendar', String(dayEnd), '0',
        '100000', 'calendar', String(Date.parse('2026-04-01T00:00:00.000Z')), '0',
      ],
    });
  });

  it('names calendar counters by their window start in UTC', () => {
    expect(limitKey('k', parseLimit('1/d'), Date.parse('2027-12-31T23:59:59.999Z'))).toBe('kg:{k}:q:d:20271231');
    expect(limitKey('k', parseLimit('1/month'), Date.parse('2028-01-01T00:00:00.000Z'))).toBe('kg:{k}:q:month:202801');
  });

  it('works the calendar out once per UTC day, and right at every day, month and year boundary', () => {
    const instants = [
      '2027-12-31T23:59:59.999Z', '2028-01-01T00:00:00.000Z', '2028-02-29T23:59:59.999Z', '2028-03-01T00:00:00.000Z',
      '2026-03-14T15:09:26.535Z', '2026-03-14T00:00:00.000Z', '2026-03-13T23:59:59.999Z', '1970-01-01T00:00:00.000Z',
    ].map(Date.parse);
    // Back and forth between days, as a clock jump or two keygates' clocks would.
    for (const t of [...instants, ...instants.reverse()]) {
      const day = windowBounds('d', t);
      const month = windowBounds('month', t);
      expect(calendarDay(t)).toEqual({
        start: day.start,
        end: day.end,
        day: utcDay(t).replace(/-/g, ''),
        monthEnd: month.end,
        month: utcDay(t).slice(0, 7).replace('-', ''),
      });
      expect(usageKey('k', t)).toBe(`kg:{k}:usage:${utcDay(t).replace(/-/g, '')}`);
      expect(usageTtlMs(t, 3)).toBe(day.end + 3 * DAY_MS - t);
    }
    expect(calendarDay(now)).toBe(calendarDay(now + 1000)); // the same object: served from the cache
  });

  it('refuses a bad cost or time', () => {
    const base: ChargeRequest = { keyId: 'k', limits: [], cost: 1, now };
    expect(() => encodeCharge({ ...base, cost: 0 }, 90)).toThrow(/cost/);
    expect(() => encodeCharge({ ...base, cost: 2e12 }, 90)).toThrow(/cost/);
    expect(() => encodeCharge({ ...base, now: Number.NaN }, 90)).toThrow(/now/);
  });
});

describe('decodeChargeReply', () => {
  const request: ChargeRequest = { keyId: 'k', limits: [parseLimit('5/m'), parseLimit('9/d')], cost: 1, now };

  it('reads an allowed reply', () => {
    expect(decodeChargeReply(['allowed', 1, -2, 0, -1, 4, 60000, 8, 1000], request)).toEqual({
      allowed: true,
      retryAfterMs: 0,
      states: [
        { limit: { count: 5, window: 'm' }, remaining: 4, resetMs: 60000 },
        { limit: { count: 9, window: 'd' }, remaining: 8, resetMs: 1000 },
      ],
    });
  });

  it('reads a refusal, and the same decision in shadow mode', () => {
    const reply = ['rate_limited', 0, 0, 1234, -1, 0, 1234, 8, 1000];
    expect(decodeChargeReply(reply, request)).toMatchObject({ allowed: false, reason: 'rate_limited', deniedBy: 0, retryAfterMs: 1234 });
    const shadow = decodeChargeReply(['rate_limited', 1, 0, 1234, -1, 0, 1234, 7, 1000], { ...request, shadow: true });
    expect(shadow).toMatchObject({ allowed: true, wouldDeny: 'rate_limited', deniedBy: 0, retryAfterMs: 1234 });
    expect(shadow.reason).toBeUndefined();
  });

  it('refuses a reply of the wrong shape', () => {
    expect(() => decodeChargeReply(['allowed', 1, -2, 0, -1], request)).toThrow(/unexpected reply/);
  });
});

describe('usageField', () => {
  it('maps outcomes to hash fields', () => {
    expect(usageField('allowed')).toBe('allowed');
    expect(usageField('expired_api_key')).toBe('denied:expired_api_key');
    expect(() => usageField('Bad Reason')).toThrow(RangeError);
  });
});
