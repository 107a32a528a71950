// TLS to Redis (rediss://) with throw-away certificates: keygate and keygate-admin verify the
// server certificate against KEYGATE_REDIS_TLS_CA and work; without that CA (Node's CAs) or with
// another CA they refuse to talk — keygate is not ready and Checks fail UNAVAILABLE — and never
// fall back to plaintext (a fake server on the rediss:// port sees only TLS handshakes).
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCerts, type TestCerts } from '../helpers/certs';
import { startTestKeygate, type TestKeygate } from '../helpers/keygate';
import { freeNodePort, sleep, startTlsRedis, waitFor, type TlsRedis } from '../helpers/redis-topology';
import { admin, adminOk, checkOnce } from './support';

let certs: TestCerts;
let redis: TlsRedis;
const keygates: TestKeygate[] = [];

beforeAll(async () => {
  certs = makeTestCerts();
  redis = await startTlsRedis(certs);
}, 30_000);

afterAll(async () => {
  for (const kg of keygates) await kg.close();
  await redis?.close();
  certs?.remove();
});

async function keygate(env: Record<string, string>): Promise<TestKeygate> {
  const kg = await startTestKeygate(env);
  keygates.push(kg);
  return kg;
}

describe('TLS to Redis (rediss://)', () => {
  it('works with KEYGATE_REDIS_TLS_CA: keygate-admin creates a key, keygate allows it', async () => {
    const env = { REDIS_URL: redis.url, KEYGATE_REDIS_TLS_CA: certs.caFile };
    await adminOk(env, 'plan', 'set', 'gold', '--limit', '100/m');
    const created = JSON.parse(await adminOk(env, 'key', 'create', '--owner', 'acme', '--plan', 'gold', '--json')) as { id: string; key: string };
    const kg = await keygate(env);
    await waitFor('keygate ready', () => kg.health.problem === null, 10_000);
    // the first Checks may miss the 150 ms deadline while connections and JIT warm up
    await waitFor('an allowed Check', async () => (await checkOnce(kg, created.key)) === 'allow', 5000);
    // charged over TLS: the per-minute counter holds the units
    const buckets = Object.values(await redis.client().hgetall(`kg:{${created.id}}:rl:m`));
    expect(buckets.reduce((sum, v) => sum + Number(v.split(':')[0]), 0)).toBeGreaterThanOrEqual(1);
  });

  it('refuses a server certificate it cannot verify: without the CA or with another CA keygate is not ready and Checks fail UNAVAILABLE', async () => {
    const env = { REDIS_URL: redis.url, KEYGATE_REDIS_TLS_CA: certs.caFile };
    const created = JSON.parse(await adminOk(env, 'key', 'create', '--owner', 'acme', '--plan', 'gold', '--json')) as { key: string };
    const untrustingEnvs: Record<string, string>[] = [{ REDIS_URL: redis.url }, { REDIS_URL: redis.url, KEYGATE_REDIS_TLS_CA: certs.otherCaFile }];
    for (const untrusting of untrustingEnvs) {
      const kg = await keygate(untrusting);
      await sleep(300);
      expect(kg.health.problem).toBe('store unreachable');
      expect(await checkOnce(kg, created.key)).toBe('error:14');
      const run = await admin(untrusting, 'key', 'list');
      expect(run.code).toBe(3);
      expect(run.stderr).toMatch(/^keygate-admin: cannot reach Redis at 127\.0\.0\.1:\d+ \(TLS\)/);
    }
  });

  it('never falls back to plaintext: every connection to the rediss:// port starts with a TLS handshake', async () => {
    const port = await freeNodePort();
    const firstBytes: Buffer[] = [];
    const fake = net.createServer((sock) => {
      sock.once('data', (d: Buffer) => {
        firstBytes.push(d);
        sock.destroy(); // no TLS here: the handshake fails, the client retries
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((resolve) => fake.listen(port, '127.0.0.1', resolve));
    try {
      const env = { REDIS_URL: `rediss://127.0.0.1:${port}`, KEYGATE_REDIS_TLS_CA: certs.caFile };
      const kg = await keygate(env);
      await waitFor('several connection attempts', () => firstBytes.length >= 3, 10_000);
      expect(kg.health.problem).toBe('store unreachable');
      expect(await checkOnce(kg, 'kg_whatever_not_a_real_key_0000000000000')).not.toBe('allow');
      await admin(env, 'key', 'list');
      for (const b of firstBytes) {
        // a TLS record of type handshake (22), then a ClientHello (1); never a RESP command ('*')
        expect(b[0]).toBe(0x16);
        expect(b[5]).toBe(0x01);
      }
    } finally {
      fake.close();
    }
  });
});
