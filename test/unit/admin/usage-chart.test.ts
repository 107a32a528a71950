// The usage bar chart (pure, deterministic) and the usage report helpers behind `keygate-admin usage`.
import { describe, expect, it } from 'vitest';
import { ALLOWED_CELL, DENIED_CELL, MIN_BAR_WIDTH, barCells, usageChart, type ChartDay } from '../../../src/admin/usage-chart';
import { chartDays, reasonsText, sumByDay, usageTable, usageTotal } from '../../../src/admin/usage-report';
import type { UsageDay } from '../../../src/limits/types';

const columns = (line: string) => [...line].length;
const bar = (line: string) => line.slice(line.indexOf('│') + 1).replace(/\s+\d+$/, '');
const count = (text: string, cell: string) => [...text].filter((c) => c === cell).length;

const WEEK: ChartDay[] = [
  { day: '2026-03-01', allowed: 0, denied: 0 },
  { day: '2026-03-02', allowed: 17, denied: 0 },
  { day: '2026-03-03', allowed: 40, denied: 6 },
  { day: '2026-03-04', allowed: 1, denied: 1 },
  { day: '2026-03-05', allowed: 0, denied: 3 },
];

describe('usageChart', () => {
  it('draws one line per day: allowed █ then denied ░, the busiest day filling the bar, totals on the right', () => {
    expect(usageChart(WEEK)).toBe(
      [
        'requests per day (UTC): █ allowed  ░ denied  (longest bar: 46)',
        '2026-03-01 │                                                                   0',
        '2026-03-02 │████████████████████████                                          17',
        '2026-03-03 │████████████████████████████████████████████████████████░░░░░░░░  46',
        '2026-03-04 │██░                                                                2',
        '2026-03-05 │░░░░                                                               3',
        '',
      ].join('\n'),
    );
  });

  it('is deterministic and every line fits 80 columns, whatever the numbers', () => {
    const big: ChartDay[] = [
      { day: '2026-01-01', allowed: 9_007_199_254_740_991, denied: 0 },
      { day: '2026-01-02', allowed: 1, denied: 123_456_789_012 },
      { day: '2026-01-03', allowed: 0, denied: 0 },
    ];
    for (const days of [WEEK, big]) {
      const text = usageChart(days);
      expect(usageChart(days)).toBe(text);
      for (const line of text.trimEnd().split('\n')) expect(columns(line), line).toBeLessThanOrEqual(80);
      // day lines are exactly 80 wide: the bar takes what the label and count leave
      for (const line of text.trimEnd().split('\n').slice(1)) expect(columns(line)).toBe(80);
    }
  });

  it('honours a narrower width, never drawing a bar below the minimum', () => {
    const text = usageChart(WEEK, { width: 50 });
    for (const line of text.trimEnd().split('\n').slice(1)) expect(columns(line)).toBe(50);
    expect(count(text.split('\n')[3], ALLOWED_CELL) + count(text.split('\n')[3], DENIED_CELL)).toBe(50 - 10 - 2 - 2 - 2);
    expect(MIN_BAR_WIDTH).toBeGreaterThan(1);
  });

  it('keeps a single denial visible next to many allowed requests, and a zero day empty', () => {
    const text = usageChart([
      { day: 'a', allowed: 100_000, denied: 1 },
      { day: 'b', allowed: 0, denied: 0 },
      { day: 'c', allowed: 1, denied: 0 },
    ]);
    const [, a, b, c] = text.split('\n');
    expect(count(a, DENIED_CELL)).toBe(1);
    expect(count(a, ALLOWED_CELL) + count(a, DENIED_CELL)).toBe(bar(a).length);
    expect(bar(b).trim()).toBe('');
    expect(count(c, ALLOWED_CELL)).toBe(1);
  });

  it('bars are proportional to the day totals (rounded to whole cells)', () => {
    const days: ChartDay[] = [10, 20, 30, 40].map((n, i) => ({ day: `d${i}`, allowed: n, denied: 0 }));
    const widths = usageChart(days)
      .trimEnd()
      .split('\n')
      .slice(1)
      .map((line) => count(line, ALLOWED_CELL));
    const full = widths[3];
    expect(widths.map((w) => w / full)).toEqual([0.25, 0.5, 0.75, 1].map((r) => Math.round(r * full) / full));
  });

  it('says so when there were no requests at all', () => {
    expect(usageChart([{ day: '2026-03-01', allowed: 0, denied: 0 }])).toBe('no requests on this day\n');
    expect(usageChart(WEEK.map((d) => ({ ...d, allowed: 0, denied: 0 })))).toBe('no requests on these 5 days\n');
  });
});

