// Shared by the topology tests: keygate-admin in-process against a REDIS_URL, a steady bounded
// Check load with every outcome and latency recorded, and the failover measurements
// (error window, slowest Check, quota drift).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { runCli } from '../../src/admin/cli';
import { limitKey, usageKey } from '../../src/limits/charge-call';
import type { Limit } from '../../src/limits/types';
import type { RedisClient } from '../../src/redis';
import { checkRequest, type TestKeygate } from '../helpers/keygate';
import { sleep } from '../helpers/redis-topology';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** keygate-admin ARGS with the given environment (REDIS_URL …), in-process. */
export async function admin(env: Record<string, string>, ...args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env,
  });
  return { code, stdout, stderr };
}

/** keygate-admin ARGS that must succeed; returns its stdout. */
export async function adminOk(env: Record<string, string>, ...args: string[]): Promise<string> {
  const run = await admin(env, ...args);
  if (run.code !== 0) throw new Error(`keygate-admin ${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return run.stdout;
}

export type Outcome = 'allow' | `deny:${string}` | `error:${number}`;

export interface CheckSample {
  start: number;
  end: number;
  outcome: Outcome;
}

type Msg = Record<string, any>;

/** One Check with the key; its outcome as a short string. */
export async function checkOnce(kg: TestKeygate, key: string): Promise<Outcome> {
  try {
    const res = (await kg.check(checkRequest({ headers: { 'x-api-key': key } }))) as Msg;
    if (res.http_response === 'ok_response') return 'allow';
    return `deny:${JSON.parse(res.denied_response.body).error.code as string}`;
  } catch (err) {
    return `error:${(err as { code?: number }).code ?? -1}`;
  }
}

/**
 * A steady, bounded load: `workers` loops, each sending one Check at a time with a pause between
 * them (so at most `workers` Checks are in flight), recording start, end and outcome.
 */
export class SteadyLoad {
  readonly samples: CheckSample[] = [];
  private running = false;
  private loops: Promise<void>[] = [];

  constructor(
    private readonly kg: TestKeygate,
    private readonly key: string,
    private readonly opts: { workers?: number; pauseMs?: number } = {},
  ) {}

  start(): void {
    this.running = true;
    for (let w = 0; w < (this.opts.workers ?? 4); w++) {
      this.loops.push(
        (async () => {
          while (this.running) {
            const start = performance.now();
            const outcome = await checkOnce(this.kg, this.key);
            this.samples.push({ start, end: performance.now(), outcome });
            await sleep(this.opts.pauseMs ?? 5);
          }
        })(),
      );
    }
  }

  /** Resolves once at least one Check that started after `since` (performance.now()) was allowed. */
  async firstAllowedAfter(since: number, timeoutMs: number): Promise<CheckSample> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const hit = this.samples.find((s) => s.start > since && s.outcome === 'allow');
      if (hit) return hit;
      if (performance.now() > deadline) throw new Error(`no Check was allowed within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  async stop(): Promise<CheckSample[]> {
    this.running = false;
    await Promise.all(this.loops);
    return this.samples;
  }
}

export interface FailoverReport {
  checks: number;
  allowed: number;
  denied: number;
  errors: number;
  /** outcomes other than allow, by outcome */
  failures: Record<string, number>;
  /** slowest Check, ms */
  maxLatencyMs: number;
  /** first failed Check after the kill → ms after the kill it started */
  firstErrorAfterKillMs: number | null;
  /** ms from the kill to the end of the first allowed Check that started after the first failure */
  errorWindowMs: number;
  /** failed Checks that started after that first recovery */
  errorsAfterRecovery: number;
  /** outcome changes after the kill, as "<ms after the kill> <outcome>" (for diagnosis) */
  timeline: string[];
}

export function analyse(samples: CheckSample[], killedAt: number): FailoverReport {
  const failures: Record<string, number> = {};
  for (const s of samples) if (s.outcome !== 'allow') failures[s.outcome] = (failures[s.outcome] ?? 0) + 1;
  const sorted = [...samples].sort((a, b) => a.start - b.start);
  const firstError = sorted.find((s) => s.start >= killedAt && s.outcome !== 'allow');
  const recovery = firstError ? sorted.find((s) => s.start > firstError.start && s.outcome === 'allow') : undefined;
  return {
    checks: samples.length,
    allowed: samples.filter((s) => s.outcome === 'allow').length,
    denied: samples.filter((s) => s.outcome.startsWith('deny:')).length,
    errors: samples.filter((s) => s.outcome.startsWith('error:')).length,
    failures,
    maxLatencyMs: Math.round(Math.max(0, ...samples.map((s) => s.end - s.start))),
    firstErrorAfterKillMs: firstError ? Math.round(firstError.start - killedAt) : null,
    errorWindowMs: recovery ? Math.round(recovery.end - killedAt) : firstError ? Infinity : 0,
    errorsAfterRecovery: recovery ? sorted.filter((s) => s.start > recovery.end && s.outcome !== 'allow').length : 0,
    timeline: transitions(sorted.filter((s) => s.start >= killedAt), killedAt),
  };
}

function transitions(samples: CheckSample[], since: number): string[] {
  const out: string[] = [];
  let last: Outcome | undefined;
  for (const s of samples) {
    if (s.outcome !== last) out.push(`${Math.round(s.start - since)} ${s.outcome}`);
    last = s.outcome;
  }
  return out.slice(0, 20);
}

/**
 * Units charged to a key's daily quota and its `allowed` usage count, as stored in Redis now
 * (summed over the UTC days between `from` and `to`, in case the test ran across midnight).
 */
export async function storedCounts(client: RedisClient, keyId: string, limit: Limit, from: number, to: number): Promise<{ quota: number; usageAllowed: number }> {
  let quota = 0;
  let usageAllowed = 0;
  for (const key of new Set([limitKey(keyId, limit, from), limitKey(keyId, limit, to)])) quota += Number((await client.get(key)) ?? 0);
  for (const key of new Set([usageKey(keyId, from), usageKey(keyId, to)])) usageAllowed += Number((await client.hget(key, 'allowed')) ?? 0);
  return { quota, usageAllowed };
}

/** Samples keygate's readiness every `everyMs` until stopped: how long it was not ready, and why. */
export function trackReadiness(kg: TestKeygate, everyMs = 50): { stop(): { notReadyMs: number; problems: string[] } } {
  let notReadyMs = 0;
  const problems = new Set<string>();
  const timer = setInterval(() => {
    const problem = kg.health.problem;
    if (problem !== null) {
      notReadyMs += everyMs;
      problems.add(problem);
    }
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return { notReadyMs, problems: [...problems] };
    },
  };
}

/** Calls of one command on one node since its start (INFO commandstats). */
export async function commandCalls(client: { info(section: string): Promise<string> }, command: string): Promise<number> {
  const m = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, 'm').exec(await client.info('commandstats'));
  return m ? Number(m[1]) : 0;
}

