// The embedded (in-process) limiter against the shared limiter behaviour, plus what only the
// memory twin can show with a moved clock: keys expire when Redis would expire them.
import { describe, expect, it } from 'vitest';
import { EXPIRY_SLACK_MS } from '../../../src/limits/charge-call';
import { MemoryLimiter } from '../../../src/limits/memory-limiter';
import { DAY_MS, parseLimit } from '../../../src/limits/plans';
import { limiterSuite } from '../../shared/limiter-suite';

limiterSuite('MemoryLimiter', async () => new MemoryLimiter());

describe('MemoryLimiter expiry', () => {
  const now = Date.parse('2026-03-14T15:09:26.535Z');

  it('keeps a day of usage for the retention period after the day ends, then forgets it', async () => {
    const limiter = new MemoryLimiter({ usageRetentionDays: 2 });
    await limiter.recordUsage('k', 'allowed', now);
    const dayEnd = Date.parse('2026-03-15T00:00:00.000Z');
    await limiter.recordUsage('other', 'allowed', dayEnd + 2 * DAY_MS - 1);
    expect((await limiter.readUsage('k', '2026-03-14', 1))[0].allowed).toBe(1);
    await limiter.recordUsage('other', 'allowed', dayEnd + 2 * DAY_MS);
    expect((await limiter.readUsage('k', '2026-03-14', 1))[0].allowed).toBe(0);
  });

  it('drops rate-limit buckets once the end of their newest bucket has left the window, and quota counters at the window end', async () => {
    const limiter = new MemoryLimiter();
    await limiter.charge({ keyId: 'k', limits: [parseLimit('5/s'), parseLimit('5/d')], cost: 1, now });
    expect(limiter.store.at(now).keys().sort()).toEqual([
      'kg:{k}:q:d:20260314',
      'kg:{k}:rl:s',
      'kg:{k}:usage:20260314',
    ]);
    // Counters outlive the moment they stop counting by EXPIRY_SLACK_MS, then go. The hit at
    // now is 35 ms into its 100 ms bucket: the hash lives until that bucket's end (now + 65) + 1 s.
    expect(limiter.store.at(now + 65 + 999 + EXPIRY_SLACK_MS).keys()).toContain('kg:{k}:rl:s');
    expect(limiter.store.at(now + 65 + 1_000 + EXPIRY_SLACK_MS).keys()).not.toContain('kg:{k}:rl:s');
    const dayEnd = Date.parse('2026-03-15T00:00:00.000Z');
    expect(limiter.store.at(dayEnd - 1 + EXPIRY_SLACK_MS).keys()).toContain('kg:{k}:q:d:20260314');
    expect(limiter.store.at(dayEnd + EXPIRY_SLACK_MS).keys()).toEqual(['kg:{k}:usage:20260314']);
  });

  it('refuses a retention that is not a positive integer', () => {
    expect(() => new MemoryLimiter({ usageRetentionDays: 0 })).toThrow(/usageRetentionDays/);
  });
});
