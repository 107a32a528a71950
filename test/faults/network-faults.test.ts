// Fault tests on the network between keygate and Redis, through the loopback fault proxy
// (test/helpers/fault-proxy.ts) under steady load: a silent partition (blackhole) that heals, one
// that outlives the connections (blackhole, then reset), connections reset and refused, and a
// slow link (300 ms each way). Same two keygates and the same checks as the process faults: no
// Check past 150 ms + 100 ms, answers as the failure policy says, recovery within 1 s of the heal.
import type Redis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { startRedis, type RedisServer } from '../helpers/redis';
import { policyViolations, runFault, sleep, summarize } from './load';
import { POLICIES, startFaultWorld, type FaultWorld } from './setup';

const RECOVERY_MS = 1000;

let redis: RedisServer;
let admin: Redis;
let proxy: FaultProxy;
let world: FaultWorld;

beforeAll(async () => {
  redis = await startRedis();
  admin = redis.client();
  proxy = await startFaultProxy({ port: redis.port });
  world = await startFaultWorld(admin, proxy.url);
});

afterAll(async () => {
  await world?.close();
  await proxy?.close();
  await redis?.close();
});

async function underLoad(name: string, fault: () => Promise<void>): Promise<void> {
  const run = await runFault(world.targets, fault);
  for (const t of world.targets) console.log(summarize(t.name, name, run.samples, run.window));
  expect(policyViolations(run.samples, run.window, POLICIES).slice(0, 10)).toEqual([]);
  for (const t of world.targets) expect(run.window.recoveryOwnMs[t.name], `${t.name} recovery`).toBeLessThanOrEqual(RECOVERY_MS);
}

describe('network faults between keygate and Redis under steady load', () => {
  it('blackhole for 2 s, then pass (the partition heals; TCP delivers what was held)', async () => {
    await underLoad('proxy blackhole 2 s', async () => {
      proxy.blackhole();
      await sleep(2000);
      proxy.pass();
    });
    expect(proxy.mode()).toEqual({ kind: 'pass' });
  });

  it('blackhole for 2 s that outlives the connections (reset, then pass)', async () => {
    await underLoad('proxy blackhole 2 s + reset', async () => {
      proxy.blackhole();
      await sleep(2000);
      proxy.reset();
      proxy.pass();
    });
  });

  it('reset for 2 s: open connections reset, new ones refused', async () => {
    const before = proxy.stats();
    await underLoad('proxy reset 2 s', async () => {
      proxy.reset();
      await sleep(2000);
      proxy.pass();
    });
    const after = proxy.stats();
    // keygate kept trying to reconnect (and was refused) while the fault lasted
    expect(after.reset - before.reset).toBeGreaterThan(before.open);
  });

  it('delay of 300 ms each way for 2 s (every store round trip exceeds the budget)', async () => {
    await underLoad('proxy delay 300 ms, 2 s', async () => {
      proxy.delay(300);
      await sleep(2000);
      proxy.pass();
    });
  });
});
