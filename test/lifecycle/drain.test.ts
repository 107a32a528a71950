// Graceful drain of a real keygate process (node dist/src/main.js) with Checks in flight.
// The Checks are made slow by pausing Redis (CLIENT PAUSE … ALL) with a Check deadline longer
// than the pause. On SIGTERM:
//   1. at once: /readyz 503 "shutting down", grpc.health.v1 NOT_SERVING (existing and new connections);
//   2. during the grace (half of KEYGATE_SHUTDOWN_TIMEOUT_MS, at most 5 s) new connections and
//      Checks are still served, so Envoy's health check can take keygate out of the pool first;
//   3. then the listener closes (new connections refused) while the in-flight Checks are still
//      running; they finish with real verdicts once Redis answers;
//   4. the process exits 0 within KEYGATE_SHUTDOWN_TIMEOUT_MS (+ a margin for closing down).
// And when in-flight Checks cannot finish in time: they are cancelled at the timeout (an error
// for Envoy, never a verdict), and the process still exits 0 on time.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type Redis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTHORIZATION_SERVICE } from '../../src/grpc/protos';
import { httpGet, spawnKeygate, type KeygateProcess } from '../helpers/keygate-process';
import { startRedis, type RedisServer } from '../helpers/redis';
import { adminCli, authClient, check, healthCheck, healthClient, metric, pollUntil, verdictOf, type AnyClient } from './support';

const EXIT_MARGIN_MS = 1500;

let redis: RedisServer;
let ops: Redis;
const admin = adminCli(() => redis.url);
let pro: { id: string; key: string };
let tiny: { id: string; key: string };

beforeAll(async () => {
  redis = await startRedis();
  ops = redis.client();
  await admin.ok('plan', 'set', 'pro', '--limit', '100000/s');
  await admin.ok('plan', 'set', 'tiny', '--limit', '1/h');
  const create = async (plan: string) => JSON.parse((await admin.ok('key', 'create', '--owner', 'acme', '--plan', plan, '--json')).stdout) as { id: string; key: string };
  pro = await create('pro');
  tiny = await create('tiny');
});
afterAll(async () => {
  await redis?.close();
});

/** Resolves true when a TCP connection to the port is refused (nothing listens), false if it connects. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** Pauses every Redis client for `ms`; the function returned resolves when the pause has ended. */
async function pauseRedis(ms: number): Promise<() => Promise<void>> {
  await ops.call('CLIENT', 'PAUSE', String(ms), 'ALL');
  // a PING sent now is held by the pause itself and answered when it ends
  const ended = ops.ping();
  return async () => {
    await ended;
  };
}

interface Pending {
  promise: Promise<{ verdict?: string; code?: number }>;
  settledAt?: number;
}

function inFlight(client: AnyClient, key: string): Pending {
  const p: Pending = { promise: Promise.resolve({}) };
  p.promise = check(client, { headers: { 'x-api-key': key } })
    .then((res) => ({ verdict: verdictOf(res) }))
    .catch((err: grpc.ServiceError) => ({ code: err.code }))
    .finally(() => (p.settledAt = performance.now()));
  return p;
}

