// Steady load and bookkeeping for the fault tests: a few concurrent senders each fire a Check
// every few ms at every keygate under test (open loop: a slow answer never slows the senders),
// record each answer with its client-side latency, stop by themselves after a bound, and let a
// test wait (bounded) for conditions such as "the first store-backed allow after the heal".
// Also the policy checks every fault test applies to what was recorded, and a one-line summary per
// keygate and fault (FAULT_DEBUG=1 adds its five slowest Checks).
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { ServiceError } from '@grpc/grpc-js';
import { storeBudgetMs } from '../../src/check/store-budget';
import { checkRequest, headerMap, type TestKeygate } from '../helpers/keygate';

/** What one Check got back, as Envoy would act on it. */
export type Verdict =
  | { kind: 'allow'; unchecked: boolean; rateLimitHeaders: boolean }
  | { kind: 'deny'; reason: string }
  | { kind: 'unavailable'; details: string }
  | { kind: 'error'; code: number; details: string };

export interface Sample {
  target: string;
  /** label of the key sent (`known`, `unknown`, ...) */
  key: string;
  /** performance.now() when sent and when answered */
  sentAt: number;
  doneAt: number;
  ms: number;
  /**
   * Of `ms`, how long this process's main thread (keygate and the client share it) was ready to
   * run but waited for a CPU (Linux schedstat; 0 elsewhere): time other processes took.
   */
  waitMs: number;
  /** runQueueWaitMs() when it was answered */
  offCpuAtDone: number;
  verdict: Verdict;
}

export interface Target {
  name: string;
  kg: TestKeygate;
  /** label → secret; sent in rotation */
  keys: Record<string, string>;
}

export interface LoadOptions {
  senders?: number;
  intervalMs?: number;
  /** the senders stop by themselves after this long */
  maxMs?: number;
}

export const now = (): number => performance.now();

/** Run-queue wait of this process's main thread so far, ms (Linux /proc/self/schedstat; else 0). */
export function runQueueWaitMs(): number {
  try {
    return Number(readFileSync('/proc/self/schedstat', 'utf8').split(' ')[1]) / 1e6 || 0;
  } catch {
    return 0;
  }
}
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A store-backed allow: charged, with rate-limit headers. */
export const charged = (s: Sample): boolean => s.verdict.kind === 'allow' && !s.verdict.unchecked && s.verdict.rateLimitHeaders;

export async function sendCheck(kg: TestKeygate, secret: string): Promise<Verdict> {
  try {
    const res = (await kg.check(checkRequest({ headers: { 'x-api-key': secret } }))) as Record<string, any>;
    if (res.http_response === 'ok_response') {
      const up = headerMap(res.ok_response.headers);
      const down = headerMap(res.ok_response.response_headers_to_add);
      return { kind: 'allow', unchecked: up['x-keygate-quota'] === 'unchecked', rateLimitHeaders: 'x-ratelimit-remaining' in down };
    }
    return { kind: 'deny', reason: JSON.parse(res.denied_response.body).error.code };
  } catch (err) {
    const e = err as ServiceError;
    if (e.code === 14 && /^keygate:/.test(e.details ?? '')) return { kind: 'unavailable', details: e.details };
    return { kind: 'error', code: e.code ?? -1, details: e.details ?? String(err) };
  }
}

/**
 * Before any load: a few Checks per keygate and key, one at a time, so that the gRPC channel is
 * connected and the code is warm (a cold first Check is slow for reasons no fault explains).
 */
export async function warmUp(targets: readonly Target[], rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    for (const t of targets) for (const secret of Object.values(t.keys)) await sendCheck(t.kg, secret);
  }
}

