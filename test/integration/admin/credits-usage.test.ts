// keygate-admin key credits / key create --credits / key show, and usage (per key and per owner),
// against a real throw-away Redis. Balances are checked through the RedisLimiter keygate charges
// with (same Redis keys); usage is produced by RedisLimiter.charge and recordUsage with a fixed
// clock, then read back with `usage ... --json` and as the table and chart.
import type Redis from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/admin/cli';
import { ManualClock } from '../../../src/clock';
import { RedisKeyStore } from '../../../src/keys/redis-store';
import { RedisLimiter } from '../../../src/limits/redis-limiter';
import type { Limit, UsageDay } from '../../../src/limits/types';
import { cliAssertions, runAdmin } from '../../helpers/admin-cli';
import { startRedis, type RedisServer } from '../../helpers/redis';

const DAY = 86_400_000;
/** 2026-03-10T12:00:00Z: "today" for the usage tests. */
const T = Date.UTC(2026, 2, 10, 12);

let server: RedisServer;
let redis: Redis;
let limiter: RedisLimiter;
const transcript: string[] = [];
const secrets: string[] = [];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function admin(args: string[], now = T): Promise<Run> {
  const run = await runAdmin(args, { env: { REDIS_URL: server.url }, clock: new ManualClock(now) });
  transcript.push(`$ keygate-admin ${args.join(' ')}\n${run.stdout}${run.stderr}`);
  return run;
}

const { ok, refused } = cliAssertions((args) => admin(args));

async function createKey(owner: string, ...extra: string[]): Promise<{ id: string; creditBalance?: number; credits?: boolean }> {
  const created = JSON.parse(await ok('key', 'create', '--owner', owner, '--plan', 'pro', '--json', ...extra)) as {
    id: string;
    key: string;
    credits?: boolean;
    creditBalance?: number;
  };
  secrets.push(created.key);
  transcript.pop(); // key create prints the secret once, by design; no other command may
  return created;
}

const charge = (keyId: string, now: number, opts: { limits?: Limit[]; credits?: boolean; shadow?: boolean; cost?: number } = {}) =>
  limiter.charge({ keyId, limits: opts.limits ?? [], cost: opts.cost ?? 1, now, credits: opts.credits, shadow: opts.shadow });

beforeAll(async () => {
  server = await startRedis();
  redis = server.client();
  limiter = new RedisLimiter(redis);
});
beforeEach(async () => {
  await redis.flushall();
  await ok('plan', 'set', 'pro', '--limit', '100/s');
});
afterAll(async () => {
  const everything = transcript.join('\n');
  for (const secret of secrets) expect(everything).not.toContain(secret);
  expect(everything).not.toMatch(/[0-9a-f]{64}/i);
  await server.close();
});

