// keygate and keygate-admin on a real 6-node Redis Cluster (3 primaries, 3 replicas, loopback):
// keys and plans made with keygate-admin (REDIS_URL=redis+cluster://…), Checks allowed and
// counted, the charge script's NOSCRIPT fallback and readiness loading on every primary; then,
// under steady load, (1) a SIGKILL of the primary that owns the key's slot — Checks come back once
// its replica took over — and (2) a coordinated CLUSTER FAILOVER back to the restarted node. No
// Check outlives its deadline; the error window and quota drift of each are measured and printed
// (TOPOLOGY-MEASUREMENT lines).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from 'ioredis';
import { keyTag } from '../../src/limits/charge-call';
import { chargeLuaScript } from '../../src/limits/redis-limiter';
import type { Limit } from '../../src/limits/types';
import { createRedisClient, type RedisClient } from '../../src/redis';
import { startTestKeygate, type TestKeygate } from '../helpers/keygate';
import { startRedisCluster, waitFor, type RedisClusterTopology } from '../helpers/redis-topology';
import { adminOk, checkOnce, expectAllowed, commandCalls, measureFailover, storedCounts, type FailoverMeasurement } from './support';

const CHECK_TIMEOUT_MS = 150;
/** A Check may take its deadline plus this (gRPC, event loop under load, CI noise). */
const LATENCY_MARGIN_MS = 250;
/** A failover must be over (a Check allowed again) within this long. */
const MAX_ERROR_WINDOW_MS = 15_000;
const DAILY: Limit = { count: 1_000_000, window: 'd' };

let cluster: RedisClusterTopology;
let kg: TestKeygate | undefined;
let reader: RedisClient | undefined;
let env: Record<string, string>;

beforeAll(async () => {
  cluster = await startRedisCluster();
  env = { REDIS_URL: cluster.url };
}, 45_000);

afterAll(async () => {
  await kg?.close();
  reader?.disconnect();
  await cluster?.close();
});

/** Every failure UNAVAILABLE, no Check past its deadline, at most a few failures after the first recovery. */
function expectBoundedFailover(m: FailoverMeasurement): void {
  // A stall of this whole process (measured) delays every timer, keygate's deadline included.
  expect(m.maxLatencyMs).toBeLessThanOrEqual(CHECK_TIMEOUT_MS + LATENCY_MARGIN_MS + m.eventLoopDelayMaxMs);
  expect(Object.keys(m.failures).every((o) => o === 'error:14'), JSON.stringify(m.failures)).toBe(true);
  expect(m.errorWindowMs).toBeLessThan(MAX_ERROR_WINDOW_MS);
  expect(m.errorsAfterRecovery, JSON.stringify(m.timeline)).toBeLessThanOrEqual(10);
}

