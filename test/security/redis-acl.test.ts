// keygate and keygate-admin under Redis ACL users allowed only what they need, with the default
// user disabled. The keygate user may read key records, digests and plans but write only the
// limiter's counters (so a compromised keygate cannot mint, restore or re-plan a key), may run
// only the commands of the Check path, and may only SUBSCRIBE to the invalidation channel.
// The whole Check path runs under it — allowed, every kind of denial that touches Redis
// (usage counters), rate limits, credits, shadow plans, revocation through pub/sub, a flushed
// script cache (EVALSHA → NOSCRIPT → EVAL, then SCRIPT EXISTS / LOAD by the readiness probe) —
// and Redis's ACL LOG must stay empty: nothing keygate or keygate-admin sent was refused.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/admin/cli';
import { generateKey } from '../../src/keys/format';
import { checkRequest, headerMap, startTestKeygate, type TestKeygate } from '../helpers/keygate';
import { httpGet } from '../helpers/keygate-process';
import { startRedis, type RedisServer } from '../helpers/redis';

/**
 * The documented ACL rules for keygate (README "Security"), as ACL SETUSER arguments after the
 * user name and password. Keys: read the digest index, key records and plans; read and write
 * the limiter's counters, credits and usage; nothing else.
 */
const KEYGATE_ACL_RULES = [
  'resetkeys', '%R~kg:digest:{*}', '%R~kg:{*}:key', '%R~kg:plan:{*}',
  '~kg:{*}:rl:*', '~kg:{*}:q:*', '~kg:{*}:credits', '~kg:{*}:usage:*',
  'resetchannels', '&kg:invalidate',
  '-@all',
  // the Check path: key and plan lookups, the charge script, usage of denials, readiness, invalidations
  '+get', '+evalsha', '+eval', '+multi', '+exec', '+hincrby', '+pexpire',
  '+ping', '+script|exists', '+script|load', '+subscribe',
  // what charge.lua calls (scripts run with the caller's permissions)
  '+hgetall', '+hget', '+hmget', '+hset', '+hdel', '+incrby', '+decrby', '+set',
  // ioredis on connect: the ready check
  '+info',
];

/** The documented ACL rules for keygate-admin: every kg:* key, publishing invalidations. */
const ADMIN_ACL_RULES = [
  'resetkeys', '~kg:*',
  'resetchannels', '&kg:invalidate',
  '-@all',
  '+get', '+set', '+del', '+exists', '+sadd', '+srem', '+smembers', '+hgetall', '+hset', '+incrby', '+publish',
  // bulk imports: many records and digests per round trip (EVAL runs HSET into many hashes)
  '+mget', '+mset', '+eval',
  '+ping', '+info',
];

/**
 * Redis 7.2 and later: ioredis also sends CLIENT SETINFO on connect. It ignores a refusal, but
 * every refusal is an ACL LOG entry, so both lines allow it there (Redis 7.0 has no such command).
 */
const SETINFO_RULE = '+client|setinfo';

const KEYGATE_PASSWORD = `kgpw-${randomBytes(12).toString('hex')}`;
const ADMIN_PASSWORD = `adpw-${randomBytes(12).toString('hex')}`;

let redis: RedisServer;
let ops: Redis;
let kg: TestKeygate;
let dir: string;
let keygateUrl: string;
let adminUrl: string;
const outputs: string[] = [];

async function admin(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env: { REDIS_URL: adminUrl },
  });
  outputs.push(stdout + stderr);
  return { code, stdout, stderr };
}

