// The behaviour every limiter must show, run against the Redis limiter and its memory twin so
// the two cannot drift: rate limits, calendar quotas and their boundaries, no partial charges,
// credits, shadow mode, usage history. Time is a ManualClock; nothing sleeps.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock';
import { DAY_MS, parseLimit, utcDay } from '../../src/limits/plans';
import { bucketSpec } from '../../src/limits/sliding-window';
import {
  RETRY_NEVER,
  type ChargeRequest,
  type ChargeResult,
  type CreditStore,
  type Limit,
  type Limiter,
  type UsageStore,
} from '../../src/limits/types';

export type SuiteLimiter = Limiter & CreditStore & UsageStore;

/** A small seeded PRNG (mulberry32): the random schedules are the same on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const limits = (...texts: string[]): Limit[] => texts.map(parseLimit);
const at = (iso: string): number => Date.parse(iso);

let keyCounter = 0;

export function limiterSuite(name: string, factory: () => Promise<SuiteLimiter>): void {
  describe(`${name}: shared limiter behaviour`, () => {
    let limiter: SuiteLimiter;
    let clock: ManualClock;
    let keyId: string;

    /** Charges the test's key at the clock's time; `extra` overrides cost, credits, shadow, keyId. */
    const charge = (plan: Limit[], extra: Partial<ChargeRequest> = {}): Promise<ChargeResult> =>
      limiter.charge({ keyId, limits: plan, cost: 1, now: clock.now(), ...extra });

    beforeEach(async () => {
      limiter = await factory();
      // An instant that is not on any bucket or second boundary.
      clock = new ManualClock(at('2026-03-14T15:09:26.535Z'));
      keyCounter += 1;
      keyId = `suite-${keyCounter}-${Math.random().toString(36).slice(2, 8)}`;
    });
    afterEach(async () => {
      await limiter.close();
    });

    describe('rate limits (s, m, h)', () => {
      it('5/m: five allowed, the sixth rate_limited with a retry within the minute, then allowed again', async () => {
        const plan = limits('5/m');
        for (let i = 0; i < 5; i++) {
          const result = await charge(plan);
          expect(result).toMatchObject({ allowed: true, retryAfterMs: 0 });
          expect(result.states[0]).toMatchObject({ limit: { count: 5, window: 'm' }, remaining: 4 - i });
          expect(result.states[0].resetMs).toBe(60_000);
        }
        const sixth = await charge(plan);
        expect(sixth).toMatchObject({ allowed: false, reason: 'rate_limited', deniedBy: 0 });
        expect(sixth.retryAfterMs).toBeGreaterThan(0);
        expect(sixth.retryAfterMs).toBeLessThanOrEqual(60_000);
        expect(sixth.states[0].remaining).toBe(0);

        clock.advance(sixth.retryAfterMs - 1);
        const stillEarly = await charge(plan);
        expect(stillEarly).toMatchObject({ allowed: false, reason: 'rate_limited', retryAfterMs: 1 });

        clock.advance(1);
        const again = await charge(plan);
        expect(again).toMatchObject({ allowed: true, retryAfterMs: 0 });
        expect(again.states[0].remaining).toBe(4);
      });

      it('retryAfterMs is the time until the oldest hits leave the window', async () => {
        const plan = limits('5/m');
        for (let i = 0; i < 5; i++) {
          expect((await charge(plan)).allowed).toBe(true);
          clock.advance(10_000);
        }
        // Hits at +0 s … +40 s; now is +50 s: the first hit leaves at +60 s.
        const denied = await charge(plan);
        expect(denied).toMatchObject({ allowed: false, reason: 'rate_limited', retryAfterMs: 10_000 });
        expect(denied.states[0].resetMs).toBe(10_000);
        // A request of cost 3 must wait for three hits to leave (+80 s).
        const costly = await charge(plan, { cost: 3 });
        expect(costly.retryAfterMs).toBe(30_000);
      });

      it('a bucket counts until its latest hit is exactly one window old, to the millisecond', async () => {
        // Two hits in one 100 ms bucket of a 2/s limit, 30 ms apart: the bucket (both units)
        // counts until the second hit leaves, even after the first one has.
        const plan = limits('2/s');
        const first = clock.now();
        expect((await charge(plan)).allowed).toBe(true);
        clock.advance(30);
        expect((await charge(plan)).allowed).toBe(true);
        clock.set(first + 1_000 + 29);
        const edge = await charge(plan);
        expect(edge).toMatchObject({ allowed: false, reason: 'rate_limited', retryAfterMs: 1 });
        expect(edge.states[0]).toMatchObject({ remaining: 0, resetMs: 1 });
        clock.advance(1);
        const gone = await charge(plan);
        expect(gone).toMatchObject({ allowed: true, retryAfterMs: 0 });
        expect(gone.states[0]).toMatchObject({ remaining: 1, resetMs: 1_000 });
      });

      it('a keygate whose clock runs behind another: hits stamped ahead count until they leave', async () => {
        // One process charges at T + 5 s, another (5 s behind) at T: the later-stamped hit counts
        // for the slower clock until T + 6 s, and the wait names the hit that leaves first.
        const plan = limits('2/s');
        const t = clock.now();
        expect((await charge(plan, { now: t + 5_000 })).allowed).toBe(true);
        expect((await charge(plan, { now: t })).allowed).toBe(true);
        const refused = await charge(plan, { now: t + 10 });
        expect(refused).toMatchObject({ allowed: false, reason: 'rate_limited', retryAfterMs: 990 });
        expect(refused.states[0]).toMatchObject({ remaining: 0, resetMs: 990 });
        const costly = await charge(plan, { now: t + 10, cost: 2 });
        expect(costly).toMatchObject({ allowed: false, retryAfterMs: 5_990 });
      });

      it('a moved clock past the window finds the limit empty again', async () => {
        const plan = limits('2/s', '3/h');
        expect((await charge(plan)).allowed).toBe(true);
        expect((await charge(plan)).allowed).toBe(true);
        const denied = await charge(plan);
        expect(denied).toMatchObject({ allowed: false, reason: 'rate_limited', deniedBy: 0 });
        expect(denied.retryAfterMs).toBeLessThanOrEqual(1_000);
        clock.advance(1_001);
        const third = await charge(plan);
        expect(third.allowed).toBe(true);
        expect(third.states.map((s) => s.remaining)).toEqual([1, 0]);
        clock.advance(1_001);
        const hourly = await charge(plan);
        expect(hourly).toMatchObject({ allowed: false, reason: 'rate_limited', deniedBy: 1 });
        expect(hourly.retryAfterMs).toBeGreaterThan(3_600_000 - 2_100);
        expect(hourly.retryAfterMs).toBeLessThanOrEqual(3_600_000);
        clock.advance(hourly.retryAfterMs);
        expect((await charge(plan)).allowed).toBe(true);
      });

      for (const [window, count, meanGapMs] of [
        ['s', 7, 40],
        ['m', 25, 900],
      ] as const) {
        it(`guarantee for ${count}/${window}: never more than ${count} admitted in any window-long interval (seeded random schedule)`, async () => {
          const random = seededRandom(count * 7919);
          const plan: Limit[] = [{ count, window }];
          const { windowMs, bucketMs } = bucketSpec(window);
          const admitted: Array<{ t: number; units: number }> = [];
          let refusedEarly = 0;
          for (let i = 0; i < 1_500; i++) {
            // Bursts (several requests in one ms) and pauses, so buckets fill unevenly.
            const burst = random() < 0.2;
            clock.advance(burst ? 0 : Math.floor(random() * 2 * meanGapMs));
            const cost = random() < 0.8 ? 1 : 1 + Math.floor(random() * 3);
            const now = clock.now();
            const result = await charge(plan, { cost });
            if (result.allowed) {
              admitted.push({ t: now, units: cost });
              continue;
            }
            // Refused only when an exact log, counting each unit w longer, would also be full.
            const recent = admitted.filter((a) => a.t > now - windowMs - bucketMs).reduce((s, a) => s + a.units, 0);
            expect(recent + cost).toBeGreaterThan(count);
            const exact = admitted.filter((a) => a.t > now - windowMs).reduce((s, a) => s + a.units, 0);
            if (exact + cost <= count) refusedEarly += 1;
          }
          // The exact guarantee: for every interval [a, a + W) (enough: a = each admitted time).
          for (const first of admitted) {
            const inWindow = admitted
              .filter((a) => a.t >= first.t && a.t < first.t + windowMs)
              .reduce((s, a) => s + a.units, 0);
            expect(inWindow).toBeLessThanOrEqual(count);
          }
          expect(admitted.length).toBeGreaterThan(100);
          // Early refusals exist but are the exception.
          expect(refusedEarly).toBeLessThan(admitted.length);
        });
      }

      it('a cost above the count can never succeed: retryAfterMs is RETRY_NEVER', async () => {
        const result = await charge(limits('3/s'), { cost: 4 });
        expect(result).toMatchObject({ allowed: false, reason: 'rate_limited', retryAfterMs: RETRY_NEVER });
        expect(result.states[0].remaining).toBe(3);
      });
    });

    describe('calendar quotas (d, month) at their UTC boundaries', () => {
      it('d: the last millisecond of a day is still that day; the next millisecond starts afresh', async () => {
        const plan = limits('2/d');
        clock.set(at('2026-05-06T00:00:00.000Z'));
        expect((await charge(plan)).states[0].resetMs).toBe(DAY_MS);
        clock.set(at('2026-05-06T23:59:59.999Z'));
        const second = await charge(plan);
        expect(second).toMatchObject({ allowed: true });
        expect(second.states[0]).toMatchObject({ remaining: 0, resetMs: 1 });
        const third = await charge(plan);
        expect(third).toMatchObject({ allowed: false, reason: 'quota_exceeded', deniedBy: 0, retryAfterMs: 1 });
        clock.advance(1);
        const nextDay = await charge(plan);
        expect(nextDay).toMatchObject({ allowed: true });
        expect(nextDay.states[0]).toMatchObject({ remaining: 1, resetMs: DAY_MS });
      });

      it('month: February of a leap year ends after the 29th; its last ms counts in February', async () => {
        const plan = limits('2/month', '5/d');
        clock.set(at('2028-02-01T00:00:00.000Z'));
        const first = await charge(plan);
        expect(first.states[0].resetMs).toBe(29 * DAY_MS);
        clock.set(at('2028-02-29T23:59:59.999Z'));
        expect((await charge(plan)).allowed).toBe(true);
        const over = await charge(plan);
        expect(over).toMatchObject({ allowed: false, reason: 'quota_exceeded', deniedBy: 0, retryAfterMs: 1 });
        expect(over.states).toEqual([
          { limit: { count: 2, window: 'month' }, remaining: 0, resetMs: 1 },
          { limit: { count: 5, window: 'd' }, remaining: 4, resetMs: 1 },
        ]);
        clock.advance(1); // 2028-03-01T00:00:00.000Z
        const march = await charge(plan);
        expect(march.allowed).toBe(true);
        expect(march.states).toEqual([
          { limit: { count: 2, window: 'month' }, remaining: 1, resetMs: 31 * DAY_MS },
          { limit: { count: 5, window: 'd' }, remaining: 4, resetMs: DAY_MS },
        ]);
      });

      it('month: February of a common year has 28 days', async () => {
        const plan = limits('1/month');
        clock.set(at('2026-02-01T00:00:00.000Z'));
        expect((await charge(plan)).states[0].resetMs).toBe(28 * DAY_MS);
        clock.set(at('2026-02-28T23:59:59.999Z'));
        expect(await charge(plan)).toMatchObject({ allowed: false, retryAfterMs: 1 });
        clock.advance(1);
        expect((await charge(plan)).allowed).toBe(true);
      });

      it('December rolls over to January of the next year, for d and month', async () => {
        const plan = limits('1/d', '3/month');
        clock.set(at('2027-12-03T10:00:00.000Z'));
        expect((await charge(plan)).allowed).toBe(true);
        clock.set(at('2027-12-31T23:59:59.999Z'));
        expect((await charge(plan)).allowed).toBe(true);
        const denied = await charge(plan);
        expect(denied).toMatchObject({ allowed: false, reason: 'quota_exceeded', deniedBy: 0, retryAfterMs: 1 });
        expect(denied.states.map((s) => s.remaining)).toEqual([0, 1]);
        clock.advance(1); // 2028-01-01T00:00:00.000Z
        const newYear = await charge(plan);
        expect(newYear.allowed).toBe(true);
        expect(newYear.states).toEqual([
          { limit: { count: 1, window: 'd' }, remaining: 0, resetMs: DAY_MS },
          { limit: { count: 3, window: 'month' }, remaining: 2, resetMs: 31 * DAY_MS },
        ]);
      });
    });

    describe('all or nothing', () => {
      it('cost 5 with a 10/m plan: the third request is denied and charges nothing', async () => {
        const plan = limits('10/m');
        const t0 = clock.now();
        expect(await charge(plan, { cost: 5 })).toMatchObject({ allowed: true, states: [{ remaining: 5 }] });
        expect(await charge(plan, { cost: 5 })).toMatchObject({ allowed: true, states: [{ remaining: 0 }] });
        clock.set(t0 + 30_000);
        const third = await charge(plan, { cost: 5 });
        expect(third).toMatchObject({ allowed: false, reason: 'rate_limited', deniedBy: 0, retryAfterMs: 30_000 });
        expect(third.states[0].remaining).toBe(0);
        // Once the first two have left, all ten units are free: the third took none.
        clock.set(t0 + 60_000);
        expect(await charge(plan, { cost: 10 })).toMatchObject({ allowed: true, states: [{ remaining: 0 }] });
      });

      it('a request denied by the d quota leaves the s counter untouched', async () => {
        const plan = limits('10/s', '2/d');
        expect((await charge(plan)).allowed).toBe(true);
        expect((await charge(plan)).states.map((s) => s.remaining)).toEqual([8, 0]);
        const denied = await charge(plan);
        expect(denied).toMatchObject({ allowed: false, reason: 'quota_exceeded', deniedBy: 1 });
        expect(denied.retryAfterMs).toBe(at('2026-03-15T00:00:00.000Z') - clock.now());
        expect(denied.states.map((s) => s.remaining)).toEqual([8, 0]);
        // The s counter alone still holds exactly the two admitted requests.
        expect((await charge(limits('10/s'))).states[0].remaining).toBe(7);
      });

      it('when several limits refuse, the one with the longest wait is reported', async () => {
        const plan = limits('1/s', '1/d');
        expect((await charge(plan)).allowed).toBe(true);
        const denied = await charge(plan);
        expect(denied).toMatchObject({ allowed: false, reason: 'quota_exceeded', deniedBy: 1 });
        expect(denied.retryAfterMs).toBe(at('2026-03-15T00:00:00.000Z') - clock.now());
      });

      it('keys are independent', async () => {
        const plan = limits('1/m');
        expect((await charge(plan)).allowed).toBe(true);
        expect((await charge(plan)).allowed).toBe(false);
        expect((await charge(plan, { keyId: `${keyId}-other` })).allowed).toBe(true);
      });

      it('a plan without limits allows everything', async () => {
        const result = await charge([], { cost: 1000 });
        expect(result).toEqual({ allowed: true, states: [], retryAfterMs: 0 });
      });

      it('invalid requests are caller bugs and throw', async () => {
        await expect(charge(limits('1/s'), { cost: 0 })).rejects.toThrow(RangeError);
        await expect(charge(limits('1/s'), { cost: 1.5 })).rejects.toThrow(/cost/);
        await expect(charge(limits('1/s'), { keyId: '' })).rejects.toThrow(/keyId/);
      });
    });

    describe('credits', () => {
      it('N credits: N allowed, then quota_exceeded; added credits let requests through again', async () => {
        await limiter.setCredits(keyId, 3);
        for (const left of [2, 1, 0]) {
          expect(await charge([], { credits: true })).toMatchObject({ allowed: true, credits: left });
        }
        const out = await charge([], { credits: true });
        expect(out).toMatchObject({ allowed: false, reason: 'quota_exceeded', deniedBy: -1, retryAfterMs: RETRY_NEVER, credits: 0 });
        expect(await limiter.addCredits(keyId, 2)).toBe(2);
        expect(await charge([], { credits: true })).toMatchObject({ allowed: true, credits: 1 });
        expect(await limiter.getCredits(keyId)).toBe(1);
      });

      it('a credits key without a stored balance has 0', async () => {
        expect(await limiter.getCredits(keyId)).toBe(0);
        expect(await charge([], { credits: true })).toMatchObject({ allowed: false, reason: 'quota_exceeded', deniedBy: -1 });
      });

      it('cost is taken from credits; too few for the cost is a refusal that takes none', async () => {
        await limiter.setCredits(keyId, 3);
        expect(await charge([], { credits: true, cost: 2 })).toMatchObject({ allowed: true, credits: 1 });
        expect(await charge([], { credits: true, cost: 2 })).toMatchObject({ allowed: false, credits: 1 });
        expect(await charge([], { credits: true, cost: 1 })).toMatchObject({ allowed: true, credits: 0 });
      });

      it('a request refused by a limit takes no credits, and one refused by credits charges no limit', async () => {
        await limiter.setCredits(keyId, 1);
        const plan = limits('1/m');
        expect(await charge(plan, { credits: true })).toMatchObject({ allowed: true, credits: 0 });
        // Refused by credits 30 s later: had it charged the limit, that unit would count until +90 s.
        clock.advance(30_000);
        expect(await charge(plan, { credits: true })).toMatchObject({ allowed: false, deniedBy: -1 });
        await limiter.setCredits(keyId, 5);
        // Refused by the limit: the credits stay.
        expect(await charge(plan, { credits: true })).toMatchObject({ allowed: false, deniedBy: 0, retryAfterMs: 30_000, credits: 5 });
        expect(await limiter.getCredits(keyId)).toBe(5);
        clock.advance(30_000);
        expect(await charge(plan, { credits: true })).toMatchObject({ allowed: true, credits: 4, states: [{ remaining: 0 }] });
      });

      it('credits are not reported for keys that do not carry them', async () => {
        await limiter.setCredits(keyId, 5);
        const result = await charge(limits('5/s'));
        expect(result.credits).toBeUndefined();
        expect(await limiter.getCredits(keyId)).toBe(5);
      });

      it('refuses bad credit amounts', async () => {
        await expect(limiter.setCredits(keyId, -1)).rejects.toThrow(RangeError);
        await expect(limiter.addCredits(keyId, 0)).rejects.toThrow(RangeError);
        await expect(limiter.addCredits(keyId, 1.5)).rejects.toThrow(RangeError);
      });
    });

    describe('shadow mode', () => {
      it('allows a request over its limit, charges it, and reports what would have happened', async () => {
        const plan = limits('1/m');
        expect(await charge(plan, { shadow: true })).toEqual({
          allowed: true,
          retryAfterMs: 0,
          states: [{ limit: { count: 1, window: 'm' }, remaining: 0, resetMs: 60_000 }],
        });
        const over = await charge(plan, { shadow: true });
        expect(over).toMatchObject({ allowed: true, wouldDeny: 'rate_limited', deniedBy: 0, retryAfterMs: 60_000 });
        expect(over.reason).toBeUndefined();
        // The shadow request was charged: enforcing now refuses until both have left.
        clock.advance(30_000);
        expect(await charge(plan)).toMatchObject({ allowed: false, retryAfterMs: 30_000 });
      });

      it('over the credits: allowed, reported, and the balance stops at 0', async () => {
        await limiter.setCredits(keyId, 1);
        expect(await charge([], { shadow: true, credits: true, cost: 3 })).toMatchObject({
          allowed: true,
          wouldDeny: 'quota_exceeded',
          deniedBy: -1,
          retryAfterMs: RETRY_NEVER,
          credits: 0,
        });
        expect(await limiter.getCredits(keyId)).toBe(0);
      });

      it('is counted as allowed and as would_deny in the usage history', async () => {
        const plan = limits('1/d');
        await charge(plan, { shadow: true });
        await charge(plan, { shadow: true });
        await charge(plan, { shadow: true });
        const [today] = await limiter.readUsage(keyId, utcDay(clock.now()), 1);
        expect(today).toEqual({ day: '2026-03-14', allowed: 3, denied: {}, wouldDeny: { quota_exceeded: 2 } });
      });
    });

    describe('usage history', () => {
      it('counts requests per UTC day: allowed, and denied by reason, including denials made before the limiter', async () => {
        const plan = limits('3/m');
        clock.set(at('2026-03-14T23:59:50.000Z'));
        for (let i = 0; i < 5; i++) await charge(plan, { cost: 1 });
        await limiter.recordUsage(keyId, 'expired_api_key', clock.now());
        await limiter.recordUsage(keyId, 'expired_api_key', clock.now());
        clock.set(at('2026-03-15T00:00:30.000Z'));
        await charge(plan, { cost: 2 }); // rate_limited: three units still count
        clock.set(at('2026-03-15T12:00:00.000Z'));
        await charge(plan, { cost: 3 }); // allowed; one request whatever its cost
        await limiter.recordUsage(keyId, 'insufficient_scope', clock.now());
        await limiter.recordUsage(keyId, 'allowed', clock.now());

        expect(await limiter.readUsage(keyId, '2026-03-13', 4)).toEqual([
          { day: '2026-03-13', allowed: 0, denied: {}, wouldDeny: {} },
          { day: '2026-03-14', allowed: 3, denied: { rate_limited: 2, expired_api_key: 2 }, wouldDeny: {} },
          { day: '2026-03-15', allowed: 2, denied: { rate_limited: 1, insufficient_scope: 1 }, wouldDeny: {} },
          { day: '2026-03-16', allowed: 0, denied: {}, wouldDeny: {} },
        ]);
      });

      it('counts quota and credit refusals as quota_exceeded', async () => {
        await charge(limits('1/d'));
        await charge(limits('1/d'));
        await charge([], { credits: true });
        const [today] = await limiter.readUsage(keyId, '2026-03-14', 1);
        expect(today).toEqual({ day: '2026-03-14', allowed: 1, denied: { quota_exceeded: 2 }, wouldDeny: {} });
      });

      it('refuses outcomes that are not reason names, and bad ranges', async () => {
        await expect(limiter.recordUsage(keyId, 'denied:x', clock.now())).rejects.toThrow(RangeError);
        await expect(limiter.readUsage(keyId, '2026-02-30', 1)).rejects.toThrow(/invalid day/);
        await expect(limiter.readUsage(keyId, '2026-02-01', 0)).rejects.toThrow(RangeError);
      });
    });
  });
}
