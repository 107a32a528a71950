// keygate-admin against a real throw-away Redis: runCli in-process for every verb, checked through
// RedisKeyStore lookups (with the pepper, as keygate would look keys up), Redis key counts and
// command stats; and once as the real bin/keygate-admin.js process. Every line any command
// prints is kept: at the end, none may hold a 64-hex digest or the canary secret.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type Redis from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/clock';
import { makeDigester } from '../../../src/keys/digest';
import { generateKey } from '../../../src/keys/format';
import { RedisKeyStore } from '../../../src/keys/redis-store';
import { cliAssertions, runAdmin } from '../../helpers/admin-cli';
import { startRedis, type RedisServer } from '../../helpers/redis';

const ROOT = join(__dirname, '../../..');
const PEPPER = 'test-pepper-0123456789';
const digest = makeDigester(PEPPER);
/** A secret given to `key import` and `import`: it must never be printed by any command. */
const CANARY = generateKey();
const HOUR = 3_600_000;

let server: RedisServer;
let redis: Redis;
let dir: string;
const transcript: string[] = [];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function admin(args: string[], opts: { clock?: ManualClock; env?: Record<string, string> } = {}): Promise<Run> {
  const run = await runAdmin(args, { env: opts.env ?? { REDIS_URL: server.url, KEYGATE_KEY_PEPPER: PEPPER }, clock: opts.clock });
  transcript.push(`$ keygate-admin ${args.join(' ')}\n${run.stdout}${run.stderr}`);
  return run;
}

/** ok(...args): a command that must succeed (its stdout); refused(args, code): its one error line. */
const { ok, refused } = cliAssertions((args) => admin(args));

const storeAt = (now: number) => new RedisKeyStore(redis, new ManualClock(now));
const keyCount = () => redis.scard('kg:keys');
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