describe('credits', () => {
  it('key create --credits N makes a credits key with that balance; key show includes it', async () => {
    const created = await createKey('acme', '--credits', '3');
    expect(created).toMatchObject({ credits: true, creditBalance: 3 });
    expect(await limiter.getCredits(created.id)).toBe(3);
    expect((await new RedisKeyStore(redis, new ManualClock(T)).getKey(created.id))?.credits).toBe(true);

    expect(await ok('key', 'show', created.id)).toMatch(/\ncredits:\s+3 remaining \(requests spend them; they never reset\)\n/);
    expect(JSON.parse(await ok('key', 'show', created.id, '--json'))).toMatchObject({ id: created.id, credits: true, creditBalance: 3 });
    // a key without credits shows no balance
    const plain = await createKey('acme');
    expect(plain.credits).toBeUndefined();
    expect(await ok('key', 'show', plain.id)).not.toMatch(/credits/);

    // --credits 0: a credits key that must be topped up before it passes
    const empty = await createKey('acme', '--credits', '0');
    expect(empty.creditBalance).toBe(0);
    expect(await ok('key', 'show', empty.id)).toMatch(/credits:\s+0 remaining \(none left: requests are denied quota_exceeded/);
    expect((await charge(empty.id, T, { credits: true })).reason).toBe('quota_exceeded');
  });

  it('key credits shows, adds and sets the balance that Checks spend', async () => {
    const { id } = await createKey('acme', '--credits', '3');
    expect(await ok('key', 'credits', id)).toBe(`key ${id}: 3 credits remaining\n`);
    expect(JSON.parse(await ok('key', 'credits', id, '--add', '2', '--json'))).toEqual({ id, credits: true, balance: 5, added: 2 });
    expect(await ok('key', 'credits', id, '--set', '2')).toBe(`key ${id}: 2 credits remaining (was 5)\n`);
    expect(await limiter.getCredits(id)).toBe(2);

    expect((await charge(id, T, { credits: true })).allowed).toBe(true);
    expect((await charge(id, T, { credits: true })).credits).toBe(0);
    const denied = await charge(id, T, { credits: true });
    expect(denied).toMatchObject({ allowed: false, reason: 'quota_exceeded' });
    expect(JSON.parse(await ok('key', 'credits', id, '--json'))).toEqual({ id, credits: true, balance: 0 });
    expect(await ok('key', 'credits', id)).toBe(`key ${id}: 0 credits remaining; requests are denied quota_exceeded until credits are added\n`);
    expect(await ok('key', 'credits', id, '--add', '1')).toBe(`key ${id}: 1 credit remaining (added 1)\n`);
    expect((await charge(id, T, { credits: true })).allowed).toBe(true);
  });

  it('giving credits to a key without them turns it into a credits key (and says so)', async () => {
    const { id } = await createKey('acme');
    expect(await ok('key', 'credits', id)).toMatch(/does not carry credits/);
    expect(JSON.parse(await ok('key', 'credits', id, '--json'))).toEqual({ id, credits: false, balance: null });

    const run = await admin(['key', 'credits', id, '--set', '10']);
    expect(run).toMatchObject({ code: 0, stdout: `key ${id}: 10 credits remaining (was 0)\n` });
    expect(run.stderr).toMatch(/^keygate-admin: key \S+ now carries credits: each request spends its cost/);
    expect((await new RedisKeyStore(redis, new ManualClock(T)).getKey(id))?.credits).toBe(true);
    expect(await limiter.getCredits(id)).toBe(10);
    expect(JSON.parse(await ok('key', 'show', id, '--json'))).toMatchObject({ credits: true, creditBalance: 10 });

    // --add on a key without credits starts from 0, whatever a stale balance says
    const other = await createKey('acme');
    await limiter.setCredits(other.id, 99);
    expect(JSON.parse(await ok('key', 'credits', other.id, '--add', '5', '--json'))).toEqual({
      id: other.id,
      credits: true,
      balance: 5,
      added: 5,
      nowCarriesCredits: true,
    });
  });

  it('refuses unknown and revoked keys, and bad amounts', async () => {
    expect(await refused(['key', 'credits', 'key_nope'])).toBe('keygate-admin: no key key_nope');
    expect(await refused(['key', 'credits', 'key_nope', '--add', '5'])).toBe('keygate-admin: no key key_nope');
    const { id } = await createKey('acme', '--credits', '7');
    await ok('key', 'revoke', id);
    expect(await refused(['key', 'credits', id, '--add', '5'])).toBe(`keygate-admin: key ${id} is revoked; its credits cannot change`);
    expect(await refused(['key', 'credits', id, '--set', '0'])).toBe(`keygate-admin: key ${id} is revoked; its credits cannot change`);
    expect(await limiter.getCredits(id)).toBe(7);
    // reading a revoked key's balance is fine (accounting)
    expect(await ok('key', 'credits', id)).toBe(`key ${id}: 7 credits remaining\n`);

    const live = await createKey('acme', '--credits', '1');
    expect(await refused(['key', 'credits', live.id, '--add', '0'], 2)).toMatch(/--add <n>.*at least 1/);
    expect(await refused(['key', 'credits', live.id, '--set', '-1'], 2)).toMatch(/--set/);
    expect(await refused(['key', 'credits', live.id, '--set', '1.5'], 2)).toMatch(/whole number/);
    expect(await refused(['key', 'credits', live.id, '--add', '1', '--set', '1'], 2)).toBe('keygate-admin: give --add or --set, not both');
    expect(await refused(['key', 'create', '--owner', 'acme', '--plan', 'pro', '--credits', 'lots'], 2)).toMatch(/--credits/);
    expect(await redis.scard('kg:keys')).toBe(2);
    expect(await limiter.getCredits(live.id)).toBe(1);
  });
});

describe('usage', () => {
  const quota: Limit[] = [{ count: 3, window: 'd' }];

  /** Today (T): 5 Checks against 3/d → 3 allowed, 2 quota_exceeded; yesterday: 1 expired_api_key; 3 days ago: 2 allowed. */
  async function produce(id: string): Promise<void> {
    for (let i = 0; i < 5; i++) await charge(id, T + i, { limits: quota });
    await limiter.recordUsage(id, 'expired_api_key', T - DAY);
    await charge(id, T - 3 * DAY, { limits: quota });
    await charge(id, T - 3 * DAY + 1, { limits: quota });
  }

  it('usage ID --json: one row per UTC day ending today, allowed and denied by reason', async () => {
    const { id } = await createKey('acme', '--name', 'web');
    await produce(id);
    // shadow mode: over the quota but let through, counted as allowed and would-deny
    await charge(id, T + 10, { limits: quota, shadow: true });

    const view = JSON.parse(await ok('usage', id, '--json')) as { days: UsageDay[]; from: string; to: string; total: unknown };
    expect(view).toMatchObject({ id, owner: 'acme', plan: 'pro', status: 'active', name: 'web', from: '2026-03-04', to: '2026-03-10' });
    const zero = (day: string): UsageDay => ({ day, allowed: 0, denied: {}, wouldDeny: {} });
    expect(view.days).toEqual([
      zero('2026-03-04'),
      zero('2026-03-05'),
      zero('2026-03-06'),
      { day: '2026-03-07', allowed: 2, denied: {}, wouldDeny: {} },
      zero('2026-03-08'),
      { day: '2026-03-09', allowed: 0, denied: { expired_api_key: 1 }, wouldDeny: {} },
      { day: '2026-03-10', allowed: 4, denied: { quota_exceeded: 2 }, wouldDeny: { quota_exceeded: 1 } },
    ]);
    expect(view.total).toEqual({ allowed: 6, denied: { quota_exceeded: 2, expired_api_key: 1 }, wouldDeny: { quota_exceeded: 1 } });

    // --days N, and "today" follows the clock across midnight UTC
    const three = JSON.parse((await admin(['usage', id, '--days', '3', '--json'], Date.UTC(2026, 2, 10, 23, 59, 59, 999))).stdout) as { days: UsageDay[] };
    expect(three.days.map((d) => d.day)).toEqual(['2026-03-08', '2026-03-09', '2026-03-10']);
    const next = JSON.parse((await admin(['usage', id, '--days', '1', '--json'], Date.UTC(2026, 2, 11))).stdout) as { days: UsageDay[] };
    expect(next.days).toEqual([zero('2026-03-11')]);
  });

  it('usage ID prints a table and a bar chart that fit 80 columns', async () => {
    const { id } = await createKey('acme');
    await produce(id);
    const text = await ok('usage', id);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe(`key ${id} (owner acme, plan pro): 7 days, 2026-03-04 to 2026-03-10 (UTC)`);
    expect(text).toContain(
      [
        'DAY         ALLOWED  DENIED  WOULD DENY  REASONS',
        '2026-03-04        0       0           0',
        '2026-03-05        0       0           0',
        '2026-03-06        0       0           0',
        '2026-03-07        2       0           0',
        '2026-03-08        0       0           0',
        '2026-03-09        0       1           0  expired_api_key 1',
        '2026-03-10        3       2           0  quota_exceeded 2',
        'total             5       3           0  quota_exceeded 2, expired_api_key 1',
      ].join('\n'),
    );
    expect(text).toContain('requests per day (UTC): █ allowed  ░ denied  (longest bar: 5)');
    const today = lines.find((l) => l.startsWith('2026-03-10 │'));
    expect(today).toMatch(/^2026-03-10 │█+░+ +5$/);
    expect([...(today ?? '')].filter((c) => c === '░').length).toBeGreaterThan(0);
    expect(lines.find((l) => l.startsWith('2026-03-09 │'))).toMatch(/^2026-03-09 │░+ +1$/);
    // the chart fits 80 columns (the table's REASONS column is as long as the reasons are)
    const chart = lines.filter((l) => l.includes('│') || l.startsWith('requests per day'));
    expect(chart).toHaveLength(8);
    for (const line of chart) expect([...line].length, line).toBeLessThanOrEqual(80);
  });

  it("usage --owner sums the owner's keys per day and lists each key's totals", async () => {
    const a = await createKey('acme', '--name', 'web');
    const b = await createKey('acme');
    const other = await createKey('globex');
    await produce(a.id);
    for (let i = 0; i < 4; i++) await charge(b.id, T - DAY + i, { limits: quota });
    await limiter.recordUsage(b.id, 'insufficient_scope', T);
    await produce(other.id);
    await ok('key', 'revoke', b.id); // a revoked key keeps its history

    const view = JSON.parse(await ok('usage', '--owner', 'acme', '--days', '3', '--json')) as {
      owner: string;
      days: UsageDay[];
      total: unknown;
      keys: unknown[];
    };
    expect(view).toMatchObject({ owner: 'acme', from: '2026-03-08', to: '2026-03-10' });
    expect(view.days).toEqual([
      { day: '2026-03-08', allowed: 0, denied: {}, wouldDeny: {} },
      { day: '2026-03-09', allowed: 3, denied: { expired_api_key: 1, quota_exceeded: 1 }, wouldDeny: {} },
      { day: '2026-03-10', allowed: 3, denied: { quota_exceeded: 2, insufficient_scope: 1 }, wouldDeny: {} },
    ]);
    expect(view.total).toEqual({ allowed: 6, denied: { quota_exceeded: 3, expired_api_key: 1, insufficient_scope: 1 }, wouldDeny: {} });
    // busiest key first (a: 6 requests, b: 5)
    expect(view.keys).toEqual([
      { id: a.id, name: 'web', plan: 'pro', status: 'active', total: { allowed: 3, denied: { quota_exceeded: 2, expired_api_key: 1 }, wouldDeny: {} } },
      { id: b.id, plan: 'pro', status: 'revoked', total: { allowed: 3, denied: { insufficient_scope: 1, quota_exceeded: 1 }, wouldDeny: {} } },
    ]);

    const text = await ok('usage', '--owner', 'acme', '--days', '3');
    expect(text.split('\n')[0]).toBe('owner acme, 2 keys: 3 days, 2026-03-08 to 2026-03-10 (UTC)');
    expect(text).toMatch(/\ntotal\s+6\s+5\s+0\s+quota_exceeded 3, expired_api_key 1, insufficient_scope 1\n/);
    expect(text).toContain('\nper key:\nKEY');
    expect(text).toMatch(new RegExp(`\\n${b.id}\\s+-\\s+revoked\\s+3\\s+2\\s+0\\n`));
    expect(text).toMatch(new RegExp(`\\n${a.id}\\s+web\\s+active\\s+3\\s+3\\s+0\\n`));
    const chart = text.split('\n').filter((l) => l.includes('│') || l.startsWith('requests per day'));
    expect(chart).toHaveLength(4);
    for (const line of chart) expect([...line].length, line).toBeLessThanOrEqual(80);
    expect(text.indexOf(`\n${a.id}`)).toBeLessThan(text.indexOf(`\n${b.id}`));
  });

  it('refuses unknown keys and owners, and bad arguments', async () => {
    expect(await refused(['usage', 'key_nope'])).toBe('keygate-admin: no key key_nope');
    expect(await refused(['usage', '--owner', 'nobody'])).toBe('keygate-admin: owner nobody has no keys');
    expect(await refused(['usage'], 2)).toBe('keygate-admin: give a key id or --owner OWNER (one of them)');
    const { id } = await createKey('acme');
    expect(await refused(['usage', id, '--owner', 'acme'], 2)).toBe('keygate-admin: give a key id or --owner OWNER (one of them)');
    for (const days of ['0', '3661', '1.5', 'week']) expect(await refused(['usage', id, '--days', days], 2)).toMatch(/--days/);
    // the longest span (ten years, the retention maximum) works
    const longest = JSON.parse(await ok('usage', id, '--days', '3660', '--json')) as { days: UsageDay[]; from: string };
    expect(longest.days).toHaveLength(3660);
    expect(longest.days[3659].day).toBe('2026-03-10');
  });

  it('exits 3 with one line when Redis cannot be reached', async () => {
    let stderr = '';
    const code = await runCli(['usage', 'key_x'], {
      stdout: { write: () => {} },
      stderr: { write: (t: string) => (stderr += t) },
      env: { REDIS_URL: `redis://127.0.0.1:${server.port === 1 ? 2 : 1}` },
    });
    expect(code).toBe(3);
    expect(stderr).toMatch(/^keygate-admin: cannot reach Redis at 127\.0\.0\.1:\d+: [^\n]+\n$/);
  });
});
