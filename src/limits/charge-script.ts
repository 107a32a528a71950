// charge.lua in TypeScript, for the memory limiter: it reads the same KEYS/ARGV, runs the same
// four steps (evaluate, decide, charge, count usage) against a MemoryKv, and returns the same
// reply, so the two limiters cannot drift. Keep it step for step in line with lua/charge.lua.
// One difference in means, not in results: this mirror evaluates a sliding window from all its
// buckets, where the script reads the `sum` field and the few buckets that change; both write the
// same buckets and the same `sum` (the mirror test compares what they store).
import { EXPIRY_SLACK_MS, type ChargeCall, type ChargeReply } from './charge-call';
import type { MemoryKv } from './memory-kv';
import { RETRY_NEVER } from './types';
import {
  chargedBucket,
  encodeBucket,
  evaluateSliding,
  slidingStateAfter,
  slidingSummaryAfterCharge,
  slidingTtlAfterCharge,
  SUMMARY_FIELD,
  type BucketSpec,
  type SlidingEvaluation,
} from './sliding-window';

type EvaluatedLimit =
  | { kind: 'sliding'; key: string; count: number; spec: BucketSpec; evaluation: SlidingEvaluation; used: number; fits: boolean; retry: number }
  | { kind: 'calendar'; key: string; count: number; windowEnd: number; used: number; fits: boolean; retry: number };

export function runChargeScript(kv: MemoryKv, { keys, args }: ChargeCall): ChargeReply {
  const now = Number(args[0]);
  const cost = Number(args[1]);
  const hasCredits = args[2] === '1';
  const shadow = args[3] === '1';
  const usageTtlMs = Number(args[4]);
  const limitCount = Number(args[5]);
  kv.at(now);

  // 1. Evaluate every limit without changing anything.
  const limits: EvaluatedLimit[] = [];
  for (let i = 0; i < limitCount; i++) {
    const a = 6 + i * 4;
    const key = keys[2 + i];
    const count = Number(args[a]);
    if (args[a + 1] === 'sliding') {
      const spec = { bucketMs: Number(args[a + 2]), windowMs: Number(args[a + 3]) };
      const evaluation = evaluateSliding(kv.hgetall(key), now, count, cost, spec);
      limits.push({ kind: 'sliding', key, count, spec, evaluation, used: evaluation.used, fits: evaluation.fits, retry: evaluation.retryAfterMs });
    } else {
      const windowEnd = Number(args[a + 2]);
      const used = kv.get(key) ?? 0;
      const fits = used + cost <= count;
      const retry = fits ? 0 : cost > count ? RETRY_NEVER : windowEnd - now;
      limits.push({ kind: 'calendar', key, count, windowEnd, used, fits, retry });
    }
  }

  // 2. Decide. Credits refuse first; else the refusing limit with the longest wait (-1 = forever).
  let verdict = 'allowed';
  let deniedBy = -2;
  let retry = 0;
  let balance = -1;
  if (hasCredits) {
    balance = kv.get(keys[1]) ?? 0;
    if (balance < cost) {
      verdict = 'quota_exceeded';
      deniedBy = -1;
      retry = RETRY_NEVER;
    }
  }
  if (deniedBy === -2) {
    limits.forEach((limit, i) => {
      if (limit.fits) return;
      const longer = deniedBy === -2 || (retry !== RETRY_NEVER && (limit.retry === RETRY_NEVER || limit.retry > retry));
      if (longer) {
        deniedBy = i;
        retry = limit.retry;
        verdict = limit.kind === 'sliding' ? 'rate_limited' : 'quota_exceeded';
      }
    });
  }

  // 3. Charge everything, or nothing. Two limits on one counter charge it once.
  const charged = verdict === 'allowed' || shadow;
  if (charged) {
    const touched = new Set<string>();
    for (const limit of limits) {
      if (touched.has(limit.key)) continue;
      touched.add(limit.key);
      if (limit.kind === 'sliding') {
        if (limit.evaluation.stale.length > 0) kv.hdel(limit.key, limit.evaluation.stale);
        const bucket = chargedBucket(limit.evaluation, now, cost);
        kv.hset(limit.key, String(bucket.index), encodeBucket(bucket));
        kv.hset(limit.key, SUMMARY_FIELD, slidingSummaryAfterCharge(limit.evaluation, now, cost));
        const ttl = slidingTtlAfterCharge(limit.evaluation, now, limit.spec);
        if (ttl !== null) kv.pexpire(limit.key, ttl + EXPIRY_SLACK_MS);
      } else {
        if (kv.incrby(limit.key, cost) === cost) kv.pexpire(limit.key, limit.windowEnd - now + EXPIRY_SLACK_MS);
      }
    }
    if (hasCredits && balance > 0) {
      if (balance >= cost) {
        balance = kv.incrby(keys[1], -cost);
      } else {
        // shadow mode over the balance: credits stop at 0, never below
        balance = 0;
        kv.set(keys[1], 0);
      }
    }
  }

  // 4. Count the request in the day's usage (a field's first count gives the hash its expiry).
  let newField = false;
  if (verdict === 'allowed') {
    newField = kv.hincrby(keys[0], 'allowed', 1) === 1;
  } else if (shadow) {
    newField = kv.hincrby(keys[0], 'allowed', 1) === 1;
    newField = kv.hincrby(keys[0], `would_deny:${verdict}`, 1) === 1 || newField;
  } else {
    newField = kv.hincrby(keys[0], `denied:${verdict}`, 1) === 1;
  }
  if (newField) kv.pexpire(keys[0], usageTtlMs);

  // 5. Report each limit's state after the charge.
  const reply: ChargeReply = [verdict, charged ? 1 : 0, deniedBy, retry, balance];
  for (const limit of limits) {
    if (limit.kind === 'sliding') {
      const state = slidingStateAfter(limit.evaluation, charged, now, limit.count, cost, limit.spec);
      reply.push(state.remaining, state.resetMs);
    } else {
      reply.push(Math.max(0, limit.count - limit.used - (charged ? cost : 0)), limit.windowEnd - now);
    }
  }
  return reply;
}
