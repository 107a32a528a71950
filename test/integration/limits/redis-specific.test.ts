// What only the Redis limiter can show: the exact keys and TTLs it writes, one EVALSHA per
// charge, charge.lua agreeing with its TypeScript mirror, and exact counts when two separate
// processes charge one quota (and one credit balance) concurrently.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type Redis from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EXPIRY_SLACK_MS } from '../../../src/limits/charge-call';
import { MemoryLimiter } from '../../../src/limits/memory-limiter';
import { DAY_MS, parseLimit } from '../../../src/limits/plans';
import { chargeLuaScript, RedisLimiter } from '../../../src/limits/redis-limiter';
import type { ChargeRequest, Limit } from '../../../src/limits/types';
import { startRedis, type RedisServer } from '../../helpers/redis';
import { seededRandom } from '../../shared/limiter-suite';

const repoRoot = resolve(__dirname, '../../..');
const now = Date.parse('2026-03-14T15:09:26.535Z');
const limits = (...texts: string[]): Limit[] => texts.map(parseLimit);

let server: RedisServer;
let client: Redis;

beforeAll(async () => {
  server = await startRedis();
  client = server.client();
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  await client.flushall();
});

/** End (exclusive) of the sliding-window bucket of width w that holds t. */
const bucketEnd = (t: number, w: number) => (Math.floor(t / w) + 1) * w;

/** A sliding-window hash holding one bucket, with its summary field. */
const oneBucket = (index: number, units: number, lastHit: number) => ({ [String(index)]: `${units}:${lastHit}`, sum: `${units}:${index}:${index}` });

/** Every key with its type, value and PTTL. */
async function dump(): Promise<Record<string, { value: unknown; pttl: number }>> {
  const out: Record<string, { value: unknown; pttl: number }> = {};
  for (const key of (await client.keys('*')).sort()) {
    const type = await client.type(key);
    const value = type === 'hash' ? await client.hgetall(key) : await client.get(key);
    out[key] = { value, pttl: await client.pttl(key) };
  }
  return out;
}

/** The Redis Cluster hash tag of a key: the text between the first { and the next }. */
function hashTag(key: string): string | null {
  return /\{([^}]*)\}/.exec(key)?.[1] ?? null;
}