describe('Redis Cluster', () => {
  it('serves keygate and keygate-admin through redis+cluster://, and keeps Checks working across failovers', async () => {
    // keygate-admin makes the plan and the keys on the cluster
    await adminOk(env, 'plan', 'set', 'gold', '--limit', '1000000/d');
    const created = JSON.parse(await adminOk(env, 'key', 'create', '--owner', 'acme', '--plan', 'gold', '--name', 'cluster test', '--json')) as { id: string; key: string };
    const warmup = JSON.parse(await adminOk(env, 'key', 'create', '--owner', 'other', '--plan', 'gold', '--json')) as { key: string };
    // key list reads records from several slots (no cross-slot pipeline)
    const listed = JSON.parse(await adminOk(env, 'key', 'list', '--json')) as { id: string }[];
    expect(listed.map((k) => k.id)).toContain(created.id);

    kg = await startTestKeygate({ REDIS_URL: cluster.url, KEYGATE_CHECK_TIMEOUT_MS: String(CHECK_TIMEOUT_MS) });
    const app = kg;
    await waitFor('keygate ready', () => app.health.problem === null, 10_000);
    const t0 = Date.now();

    // Checks allowed and counted
    // warm the Check path up (first connections, JIT) with another key, then count ours
    await waitFor('a first allowed Check', async () => (await checkOnce(app, warmup.key)) === 'allow', 5000);
    for (let i = 0; i < 10; i++) await expectAllowed(app, created.key);
    reader = createRedisClient(cluster.url, { failFast: false, commandTimeoutMs: 2000 });
    const counts = () => storedCounts(reader!, created.id, DAILY, t0, Date.now());
    expect(await counts()).toEqual({ quota: 10, usageAllowed: 10 });
    const usage = JSON.parse(await adminOk(env, 'usage', created.id, '--days', '1', '--json')) as { total: { allowed: number } };
    expect(usage.total.allowed).toBe(10);

    // The charge script: readiness loaded it on every primary; after SCRIPT FLUSH everywhere a
    // Check still works (EVALSHA → NOSCRIPT → EVAL, on the slot's own primary), and the next
    // readiness round loads it on every primary again.
    const script = chargeLuaScript();
    const primaries = () => (reader as Cluster).nodes('master');
    await waitFor('the cluster client to know 3 primaries', () => primaries().length === 3, 5000);
    for (const p of primaries()) expect(await p.script('EXISTS', script.sha1)).toEqual([1]);
    const slot = await cluster.keySlot(`${keyTag(created.id)}:credits`);
    const victim = await cluster.primaryForSlot(slot);
    const victimAdmin = victim.client();
    const evalsBefore = await commandCalls(victimAdmin, 'eval');
    for (const p of primaries()) await p.script('FLUSH');
    expect(await checkOnce(app, created.key)).toBe('allow');
    expect(await commandCalls(victimAdmin, 'eval')).toBe(evalsBefore + 1); // the fallback ran on the slot's primary
    await waitFor(
      'the readiness probe to load the script on every primary',
      async () => (await Promise.all(primaries().map((p) => p.script('EXISTS', script.sha1) as Promise<number[]>))).every(([e]) => e === 1),
      5000,
    );
    let allowedSoFar = 11;

    // (1) SIGKILL the primary that owns the key's slot; its replica takes over
    const [replica] = await cluster.replicasOf(victim);
    expect(replica).toBeDefined();
    const killed = await measureFailover(app, created.key, () => victim.kill('SIGKILL'), { maxWindowMs: MAX_ERROR_WINDOW_MS });
    expect((await cluster.primaryForSlot(slot)).port).toBe(replica.port);
    allowedSoFar += killed.allowed;
    const afterKill = await counts();
    console.log(
      `TOPOLOGY-MEASUREMENT ${JSON.stringify({ topology: 'cluster', event: 'SIGKILL of the slot primary (cluster-node-timeout 1000 ms)', ...killed, allowedTotal: allowedSoFar, storedQuota: afterKill.quota, lostIncrements: allowedSoFar - afterKill.quota })}`,
    );
    expectBoundedFailover(killed);
    expect(killed.errors).toBeGreaterThan(0); // the kill was felt
    expect(killed.notReadyMs).toBe(0); // two shards of three still answer: keygate stays ready
    // Counters never run ahead of what was allowed by more than the failed Checks (a charge may
    // have run although its Check failed), and lose at most a handful of increments.
    expect(afterKill.quota).toBeLessThanOrEqual(allowedSoFar + killed.errors);
    expect(allowedSoFar - afterKill.quota).toBeLessThanOrEqual(50);
    expect(afterKill.usageAllowed).toBe(afterKill.quota);

    // (2) The killed node comes back as a replica; a coordinated CLUSTER FAILOVER hands the slot back
    await victim.restart();
    await cluster.waitHealthy(15_000);
    const manual = await measureFailover(
      app,
      created.key,
      async () => {
        await victim.client().cluster('FAILOVER');
        await waitFor('the restarted node to own the slot again', async () => (await cluster.primaryForSlot(slot)).port === victim.port, 10_000, 20);
      },
      { maxWindowMs: MAX_ERROR_WINDOW_MS, settleMs: 1500 },
    );
    const base = afterKill.quota;
    const afterManual = await counts();
    console.log(
      `TOPOLOGY-MEASUREMENT ${JSON.stringify({ topology: 'cluster', event: 'CLUSTER FAILOVER (coordinated)', ...manual, allowedTotal: base + manual.allowed, storedQuota: afterManual.quota, lostIncrements: base + manual.allowed - afterManual.quota })}`,
    );
    expectBoundedFailover(manual);
    expect(afterManual.quota).toBeLessThanOrEqual(base + manual.allowed + manual.errors);
    expect(base + manual.allowed - afterManual.quota).toBe(0); // the replica caught up before taking over

    // keygate-admin still works after the failovers, and a revocation reaches keygate
    const after = JSON.parse(await adminOk(env, 'usage', created.id, '--days', '1', '--json')) as { total: { allowed: number } };
    expect(after.total.allowed).toBe(afterManual.usageAllowed);
    await adminOk(env, 'key', 'revoke', created.id);
    await waitFor('the revoked key to be refused', async () => (await checkOnce(app, created.key)) === 'deny:invalid_api_key', 3000);
  }, 60_000);
});