async function ok(...args: string[]): Promise<string> {
  const r = await admin(...args);
  expect(r.code, `keygate-admin ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

async function createKey(...extra: string[]): Promise<{ id: string; key: string }> {
  return JSON.parse(await ok('key', 'create', '--owner', 'acme', '--json', ...extra)) as { id: string; key: string };
}

type Msg = Record<string, any>;
async function verdict(key: string | undefined, parts: { path?: string; source?: string; ext?: Record<string, string> } = {}): Promise<string> {
  const headers: Record<string, string> = key === undefined ? {} : { 'x-api-key': key };
  const res = (await kg.check(checkRequest({ headers, path: parts.path, source: parts.source, contextExtensions: parts.ext }))) as Msg;
  return res.http_response === 'ok_response' ? 'allow' : (JSON.parse(res.denied_response.body).error.code as string);
}

async function aclLog(): Promise<string[]> {
  const entries = (await ops.call('ACL', 'LOG')) as unknown[][];
  return entries.map((e) => {
    const fields: Record<string, unknown> = {};
    for (let i = 0; i + 1 < e.length; i += 2) fields[String(e[i])] = e[i + 1];
    return `${String(fields.username)}: ${String(fields.reason)} ${String(fields.object)} (${String(fields.context)})`;
  });
}

async function pollUntil<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keygate-acl-'));
  redis = await startRedis();
  const root = redis.client();
  const version = /redis_version:(\d+)\.(\d+)/.exec(await root.info('server'));
  const extra = version && Number(version[1]) * 100 + Number(version[2]) >= 702 ? [SETINFO_RULE] : [];
  await root.call('ACL', 'SETUSER', 'keygate', 'reset', 'on', `>${KEYGATE_PASSWORD}`, ...KEYGATE_ACL_RULES, ...extra);
  await root.call('ACL', 'SETUSER', 'keygate-admin', 'reset', 'on', `>${ADMIN_PASSWORD}`, ...ADMIN_ACL_RULES, ...extra);
  await root.call('ACL', 'SETUSER', 'ops', 'reset', 'on', '>ops-password', '~*', '&*', '+@all');
  await root.call('ACL', 'SETUSER', 'default', 'off');
  ops = new Redis({ port: redis.port, host: '127.0.0.1', username: 'ops', password: 'ops-password', maxRetriesPerRequest: 1 });
  await ops.call('ACL', 'LOG', 'RESET');
  keygateUrl = `redis://keygate:${KEYGATE_PASSWORD}@127.0.0.1:${redis.port}`;
  adminUrl = `redis://keygate-admin:${ADMIN_PASSWORD}@127.0.0.1:${redis.port}`;
  // a long cache TTL: a revocation can only arrive in time through SUBSCRIBE
  kg = await startTestKeygate({ REDIS_URL: keygateUrl, KEYGATE_CACHE_TTL_MS: '60000', KEYGATE_NEGATIVE_CACHE_TTL_MS: '0' });
});

afterAll(async () => {
  await kg?.close();
  ops?.disconnect();
  await redis?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Redis with the default user disabled', () => {
  it('refuses a connection without credentials', async () => {
    const anonymous = new Redis({ port: redis.port, host: '127.0.0.1', maxRetriesPerRequest: 0, enableReadyCheck: false, lazyConnect: true, retryStrategy: () => null });
    anonymous.on('error', () => {});
    try {
      await anonymous.connect().catch(() => undefined);
      await expect(anonymous.call('PING')).rejects.toThrow(/NOAUTH|WRONGPASS|Connection is closed/);
      await expect(anonymous.call('AUTH', 'default', '')).rejects.toThrow(/WRONGPASS/);
    } finally {
      anonymous.disconnect();
      await ops.call('ACL', 'LOG', 'RESET'); // that AUTH is the one refusal the ACL log may show
    }
  });
});

