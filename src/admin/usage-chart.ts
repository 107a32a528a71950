// The terminal bar chart of `keygate-admin usage`: one line per UTC day, a horizontal bar of the
// day's requests split into allowed (█) and denied (░), and the day's total. A pure function of
// its input — same days, same text — that fits a given width (80 columns by default).
//
//   requests per day (UTC): █ allowed  ░ denied  (longest bar: 46)
//   2026-03-01 │                                                             0
//   2026-03-02 │██████████████████████                                       17
//   2026-03-03 │█████████████████████████████████████████████████████████░░░░░░  46
//
// Scale: the day with the most requests fills the whole bar width; every other bar is
// proportional (rounded to whole cells). A count that is not zero always gets at least one cell,
// so a single denial stays visible next to thousands of allowed requests; a day without requests
// has an empty bar.

export interface ChartDay {
  /** the label, e.g. YYYY-MM-DD */
  day: string;
  allowed: number;
  denied: number;
}

export interface ChartOptions {
  /** total width of every line, in columns; default 80 (at least 40) */
  width?: number;
}

export const ALLOWED_CELL = '█';
export const DENIED_CELL = '░';
const AXIS = '│';
/** Bars are never narrower than this, whatever the width and the numbers. */
export const MIN_BAR_WIDTH = 10;

/** Cells of a count on a bar of `width` cells that `max` fills: proportional, and ≥ 1 unless 0. */
function cells(count: number, max: number, width: number): number {
  if (count <= 0 || max <= 0) return 0;
  return Math.min(width, Math.max(1, Math.round((count / max) * width)));
}

/** The allowed and denied cells of one day's bar. */
export function barCells(allowed: number, denied: number, max: number, width: number): { allowed: number; denied: number } {
  const total = cells(allowed + denied, max, width);
  let deniedCells = Math.min(total, cells(denied, max, width));
  let allowedCells = total - deniedCells;
  if (allowed > 0 && allowedCells === 0) {
    // Both kinds happened but rounding gave every cell to the denials: show one allowed cell too.
    allowedCells = 1;
    if (total === width) deniedCells -= 1;
  }
  return { allowed: allowedCells, denied: deniedCells };
}

/** The chart as text (lines end with "\n"); "no requests ..." when every day is zero. */
export function usageChart(days: readonly ChartDay[], options: ChartOptions = {}): string {
  const width = Math.max(40, Math.floor(options.width ?? 80));
  const totals = days.map((d) => d.allowed + d.denied);
  const max = Math.max(0, ...totals);
  if (max === 0) return `no requests on ${days.length === 1 ? 'this day' : `these ${days.length} days`}\n`;
  const labelWidth = Math.max(...days.map((d) => d.day.length));
  const countWidth = Math.max(...totals.map((t) => String(t).length));
  // label, " │", bar, "  ", count
  const barWidth = Math.max(MIN_BAR_WIDTH, width - labelWidth - 2 - 2 - countWidth);
  const header = `requests per day (UTC): ${ALLOWED_CELL} allowed  ${DENIED_CELL} denied  (longest bar: ${max})`;
  const lines = days.map((d, i) => {
    const bar = barCells(d.allowed, d.denied, max, barWidth);
    const drawn = ALLOWED_CELL.repeat(bar.allowed) + DENIED_CELL.repeat(bar.denied);
    return `${d.day.padEnd(labelWidth)} ${AXIS}${drawn.padEnd(barWidth)}  ${String(totals[i]).padStart(countWidth)}`;
  });
  return [header, ...lines].join('\n') + '\n';
}
