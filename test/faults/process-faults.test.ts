// Fault tests on a real redis-server process under steady load: SIGKILL for 2 s and for 20 s
// (then a restart on the same port: data kept by the AOF, script cache empty), an immediate
// restart, SIGSTOP/SIGCONT, DEBUG SLEEP, CLIENT PAUSE and SCRIPT FLUSH, with the two keygates of
// ./setup.ts (strict: default policy; lenient: quota allow, 3 s stale bound) connected directly.
// In each fault: no Check takes longer than the 150 ms deadline + 100 ms, every answer follows
// the failure policy (policyViolations in ./load.ts), and each keygate's first store-backed allow
// comes within 1 s of the heal (Redis answering again).
import type Redis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../helpers/redis';
import { charged, now, policyViolations, ranOutOfBudget, runFault, sleep, summarize, type FaultRun } from './load';
import { POLICIES, startFaultWorld, type FaultWorld } from './setup';

/** recovery bound: first store-backed allow after the heal */
const RECOVERY_MS = 1000;

let redis: RedisServer;
let admin: Redis;
let world: FaultWorld;

beforeAll(async () => {
  // AOF with fsync always: keys survive SIGKILL, as in a production Redis with persistence.
  // Scripts are never persisted: every restart comes back with an empty script cache.
  redis = await startRedis(['--appendonly', 'yes', '--appendfsync', 'always', '--enable-debug-command', 'yes']);
  admin = redis.client();
  world = await startFaultWorld(admin, redis.url);
});

afterAll(async () => {
  await world?.close();
  // A test that failed half-way may leave Redis stopped.
  const child = redis?.process();
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGCONT');
  await redis?.close();
});

/** Runs the fault under load and checks the outcome; returns the run for extra assertions. */
async function underLoad(name: string, fault: () => Promise<void>, maxMs = 20_000): Promise<FaultRun> {
  const run = await runFault(world.targets, fault, { maxMs });
  for (const t of world.targets) console.log(summarize(t.name, name, run.samples, run.window));
  expect(policyViolations(run.samples, run.window, POLICIES).slice(0, 10)).toEqual([]);
  for (const t of world.targets) expect(run.window.recoveryOwnMs[t.name], `${t.name} recovery`).toBeLessThanOrEqual(RECOVERY_MS);
  return run;
}

const killFor = (ms: number) => async () => {
  await redis.stop();
  await sleep(ms);
  await redis.restart(); // resolves when the new process answers PING
};

describe('Redis process faults under steady load', () => {
  it('SCRIPT FLUSH: every Check still answered from the store (EVALSHA → NOSCRIPT → EVAL)', async () => {
    const run = await underLoad('SCRIPT FLUSH', async () => {
      await admin.script('FLUSH');
    });
    const after = run.samples.filter((s) => s.sentAt >= run.window.faultAt && s.key === 'known');
    expect(after.length).toBeGreaterThan(0);
    expect(after.filter((s) => !charged(s) && !ranOutOfBudget(s))).toEqual([]);
  });

  it('restart (SIGKILL, then at once on the same port): empty script cache, data from the AOF', async () => {
    await underLoad('restart (empty script cache)', killFor(0));
  });

  it('SIGKILL for 2 s', async () => {
    await underLoad('SIGKILL 2 s', killFor(2000));
  });

  it('SIGSTOP for 2 s, then SIGCONT', async () => {
    await underLoad('SIGSTOP 2 s', async () => {
      redis.process().kill('SIGSTOP');
      await sleep(2000);
      redis.process().kill('SIGCONT');
    });
  });

  it('DEBUG SLEEP 2', async () => {
    const sleeper = redis.client();
    await underLoad('DEBUG SLEEP 2', async () => {
      await sleeper.call('DEBUG', 'SLEEP', '2'); // resolves when Redis wakes up
    });
    sleeper.disconnect();
  });

  it('CLIENT PAUSE 2000', async () => {
    await underLoad('CLIENT PAUSE 2000', async () => {
      const started = now();
      await admin.call('CLIENT', 'PAUSE', '2000', 'ALL');
      await sleep(2000 - (now() - started)); // the pause ends 2000 ms after Redis took the command
    });
  });

  it('SIGKILL for 20 s: lenient serves the cached key unchecked for TTL + stale bound, then UNAVAILABLE like strict', async () => {
    const run = await underLoad('SIGKILL 20 s', killFor(20_000), 40_000);
    const { faultAt, healAt } = run.window;
    const during = (target: string) => run.samples.filter((s) => s.target === target && s.key === 'known' && s.sentAt > faultAt && s.doneAt < healAt);
    // Within the first 900 ms (record still fresh): lenient allows, uncharged; strict never allows.
    expect(during('lenient').filter((s) => s.sentAt < faultAt + 900 && s.verdict.kind === 'allow' && s.verdict.unchecked).length).toBeGreaterThan(10);
    expect(during('strict').filter((s) => s.verdict.kind !== 'unavailable')).toEqual([]);
    // Past TTL + stale bound (4 s after the last refresh; 5 s with slack): UNAVAILABLE only.
    const late = during('lenient').filter((s) => s.sentAt > faultAt + 5000);
    expect(late.length).toBeGreaterThan(100);
    expect(late.filter((s) => s.verdict.kind !== 'unavailable')).toEqual([]);
  }, 60_000);
});