describe('SIGTERM with Checks in flight', () => {
  let kg: KeygateProcess;
  afterAll(async () => {
    await kg?.stop('SIGKILL');
  });

  it('NOT_SERVING at once, serves through the grace, closes the listener, finishes in-flight Checks with real verdicts, exits 0 in time', async () => {
    const SHUTDOWN_MS = 4000; // → a grace of 2000 ms
    const PAUSE_MS = 3500; // longer than the grace: the Checks are still in flight when the listener closes
    kg = await spawnKeygate({ REDIS_URL: redis.url, KEYGATE_CHECK_TIMEOUT_MS: '10000', KEYGATE_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_MS), KEYGATE_LOG_LEVEL: 'info' });
    const client = authClient(kg.grpcPort);
    const health = healthClient(kg.grpcPort);
    try {
      // warm: the key records and plans are cached; tiny's one request per hour is used up
      expect(verdictOf(await check(client, { headers: { 'x-api-key': pro.key } }))).toBe('allow');
      expect(verdictOf(await check(client, { headers: { 'x-api-key': tiny.key } }))).toBe('allow');
      expect(await healthCheck(health)).toBe('SERVING');
      const watched: string[] = [];
      const watch = health.Watch({ service: '' }) as grpc.ClientReadableStream<{ status: string }>;
      watch.on('data', (m: { status: string }) => watched.push(m.status));
      watch.on('error', () => {});
      let watchEnded = false;
      watch.on('end', () => (watchEnded = true));
      watch.on('status', () => (watchEnded = true));
      await pollUntil('the first Watch message', async () => (watched.length > 0 ? true : undefined), 3000);

      // Checks in flight: their charge (EVALSHA) waits for the paused Redis
      const resumed = await pauseRedis(PAUSE_MS);
      const pending = [...Array.from({ length: 8 }, () => inFlight(client, pro.key)), ...Array.from({ length: 2 }, () => inFlight(client, tiny.key))];
      await pollUntil('10 Checks in flight', async () => ((await metric(kg.httpPort, 'keygate_inflight_checks')) === 10 ? true : undefined), 2000);

      const sigterm = performance.now();
      kg.child.kill('SIGTERM');

      // 1. NOT_SERVING at once, on HTTP and gRPC, existing and new connections, and on Watch
      const ready = await pollUntil('/readyz 503', async () => {
        const r = await httpGet(kg.httpPort, '/readyz');
        return r.status === 503 ? r : undefined;
      }, 1000, 5);
      expect(ready.body).toBe('not ready: shutting down\n');
      const notServingMs = performance.now() - sigterm;
      expect(await healthCheck(health)).toBe('NOT_SERVING');
      expect(await healthCheck(health, AUTHORIZATION_SERVICE)).toBe('NOT_SERVING');
      await pollUntil('Watch to see NOT_SERVING', async () => (watched.includes('NOT_SERVING') ? true : undefined), 1000, 5);
      expect(await metric(kg.httpPort, 'keygate_ready')).toBe(0);

      // 2. the grace: a new connection is still accepted and answered (no key: no Redis needed)
      const late = authClient(kg.grpcPort);
      const lateHealth = healthClient(kg.grpcPort);
      try {
        expect(verdictOf(await check(late, {}))).toBe('missing_api_key');
        expect(await healthCheck(lateHealth)).toBe('NOT_SERVING');
      } finally {
        late.close();
        lateHealth.close();
      }
      expect(pending.every((p) => p.settledAt === undefined)).toBe(true);

      // 3. the listener closes after the grace while the Checks are still in flight
      await pollUntil('the gRPC listener to close', async () => ((await refused(kg.grpcPort)) ? true : undefined), SHUTDOWN_MS, 10);
      const closedMs = performance.now() - sigterm;
      const stillInFlight = pending.filter((p) => p.settledAt === undefined).length;
      expect(stillInFlight).toBe(10);
      expect(watchEnded || watched.at(-1) === 'NOT_SERVING').toBe(true);

      // ... and they finish with real verdicts once Redis answers
      await resumed();
      const results = await Promise.all(pending.map((p) => p.promise));
      expect(results.slice(0, 8)).toEqual(Array.from({ length: 8 }, () => ({ verdict: 'allow' })));
      expect(results.slice(8)).toEqual([{ verdict: 'rate_limited' }, { verdict: 'rate_limited' }]);

      // 4. exit 0 within the shutdown timeout
      const code = await kg.exited;
      const exitMs = performance.now() - sigterm;
      expect(code).toBe(0);
      expect(exitMs).toBeLessThan(SHUTDOWN_MS + EXIT_MARGIN_MS);
      expect(await refused(kg.grpcPort)).toBe(true);
      await expect(httpGet(kg.httpPort, '/readyz')).rejects.toThrow();

      const logged = kg.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(logged.find((l) => l.msg === 'draining')).toMatchObject({ grace_ms: SHUTDOWN_MS / 2, timeout_ms: SHUTDOWN_MS, inflight: 10 });
      expect(logged.find((l) => l.msg === 'gRPC server closed')).toMatchObject({ finished: 10 });
      expect(logged.at(-1)?.msg).toBe('stopped');
      console.log(
        `drain: NOT_SERVING after ${notServingMs.toFixed(1)} ms, listener closed after ${closedMs.toFixed(0)} ms ` +
          `(grace ${SHUTDOWN_MS / 2} ms), exit 0 after ${exitMs.toFixed(0)} ms (timeout ${SHUTDOWN_MS} ms)`,
      );
      watch.cancel();
    } finally {
      client.close();
      health.close();
    }
  }, 30_000);
});

describe('SIGTERM with Checks that cannot finish in time', () => {
  let kg: KeygateProcess;
  afterAll(async () => {
    await kg?.stop('SIGKILL');
  });

  it('cancels them at KEYGATE_SHUTDOWN_TIMEOUT_MS (an error, never a verdict) and exits 0 on time', async () => {
    const SHUTDOWN_MS = 1000;
    kg = await spawnKeygate({ REDIS_URL: redis.url, KEYGATE_CHECK_TIMEOUT_MS: '10000', KEYGATE_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_MS), KEYGATE_LOG_LEVEL: 'info' });
    const client = authClient(kg.grpcPort);
    try {
      expect(verdictOf(await check(client, { headers: { 'x-api-key': pro.key } }))).toBe('allow');
      const resumed = await pauseRedis(2500);
      const pending = Array.from({ length: 3 }, () => inFlight(client, pro.key));
      await pollUntil('3 Checks in flight', async () => ((await metric(kg.httpPort, 'keygate_inflight_checks')) === 3 ? true : undefined), 2000);
      const sigterm = performance.now();
      kg.child.kill('SIGTERM');
      const code = await kg.exited;
      const exitMs = performance.now() - sigterm;
      expect(code).toBe(0);
      expect(exitMs).toBeLessThan(SHUTDOWN_MS + EXIT_MARGIN_MS);
      const results = await Promise.all(pending.map((p) => p.promise));
      for (const r of results) {
        expect(r.verdict).toBeUndefined();
        expect([grpc.status.UNAVAILABLE, grpc.status.CANCELLED, grpc.status.INTERNAL]).toContain(r.code);
      }
      expect(kg.lines.some((l) => l.includes('shutdown timeout: cancelled the Checks still in flight'))).toBe(true);
      console.log(`forced drain: exit 0 after ${exitMs.toFixed(0)} ms (timeout ${SHUTDOWN_MS} ms); in-flight Checks ended with gRPC codes ${results.map((r) => r.code).join(', ')}`);
      await resumed();
    } finally {
      client.close();
    }
  }, 30_000);
});
