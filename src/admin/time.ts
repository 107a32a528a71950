// Times and durations as operators write them in the admin CLI and in seed/import files:
// ISO-8601 instants (`2027-01-31`, `2027-01-31T12:00:00Z`) and short durations (`30d`, `1h30m`).
// Everything keygate shows is ISO-8601 in UTC.

const UNIT_MS: Record<string, number> = {
  w: 7 * 86_400_000,
  d: 86_400_000,
  h: 3_600_000,
  m: 60_000,
  s: 1_000,
};

const DURATION_RE = /^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;

/**
 * Milliseconds of a duration such as `30d`, `12h`, `1h30m`, `2w` or `0` (units w, d, h, m = minutes,
 * s, largest first). Null when the text is not a duration.
 */
export function parseDuration(text: string): number | null {
  const t = text.trim();
  if (t === '0') return 0;
  const match = DURATION_RE.exec(t);
  if (!match || t === '') return null;
  const units = ['w', 'd', 'h', 'm', 's'];
  let ms = 0;
  units.forEach((unit, i) => {
    const n = match[i + 1];
    if (n !== undefined) ms += Number(n) * UNIT_MS[unit];
  });
  return Number.isSafeInteger(ms) ? ms : null;
}

const INSTANT_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/**
 * Milliseconds since the epoch of an ISO-8601 date or date-time. A date alone is midnight UTC;
 * a date-time without a zone is read as UTC (never as the machine's local time). Null when the
 * text is not such a time or names a day that does not exist (2026-02-30).
 */
export function parseInstant(text: string): number | null {
  const t = text.trim();
  const match = INSTANT_RE.exec(t);
  if (!match) return null;
  const [, year, month, day, hour, minute, second, zone] = match;
  const dayStart = Date.UTC(Number(year), Number(month) - 1, Number(day));
  const check = new Date(dayStart);
  if (check.getUTCMonth() !== Number(month) - 1 || check.getUTCDate() !== Number(day)) return null;
  if (hour !== undefined && (Number(hour) > 23 || Number(minute) > 59 || Number(second ?? 0) > 59)) return null;
  const normalised = hour === undefined ? `${year}-${month}-${day}T00:00:00Z` : zone === undefined ? `${t.replace(' ', 'T')}Z` : t.replace(' ', 'T');
  const ms = Date.parse(normalised);
  return Number.isNaN(ms) ? null : ms;
}

/**
 * An expiry given as an ISO-8601 time or as a duration from `now` (`30d`). Throws an Error with a
 * one-line reason when it is neither.
 */
export function parseExpiry(text: string, now: number): number {
  const duration = parseDuration(text);
  if (duration !== null) return now + duration;
  const instant = parseInstant(text);
  if (instant !== null) return instant;
  throw new Error(`"${text}" is neither an ISO-8601 time (2027-01-31, 2027-01-31T12:00:00Z) nor a duration (30d, 12h, 1h30m)`);
}

/** ISO-8601 in UTC with milliseconds, the one format keygate-admin prints times in. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
