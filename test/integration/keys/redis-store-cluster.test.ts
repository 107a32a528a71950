// The batch methods of RedisKeyStore on a real Redis Cluster (3 primaries): there MGET, MSET and
// multi-key scripts would be refused (the keys live in many slots), so the store falls back to one
// command per key, stage by stage. Same outcomes as on one Redis; and `keygate-admin key import`
// works through redis+cluster://.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../src/admin/cli';
import { ManualClock } from '../../../src/clock';
import { makeDigester } from '../../../src/keys/digest';
import { generateKey } from '../../../src/keys/format';
import { RedisKeyStore } from '../../../src/keys/redis-store';
import { StoreConflictError, type KeyRecord } from '../../../src/keys/types';
import { createRedisClient, type RedisClient } from '../../../src/redis';
import { startRedisCluster, type RedisClusterTopology } from '../../helpers/redis-topology';

let cluster: RedisClusterTopology;
let client: RedisClient;
let dir: string;

beforeAll(async () => {
  cluster = await startRedisCluster();
  client = createRedisClient(cluster.url, { failFast: false });
  dir = mkdtempSync(join(tmpdir(), 'keygate-cluster-import-'));
}, 60_000);
afterAll(async () => {
  client?.disconnect();
  await cluster?.close();
  rmSync(dir, { recursive: true, force: true });
});

const record = (id: string, owner = 'acme'): KeyRecord => ({ id, owner, plan: 'free', scopes: [], status: 'active', createdAt: 1, cidrs: [], metadata: {} });
const digestOf = (i: number) => `c${i.toString(16).padStart(63, '0')}`;

describe('RedisKeyStore batch methods on a Redis Cluster', () => {
  it('upsertKeys, getKeys, digestOwners and updateKeys across slots', async () => {
    const store = new RedisKeyStore(client, new ManualClock(Date.UTC(2026, 0, 1)));
    const entries = Array.from({ length: 300 }, (_, i) => ({ record: record(`key_c${i}`), digest: { digest: digestOf(i) } }));
    expect(new Set(await store.upsertKeys(entries))).toEqual(new Set(['created']));
    expect(await store.upsertKeys(entries.slice(0, 3))).toEqual(['unchanged', 'unchanged', 'unchanged']);
    expect((await store.getKeys(['key_c0', 'key_nope', 'key_c299'])).map((r) => r?.id ?? null)).toEqual(['key_c0', null, 'key_c299']);
    expect(await store.digestOwners([digestOf(5), 'f'.repeat(64)])).toEqual(['key_c5', null]);
    expect((await store.lookup(digestOf(150)))?.id).toBe('key_c150');
    await expect(store.upsertKeys([{ record: record('key_other'), digest: { digest: digestOf(7) } }])).rejects.toBeInstanceOf(StoreConflictError);
    await store.updateKeys(entries.slice(0, 100).map((e) => ({ ...e.record, owner: 'moved' })));
    expect((await store.getKey('key_c99'))?.owner).toBe('moved');
    expect((await store.listKeys()).length).toBe(300);
  });

  it('keygate-admin key import through redis+cluster://, twice', async () => {
    const digest = makeDigester();
    const secrets = Array.from({ length: 2000 }, () => generateKey());
    const path = join(dir, 'keys.csv');
    writeFileSync(path, ['owner,plan,key', ...secrets.map((s, i) => `owner${i % 7},bulk,${s}`)].join('\n'));
    const admin = async (...args: string[]) => {
      let stdout = '';
      let stderr = '';
      const code = await runCli(args, { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, env: { REDIS_URL: cluster.url } });
      expect(code, stderr).toBe(0);
      return stdout;
    };
    await admin('plan', 'set', 'bulk', '--limit', '10/s');
    expect(JSON.parse(await admin('key', 'import', path, '--json'))).toMatchObject({ keys: 2000, created: 2000 });
    expect(JSON.parse(await admin('key', 'import', path, '--json'))).toMatchObject({ keys: 2000, unchanged: 2000 });
    expect((await new RedisKeyStore(client).lookup(digest(secrets[1234])))?.owner).toBe(`owner${1234 % 7}`);
  });
});
