// `keygate-admin key import` of 20,000 keys against a real Redis: every key stored and found by
// its secret, progress on stderr, batched store traffic (no per-key GET/SET), and idempotence — a
// second import writes nothing, a changed line updates one key and sends one invalidation
// message, a rotated key makes the whole import refuse. The time is printed, never asserted
// (bench/import-1m.mjs measures a million keys).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Redis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/clock';
import { makeDigester } from '../../../src/keys/digest';
import { generateKey } from '../../../src/keys/format';
import { RedisKeyStore } from '../../../src/keys/redis-store';
import { runAdmin } from '../../helpers/admin-cli';
import { startRedis, type RedisServer } from '../../helpers/redis';

const COUNT = 20_000;
const digest = makeDigester();
let server: RedisServer;
let redis: Redis;
let dir: string;
let secrets: string[];
let csv: string;

const admin = (...args: string[]) => runAdmin(args, { env: { REDIS_URL: server.url } });

const rows = (names: (i: number) => string) => ['owner,plan,key,name', ...secrets.map((s, i) => `owner${i % 100},bulk,${s},${names(i)}`)].join('\n') + '\n';
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

beforeAll(async () => {
  server = await startRedis();
  redis = server.client();
  dir = mkdtempSync(join(tmpdir(), 'keygate-bulk-'));
  secrets = Array.from({ length: COUNT }, () => generateKey());
  csv = file('keys.csv', rows((i) => `key ${i}`));
  expect((await admin('plan', 'set', 'bulk', '--limit', '100/s')).code).toBe(0);
});
afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe(`key import of ${COUNT} keys`, () => {
  it('stores every key, reports progress, and talks to Redis in batches', async () => {
    await server.resetStats();
    const started = Date.now();
    const run = await admin('key', 'import', csv, '--progress-every', '5000', '--json');
    const seconds = (Date.now() - started) / 1000;
    console.log(`key import: ${COUNT} keys in ${seconds.toFixed(2)} s (${Math.round(COUNT / seconds)} keys/s)`);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ file: csv, keys: COUNT, created: COUNT, updated: 0, unchanged: 0, dryRun: false });
    expect(run.stderr.trimEnd().split('\n')).toEqual([
      ...[5000, 10000, 15000, 20000].map((n) => `keygate-admin: key import: checked ${n} entries, up to line ${n + 1}`),
      ...[5000, 10000, 15000, 20000].map((n) => `keygate-admin: key import: wrote ${n} of ${COUNT} keys`),
    ]);
    const stats = await server.commandStats();
    expect(stats.get ?? 0).toBeLessThan(10); // the plan; keys are read with MGET
    expect(stats.set).toBeUndefined();
    expect(stats.mget).toBeLessThanOrEqual((5 * COUNT) / 500 + 10); // check: 2 per batch; write: 3 per batch
    expect(stats.publish).toBeUndefined(); // new keys: no cache can hold them
    expect(await redis.scard('kg:keys')).toBe(COUNT);

    const store = new RedisKeyStore(redis, new ManualClock(Date.now()));
    for (const i of [0, 1, COUNT / 2, COUNT - 1]) {
      expect(await store.lookup(digest(secrets[i])), `line ${i + 2}`).toMatchObject({ owner: `owner${i % 100}`, plan: 'bulk', name: `key ${i}` });
    }
  });

  it('a second import changes nothing and writes nothing', async () => {
    const keysBefore = await redis.dbsize();
    await server.resetStats();
    const run = await admin('key', 'import', csv, '--json');
    expect(JSON.parse(run.stdout)).toMatchObject({ keys: COUNT, created: 0, updated: 0, unchanged: COUNT });
    const stats = await server.commandStats();
    for (const write of ['set', 'mset', 'hset', 'sadd', 'publish', 'del']) expect(stats[write], write).toBeUndefined();
    expect(await redis.dbsize()).toBe(keysBefore);
  });

  it('a changed line updates that key only, with one invalidation message', async () => {
    const changed = file('changed.csv', rows((i) => (i === 7 ? 'renamed' : `key ${i}`)));
    await server.resetStats();
    const run = await admin('key', 'import', changed, '--json');
    expect(JSON.parse(run.stdout)).toMatchObject({ created: 0, updated: 1, unchanged: COUNT - 1 });
    expect(await new RedisKeyStore(redis).lookup(digest(secrets[7]))).toMatchObject({ name: 'renamed' });
    const stats = await server.commandStats();
    expect(stats.publish).toBe(1);
    expect(stats.set).toBe(1); // updateKeys: SET … XX of the one changed record
    expect(stats.mset).toBeUndefined();
  });

  it('a key rotated since: the import names its line and writes nothing', async () => {
    expect((await admin('key', 'rotate', 'key_' + '0'.repeat(16))).code).toBe(1); // no such id: nothing happens
    const id = (await new RedisKeyStore(redis).lookup(digest(secrets[123])))!.id;
    expect((await admin('key', 'rotate', id)).code).toBe(0);
    const renamed = file('after-rotate.csv', rows((i) => `again ${i}`));
    await server.resetStats();
    const run = await admin('key', 'import', renamed);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`  - line 125: key ${id} exists with another secret (rotated?)`);
    const stats = await server.commandStats();
    for (const write of ['set', 'mset', 'hset', 'sadd', 'publish']) expect(stats[write], write).toBeUndefined();
    expect(await new RedisKeyStore(redis).lookup(digest(secrets[0]))).toMatchObject({ name: 'key 0' });
  });
});
