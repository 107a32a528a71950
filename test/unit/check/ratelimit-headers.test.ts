// Rate-limit response headers: RateLimit-Policy and RateLimit as structured-field lists
// (draft-ietf-httpapi-ratelimit-headers-10), and X-RateLimit-* for the most restrictive limit.
import { describe, expect, it } from 'vitest';
import { mostRestrictive, rateLimitHeaders, retryAfterSeconds, type HeaderPair } from '../../../src/check/ratelimit-headers';
import type { LimitState, Window } from '../../../src/limits/types';

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const state = (count: number, window: Window, remaining: number, resetMs: number): LimitState => ({ limit: { count, window }, remaining, resetMs });
const asObject = (headers: HeaderPair[]) => Object.fromEntries(headers);

// sf-list of items: sf-string followed by ;key=integer parameters, separated by ", "
const SF_STRING = '"[\\x20-\\x21\\x23-\\x5b\\x5d-\\x7e]*"';
const SF_ITEM = (params: string[]) => `${SF_STRING}${params.map((p) => `;${p}=\\d+`).join('')}`;
const sfList = (params: string[]) => new RegExp(`^${SF_ITEM(params)}(, ${SF_ITEM(params)})*$`);

describe('rateLimitHeaders', () => {
  it('one limit: every header, in draft-10 structured-field syntax', () => {
    const headers = rateLimitHeaders([state(10, 's', 3, 800)], NOW);
    expect(headers).toEqual([
      ['ratelimit-policy', '"10/s";q=10;w=1'],
      ['ratelimit', '"10/s";r=3;t=1'],
      ['x-ratelimit-limit', '10'],
      ['x-ratelimit-remaining', '3'],
      ['x-ratelimit-reset', '1'],
    ]);
  });

  it('header names are lower-case and unique', () => {
    const names = rateLimitHeaders([state(10, 's', 3, 800), state(5, 'm', 1, 10_000)], NOW).map(([n]) => n);
    expect(names).toEqual(names.map((n) => n.toLowerCase()));
    expect(new Set(names).size).toBe(names.length);
  });

  it('several limits: one list item per limit, in plan order, comma-separated', () => {
    const h = asObject(
      rateLimitHeaders([state(10, 's', 9, 1000), state(600, 'm', 500, 30_500), state(5000, 'h', 4000, 3_599_001), state(50000, 'd', 49000, 43_200_000)], NOW),
    );
    expect(h['ratelimit-policy']).toBe('"10/s";q=10;w=1, "600/m";q=600;w=60, "5000/h";q=5000;w=3600, "50000/d";q=50000;w=86400');
    expect(h['ratelimit']).toBe('"10/s";r=9;t=1, "600/m";r=500;t=31, "5000/h";r=4000;t=3600, "50000/d";r=49000;t=43200');
    expect(h['ratelimit-policy']).toMatch(sfList(['q', 'w']));
    expect(h['ratelimit']).toMatch(sfList(['r', 't']));
  });

  it.each([
    ['January 2026', Date.UTC(2026, 0, 31, 23, 59, 59), 31 * 86400],
    ['February 2027 (not a leap year)', Date.UTC(2027, 1, 10), 28 * 86400],
    ['February 2028 (a leap year)', Date.UTC(2028, 1, 29, 12), 29 * 86400],
    ['February 2000 (a leap year)', Date.UTC(2000, 1, 1), 29 * 86400],
    ['February 2100 (not a leap year)', Date.UTC(2100, 1, 1), 28 * 86400],
    ['April 2026', Date.UTC(2026, 3, 30), 30 * 86400],
    ['December 2026', Date.UTC(2026, 11, 31, 23), 31 * 86400],
  ])('a month window lasts the calendar month in seconds: %s', (_label, now, seconds) => {
    const h = asObject(rateLimitHeaders([state(50000, 'month', 10, 1000)], now));
    expect(h['ratelimit-policy']).toBe(`"50000/month";q=50000;w=${seconds}`);
  });

  it('t and X-RateLimit-Reset are whole seconds, rounded up', () => {
    const reset = (ms: number) => asObject(rateLimitHeaders([state(10, 's', 0, ms)], NOW))['x-ratelimit-reset'];
    expect(reset(0)).toBe('0');
    expect(reset(1)).toBe('1');
    expect(reset(1000)).toBe('1');
    expect(reset(1001)).toBe('2');
    expect(asObject(rateLimitHeaders([state(10, 's', 0, 1001)], NOW))['ratelimit']).toBe('"10/s";r=0;t=2');
  });

  it('remaining is never negative', () => {
    const h = asObject(rateLimitHeaders([state(10, 's', -3, 500)], NOW));
    expect(h['x-ratelimit-remaining']).toBe('0');
    expect(h['ratelimit']).toBe('"10/s";r=0;t=1');
  });

  it('X-RateLimit-* describe the limit with the fewest units left', () => {
    const h = asObject(rateLimitHeaders([state(10, 's', 9, 100), state(1000, 'd', 2, 7_200_000), state(100, 'm', 50, 30_000)], NOW));
    expect(h['x-ratelimit-limit']).toBe('1000');
    expect(h['x-ratelimit-remaining']).toBe('2');
    expect(h['x-ratelimit-reset']).toBe('7200');
  });

  it('no limits → no rate-limit headers', () => {
    expect(rateLimitHeaders([], NOW)).toEqual([]);
  });
});

describe('mostRestrictive', () => {
  it('picks the fewest remaining units', () => {
    const a = state(10, 's', 0, 900);
    const b = state(1000, 'month', 400, 1e9);
    expect(mostRestrictive([b, a])).toBe(a);
    expect(mostRestrictive([a, b])).toBe(a);
  });

  it('breaks a tie by the latest reset (the longest wait)', () => {
    const short = state(10, 's', 3, 500);
    const long = state(1000, 'month', 3, 1e9);
    expect(mostRestrictive([short, long])).toBe(long);
    expect(mostRestrictive([long, short])).toBe(long);
  });

  it('is undefined for no limits', () => {
    expect(mostRestrictive([])).toBeUndefined();
  });
});

describe('retryAfterSeconds', () => {
  it.each([
    [0, 1],
    [1, 1],
    [0.5, 1],
    [999, 1],
    [1000, 1],
    [1001, 2],
    [59_999, 60],
    [86_400_000, 86400],
  ])('%d ms → %d s (whole seconds, at least 1)', (ms, seconds) => {
    expect(retryAfterSeconds(ms)).toBe(seconds);
  });
});