beforeAll(async () => {
  server = await startRedis();
  redis = server.client();
  dir = mkdtempSync(join(tmpdir(), 'keygate-admin-'));
});
beforeEach(async () => {
  await redis.flushall();
});
afterAll(async () => {
  const everything = transcript.join('\n');
  expect(everything).not.toContain(CANARY);
  expect(everything).not.toMatch(/[0-9a-f]{64}/i);
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('plan set / show / list / delete', () => {
  it('sets, replaces, shows and lists plans', async () => {
    expect(await ok('plan', 'set', 'pro', '--limit', '10/s', '--limit', '50000/month', '--description', 'Pro tier')).toBe(
      'plan pro created: 10/s, 50000/month\n',
    );
    expect(JSON.parse(await ok('plan', 'show', 'pro', '--json'))).toEqual({
      name: 'pro',
      limits: ['10/s', '50000/month'],
      description: 'Pro tier',
      keys: 0,
    });
    expect(await ok('plan', 'set', 'pro', '--limit', '20/s')).toBe('plan pro updated: 20/s\n');
    expect(await ok('plan', 'set', 'pro', '--limit', '20/s')).toBe('plan pro unchanged: 20/s\n');
    await ok('plan', 'set', 'free', '--limit', '5/m', '--limit', '100/d');
    expect(JSON.parse(await ok('plan', 'list', '--json'))).toEqual([
      { name: 'free', limits: ['5/m', '100/d'] },
      { name: 'pro', limits: ['20/s'], description: 'Pro tier' },
    ]);
    const text = await ok('plan', 'list');
    expect(text.split('\n')[0]).toMatch(/^NAME\s+LIMITS/);
    expect(text).toContain('5/m, 100/d');
    expect(await ok('plan', 'show', 'free')).toMatch(/limits:\s+5\/m, 100\/d/);
  });

  it('refuses bad limits, unknown plans and deleting a plan keys use (unless --force)', async () => {
    expect(await refused(['plan', 'set', 'pro', '--limit', '10/x'])).toMatch(/invalid limit "10\/x"/);
    expect(await refused(['plan', 'set', 'pro'])).toMatch(/--limit/);
    expect(await refused(['plan', 'show', 'nope'])).toBe('keygate-admin: no plan nope');
    expect(await refused(['plan', 'delete', 'nope'])).toBe('keygate-admin: no plan nope');
    await ok('plan', 'set', 'pro', '--limit', '10/s');
    const { id } = JSON.parse(await ok('key', 'create', '--owner', 'acme', '--plan', 'pro', '--json')) as { id: string };
    expect(await refused(['plan', 'delete', 'pro'])).toContain(`plan pro is used by 1 key (${id})`);
    expect(await redis.exists('kg:plan:{pro}')).toBe(1);
    expect(await ok('plan', 'delete', 'pro', '--force')).toMatch(/^plan pro deleted/);
    expect(await redis.exists('kg:plan:{pro}')).toBe(0);
  });

  it('keeps description and shadow mode unless given again', async () => {
    await ok('plan', 'set', 'beta', '--limit', '1/s', '--description', 'Beta', '--shadow');
    await ok('plan', 'set', 'beta', '--limit', '2/s');
    expect(JSON.parse(await ok('plan', 'show', 'beta', '--json'))).toEqual({ name: 'beta', limits: ['2/s'], description: 'Beta', shadow: true, keys: 0 });
    await ok('plan', 'set', 'beta', '--limit', '2/s', '--no-shadow', '--description', '');
    expect(JSON.parse(await ok('plan', 'show', 'beta', '--json'))).toEqual({ name: 'beta', limits: ['2/s'], shadow: false, keys: 0 });
    expect(JSON.parse(await ok('plan', 'set', 'open', '--unlimited', '--json'))).toEqual({ name: 'open', limits: [], result: 'created' });
  });

  it('deletes a plan that only revoked keys name', async () => {
    await ok('plan', 'set', 'old', '--limit', '1/s');
    const { id } = JSON.parse(await ok('key', 'create', '--owner', 'acme', '--plan', 'old', '--json')) as { id: string };
    await ok('key', 'revoke', id);
    expect(await ok('plan', 'delete', 'old')).toBe('plan old deleted\n');
  });
});

describe('key create / show / list / disable / enable / revoke / rotate', () => {
  beforeEach(async () => {
    await ok('plan', 'set', 'pro', '--limit', '10/s', '--limit', '50000/month');
  });

  it('creates a key: the secret is printed once, with a warning on stderr, and is found by its peppered digest', async () => {
    const run = await admin([
      'key', 'create', '--owner', 'acme', '--plan', 'pro', '--name', 'CI', '--scope', 'read', '--scope', 'admin',
      '--expires', '30d', '--cidr', '10.0.0.0/8', '--metadata', 'team=payments', '--limit', '5/s', '--json',
    ]);
    expect(run.code).toBe(0);
    const created = JSON.parse(run.stdout) as Record<string, unknown> & { id: string; key: string };
    expect(Object.keys(created).slice(0, 2)).toEqual(['id', 'key']);
    expect(created).toMatchObject({
      owner: 'acme', plan: 'pro', name: 'CI', scopes: ['read', 'admin'], status: 'active',
      cidrs: ['10.0.0.0/8'], metadata: { team: 'payments' }, limits: ['5/s'],
    });
    expect(created.key).toMatch(/^kg_[0-9A-Za-z]{38}$/);
    expect(Date.parse(created.expires as string) - Date.parse(created.created as string)).toBe(30 * 24 * HOUR);
    expect(run.stdout.split(created.key)).toHaveLength(2);
    expect(run.stderr).toMatch(/^keygate-admin: .*shown only this once/);
    expect(run.stderr).not.toContain(created.key);

    const found = await storeAt(Date.now()).lookup(digest(created.key));
    expect(found).toMatchObject({ id: created.id, owner: 'acme', scopes: ['read', 'admin'], limits: [{ count: 5, window: 's' }] });
    expect(await storeAt(Date.now()).lookup(makeDigester()(created.key))).toBeNull();

    const shown = JSON.parse(await ok('key', 'show', created.id, '--json')) as Record<string, unknown>;
    expect(shown).toEqual(Object.fromEntries(Object.entries(created).filter(([field]) => field !== 'key')));
    const text = await ok('key', 'show', created.id);
    expect(text).toMatch(/^id:\s+key_/);
    expect(text).not.toContain(created.key);
  });

  it('plain output shows the secret once, labelled', async () => {
    const run = await admin(['key', 'create', '--owner', 'globex', '--plan', 'pro']);
    expect(run.code).toBe(0);
    const secret = /^key:\s+(\S+)$/m.exec(run.stdout)?.[1];
    expect(secret).toMatch(/^kg_/);
    expect(run.stdout.split(secret!)).toHaveLength(2);
  });

  it('refuses an unknown plan, bad options and a past expiry, writing nothing', async () => {
    expect(await refused(['key', 'create', '--owner', 'acme', '--plan', 'gold'])).toMatch(/^keygate-admin: no plan gold/);
    expect(await refused(['key', 'create', '--owner', 'acme', '--plan', 'pro', '--cidr', '10.0.0.0/33'])).toMatch(/--cidr/);
    expect(await refused(['key', 'create', '--owner', 'acme', '--plan', 'pro', '--expires', '2001-01-01'])).toMatch(/already passed/);
    expect(await refused(['key', 'create', '--owner', 'acme', '--plan', 'pro', '--expires', 'soon'])).toMatch(/ISO-8601/);
    expect(await refused(['key', 'create', '--plan', 'pro'], 2)).toMatch(/--owner/);
    expect(await keyCount()).toBe(0);
  });

  it('lists keys, by owner, as a table or JSON', async () => {
    for (const owner of ['acme', 'acme', 'globex']) await ok('key', 'create', '--owner', owner, '--plan', 'pro', '--json');
    expect(JSON.parse(await ok('key', 'list', '--json'))).toHaveLength(3);
    const acme = JSON.parse(await ok('key', 'list', '--owner', 'acme', '--json')) as { owner: string }[];
    expect(acme.map((k) => k.owner)).toEqual(['acme', 'acme']);
    const table = (await ok('key', 'list', '--owner', 'globex')).trimEnd().split('\n');
    expect(table[0]).toMatch(/^ID\s+OWNER\s+PLAN\s+STATUS\s+CREATED\s+EXPIRES/);
    expect(table).toHaveLength(2);
  });

  it('disables, enables and revokes; a revoked key cannot be enabled or rotated', async () => {
    const { id, key } = JSON.parse(await ok('key', 'create', '--owner', 'acme', '--plan', 'pro', '--json')) as { id: string; key: string };
    const status = async () => (await storeAt(Date.now()).lookup(digest(key)))?.status;
    expect(await ok('key', 'disable', id)).toBe(`key ${id} disabled\n`);
    expect(await status()).toBe('disabled');
    expect(await ok('key', 'disable', id)).toBe(`key ${id} is already disabled\n`);
    expect(await ok('key', 'enable', id)).toBe(`key ${id} active\n`);
    expect(await status()).toBe('active');
    expect(JSON.parse(await ok('key', 'revoke', id, '--json'))).toMatchObject({ id, status: 'revoked' });
    expect(await status()).toBe('revoked');
    expect(await refused(['key', 'enable', id])).toBe(`keygate-admin: key ${id} is revoked; revocation is permanent (create a new key instead)`);
    expect(await refused(['key', 'rotate', id])).toMatch(/is revoked/);
    expect(await status()).toBe('revoked');
    expect(await refused(['key', 'show', 'key_nope'])).toBe('keygate-admin: no key key_nope');
    expect(await refused(['key', 'disable', 'key_nope'])).toBe('keygate-admin: no key key_nope');
  });

  it('rotates with a grace period: the old secret works until it ends, the new one from now on', async () => {
    const now = Date.now();
    const clock = new ManualClock(now);
    const created = JSON.parse((await admin(['key', 'create', '--owner', 'acme', '--plan', 'pro', '--json'], { clock })).stdout) as { id: string; key: string };
    const run = await admin(['key', 'rotate', created.id, '--grace', '1h', '--json'], { clock });
    expect(run.code).toBe(0);
    const rotated = JSON.parse(run.stdout) as { id: string; key: string; oldKeyValidUntil: string };
    expect(rotated.id).toBe(created.id);
    expect(rotated.key).not.toBe(created.key);
    expect(rotated.oldKeyValidUntil).toBe(new Date(now + HOUR).toISOString());
    expect(run.stderr).toMatch(/shown only this once/);

    const during = storeAt(now + HOUR - 1000);
    expect((await during.lookup(digest(created.key)))?.id).toBe(created.id);
    expect((await during.lookup(digest(rotated.key)))?.id).toBe(created.id);
    const after = storeAt(now + HOUR + 1000);
    expect(await after.lookup(digest(created.key))).toBeNull();
    expect((await after.lookup(digest(rotated.key)))?.id).toBe(created.id);
  });

  it('rotates without grace by default: the old secret stops at once', async () => {
    const created = JSON.parse(await ok('key', 'create', '--owner', 'acme', '--plan', 'pro', '--json')) as { id: string; key: string };
    const run = await admin(['key', 'rotate', created.id]);
    expect(run.code).toBe(0);
    const secret = /^key:\s+(\S+)$/m.exec(run.stdout)?.[1];
    expect(run.stderr).toContain('the old secret no longer works');
    const store = storeAt(Date.now() + 1);
    expect(await store.lookup(digest(created.key))).toBeNull();
    expect((await store.lookup(digest(secret!)))?.id).toBe(created.id);
  });

  it('moves a key to another plan with key update', async () => {
    await ok('plan', 'set', 'free', '--limit', '5/m');
    const { id } = JSON.parse(await ok('key', 'create', '--owner', 'acme', '--plan', 'pro', '--expires', '1d', '--json')) as { id: string };
    expect(await refused(['key', 'update', id, '--plan', 'gold'])).toMatch(/no plan gold/);
    await ok('key', 'update', id, '--plan', 'free', '--expires', 'never', '--name', 'moved');
    expect(JSON.parse(await ok('key', 'show', id, '--json'))).toMatchObject({ plan: 'free', name: 'moved' });
    expect(JSON.parse(await ok('key', 'show', id, '--json'))).not.toHaveProperty('expires');
  });
});

describe('key import', () => {
  const header = 'owner,plan,key,name,scopes,expires,cidrs,id';
  const goodRows = () => [
    `acme,pro,${CANARY},Canary,read;write,2030-01-01,,`,
    `globex,pro,${generateKey()},"Globex, Inc.",read,,10.0.0.0/8 2001:db8::/32,key_globex`,
    'initech,pro,sk-legacy-0123456789abcdef,,,,,',
  ];

  beforeEach(async () => {
    await ok('plan', 'set', 'pro', '--limit', '10/s');
  });

  it('imports a CSV file; keys are found by the peppered digest of their secret', async () => {
    const path = file('keys.csv', [header, ...goodRows()].join('\n') + '\n');
    expect(await ok('key', 'import', path)).toBe(`key import ${path}: 3 keys: 3 created, 0 updated, 0 unchanged\n`);
    expect(await keyCount()).toBe(3);
    const store = storeAt(Date.now());
    expect(await store.lookup(digest(CANARY))).toMatchObject({ owner: 'acme', name: 'Canary', scopes: ['read', 'write'], expiresAt: Date.UTC(2030, 0, 1) });
    expect(await store.getKey('key_globex')).toMatchObject({ name: 'Globex, Inc.', cidrs: ['10.0.0.0/8', '2001:db8::/32'] });
    expect((await store.lookup(digest('sk-legacy-0123456789abcdef')))?.owner).toBe('initech');
  });

  it('a file with one bad line: the error names the line, and nothing is written', async () => {
    const rows = goodRows();
    rows.splice(2, 0, `umbrella,pro,${generateKey()},,read;bad!,,,`);
    const path = file('one-bad.csv', [header, ...rows].join('\n') + '\n');
    const before = await redis.dbsize();
    const run = await admin(['key', 'import', path]);
    expect(run.code).toBe(1);
    const [headline, ...details] = run.stderr.trimEnd().split('\n');
    expect(headline).toBe(`keygate-admin: ${path}: 1 problem, nothing written`);
    expect(details).toEqual(['  - line 4 (scopes[1]): "bad!" is not a valid scope']);
    expect(await keyCount()).toBe(0);
    expect(await redis.dbsize()).toBe(before);
  });

  it('reports every bad line of a JSON-lines file by number, never quoting a secret', async () => {
    const lines = [
      JSON.stringify({ owner: 'acme', plan: 'pro', key: CANARY }),
      JSON.stringify({ owner: 'acme', plan: 'gold', key: generateKey() }),
      `{"owner": "acme", "plan": "pro", "key": "${CANARY}" oops}`,
      JSON.stringify({ owner: 'acme', plan: 'pro', key: CANARY }),
      JSON.stringify({ owner: 'acme', plan: 'pro', key: `${CANARY}x` }),
    ];
    const path = file('bad.jsonl', lines.join('\n') + '\n');
    const run = await admin(['key', 'import', path]);
    expect(run.code).toBe(1);
    const details = run.stderr.trimEnd().split('\n').slice(1);
    expect(details).toEqual([
      expect.stringMatching(/^ {2}- line 2: plan "gold" does not exist/),
      expect.stringMatching(/^ {2}- line 3: not valid JSON/),
      '  - line 4: the same secret as line 1',
      expect.stringMatching(/^ {2}- line 5 \(key\): not a usable API key \(value not shown\)/),
    ]);
    expect(await keyCount()).toBe(0);
  });

  it('is idempotent: a second import reports everything unchanged and adds no keys', async () => {
    const path = file('again.csv', [header, ...goodRows()].join('\n') + '\n');
    await ok('key', 'import', path);
    const ids = (await redis.smembers('kg:keys')).sort();
    expect(JSON.parse(await ok('key', 'import', path, '--json'))).toEqual({ file: path, keys: 3, created: 0, updated: 0, unchanged: 3, dryRun: false });
    expect((await redis.smembers('kg:keys')).sort()).toEqual(ids);
  });

  it('--dry-run checks against the store, reports what would change and writes nothing', async () => {
    const path = file('dry.json', JSON.stringify(goodRows().map((row) => ({ owner: row.split(',')[0], plan: 'pro', key: row.split(',')[2] })), null, 2));
    await server.resetStats();
    const out = await ok('key', 'import', path, '--dry-run');
    expect(out).toBe(`key import ${path}: dry run, nothing written: 3 keys valid; would create 3, update 0, leave 0 unchanged\n`);
    const stats = await server.commandStats();
    for (const write of ['set', 'hset', 'sadd', 'del', 'srem', 'publish']) expect(stats[write], write).toBeUndefined();
    expect(await keyCount()).toBe(0);
  });

  it('streams a JSON array, reports progress on request and writes in batches', async () => {
    const entries = Array.from({ length: 25 }, (_, i) => ({ owner: `owner${i}`, plan: 'pro', key: generateKey() }));
    const path = file('many.json', `[\n${entries.map((e) => JSON.stringify(e)).join(',\n')}\n]\n`);
    const run = await admin(['key', 'import', path, '--progress-every', '10', '--batch-size', '7']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`key import ${path}: 25 keys: 25 created, 0 updated, 0 unchanged\n`);
    expect(run.stderr.trimEnd().split('\n')).toEqual([
      'keygate-admin: key import: checked 10 entries, up to line 11',
      'keygate-admin: key import: checked 20 entries, up to line 21',
      'keygate-admin: key import: wrote 14 of 25 keys',
      'keygate-admin: key import: wrote 21 of 25 keys',
    ]);
    expect(await keyCount()).toBe(25);
  });

  it('refuses a file that does not exist', async () => {
    expect(await refused(['key', 'import', join(dir, 'missing.csv')])).toMatch(/cannot read .*missing\.csv: ENOENT/);
  });
});

describe('import (seed file)', () => {
  it('loads the demo seed, idempotently; --dry-run writes nothing', async () => {
    const demo = join(ROOT, 'examples/demo-seed.json');
    expect(await ok('import', demo, '--dry-run')).toBe(
      `import ${demo} (dry run, nothing written): plans: 3 created, 0 updated; keys: 4 created, 0 updated; 0 unchanged\n`,
    );
    expect(await redis.dbsize()).toBe(0);
    expect(await ok('import', demo)).toBe(`import ${demo}: plans: 3 created, 0 updated; keys: 4 created, 0 updated; 0 unchanged\n`);
    expect(JSON.parse(await ok('import', demo, '--json'))).toMatchObject({ plansCreated: 0, keysCreated: 0, unchanged: 7 });
    expect(await keyCount()).toBe(4);
  });

  it('refuses to bring back a secret that key rotate retired', async () => {
    const demo = join(ROOT, 'examples/demo-seed.json');
    await ok('import', demo);
    await ok('key', 'rotate', 'key_demo_globex');
    const run = await admin(['import', demo]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('  - keys[1]: key key_demo_globex exists with another secret (rotated?)');
    const demoKeys = (JSON.parse(readFileSync(demo, 'utf8')) as { keys: { key: string }[] }).keys;
    expect(await storeAt(Date.now()).lookup(digest(demoKeys[1].key))).toBeNull();
  });

  it('lists every problem of a bad seed with its path and writes nothing', async () => {
    const path = file(
      'bad-seed.json',
      JSON.stringify({
        plans: [{ name: 'pro', limits: ['10/s'] }],
        keys: [
          { owner: 'acme', plan: 'pro', key: CANARY },
          { owner: 'acme', plan: 'gold', key: generateKey() },
        ],
      }),
    );
    const run = await admin(['import', path]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`keygate-admin: ${path}: 1 problem, nothing written\n  - keys[1].plan: "gold" is neither in this file's plans nor in the store\n`);
    expect(await redis.dbsize()).toBe(0);
  });
});

describe('settings and failures', () => {
  it('needs REDIS_URL and a valid pepper; says so in one line', async () => {
    expect((await admin(['key', 'list'], { env: {} })).stderr).toMatch(/^keygate-admin: REDIS_URL is not set[^\n]*\n$/);
    const run = await admin(['key', 'list'], { env: { REDIS_URL: server.url, KEYGATE_KEY_PEPPER: 'short' } });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe('keygate-admin: KEYGATE_KEY_PEPPER: must be at least 16 characters (value not shown)\n');
  });

  it('exits 3 with one line when Redis cannot be reached', async () => {
    const closed = `redis://127.0.0.1:${server.port === 1 ? 2 : 1}`;
    const run = await admin(['key', 'list'], { env: { REDIS_URL: closed } });
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/^keygate-admin: cannot reach Redis at 127\.0\.0\.1:\d+: [^\n]+\n$/);
  });

  it('usage errors exit 2 with one line; --help exits 0', async () => {
    expect(await refused(['key', 'frobnicate'], 2)).toMatch(/unknown command 'frobnicate'/);
    expect(await refused(['plan', 'set', 'x', '--bogus'], 2)).toMatch(/unknown option '--bogus'/);
    for (const args of [['--help'], ['key', 'create', '--help'], ['key', 'import', '--help'], ['import', '--help']]) {
      const run = await admin(args);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^Usage: keygate-admin/);
    }
  });
});

describe('the keygate-admin binary', () => {
  const run = promisify(execFile);
  const bin = join(ROOT, 'bin/keygate-admin.js');
  const spawnAdmin = async (args: string[]): Promise<Run> => {
    try {
      const { stdout, stderr } = await run(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH, REDIS_URL: server.url } });
      transcript.push(stdout, stderr);
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      transcript.push(e.stdout, e.stderr);
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  beforeAll(() => {
    // Type errors elsewhere in the tree do not stop tsc from emitting; the binary only needs dist/.
    spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'ignore' });
    expect(existsSync(join(ROOT, 'dist/src/admin/cli.js'))).toBe(true);
  }, 120_000);

  it('--help exits 0; an unknown key exits 1 with one line; a usage error exits 2', async () => {
    const help = await spawnAdmin(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: keygate-admin/);
    expect(await spawnAdmin(['key', 'show', 'key_unknown'])).toEqual({ code: 1, stdout: '', stderr: 'keygate-admin: no key key_unknown\n' });
    const usage = await spawnAdmin(['plan', 'frobnicate']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^keygate-admin: unknown command 'frobnicate'[^\n]*\n$/);
  });

  it('creates a key as JSON that the in-process tools see', async () => {
    expect((await spawnAdmin(['plan', 'set', 'pro', '--limit', '10/s'])).code).toBe(0);
    const created = await spawnAdmin(['key', 'create', '--owner', 'acme', '--plan', 'pro', '--json']);
    expect(created.code).toBe(0);
    const { id, key } = JSON.parse(created.stdout) as { id: string; key: string };
    expect((await storeAt(Date.now()).lookup(makeDigester()(key)))?.id).toBe(id);
  });
});