describe('Redis keys and TTLs (fixed clock)', () => {
  it('one charge writes exactly these keys, all under the key id hash tag, each with its TTL', async () => {
    const limiter = new RedisLimiter(client);
    await limiter.setCredits('k1', 10);
    const result = await limiter.charge({
      keyId: 'k1',
      limits: limits('10/s', '100/m', '1000/h', '5000/d', '100000/month'),
      cost: 2,
      now,
      credits: true,
    });
    expect(result).toMatchObject({ allowed: true, credits: 8 });

    const dayEnd = Date.parse('2026-03-15T00:00:00.000Z');
    const expected: Record<string, { value: unknown; ttl: number }> = {
      'kg:{k1}:credits': { value: '8', ttl: -1 },
      'kg:{k1}:q:d:20260314': { value: '2', ttl: dayEnd - now + EXPIRY_SLACK_MS },
      'kg:{k1}:q:month:202603': { value: '2', ttl: Date.parse('2026-04-01T00:00:00.000Z') - now + EXPIRY_SLACK_MS },
      // A bucket hash lives until the end of its newest bucket has left the window.
      // ...and carries the summary field: units stored, lowest and highest bucket index.
      'kg:{k1}:rl:h': { value: oneBucket(Math.floor(now / 60_000), 2, now), ttl: bucketEnd(now, 60_000) - now + 3_600_000 + EXPIRY_SLACK_MS },
      'kg:{k1}:rl:m': { value: oneBucket(Math.floor(now / 1_000), 2, now), ttl: bucketEnd(now, 1_000) - now + 60_000 + EXPIRY_SLACK_MS },
      'kg:{k1}:rl:s': { value: oneBucket(Math.floor(now / 100), 2, now), ttl: bucketEnd(now, 100) - now + 1_000 + EXPIRY_SLACK_MS },
      'kg:{k1}:usage:20260314': { value: { allowed: '1' }, ttl: dayEnd + 90 * DAY_MS - now },
    };
    const stored = await dump();
    expect(Object.keys(stored)).toEqual(Object.keys(expected));
    for (const [key, { value, ttl }] of Object.entries(expected)) {
      expect(stored[key].value, key).toEqual(value);
      if (ttl === -1) {
        expect(stored[key].pttl, `${key} never expires: credits do not reset by themselves`).toBe(-1);
      } else {
        // TTLs are relative to the injected clock; Redis counts them down in real time.
        expect(stored[key].pttl, key).toBeLessThanOrEqual(ttl);
        expect(stored[key].pttl, key).toBeGreaterThan(ttl - 5_000);
      }
      expect(hashTag(key)).toBe('k1');
    }
  });

  it('a hit that opens a newer bucket moves the bucket TTL; a hit inside the newest bucket leaves it', async () => {
    const limiter = new RedisLimiter(client);
    const shortened = 5_000;
    await limiter.charge({ keyId: 'k2', limits: limits('10/m'), cost: 1, now });
    await client.pexpire('kg:{k2}:rl:m', shortened);
    await limiter.charge({ keyId: 'k2', limits: limits('10/m'), cost: 1, now: now + 20_000 });
    expect(await client.hgetall('kg:{k2}:rl:m')).toEqual({
      [String(Math.floor(now / 1_000))]: `1:${now}`,
      [String(Math.floor((now + 20_000) / 1_000))]: `1:${now + 20_000}`,
      sum: `2:${Math.floor(now / 1_000)}:${Math.floor((now + 20_000) / 1_000)}`,
    });
    const moved = bucketEnd(now + 20_000, 1_000) - (now + 20_000) + 60_000 + EXPIRY_SLACK_MS;
    expect(await client.pttl('kg:{k2}:rl:m')).toBeLessThanOrEqual(moved);
    expect(await client.pttl('kg:{k2}:rl:m')).toBeGreaterThan(moved - 5_000);
    // 400 ms later, same 1 s bucket: the expiry set when the bucket opened already covers it.
    await client.pexpire('kg:{k2}:rl:m', shortened);
    await limiter.charge({ keyId: 'k2', limits: limits('10/m'), cost: 1, now: now + 20_400 });
    expect(await client.hget('kg:{k2}:rl:m', String(Math.floor((now + 20_000) / 1_000)))).toBe(`2:${now + 20_400}`);
    expect(await client.pttl('kg:{k2}:rl:m')).toBeLessThanOrEqual(shortened);
    // Once the first bucket is stale, the next charge deletes it.
    await limiter.charge({ keyId: 'k2', limits: limits('10/m'), cost: 1, now: now + 60_000 });
    expect(Object.keys(await client.hgetall('kg:{k2}:rl:m')).sort()).toEqual(
      [String(Math.floor((now + 20_000) / 1_000)), String(Math.floor((now + 60_000) / 1_000)), 'sum'].sort(),
    );
  });

  it('calendar counters and the usage hash get their expiry when created, and keep it', async () => {
    const limiter = new RedisLimiter(client);
    const request: ChargeRequest = { keyId: 'k6', limits: limits('50/d', '500/month'), cost: 1, now };
    await limiter.charge(request);
    const keys = ['kg:{k6}:q:d:20260314', 'kg:{k6}:q:month:202603', 'kg:{k6}:usage:20260314'];
    for (const key of keys) await client.pexpire(key, 5_000);
    await limiter.charge({ ...request, now: now + 1_000 });
    await limiter.charge({ ...request, now: now + 2_000, cost: 60 }); // refused: counts denied:quota_exceeded
    expect(await client.get('kg:{k6}:q:d:20260314')).toBe('2');
    expect(await client.hgetall('kg:{k6}:usage:20260314')).toEqual({ allowed: '2', 'denied:quota_exceeded': '1' });
    // The refusal created a usage field: that sets the day's expiry again (the same end).
    const usageTtl = Date.parse('2026-03-15T00:00:00.000Z') + 90 * DAY_MS - (now + 2_000);
    expect(await client.pttl('kg:{k6}:usage:20260314')).toBeGreaterThan(usageTtl - 5_000);
    for (const key of keys.slice(0, 2)) expect(await client.pttl(key), key).toBeLessThanOrEqual(5_000);
  });

  it('every key but the credit balance has a TTL after all kinds of traffic', async () => {
    const limiter = new RedisLimiter(client, { usageRetentionDays: 7 });
    const plan = limits('2/s', '3/m', '4/h', '5/d', '6/month');
    await limiter.setCredits('k3', 4);
    for (let i = 0; i < 10; i++) {
      await limiter.charge({ keyId: 'k3', limits: plan, cost: 1, now: now + i * 300, credits: i % 2 === 0 });
      await limiter.charge({ keyId: 'k4', limits: plan, cost: 2, now: now + i * 300, shadow: true });
    }
    await limiter.recordUsage('k5', 'disabled_api_key', now);
    const stored = await dump();
    expect(Object.keys(stored).length).toBeGreaterThan(10);
    for (const [key, { pttl }] of Object.entries(stored)) {
      if (key.endsWith(':credits')) expect(pttl, key).toBe(-1);
      else expect(pttl, key).toBeGreaterThan(0);
    }
    const usageTtl = Date.parse('2026-03-15T00:00:00.000Z') + 7 * DAY_MS - now;
    expect(stored['kg:{k5}:usage:20260314']).toEqual({ value: { 'denied:disabled_api_key': '1' }, pttl: expect.any(Number) });
    expect(stored['kg:{k5}:usage:20260314'].pttl).toBeLessThanOrEqual(usageTtl);
    expect(stored['kg:{k5}:usage:20260314'].pttl).toBeGreaterThan(usageTtl - 5_000);
  });
});

