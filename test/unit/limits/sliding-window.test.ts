// The sliding-window bucket arithmetic that the memory twin runs and charge.lua mirrors.
import { describe, expect, it } from 'vitest';
import { RETRY_NEVER } from '../../../src/limits/types';
import {
  SLIDING_BUCKETS,
  chargedBucket,
  decodeBucket,
  encodeBucket,
  evaluateSliding,
  slidingStateAfter,
  slidingTtlAfterCharge,
} from '../../../src/limits/sliding-window';

const spec = SLIDING_BUCKETS.m; // w = 1 s, W = 60 s
const t0 = 1_773_500_966_535;
const bucket = (t: number, units: number, lastHit = t): [string, string] => [
  String(Math.floor(t / 1000)),
  encodeBucket({ index: Math.floor(t / 1000), units, lastHit }),
];

describe('evaluateSliding', () => {
  it('counts buckets whose latest hit is less than W ago, and marks older ones stale', () => {
    const stored = [bucket(t0, 2), bucket(t0 + 30_000, 1), bucket(t0 + 59_999, 1)];
    const atEdge = evaluateSliding(stored, t0 + 59_999, 5, 1, spec);
    expect(atEdge).toMatchObject({ used: 4, fits: true, retryAfterMs: 0, stale: [] });
    const later = evaluateSliding(stored, t0 + 60_000, 5, 1, spec);
    expect(later).toMatchObject({ used: 2, stale: [String(Math.floor(t0 / 1000))] });
  });

  it('retry: when enough of the oldest buckets have left for this cost', () => {
    const stored = [bucket(t0, 2), bucket(t0 + 10_000, 2), bucket(t0 + 20_000, 1)];
    const now = t0 + 25_000;
    expect(evaluateSliding(stored, now, 5, 1, spec).retryAfterMs).toBe(35_000); // first bucket leaves
    expect(evaluateSliding(stored, now, 5, 3, spec).retryAfterMs).toBe(45_000); // second one too
    expect(evaluateSliding(stored, now, 5, 5, spec).retryAfterMs).toBe(55_000); // all three
    expect(evaluateSliding(stored, now, 5, 6, spec).retryAfterMs).toBe(RETRY_NEVER);
  });

  it('orders buckets by latest hit, so a bucket hit late in its width leaves late', () => {
    const stored = [bucket(t0, 1, t0 + 400), bucket(t0 - 5_000, 1)];
    const evaluation = evaluateSliding(stored, t0 + 1_000, 2, 1, spec);
    expect(evaluation.counted.map((b) => b.lastHit)).toEqual([t0 - 5_000, t0 + 400]);
    expect(evaluation.retryAfterMs).toBe(t0 - 5_000 + 60_000 - (t0 + 1_000));
  });

  it('refuses corrupt buckets instead of guessing', () => {
    expect(() => decodeBucket('12', 'x')).toThrow(/corrupt/);
    expect(() => decodeBucket('a', '1:2')).toThrow(/corrupt/);
  });
});

describe('charging a bucket', () => {
  it('adds to the current bucket and keeps its latest hit', () => {
    const evaluation = evaluateSliding([bucket(t0, 2)], t0 + 100, 10, 3, spec);
    expect(chargedBucket(evaluation, t0 + 100, 3)).toEqual({ index: Math.floor(t0 / 1000), units: 5, lastHit: t0 + 100 });
    expect(slidingStateAfter(evaluation, true, t0 + 100, 10, 3, spec)).toEqual({ remaining: 5, resetMs: 60_000 });
    expect(slidingStateAfter(evaluation, false, t0 + 100, 10, 3, spec)).toEqual({ remaining: 8, resetMs: 59_900 });
  });

  it('an empty limit reports no reset', () => {
    const evaluation = evaluateSliding([], t0, 10, 1, spec);
    expect(slidingStateAfter(evaluation, false, t0, 10, 1, spec)).toEqual({ remaining: 10, resetMs: 0 });
  });
});

describe('the expiry of the bucket hash', () => {
  // t0 is 535 ms into its 1 s bucket: that bucket ends 465 ms later.
  it('is set when a charge opens a bucket newer than every counted one: end of that bucket + W', () => {
    expect(slidingTtlAfterCharge(evaluateSliding([], t0, 10, 1, spec), t0, spec)).toBe(465 + 60_000);
    const later = t0 + 20_000;
    expect(slidingTtlAfterCharge(evaluateSliding([bucket(t0, 2)], later, 10, 1, spec), later, spec)).toBe(465 + 60_000);
    // Every counted bucket stale: the charge opens the only bucket.
    const muchLater = t0 + 61_000;
    expect(slidingTtlAfterCharge(evaluateSliding([bucket(t0, 2)], muchLater, 10, 1, spec), muchLater, spec)).toBe(465 + 60_000);
  });

  it('is left alone by a hit in the newest bucket, or (clock behind) in an older one', () => {
    expect(slidingTtlAfterCharge(evaluateSliding([bucket(t0, 2)], t0 + 400, 10, 1, spec), t0 + 400, spec)).toBeNull();
    expect(slidingTtlAfterCharge(evaluateSliding([bucket(t0 + 5_000, 1)], t0, 10, 1, spec), t0, spec)).toBeNull();
  });

  it('covers every hit the bucket can still take: no hit of a bucket outlives the expiry set when it opened', () => {
    for (let offset = 0; offset < 1_000; offset += 37) {
      const opened = t0 - 535 + offset; // somewhere in t0's bucket
      const ttl = slidingTtlAfterCharge(evaluateSliding([], opened, 10, 1, spec), opened, spec)!;
      const lastPossibleHit = t0 - 535 + 999;
      expect(opened + ttl).toBeGreaterThanOrEqual(lastPossibleHit + spec.windowMs);
      expect(opened + ttl - (lastPossibleHit + spec.windowMs)).toBeLessThanOrEqual(1);
    }
  });
});
