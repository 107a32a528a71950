// KEYGATE_WORKERS=2: two worker processes serve one gRPC port; the primary's /metrics adds up
// their counters, /readyz waits for both, a dead worker is replaced, SIGTERM drains and exits 0.
import { readdirSync, readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDigester } from '../../src/keys/digest';
import { generateKey } from '../../src/keys/format';
import { RedisKeyStore } from '../../src/keys/redis-store';
import { startRedis, type RedisServer } from '../helpers/redis';
import { httpGet, spawnKeygate, waitReady, type KeygateProcess } from '../helpers/keygate-process';
import { checkRequest } from '../helpers/keygate';
import { OfficialAuthorizationClient, type PlainMessage } from '../helpers/official-protos';

let redis: RedisServer;
let kg: KeygateProcess;
let key = '';

/** Child processes of the primary, from /proc (no ps needed). */
function workerPids(): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === kg.child.pid) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

async function checks(n: number): Promise<string[]> {
  const Client = OfficialAuthorizationClient();
  const out: string[] = [];
  // a new connection per batch, so the cluster spreads them over the workers
  for (let b = 0; b < n / 10; b++) {
    const client = new Client(`127.0.0.1:${kg.grpcPort}`, grpc.credentials.createInsecure());
    const request = checkRequest({ headers: { 'x-api-key': key } });
    const batch = await Promise.all(
      Array.from({ length: 10 }, () =>
        new Promise<string>((resolve, reject) =>
          (client as unknown as Record<string, Function>).Check.call(client, request, { deadline: Date.now() + 5000 }, (err: Error | null, res: PlainMessage) =>
            err ? reject(err) : resolve(String(res.http_response)),
          ),
        ),
      ),
    );
    out.push(...batch);
    client.close();
  }
  return out;
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : NaN;
}

beforeAll(async () => {
  redis = await startRedis();
  const store = new RedisKeyStore(redis.client());
  await store.putPlan({ name: 'pro', limits: [{ count: 100000, window: 's' }] });
  key = generateKey();
  await store.createKey(
    { id: 'key_workers', owner: 'acme', plan: 'pro', scopes: [], status: 'active', createdAt: Date.now(), cidrs: [], metadata: {} },
    { digest: makeDigester()(key) },
  );
  kg = await spawnKeygate({ REDIS_URL: redis.url, KEYGATE_WORKERS: '2', KEYGATE_LOG_LEVEL: 'warn', KEYGATE_SHUTDOWN_TIMEOUT_MS: '2000' });
}, 60_000);
afterAll(async () => {
  if (kg) {
    const pids = workerPids();
    await kg.stop('SIGKILL');
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  await redis?.close();
});

describe('KEYGATE_WORKERS=2', () => {
  it('runs two workers behind one gRPC port, with metrics added up across them', async () => {
    expect(workerPids()).toHaveLength(2);
    expect(await checks(40)).toEqual(Array(40).fill('ok_response'));
    const scrape = (await httpGet(kg.httpPort, '/metrics')).body;
    expect(metric(scrape, 'keygate_checks_total{decision="allow",reason="ok"}')).toBe(40);
    expect(metric(scrape, 'keygate_build_info')).toBe(1);
    expect(metric(scrape, 'keygate_ready')).toBe(1);
  });

  it('replaces a worker that dies, and is ready again', async () => {
    const [victim] = workerPids();
    process.kill(victim, 'SIGKILL');
    const deadline = Date.now() + 15_000;
    while (!(workerPids().length === 2 && !workerPids().includes(victim))) {
      if (Date.now() > deadline) throw new Error('no replacement worker in 15 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    await waitReady(kg);
    expect(await checks(20)).toEqual(Array(20).fill('ok_response'));
  });

  it('SIGTERM drains every worker and exits 0', async () => {
    expect(await kg.stop('SIGTERM')).toBe(0);
  });
});