describe('round trips', () => {
  it('one EVALSHA per charge once the script is loaded, and EVAL only after a SCRIPT FLUSH', async () => {
    const limiter = new RedisLimiter(client);
    const request: ChargeRequest = { keyId: 'rt', limits: limits('100/s', '1000/d'), cost: 1, now, credits: false };
    await client.script('FLUSH');
    await server.resetStats();
    await limiter.charge(request);
    const first = await server.commandStats();
    expect(first.evalsha).toBe(1);
    expect(first.eval).toBe(1); // NOSCRIPT → EVAL loads it

    await server.resetStats();
    for (let i = 0; i < 25; i++) await limiter.charge({ ...request, now: now + i });
    const stats = await server.commandStats();
    expect(stats.evalsha).toBe(25);
    expect(stats.eval).toBeUndefined();
    // Everything else ran inside the script (Redis counts a script's own commands too).
    const insideScript = new Set(['hgetall', 'hget', 'hmget', 'get', 'hset', 'hdel', 'pexpire', 'incrby', 'hincrby', 'decrby', 'set']);
    expect(Object.keys(stats).filter((name) => name !== 'evalsha' && !insideScript.has(name))).toEqual([]);
    expect(stats.hincrby).toBe(25); // the usage counter, once per charge
    // Expiry is set only when it changes: these 25 charges fall in the s-bucket, day counter
    // and usage field the first charge opened, so none of them runs PEXPIRE.
    expect(stats.pexpire).toBeUndefined();
  });

  it("a busy key's charge reads a few buckets, not its whole window (no HGETALL once the hash has its summary)", async () => {
    const limiter = new RedisLimiter(client);
    const plan = limits('100000/m');
    // 60 charges 1 s apart fill 60 buckets of the minute window.
    for (let i = 0; i < 60; i++) await limiter.charge({ keyId: 'busy-m', limits: plan, cost: 1, now: now + i * 1_000 });
    expect(Object.keys(await client.hgetall('kg:{busy-m}:rl:m'))).toHaveLength(60 + 1);
    await server.resetStats();
    let last;
    for (let i = 60; i < 160; i++) last = await limiter.charge({ keyId: 'busy-m', limits: plan, cost: 1, now: now + i * 1_000 });
    const stats = await server.commandStats();
    expect(stats.hgetall).toBeUndefined();
    expect(stats.hmget).toBe(100);
    expect(last?.states[0]).toMatchObject({ remaining: 100_000 - 60 });
  });

  it('a refusal on a full window reads the buckets that must leave, not the whole window', async () => {
    const limiter = new RedisLimiter(client);
    const plan = limits('60/m');
    for (let i = 0; i < 60; i++) expect((await limiter.charge({ keyId: 'over', limits: plan, cost: 1, now: now + i * 1_000 })).allowed).toBe(true);
    await server.resetStats();
    const refused = await limiter.charge({ keyId: 'over', limits: plan, cost: 1, now: now + 59_500 });
    expect(refused).toMatchObject({ allowed: false, reason: 'rate_limited', retryAfterMs: 500 });
    const stats = await server.commandStats();
    expect(stats.hgetall).toBeUndefined();
    expect(stats.hget).toBe(1);
    // A cost of 3 waits for the three oldest hits: three buckets read.
    await server.resetStats();
    expect(await limiter.charge({ keyId: 'over', limits: plan, cost: 3, now: now + 59_500 })).toMatchObject({ allowed: false, retryAfterMs: 2_500 });
    expect((await server.commandStats()).hget).toBe(3);
  });

  it('reads a hash without the summary (as keygate 0.1.0 wrote it) in full once, counts it right and gives it one', async () => {
    const limiter = new RedisLimiter(client);
    const bucket = (t: number) => String(Math.floor(t / 1_000));
    // Three hits as keygate 0.1.0 stored them: one 70 s ago (stale), two within the minute.
    await client.hset('kg:{old}:rl:m', bucket(now - 70_000), `1:${now - 70_000}`, bucket(now - 30_000), `2:${now - 30_000}`, bucket(now - 1_500), `1:${now - 1_500}`);
    await server.resetStats();
    const result = await limiter.charge({ keyId: 'old', limits: limits('10/m'), cost: 1, now });
    expect((await server.commandStats()).hgetall).toBe(1);
    expect(result.states[0]).toMatchObject({ remaining: 10 - 4, resetMs: 30_000 });
    expect(await client.hgetall('kg:{old}:rl:m')).toEqual({
      [bucket(now - 30_000)]: `2:${now - 30_000}`,
      [bucket(now - 1_500)]: `1:${now - 1_500}`,
      [bucket(now)]: `1:${now}`,
      sum: `4:${bucket(now - 30_000)}:${bucket(now)}`,
    });
  });

  it('an idle key whose buckets have all left the window starts afresh', async () => {
    const limiter = new RedisLimiter(client);
    for (let i = 0; i < 3; i++) await limiter.charge({ keyId: 'idle', limits: limits('3/s'), cost: 1, now: now + i });
    expect((await limiter.charge({ keyId: 'idle', limits: limits('3/s'), cost: 1, now: now + 3 })).allowed).toBe(false);
    const later = now + 5_000;
    const result = await limiter.charge({ keyId: 'idle', limits: limits('3/s'), cost: 1, now: later });
    expect(result).toMatchObject({ allowed: true });
    expect(result.states[0]).toMatchObject({ remaining: 2, resetMs: 1_000 });
    expect(await client.hgetall('kg:{idle}:rl:s')).toEqual(oneBucket(Math.floor(later / 100), 1, later));
  });

  it('uses the SHA-1 of lua/charge.lua', async () => {
    const script = chargeLuaScript();
    expect(await client.script('LOAD', script.source)).toBe(script.sha1);
    expect(script.source.startsWith('--[[\ncharge.lua:')).toBe(true);
  });
});

