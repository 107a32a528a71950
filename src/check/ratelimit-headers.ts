// Rate-limit response headers from a charge result:
//  - `RateLimit-Policy` and `RateLimit` as in draft-ietf-httpapi-ratelimit-headers-10
//    (structured-field lists: `"10/s";q=10;w=1` and `"10/s";r=3;t=1`, one item per limit);
//  - `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds until reset)
//    for the most restrictive limit: the one with the fewest units left (ties: latest reset).
import { formatLimit, windowBounds } from '../limits/plans';
import type { LimitState } from '../limits/types';

export type HeaderPair = [name: string, value: string];

const ceilSeconds = (ms: number): number => Math.max(0, Math.ceil(ms / 1000));

export function mostRestrictive(states: readonly LimitState[]): LimitState | undefined {
  let pick: LimitState | undefined;
  for (const s of states) {
    if (!pick || s.remaining < pick.remaining || (s.remaining === pick.remaining && s.resetMs > pick.resetMs)) pick = s;
  }
  return pick;
}

export function rateLimitHeaders(states: readonly LimitState[], now: number): HeaderPair[] {
  if (states.length === 0) return [];
  const policy = states.map((s) => `"${formatLimit(s.limit)}";q=${s.limit.count};w=${windowBounds(s.limit.window, now).lengthMs / 1000}`);
  const current = states.map((s) => `"${formatLimit(s.limit)}";r=${Math.max(0, s.remaining)};t=${ceilSeconds(s.resetMs)}`);
  const top = mostRestrictive(states)!;
  return [
    ['ratelimit-policy', policy.join(', ')],
    ['ratelimit', current.join(', ')],
    ['x-ratelimit-limit', String(top.limit.count)],
    ['x-ratelimit-remaining', String(Math.max(0, top.remaining))],
    ['x-ratelimit-reset', String(ceilSeconds(top.resetMs))],
  ];
}

/** Retry-After in whole seconds, at least 1 (RFC 9110 delay-seconds). */
export function retryAfterSeconds(retryAfterMs: number): number {
  return Math.max(1, Math.ceil(retryAfterMs / 1000));
}
