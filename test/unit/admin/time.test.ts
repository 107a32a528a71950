// Durations and ISO-8601 times as the admin CLI reads them.
import { describe, expect, it } from 'vitest';
import { iso, parseDuration, parseExpiry, parseInstant } from '../../../src/admin/time';

describe('parseDuration', () => {
  it.each([
    ['0', 0],
    ['30s', 30_000],
    ['15m', 900_000],
    ['12h', 43_200_000],
    ['30d', 30 * 86_400_000],
    ['2w', 14 * 86_400_000],
    ['1h30m', 5_400_000],
    ['1d12h', 1.5 * 86_400_000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '30', 'd', '1.5h', '30m1h', '-1d', '1 d', '1month'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeNull();
  });
});

describe('parseInstant', () => {
  it.each([
    ['2027-01-31', Date.UTC(2027, 0, 31)],
    ['2027-01-31T12:00:00Z', Date.UTC(2027, 0, 31, 12)],
    ['2027-01-31T12:00', Date.UTC(2027, 0, 31, 12)],
    ['2027-01-31 12:00:30.250', Date.UTC(2027, 0, 31, 12, 0, 30, 250)],
    ['2027-01-31T12:00:00+02:00', Date.UTC(2027, 0, 31, 10)],
  ])('%s', (text, ms) => {
    expect(parseInstant(text)).toBe(ms);
  });

  it.each(['2026-02-30', '2026-13-01', '2027-01-31T24:00', 'tomorrow', '31/01/2027', '2027-1-31'])('refuses %j', (text) => {
    expect(parseInstant(text)).toBeNull();
  });
});

describe('parseExpiry', () => {
  const now = Date.UTC(2026, 0, 1);
  it('takes a duration from now or an instant', () => {
    expect(parseExpiry('30d', now)).toBe(now + 30 * 86_400_000);
    expect(parseExpiry('2027-01-01', now)).toBe(Date.UTC(2027, 0, 1));
    expect(() => parseExpiry('soon', now)).toThrow(/neither an ISO-8601 time .* nor a duration/);
  });

  it('prints ISO-8601 UTC', () => {
    expect(iso(Date.UTC(2027, 0, 31, 12))).toBe('2027-01-31T12:00:00.000Z');
  });
});