export class Load {
  readonly samples: Sample[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private readonly waiters = new Set<{ pred: (s: Sample) => boolean; resolve: (s: Sample) => void }>();
  private readonly stopTimer: NodeJS.Timeout;

  constructor(targets: readonly Target[], opts: LoadOptions = {}) {
    const senders = opts.senders ?? 3;
    const interval = opts.intervalMs ?? 15;
    for (let i = 0; i < senders; i++) {
      let turn = i;
      const start = setTimeout(() => {
        this.timers.push(
          setInterval(() => {
            // Each tick one Check: targets in turn, and each target's keys in turn.
            const t = targets[turn % targets.length];
            const labels = Object.keys(t.keys);
            const label = labels[Math.floor(turn / targets.length) % labels.length];
            this.fire(t, label, t.keys[label]);
            turn++;
          }, interval),
        );
      }, Math.round((interval * i) / senders)); // spread the senders over the interval
      this.timers.push(start);
    }
    this.stopTimer = setTimeout(() => this.halt(), opts.maxMs ?? 45_000);
  }

  private fire(t: Target, label: string, secret: string): void {
    const sentAt = now();
    const waitedBefore = runQueueWaitMs();
    const p = sendCheck(t.kg, secret).then((verdict) => {
      const doneAt = now();
      const offCpuAtDone = runQueueWaitMs();
      const sample: Sample = { target: t.name, key: label, sentAt, doneAt, ms: doneAt - sentAt, waitMs: offCpuAtDone - waitedBefore, offCpuAtDone, verdict };
      this.samples.push(sample);
      for (const w of [...this.waiters]) {
        if (w.pred(sample)) {
          this.waiters.delete(w);
          w.resolve(sample);
        }
      }
    });
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** The first sample (already recorded or still to come) for which `pred` holds; rejects after `timeoutMs`. */
  waitFor(pred: (s: Sample) => boolean, timeoutMs: number, what: string): Promise<Sample> {
    const seen = this.samples.find(pred);
    return seen ? Promise.resolve(seen) : this.watch(pred, timeoutMs, what);
  }

  /** Resolves when `count` samples (recorded or to come) satisfy `pred`; rejects after `timeoutMs`. */
  async waitForCount(pred: (s: Sample) => boolean, count: number, timeoutMs: number, what: string): Promise<void> {
    let n = this.samples.filter(pred).length;
    if (n >= count) return;
    await this.watch((s) => pred(s) && ++n >= count, timeoutMs, `${count} × ${what}`);
  }

  /** The first sample still to come for which `pred` holds. */
  private watch(pred: (s: Sample) => boolean, timeoutMs: number, what: string): Promise<Sample> {
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (s: Sample) => {
          clearTimeout(timer);
          resolve(s);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  private halt(): void {
    for (const t of this.timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    clearTimeout(this.stopTimer);
  }

  /** Stops the senders and waits for every Check in flight. */
  async stop(): Promise<Sample[]> {
    this.halt();
    await Promise.all([...this.inflight]);
    return this.samples;
  }
}

/** How a keygate under test is configured, for judging its answers. */
export interface Policy {
  quotaOnStoreError: 'allow' | 'deny';
  cacheTtlMs: number;
  cacheStaleMs: number;
}

export interface FaultWindow {
  /** when the fault was injected */
  faultAt: number;
  /** when the store was healthy again (Redis answers, the proxy passes) */
  healAt: number;
  /** per target: when its first store-backed allow after the heal completed */
  recoveredAt: Record<string, number>;
  /**
   * per target: recoveredAt - healAt, less the time other processes kept this one off the CPU
   * meanwhile (what keygate answers for; the same correction as ownMs)
   */
  recoveryOwnMs: Record<string, number>;
}

/** Latency bound: the Check deadline plus a margin for gRPC and a busy event loop. */
export const DEADLINE_MS = 150;
export const MARGIN_MS = 100;
/** The store budget at that deadline (src/check/store-budget.ts): 125 ms. */
export const STORE_BUDGET_MS = storeBudgetMs(DEADLINE_MS);
/** After its recovery, a target must answer every Check sent later than this from the store. */
const SETTLE_MS = 250;

/** Latency that keygate answers for: the client-side time minus the time the OS kept this process off the CPU. */
export const ownMs = (s: Sample): number => s.ms - s.waitMs;
/**
 * The Check waited its whole store budget: the store (or this process, starved of CPU) was slower
 * than the budget, which the policy answers like a failure: at any time, not only during a fault.
 */
export const ranOutOfBudget = (s: Sample): boolean => s.ms >= STORE_BUDGET_MS - 2;

/**
 * Every violation of the failure policy among the samples, as readable lines (empty: all good):
 * - no Check slower than DEADLINE_MS + MARGIN_MS (not counting time the OS gave other processes:
 *   Sample.waitMs), no gRPC error other than keygate's UNAVAILABLE;
 * - an unknown key is never allowed (denied invalid_api_key, or UNAVAILABLE);
 * - the known key is never denied (its limit is out of reach); it is allowed charged, except
 *   between the fault and the target's recovery, or when its store work ran out of budget: then
 *   UNAVAILABLE, or with quota policy allow, allowed unchecked without rate-limit headers — and
 *   only while its cached record was fresh or within the stale bound;
 * - Checks sent after the recovery (+ SETTLE_MS) are store-backed again (or ran out of budget).
 */
export function policyViolations(samples: readonly Sample[], window: FaultWindow, policies: Record<string, Policy>): string[] {
  const out: string[] = [];
  const bad = (s: Sample, why: string) =>
    out.push(
      `${s.target}/${s.key} sent at +${(s.sentAt - window.faultAt).toFixed(0)} ms (${s.ms.toFixed(0)} ms, ${s.waitMs.toFixed(0)} ms off-CPU): ${why} — ${JSON.stringify(s.verdict)}`,
    );
  for (const [name, policy] of Object.entries(policies)) {
    const mine = samples.filter((s) => s.target === name);
    const recovered = window.recoveredAt[name] ?? Infinity;
    // The known key's record was refreshed from the store at the latest by the last store-backed
    // allow that completed before the heal; it is usable until its TTL plus the stale bound.
    const lastFill = Math.max(window.faultAt, ...mine.filter((s) => charged(s) && s.key === 'known' && s.doneAt < window.healAt).map((s) => s.doneAt));
    const staleUntil = lastFill + policy.cacheTtlMs + policy.cacheStaleMs;
    for (const s of mine) {
      const v = s.verdict;
      if (ownMs(s) > DEADLINE_MS + MARGIN_MS) bad(s, `took longer than ${DEADLINE_MS} + ${MARGIN_MS} ms`);
      if (v.kind === 'error') {
        bad(s, 'a gRPC error other than keygate UNAVAILABLE');
        continue;
      }
      const excused = (s.doneAt >= window.faultAt && s.sentAt <= recovered) || ranOutOfBudget(s);
      if (s.key === 'unknown') {
        if (v.kind === 'allow') bad(s, 'an unknown key was allowed');
        if (v.kind === 'deny' && v.reason !== 'invalid_api_key') bad(s, 'unknown key denied for another reason');
        if (v.kind === 'unavailable' && !excused) bad(s, 'UNAVAILABLE outside the fault, within the budget');
        continue;
      }
      if (v.kind === 'deny') bad(s, 'the known key was denied');
      if (v.kind === 'unavailable' && !excused) bad(s, 'UNAVAILABLE outside the fault, within the budget');
      if (v.kind === 'allow' && v.unchecked) {
        if (policy.quotaOnStoreError !== 'allow') bad(s, 'allowed unchecked under quota policy deny');
        if (!excused) bad(s, 'allowed unchecked outside the fault, within the budget');
        if (s.sentAt > staleUntil) bad(s, `allowed past the stale bound (${(staleUntil - window.faultAt).toFixed(0)} ms after the fault)`);
        if (v.rateLimitHeaders) bad(s, 'unchecked allow with rate-limit headers');
      }
      if (v.kind === 'allow' && !v.unchecked && !v.rateLimitHeaders) bad(s, 'charged allow without rate-limit headers');
      if (s.sentAt > recovered + SETTLE_MS && !charged(s) && !ranOutOfBudget(s)) bad(s, 'not store-backed after the recovery');
    }
  }
  return out;
}

/** A one-line summary of one target's answers during a fault, for the test output and the report. */
export function summarize(name: string, fault: string, samples: readonly Sample[], window: FaultWindow): string {
  const mine = samples.filter((s) => s.target === name);
  const during = mine.filter((s) => s.doneAt >= window.faultAt && s.sentAt <= (window.recoveredAt[name] ?? Infinity));
  const max = (xs: Sample[]) => (xs.length ? Math.max(...xs.map((s) => s.ms)) : 0);
  const count = (pred: (s: Sample) => boolean) => during.filter(pred).length;
  return (
    `[fault] ${fault.padEnd(28)} ${name.padEnd(7)} checks=${mine.length} during=${during.length}` +
    ` max_ms=${max(mine).toFixed(1)} max_ms_during=${max(during).toFixed(1)}` +
    ` max_own_ms=${mine.length ? Math.max(...mine.map(ownMs)).toFixed(1) : '0'} max_offcpu_ms=${mine.length ? Math.max(...mine.map((s) => s.waitMs)).toFixed(0) : '0'}` +
    ` unavailable=${count((s) => s.verdict.kind === 'unavailable')}` +
    ` unchecked=${count((s) => s.verdict.kind === 'allow' && s.verdict.unchecked)}` +
    ` fault_ms=${(window.healAt - window.faultAt).toFixed(0)} recovery_ms=${((window.recoveredAt[name] ?? NaN) - window.healAt).toFixed(0)}` +
    ` recovery_own_ms=${(window.recoveryOwnMs[name] ?? NaN).toFixed(0)}` +
    (process.env.FAULT_DEBUG
      ? '\n  slowest: ' +
        [...mine]
          .sort((a, b) => b.ms - a.ms)
          .slice(0, 5)
          .map((s) => `${s.key} ${s.ms.toFixed(0)}ms (rq ${s.waitMs.toFixed(0)}) sent@fault${fmt(s.sentAt - window.faultAt)} heal${fmt(s.sentAt - window.healAt)} ${s.verdict.kind}`)
          .join('; ')
      : '')
  );
}

export interface FaultRun {
  samples: Sample[];
  window: FaultWindow;
}

/**
 * Runs steady load against `targets`, waits (bounded) until each answers from the store, runs
 * `fault` (inject, hold for its duration, heal: it resolves when the store is healthy again),
 * then waits (bounded) for each target's first store-backed allow after the heal and for a
 * stretch of answers after it, and stops the load.
 */
export async function runFault(targets: readonly Target[], fault: () => Promise<void>, opts: { maxMs?: number } = {}): Promise<FaultRun> {
  const load = new Load(targets, { maxMs: opts.maxMs ?? 20_000 });
  const mine = (t: Target) => (s: Sample) => s.target === t.name;
  const recoveredAt: Record<string, number> = {};
  const recoveryOwnMs: Record<string, number> = {};
  let faultAt = NaN;
  let healAt = NaN;
  try {
    for (const t of targets) await load.waitForCount((s) => mine(t)(s) && charged(s), 10, 5000, `store-backed allows from ${t.name} before the fault`);
    faultAt = now();
    await fault();
    healAt = now();
    const offCpuAtHeal = runQueueWaitMs();
    for (const t of targets) {
      const first = await load.waitFor((s) => mine(t)(s) && charged(s) && s.doneAt >= healAt, 5000, `the first store-backed allow from ${t.name} after the heal`);
      recoveredAt[t.name] = first.doneAt;
      recoveryOwnMs[t.name] = first.doneAt - healAt - (first.offCpuAtDone - offCpuAtHeal);
    }
    const settled = Math.max(...Object.values(recoveredAt)) + SETTLE_MS;
    for (const t of targets) await load.waitForCount((s) => mine(t)(s) && s.sentAt > settled, 30, 5000, `answers from ${t.name} after the recovery`);
  } finally {
    await load.stop();
  }
  return { samples: load.samples, window: { faultAt, healAt, recoveredAt, recoveryOwnMs } };
}

const fmt = (ms: number): string => `${ms >= 0 ? '+' : ''}${ms.toFixed(0)}`;
