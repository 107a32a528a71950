// The bucket arithmetic of the s/m/h sliding windows, in one place. charge.lua carries the
// same arithmetic in Lua (it cannot import this); the memory twin runs this module, and a test
// runs both on the same random inputs to prove they agree.
//
// A window of length W is split into B buckets of width w = W / B. A hit at time t lands in
// bucket floor(t / w); a bucket stores its units and the time of its latest hit L. A bucket
// counts while now < L + W, that is until its latest hit has left the window; then it is stale.
//
// Guarantee (with a non-decreasing clock): in any interval [a, a + W) at most COUNT units are
// admitted. When the last admission of such an interval was checked, every earlier one of it sat
// in a bucket whose latest hit was at or after a, so that bucket still counted. Price: units of a
// bucket count until its latest hit leaves, at most w - 1 ms longer than each unit would in an
// exact sliding log, so a request may be refused at most w = W / B earlier than an exact log
// would refuse it. Storage is at most B + 1 buckets per window per key.
import { RETRY_NEVER, type Window } from './types';
import { isSlidingWindow, SLIDING_WINDOW_MS, type SlidingWindow } from './plans';

export interface BucketSpec {
  /** Width of one bucket in ms (w). */
  bucketMs: number;
  /** Length of the window in ms (W = w * B). */
  windowMs: number;
}

/** s: 10 buckets of 100 ms; m: 60 of 1 s; h: 60 of 1 min. */
export const SLIDING_BUCKETS: Readonly<Record<SlidingWindow, BucketSpec>> = Object.freeze({
  s: { bucketMs: 100, windowMs: SLIDING_WINDOW_MS.s },
  m: { bucketMs: 1_000, windowMs: SLIDING_WINDOW_MS.m },
  h: { bucketMs: 60_000, windowMs: SLIDING_WINDOW_MS.h },
});

export function bucketSpec(window: Window): BucketSpec {
  if (!isSlidingWindow(window)) throw new RangeError(`window "${window}" is a calendar window, not a sliding one`);
  return SLIDING_BUCKETS[window];
}

/**
 * The field of a limit's hash that sums it up: `<units of all stored buckets>:<lowest stored
 * index>:<highest stored index>`, rewritten by every charge. charge.lua reads it to touch only the
 * few buckets that change (see there); this module's evaluation reads every bucket and ignores it.
 */
export const SUMMARY_FIELD = 'sum';

/** A stored bucket: hash field = bucket index, value = `<units>:<latest hit ms>`. */
export interface Bucket {
  index: number;
  units: number;
  lastHit: number;
}

export function encodeBucket(bucket: Bucket): string {
  return `${bucket.units}:${bucket.lastHit}`;
}

const BUCKET_VALUE = /^(\d+):(\d+)$/;

export function decodeBucket(field: string, value: string): Bucket {
  const match = BUCKET_VALUE.exec(value);
  if (!match || !/^\d+$/.test(field)) throw new Error(`keygate: corrupt rate-limit bucket ${field}=${value}`);
  return { index: Number(field), units: Number(match[1]), lastHit: Number(match[2]) };
}

export interface SlidingEvaluation {
  /** Index of the bucket receiving hits at `now`. */
  currentBucket: number;
  /** Buckets that count at `now`, oldest latest hit first. */
  counted: Bucket[];
  /** Stored bucket fields that no longer count (deleted when charging). */
  stale: string[];
  /** Units counted at `now`. */
  used: number;
  /** used + cost ≤ count */
  fits: boolean;
  /** 0 when it fits; else ms until enough buckets have left; RETRY_NEVER when cost > count. */
  retryAfterMs: number;
}

/** Orders buckets by latest hit, then index: the order in which they leave the window. */
export function leavingOrder(a: Bucket, b: Bucket): number {
  return a.lastHit - b.lastHit || a.index - b.index;
}

/** Evaluates one sliding limit at `now` from its stored hash (field → value), changing nothing. */
export function evaluateSliding(
  stored: ReadonlyArray<readonly [string, string]>,
  now: number,
  count: number,
  cost: number,
  spec: BucketSpec,
): SlidingEvaluation {
  const counted: Bucket[] = [];
  const stale: string[] = [];
  let used = 0;
  for (const [field, value] of stored) {
    if (field === SUMMARY_FIELD) continue;
    const bucket = decodeBucket(field, value);
    if (bucket.lastHit + spec.windowMs <= now) {
      stale.push(field);
    } else {
      counted.push(bucket);
      used += bucket.units;
    }
  }
  counted.sort(leavingOrder);
  const fits = used + cost <= count;
  let retryAfterMs = 0;
  if (!fits) {
    if (cost > count) {
      retryAfterMs = RETRY_NEVER;
    } else {
      let left = used;
      for (const bucket of counted) {
        left -= bucket.units;
        if (left + cost <= count) {
          retryAfterMs = bucket.lastHit + spec.windowMs - now;
          break;
        }
      }
    }
  }
  return { currentBucket: Math.floor(now / spec.bucketMs), counted, stale, used, fits, retryAfterMs };
}

/** The bucket the charge writes: the current bucket with `cost` more units and `now` as a hit. */
export function chargedBucket(evaluation: SlidingEvaluation, now: number, cost: number): Bucket {
  const existing = evaluation.counted.find((bucket) => bucket.index === evaluation.currentBucket);
  return {
    index: evaluation.currentBucket,
    units: (existing?.units ?? 0) + cost,
    lastHit: Math.max(existing?.lastHit ?? now, now),
  };
}

/** The summary field's value once the charge is applied: the counted buckets and the charged one. */
export function slidingSummaryAfterCharge(evaluation: SlidingEvaluation, now: number, cost: number): string {
  let lowest = evaluation.currentBucket;
  let highest = evaluation.currentBucket;
  for (const bucket of evaluation.counted) {
    lowest = Math.min(lowest, bucket.index);
    highest = Math.max(highest, bucket.index);
  }
  return `${evaluation.used + cost}:${lowest}:${highest}`;
}

export interface SlidingStateAfter {
  remaining: number;
  /** ms until the oldest counted bucket leaves (remaining grows); 0 when nothing counts. */
  resetMs: number;
}

/**
 * The TTL (before the slack) to give a limit's bucket hash after a charge, or null to leave its
 * expiry alone. The hash must live until its newest bucket has left the window. Every hit of a
 * bucket falls before the bucket's end, so an expiry at (end of the newest bucket) + W covers all
 * of them: it needs setting only when the charge opens a bucket newer than every counted one —
 * once per bucket width at most, instead of on every charge.
 */
export function slidingTtlAfterCharge(evaluation: SlidingEvaluation, now: number, spec: BucketSpec): number | null {
  for (const bucket of evaluation.counted) if (bucket.index >= evaluation.currentBucket) return null;
  return (evaluation.currentBucket + 1) * spec.bucketMs + spec.windowMs - now;
}

/** The limit's state once the charge is (or is not) applied. */
export function slidingStateAfter(
  evaluation: SlidingEvaluation,
  charged: boolean,
  now: number,
  count: number,
  cost: number,
  spec: BucketSpec,
): SlidingStateAfter {
  const buckets = evaluation.counted.filter((bucket) => !charged || bucket.index !== evaluation.currentBucket);
  if (charged) buckets.push(chargedBucket(evaluation, now, cost));
  let used = 0;
  let oldest = Infinity;
  for (const bucket of buckets) {
    used += bucket.units;
    oldest = Math.min(oldest, bucket.lastHit);
  }
  return {
    remaining: Math.max(0, count - used),
    resetMs: used > 0 ? oldest + spec.windowMs - now : 0,
  };
}