describe('charge.lua and its TypeScript mirror agree', () => {
  it('on a seeded random mix of limits, costs, credits, shadow mode and clock jumps', async () => {
    const redisLimiter = new RedisLimiter(client, { usageRetentionDays: 30 });
    const memoryLimiter = new MemoryLimiter({ usageRetentionDays: 30 });
    const random = seededRandom(20260314);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
    const planChoices = [
      limits('3/s'),
      limits('5/m', '2/s'),
      limits('4/h', '9/d'),
      limits('2/s', '6/m', '20/h', '30/d', '50/month'),
      limits('1/month'),
      [{ count: 2, window: 's' } as Limit, { count: 3, window: 's' } as Limit], // two limits, one counter
      [],
    ];
    const keyIds = ['a', 'b', 'c'];
    for (const keyId of keyIds) {
      await redisLimiter.setCredits(keyId, 40);
      await memoryLimiter.setCredits(keyId, 40);
    }
    // Count the mirror's PEXPIREs, to compare with the ones Redis ran (inside the script too).
    let memoryPexpires = 0;
    const kv = memoryLimiter.store;
    const pexpire = kv.pexpire.bind(kv);
    kv.pexpire = (key: string, ttlMs: number) => {
      memoryPexpires++;
      pexpire(key, ttlMs);
    };
    await server.resetStats();
    const outcomes = new Map<string, number>();
    let t = Date.parse('2027-12-31T23:58:00.000Z');
    for (let step = 0; step < 600; step++) {
      const jump = random();
      t += jump < 0.3 ? 0 : jump < 0.9 ? Math.floor(random() * 400) : jump < 0.98 ? Math.floor(random() * 90_000) : DAY_MS;
      const request: ChargeRequest = {
        keyId: pick(keyIds),
        limits: pick(planChoices),
        cost: random() < 0.7 ? 1 : 1 + Math.floor(random() * 5),
        now: t,
        credits: random() < 0.3,
        shadow: random() < 0.1,
      };
      const fromRedis = await redisLimiter.charge(request);
      const fromMemory = await memoryLimiter.charge(request);
      expect(fromMemory, `step ${step}: ${JSON.stringify(request)}`).toEqual(fromRedis);
      const outcome = fromRedis.wouldDeny ? `would_deny:${fromRedis.wouldDeny}` : (fromRedis.reason ?? 'allowed');
      const by = fromRedis.deniedBy === -1 ? ':credits' : '';
      outcomes.set(outcome + by, (outcomes.get(outcome + by) ?? 0) + 1);
      if (random() < 0.05) {
        await redisLimiter.recordUsage(request.keyId, 'insufficient_scope', t);
        await memoryLimiter.recordUsage(request.keyId, 'insufficient_scope', t);
      }
    }
    // The schedule reached every kind of decision.
    expect([...outcomes.keys()].sort()).toEqual([
      'allowed',
      'quota_exceeded',
      'quota_exceeded:credits',
      'rate_limited',
      'would_deny:quota_exceeded',
      'would_deny:quota_exceeded:credits',
      'would_deny:rate_limited',
    ]);
    // The same counters under the same names (Redis keeps some that the simulated clock expired).
    const stored = await dump();
    const memoryKeys = memoryLimiter.store.at(t).keys().sort();
    expect(memoryKeys.length).toBeGreaterThan(10);
    for (const key of memoryKeys) {
      const kv = memoryLimiter.store;
      const expected = kv.type(key) === 'hash' ? Object.fromEntries(kv.hgetall(key)) : String(kv.get(key));
      expect(stored[key]?.value, key).toEqual(expected);
    }
    for (const keyId of keyIds) {
      expect(await memoryLimiter.readUsage(keyId, '2027-12-31', 3)).toEqual(await redisLimiter.readUsage(keyId, '2027-12-31', 3));
      expect(await memoryLimiter.getCredits(keyId)).toBe(await redisLimiter.getCredits(keyId));
    }
    // Both set expiry under the same conditions (only when it changes), and every counter has one.
    const redisPexpires = (await server.commandStats()).pexpire;
    expect(memoryPexpires).toBe(redisPexpires);
    expect(redisPexpires).toBeLessThan(600);
    for (const key of memoryKeys) if (!key.endsWith(':credits')) expect(kv.at(t).pttl(key), key).toBeGreaterThan(0);
    for (const [key, { pttl }] of Object.entries(stored)) if (!key.endsWith(':credits')) expect(pttl, key).toBeGreaterThan(0);
  });
});