describe('barCells', () => {
  it('splits a bar between allowed and denied, each non-zero count getting at least one cell', () => {
    expect(barCells(0, 0, 10, 20)).toEqual({ allowed: 0, denied: 0 });
    expect(barCells(10, 0, 10, 20)).toEqual({ allowed: 20, denied: 0 });
    expect(barCells(5, 5, 10, 20)).toEqual({ allowed: 10, denied: 10 });
    expect(barCells(1, 999, 1000, 20)).toEqual({ allowed: 1, denied: 19 });
    expect(barCells(999, 1, 1000, 20)).toEqual({ allowed: 19, denied: 1 });
    expect(barCells(1, 1, 1_000_000, 20)).toEqual({ allowed: 1, denied: 1 });
  });

  it('never exceeds the bar width (property over many inputs)', () => {
    for (let max = 1; max <= 60; max += 7) {
      for (let allowed = 0; allowed <= max; allowed += 3) {
        const denied = max - allowed;
        const { allowed: a, denied: d } = barCells(allowed, denied, max, 17);
        expect(a + d).toBeLessThanOrEqual(17);
        expect(a > 0).toBe(allowed > 0);
        expect(d > 0).toBe(denied > 0);
      }
    }
  });
});

describe('usage report', () => {
  const day = (d: string, allowed: number, denied: Record<string, number> = {}, wouldDeny: Record<string, number> = {}): UsageDay => ({
    day: d,
    allowed,
    denied,
    wouldDeny,
  });

  it('totals days, reasons most first then by name', () => {
    const total = usageTotal([day('2026-03-01', 3, { rate_limited: 1 }), day('2026-03-02', 4, { quota_exceeded: 2, rate_limited: 1 }, { quota_exceeded: 1 })]);
    expect(total).toEqual({ allowed: 7, denied: { quota_exceeded: 2, rate_limited: 2 }, wouldDeny: { quota_exceeded: 1 } });
    expect(Object.keys(total.denied)).toEqual(['quota_exceeded', 'rate_limited']);
    expect(reasonsText(total)).toBe('quota_exceeded 2, rate_limited 2; shadow: quota_exceeded 1');
  });

  it("sums an owner's keys per day, and refuses rows of different days", () => {
    const a = [day('2026-03-01', 1), day('2026-03-02', 2, { rate_limited: 1 })];
    const b = [day('2026-03-01', 10, { expired_api_key: 4 }), day('2026-03-02', 0)];
    expect(sumByDay([a, b], ['2026-03-01', '2026-03-02'])).toEqual([
      day('2026-03-01', 11, { expired_api_key: 4 }),
      day('2026-03-02', 2, { rate_limited: 1 }),
    ]);
    expect(() => sumByDay([a, [b[1], b[0]]], ['2026-03-01', '2026-03-02'])).toThrow(/out of step/);
  });

  it('prints a table with right-aligned counts and a total row', () => {
    const days = [day('2026-03-01', 12), day('2026-03-02', 3, { rate_limited: 2 }, { quota_exceeded: 1 })];
    expect(usageTable(days, usageTotal(days))).toBe(
      [
        'DAY         ALLOWED  DENIED  WOULD DENY  REASONS',
        '2026-03-01       12       0           0',
        '2026-03-02        3       2           1  rate_limited 2; shadow: quota_exceeded 1',
        'total            15       2           1  rate_limited 2; shadow: quota_exceeded 1',
        '',
      ].join('\n'),
    );
    expect(chartDays(days)).toEqual([
      { day: '2026-03-01', allowed: 12, denied: 0 },
      { day: '2026-03-02', allowed: 3, denied: 2 },
    ]);
  });
});
