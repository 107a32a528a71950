// keygate and keygate-admin through Redis Sentinel (a primary, one replica, 3 sentinels, loopback):
// keys and plans made with keygate-admin (REDIS_URL=redis+sentinel://…/kgmaster), Checks allowed
// and counted; then, under steady load, (1) a SIGKILL of the primary — the sentinels promote the
// replica and keygate finds it — and (2) a manual SENTINEL FAILOVER back to the restarted node,
// whose old primary stays reachable (keygate must notice the switch by itself). No Check outlives
// its deadline; the error window and quota drift of each are measured and printed
// (TOPOLOGY-MEASUREMENT lines).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Limit } from '../../src/limits/types';
import { startTestKeygate, type TestKeygate } from '../helpers/keygate';
import { startRedisSentinel, waitFor, type RedisSentinelTopology } from '../helpers/redis-topology';
import { adminOk, checkOnce, expectAllowed, measureFailover, storedCounts, type FailoverMeasurement } from './support';

const CHECK_TIMEOUT_MS = 150;
const LATENCY_MARGIN_MS = 250;
const MAX_ERROR_WINDOW_MS = 20_000;
const DAILY: Limit = { count: 1_000_000, window: 'd' };

let sentinel: RedisSentinelTopology;
let kg: TestKeygate | undefined;
let env: Record<string, string>;

beforeAll(async () => {
  sentinel = await startRedisSentinel();
  env = { REDIS_URL: sentinel.url };
}, 45_000);

afterAll(async () => {
  await kg?.close();
  await sentinel?.close();
});

function expectBoundedFailover(m: FailoverMeasurement): void {
  // A stall of this whole process (measured) delays every timer, keygate's deadline included.
  expect(m.maxLatencyMs).toBeLessThanOrEqual(CHECK_TIMEOUT_MS + LATENCY_MARGIN_MS + m.eventLoopDelayMaxMs);
  expect(Object.keys(m.failures).every((o) => o === 'error:14'), JSON.stringify(m.failures)).toBe(true);
  expect(m.errorWindowMs).toBeLessThan(MAX_ERROR_WINDOW_MS);
  expect(m.errorsAfterRecovery, JSON.stringify(m.timeline)).toBeLessThanOrEqual(10);
}

describe('Redis Sentinel', () => {
  it('serves keygate and keygate-admin through redis+sentinel://, and keeps Checks working across failovers', async () => {
    await adminOk(env, 'plan', 'set', 'gold', '--limit', '1000000/d');
    const created = JSON.parse(await adminOk(env, 'key', 'create', '--owner', 'acme', '--plan', 'gold', '--json')) as { id: string; key: string };
    const warmup = JSON.parse(await adminOk(env, 'key', 'create', '--owner', 'other', '--plan', 'gold', '--json')) as { key: string };
    const [first, second] = sentinel.servers;
    expect((await sentinel.primary()).port).toBe(first.port);
    // keygate-admin wrote to the primary the sentinels name
    expect(await first.client().exists(`kg:{${created.id}}:key`)).toBe(1);

    kg = await startTestKeygate({ REDIS_URL: sentinel.url, KEYGATE_CHECK_TIMEOUT_MS: String(CHECK_TIMEOUT_MS) });
    const app = kg;
    await waitFor('keygate ready', () => app.health.problem === null, 10_000);
    const t0 = Date.now();
    // warm the Check path up (first connections, JIT) with another key, then count ours
    await waitFor('a first allowed Check', async () => (await checkOnce(app, warmup.key)) === 'allow', 5000);
    for (let i = 0; i < 10; i++) await expectAllowed(app, created.key);
    // counters as stored on the current primary
    const counts = async () => storedCounts((await sentinel.primary()).client(), created.id, DAILY, t0, Date.now());
    expect(await counts()).toEqual({ quota: 10, usageAllowed: 10 });

    // (1) SIGKILL the primary; the sentinels promote the replica
    const killed = await measureFailover(app, created.key, () => first.kill('SIGKILL'), { maxWindowMs: MAX_ERROR_WINDOW_MS });
    expect((await sentinel.primary()).port).toBe(second.port);
    const allowedAfterKill = 10 + killed.allowed;
    const afterKill = await counts();
    console.log(
      `TOPOLOGY-MEASUREMENT ${JSON.stringify({ topology: 'sentinel', event: 'SIGKILL of the primary (down-after-milliseconds 1000)', ...killed, allowedTotal: allowedAfterKill, storedQuota: afterKill.quota, lostIncrements: allowedAfterKill - afterKill.quota })}`,
    );
    expectBoundedFailover(killed);
    expect(killed.errors).toBeGreaterThan(0);
    expect(afterKill.quota).toBeLessThanOrEqual(allowedAfterKill + killed.errors);
    expect(allowedAfterKill - afterKill.quota).toBeLessThanOrEqual(50);
    expect(afterKill.usageAllowed).toBe(afterKill.quota);

    // (2) The old primary comes back as a replica of the new one; a manual SENTINEL FAILOVER
    // promotes it. The primary being replaced stays up and reachable the whole time.
    await first.restart(['--replicaof', '127.0.0.1', String(second.port)]);
    const firstAdmin = first.client();
    await waitFor('the restarted node in sync', async () => /master_link_status:up/.test(await firstAdmin.info('replication')), 10_000);
    const sentinelAdmin = sentinel.sentinels[0].client();
    await waitFor(
      'the sentinels to see the restarted node as a healthy replica',
      async () => {
        const replicas = (await sentinelAdmin.call('SENTINEL', 'REPLICAS', sentinel.masterName)) as string[][];
        return replicas.some((flat) => {
          const m = new Map<string, string>();
          for (let i = 0; i + 1 < flat.length; i += 2) m.set(flat[i], flat[i + 1]);
          return m.get('port') === String(first.port) && m.get('flags') === 'slave' && m.get('master-link-status') === 'ok';
        });
      },
      15_000,
      100,
    );
    const base = afterKill.quota;
    const manual = await measureFailover(
      app,
      created.key,
      async () => {
        await sentinelAdmin.call('SENTINEL', 'FAILOVER', sentinel.masterName);
        await waitFor('the sentinels to name the restarted node', async () => (await sentinel.primaryPort()) === first.port, 15_000, 20);
      },
      { maxWindowMs: MAX_ERROR_WINDOW_MS, settleMs: 1500 },
    );
    const afterManual = await counts();
    console.log(
      `TOPOLOGY-MEASUREMENT ${JSON.stringify({ topology: 'sentinel', event: 'SENTINEL FAILOVER (old primary stays up)', ...manual, allowedTotal: base + manual.allowed, storedQuota: afterManual.quota, lostIncrements: base + manual.allowed - afterManual.quota })}`,
    );
    expectBoundedFailover(manual);
    // keygate charges on the new primary (not on the replaced one)
    await waitFor('a Check counted on the new primary', async () => {
      const before = (await counts()).quota;
      return (await checkOnce(app, created.key)) === 'allow' && (await counts()).quota === before + 1;
    }, 5000);
    expect(afterManual.quota).toBeLessThanOrEqual(base + manual.allowed + manual.errors);

    // keygate-admin after the failovers: reads the current primary, and a revocation reaches keygate
    const usage = JSON.parse(await adminOk(env, 'usage', created.id, '--days', '1', '--json')) as { total: { allowed: number } };
    expect(usage.total.allowed).toBe((await counts()).usageAllowed);
    await adminOk(env, 'key', 'revoke', created.id);
    await waitFor('the revoked key to be refused', async () => (await checkOnce(app, created.key)) === 'deny:invalid_api_key', 3000);
  }, 60_000);
});
