// TLS to a Redis Cluster (rediss+cluster://) and through Sentinel (rediss+sentinel://: TLS to the
// sentinels and to the Redis nodes), with throw-away certificates: keygate-admin and keygate work
// with KEYGATE_REDIS_TLS_CA, and keygate is not ready (Checks fail UNAVAILABLE) without it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCerts, type TestCerts } from '../helpers/certs';
import { startTestKeygate, type TestKeygate } from '../helpers/keygate';
import { startRedisCluster, startRedisSentinel, waitFor } from '../helpers/redis-topology';
import { adminOk, checkOnce } from './support';

let certs: TestCerts;
const keygates: TestKeygate[] = [];

beforeAll(() => {
  certs = makeTestCerts();
});

afterAll(async () => {
  for (const kg of keygates) await kg.close();
  certs?.remove();
});

async function keygate(env: Record<string, string>): Promise<TestKeygate> {
  const kg = await startTestKeygate(env);
  keygates.push(kg);
  return kg;
}

describe('TLS to Redis Cluster and Sentinel (rediss+cluster://, rediss+sentinel://)', () => {
  for (const kind of ['cluster', 'sentinel'] as const) {
    it(`${kind}: keygate-admin and keygate work over TLS with KEYGATE_REDIS_TLS_CA, and refuse without it`, async () => {
      const topology = kind === 'cluster' ? await startRedisCluster({ tls: certs }) : await startRedisSentinel({ tls: certs });
      try {
        expect(topology.url.startsWith(`rediss+${kind}://`)).toBe(true);
        const env = { REDIS_URL: topology.url, KEYGATE_REDIS_TLS_CA: certs.caFile };
        await adminOk(env, 'plan', 'set', 'gold', '--limit', '100/m');
        const created = JSON.parse(await adminOk(env, 'key', 'create', '--owner', 'acme', '--plan', 'gold', '--json')) as { key: string };
        const kg = await keygate(env);
        await waitFor('keygate ready', () => kg.health.problem === null, 10_000);
        // the first Checks may miss the 150 ms deadline while connections and JIT warm up
        await waitFor('an allowed Check', async () => (await checkOnce(kg, created.key)) === 'allow', 5000);
        await kg.close();
        keygates.splice(keygates.indexOf(kg), 1);

        const untrusting = await keygate({ REDIS_URL: topology.url });
        expect(untrusting.health.problem).not.toBeNull();
        expect(await checkOnce(untrusting, created.key)).toBe('error:14');
      } finally {
        await topology.close();
      }
    }, 60_000);
  }
});