describe('keygate as the ACL user keygate', () => {
  it('is ready (PING, SCRIPT EXISTS / LOAD) and subscribed', async () => {
    expect(await httpGet(kg.httpPort, '/readyz')).toMatchObject({ status: 200 });
    const clients = (await ops.call('CLIENT', 'LIST')) as string;
    const mine = clients.split('\n').filter((l) => / user=keygate /.test(l));
    expect(mine.length).toBeGreaterThanOrEqual(2); // commands + subscriber
    expect(mine.some((l) => / sub=1 /.test(l))).toBe(true);
  });

  it('answers allowed, denied and rate-limited Checks; keygate-admin works as keygate-admin', async () => {
    await ok('plan', 'set', 'tiny', '--limit', '2/m', '--limit', '100/d');
    await ok('plan', 'set', 'big', '--limit', '1000/s');
    await ok('plan', 'set', 'shadowed', '--limit', '1/m', '--shadow');
    await ok('plan', 'list');
    await ok('plan', 'show', 'tiny', '--json');

    const tiny = await createKey('--plan', 'tiny', '--scope', 'read');
    expect(await verdict(tiny.key)).toBe('allow');
    expect(await verdict(tiny.key)).toBe('allow');
    expect(await verdict(tiny.key)).toBe('rate_limited');
    expect(await verdict(tiny.key, { ext: { 'keygate.scope': 'write' } })).toBe('insufficient_scope');

    const fenced = await createKey('--plan', 'big', '--cidr', '10.0.0.0/8');
    expect(await verdict(fenced.key, { source: '10.1.2.3' })).toBe('allow');
    expect(await verdict(fenced.key, { source: '192.0.2.1' })).toBe('ip_not_allowed');

    const credits = await createKey('--plan', 'big', '--credits', '1');
    expect(await verdict(credits.key)).toBe('allow');
    expect(await verdict(credits.key)).toBe('quota_exceeded');
    await ok('key', 'credits', credits.id, '--add', '2');
    expect(await verdict(credits.key)).toBe('allow');

    const shadow = await createKey('--plan', 'shadowed');
    expect(await verdict(shadow.key)).toBe('allow');
    const res = (await kg.check(checkRequest({ headers: { 'x-api-key': shadow.key } }))) as Msg;
    expect(headerMap(res.ok_response.headers)['x-keygate-shadow-denial']).toBe('rate_limited');

    const off = await createKey('--plan', 'big');
    expect(await verdict(off.key)).toBe('allow');
    await ok('key', 'disable', off.id);
    await pollUntil('the disable to arrive', async () => ((await verdict(off.key)) === 'disabled_api_key' ? true : undefined), 1000);
    await ok('key', 'enable', off.id);
    await pollUntil('the enable to arrive', async () => ((await verdict(off.key)) === 'allow' ? true : undefined), 1000);

    expect(await verdict(generateKey())).toBe('invalid_api_key');
    expect(await verdict(undefined)).toBe('missing_api_key');

    // revocation and plan deletion reach keygate through SUBSCRIBE (the cache TTL is 60 s)
    await ok('key', 'revoke', fenced.id);
    await pollUntil('the revocation to arrive', async () => ((await verdict(fenced.key, { source: '10.1.2.3' })) === 'invalid_api_key' ? true : undefined), 1000);
    const rotated = JSON.parse(await ok('key', 'rotate', off.id, '--json')) as { key: string };
    await pollUntil('the rotation to arrive', async () => ((await verdict(rotated.key)) === 'allow' ? true : undefined), 1000);
    expect(await verdict(off.key)).toBe('invalid_api_key');
    await ok('key', 'update', off.id, '--plan', 'tiny');
    await ok('plan', 'delete', 'big', '--force');
    await pollUntil('the plan deletion to arrive', async () => ((await verdict(credits.key)) === 'plan_not_found' ? true : undefined), 1000);

    await ok('key', 'list', '--json');
    await ok('key', 'show', tiny.id, '--json');
    await ok('usage', tiny.id, '--days', '2', '--json');
    await ok('usage', '--owner', 'acme', '--json');

    const seed = join(dir, 'seed.json');
    writeFileSync(seed, JSON.stringify({ plans: [{ name: 'seeded', limits: ['5/s'] }], keys: [{ owner: 'initech', plan: 'seeded', key: generateKey() }] }));
    await ok('import', seed, '--dry-run');
    await ok('import', seed);
    const csv = join(dir, 'keys.csv');
    writeFileSync(csv, `owner,plan,key\nglobex,seeded,${generateKey()}\n`);
    await ok('key', 'import', csv);
    expect(await aclLog()).toEqual([]);
  });

  it('falls back to EVAL after the script cache is flushed, and the probe loads it again (SCRIPT EXISTS / LOAD)', async () => {
    const key = await createKey('--plan', 'tiny');
    await ops.config('RESETSTAT');
    await ops.script('FLUSH');
    expect(await verdict(key.key)).toBe('allow');
    const stats = await ops.info('commandstats');
    // EVALSHA found no script and keygate sent EVAL (unless the probe, once a second, came first)
    if (!/cmdstat_script\|load:calls=[1-9]/.test(stats)) expect(stats).toMatch(/cmdstat_eval:calls=[1-9]/);
    await ops.config('RESETSTAT');
    await ops.script('FLUSH');
    await pollUntil('the readiness probe to load the script', async () => (/cmdstat_script\|load:calls=[1-9]/.test(await ops.info('commandstats')) ? true : undefined), 3000);
    expect(await ops.info('commandstats')).toMatch(/cmdstat_script\|exists:calls=[1-9]/);
    expect((await httpGet(kg.httpPort, '/readyz')).status).toBe(200);
    expect(await aclLog()).toEqual([]);
  });

  it('the keygate user cannot write keys, plans or digests, publish, or run other commands', async () => {
    const as = new Redis(keygateUrl, { maxRetriesPerRequest: 0 });
    as.on('error', () => {});
    try {
      const refused = /NOPERM/;
      await expect(as.set('kg:digest:{0000}', 'key_forged')).rejects.toThrow(refused);
      await expect(as.set('kg:{key_x}:key', '{}')).rejects.toThrow(refused);
      await expect(as.set('kg:plan:{free}', '{}')).rejects.toThrow(refused);
      await expect(as.hgetall('kg:{key_x}:digests')).rejects.toThrow(refused);
      await expect(as.get('session:1')).rejects.toThrow(refused);
      await expect(as.del('kg:{key_x}:rl:s')).rejects.toThrow(refused);
      await expect(as.publish('kg:invalidate', '{"kind":"key","id":"key_x"}')).rejects.toThrow(refused);
      await expect(as.keys('*')).rejects.toThrow(refused);
      await expect(as.flushall()).rejects.toThrow(refused);
      await expect(as.config('GET', '*')).rejects.toThrow(refused);
      await expect(as.script('FLUSH')).rejects.toThrow(refused);
      await expect(as.call('ACL', 'WHOAMI')).rejects.toThrow(refused);
      // a script cannot do it for the user either: scripts run with the caller's permissions
      await expect(as.eval("return redis.call('SET', KEYS[1], 'key_forged')", 1, 'kg:digest:{0000}')).rejects.toThrow(refused);
      await expect(as.eval("return redis.call('SET', 'kg:digest:{0000}', 'key_forged')", 0)).rejects.toThrow(/NOPERM|can't access/);
      const sub = new Redis(keygateUrl, { maxRetriesPerRequest: 0 });
      sub.on('error', () => {});
      try {
        await expect(sub.subscribe('other-channel')).rejects.toThrow(refused);
      } finally {
        sub.disconnect();
      }
      expect(await ops.exists('kg:digest:{0000}')).toBe(0);
    } finally {
      as.disconnect();
    }
  });

  it('a wrong password: not ready, Checks fail UNAVAILABLE, and no password appears in any log line', async () => {
    const wrong = await startTestKeygate({ REDIS_URL: `redis://keygate:wrong-${KEYGATE_PASSWORD}@127.0.0.1:${redis.port}`, KEYGATE_CHECK_TIMEOUT_MS: '200' });
    try {
      expect((await httpGet(wrong.httpPort, '/readyz')).status).toBe(503);
      await expect(wrong.check(checkRequest({ headers: { 'x-api-key': generateKey() } }))).rejects.toMatchObject({ code: 14 });
      for (const line of [...wrong.logs, ...kg.logs]) {
        expect(line).not.toContain(KEYGATE_PASSWORD);
        expect(line).not.toContain(ADMIN_PASSWORD);
      }
      for (const text of outputs) expect(text).not.toContain(ADMIN_PASSWORD);
    } finally {
      await wrong.close();
    }
  });
});