export interface FailoverMeasurement extends FailoverReport {
  /** ms keygate reported not ready during the run, and the reasons */
  notReadyMs: number;
  problems: string[];
  /** longest event-loop stall of this process (keygate and the load share it) during the run, ms */
  eventLoopDelayMaxMs: number;
  /** Checks slower than 250 ms */
  slowChecks: number;
}

/**
 * Runs a steady load, triggers `failover` after `warmupMs`, waits (bounded by `maxWindowMs`) for a
 * Check that started after the trigger to be allowed, lets the load run `settleMs` more, and
 * returns the analysis (times relative to the trigger).
 */
export async function measureFailover(
  kg: TestKeygate,
  key: string,
  failover: () => Promise<void>,
  opts: { maxWindowMs: number; warmupMs?: number; settleMs?: number },
): Promise<FailoverMeasurement> {
  const load = new SteadyLoad(kg, key, { workers: 4, pauseMs: 5 });
  const readiness = trackReadiness(kg);
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  load.start();
  try {
    await sleep(opts.warmupMs ?? 1000);
    const triggeredAt = performance.now();
    await failover();
    await load.firstAllowedAfter(triggeredAt + 50, opts.maxWindowMs);
    await sleep(opts.settleMs ?? 2000);
    const samples = await load.stop();
    return {
      ...analyse(samples, triggeredAt),
      ...readiness.stop(),
      eventLoopDelayMaxMs: Math.round(loopDelay.max / 1e6),
      slowChecks: samples.filter((s) => s.end - s.start > 250).length,
    };
  } finally {
    loopDelay.disable();
    await load.stop();
    readiness.stop();
  }
}

/** One Check that must be allowed; on failure the message carries keygate's `check failed` log lines. */
export async function expectAllowed(kg: TestKeygate, key: string): Promise<void> {
  const outcome = await checkOnce(kg, key);
  if (outcome !== 'allow') {
    const failed = kg.logs.filter((l) => l.includes('check failed') || l.includes('not ready')).slice(-3);
    throw new Error(`expected the Check to be allowed, got ${outcome}; keygate logged: ${failed.join(' | ') || '(nothing)'}`);
  }
}