describe('exact under concurrency: two processes, one Redis', () => {
  let buildDir: string;
  let limiterModule: string;

  beforeAll(() => {
    // The children run plain Node: compile the limiter (and only what it imports) for them.
    buildDir = mkdtempSync(join(tmpdir(), 'keygate-limiter-build-'));
    const tsc = spawnSync(
      process.execPath,
      [
        join(repoRoot, 'node_modules/typescript/bin/tsc'),
        '--outDir', buildDir,
        '--rootDir', repoRoot,
        '--module', 'commonjs',
        '--target', 'es2022',
        '--moduleResolution', 'node',
        '--strict',
        '--esModuleInterop',
        '--skipLibCheck',
        '--types', 'node',
        join(repoRoot, 'src/limits/redis-limiter.ts'),
      ],
      { encoding: 'utf8', cwd: repoRoot },
    );
    if (tsc.status !== 0) throw new Error(`tsc failed: ${tsc.stdout}${tsc.stderr}`);
    cpSync(join(repoRoot, 'src/limits/lua'), join(buildDir, 'src/limits/lua'), { recursive: true });
    limiterModule = join(buildDir, 'src/limits/redis-limiter.js');
  }, 60_000);
  afterAll(() => {
    rmSync(buildDir, { recursive: true, force: true });
  });

  /** Starts `processes` workers with `charges` each, releases them together, sums their counts. */
  async function chargeFromProcesses(request: ChargeRequest, processes: number, charges: number) {
    const children: ChildProcess[] = [];
    const outputs: Array<Promise<string>> = [];
    const ready: Array<Promise<void>> = [];
    for (let i = 0; i < processes; i++) {
      const child = spawn(
        process.execPath,
        [join(__dirname, 'charge-worker.js'), limiterModule, server.url, JSON.stringify(request), String(charges), '4'],
        { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] },
      );
      children.push(child);
      let stdout = '';
      let stderr = '';
      child.stderr!.on('data', (chunk) => (stderr += chunk));
      ready.push(
        new Promise((resolveReady, reject) => {
          child.stdout!.on('data', (chunk) => {
            stdout += chunk;
            if (stdout.startsWith('ready\n')) resolveReady();
          });
          child.once('exit', (code) => reject(new Error(`worker exited (${code}) before ready: ${stderr}`)));
        }),
      );
      outputs.push(
        new Promise((resolveOutput, reject) => {
          child.once('exit', (code) =>
            code === 0 ? resolveOutput(stdout.slice('ready\n'.length)) : reject(new Error(`worker failed (${code}): ${stderr}`)),
          );
        }),
      );
    }
    try {
      await Promise.all(ready);
      for (const child of children) child.stdin!.end('go\n');
      const results = (await Promise.all(outputs)).map((line) => JSON.parse(line) as { allowed: number; denied: number });
      return {
        allowed: results.reduce((sum, r) => sum + r.allowed, 0),
        denied: results.reduce((sum, r) => sum + r.denied, 0),
        perProcess: results,
      };
    } finally {
      for (const child of children) if (child.exitCode === null) child.kill();
    }
  }

  it('500 concurrent charges against 137/d: exactly 137 allowed, 363 denied', async () => {
    const request: ChargeRequest = { keyId: 'busy', limits: limits('137/d'), cost: 1, now };
    const totals = await chargeFromProcesses(request, 2, 250);
    expect({ allowed: totals.allowed, denied: totals.denied }).toEqual({ allowed: 137, denied: 363 });
    // Both processes really took part.
    for (const result of totals.perProcess) expect(result.allowed + result.denied).toBe(250);
    expect(await client.get('kg:{busy}:q:d:20260314')).toBe('137');
    expect(await client.hgetall('kg:{busy}:usage:20260314')).toEqual({ allowed: '137', 'denied:quota_exceeded': '363' });
  }, 60_000);

  it('500 concurrent charges against 137 credits: exactly 137 allowed, 363 denied, balance 0', async () => {
    await new RedisLimiter(client).setCredits('prepaid', 137);
    const request: ChargeRequest = { keyId: 'prepaid', limits: [], cost: 1, now, credits: true };
    const totals = await chargeFromProcesses(request, 2, 250);
    expect({ allowed: totals.allowed, denied: totals.denied }).toEqual({ allowed: 137, denied: 363 });
    expect(await client.get('kg:{prepaid}:credits')).toBe('0');
  }, 60_000);
});
