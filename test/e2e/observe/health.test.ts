// Health end to end: /healthz answers 200 whatever the store does; /readyz and
// grpc.health.v1 Health/Check go NOT_SERVING (503 with the reason) when Redis is stopped and
// SERVING again when it returns; a Health/Watch stream sees both changes; keygate_ready follows;
// unknown paths are 404 and other methods 405.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTHORIZATION_SERVICE } from '../../../src/grpc/protos';
import { chargeLuaScript } from '../../../src/limits/redis-limiter';
import { startRedis, type RedisServer } from '../../helpers/redis';
import { healthCheck, healthClient, httpGet, parseExposition, pollUntil, startObservedKeygate, value, type HarnessKeygate } from './support';

let redis: RedisServer;
let kg: HarnessKeygate;
let health: ReturnType<typeof healthClient>;

beforeAll(async () => {
  redis = await startRedis();
  kg = await startObservedKeygate({ REDIS_URL: redis.url }, { readinessIntervalMs: 100 });
  health = healthClient(kg.grpcPort);
});
afterAll(async () => {
  health?.close();
  await kg?.close();
  if (redis && redis.process().exitCode === null && redis.process().signalCode !== null) await redis.restart();
  await redis?.close();
});

const ready = async () => value(parseExposition((await httpGet(kg.httpPort, '/metrics')).body), 'keygate_ready');

describe('HTTP endpoints', () => {
  it('/healthz is 200, unknown paths 404, other methods 405', async () => {
    expect(await httpGet(kg.httpPort, '/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect((await httpGet(kg.httpPort, '/nope')).status).toBe(404);
    expect((await httpGet(kg.httpPort, '/')).status).toBe(404);
    expect((await httpGet(kg.httpPort, '/metrics/extra')).status).toBe(404);
    const post = await httpGet(kg.httpPort, '/readyz', 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    expect((await httpGet(kg.httpPort, '/readyz', 'HEAD')).status).toBe(200);
    expect((await httpGet(kg.httpPort, '/metrics')).headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  });
});

describe('readiness follows Redis', () => {
  it('goes NOT_SERVING when Redis stops and SERVING when it returns, on /readyz, Health/Check, Health/Watch and keygate_ready', async () => {
    expect(await httpGet(kg.httpPort, '/readyz')).toMatchObject({ status: 200, body: 'ready\n' });
    expect(await healthCheck(health)).toBe('SERVING');
    expect(await healthCheck(health, AUTHORIZATION_SERVICE)).toBe('SERVING');
    await expect(healthCheck(health, 'no.such.Service')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    expect(await ready()).toBe(1);

    const watched: string[] = [];
    const watch = health.Watch({ service: '' }) as grpc.ClientReadableStream<{ status: string }>;
    watch.on('data', (m: { status: string }) => watched.push(m.status));
    watch.on('error', () => {});
    await pollUntil('the first Watch message', () => (watched.length > 0 ? true : undefined));
    expect(watched).toEqual(['SERVING']);

    await redis.stop();
    const down = await pollUntil('/readyz 503', async () => {
      const r = await httpGet(kg.httpPort, '/readyz');
      return r.status === 503 ? r : undefined;
    });
    expect(down.body).toBe('not ready: store unreachable\n');
    expect(await healthCheck(health)).toBe('NOT_SERVING');
    expect(await healthCheck(health, AUTHORIZATION_SERVICE)).toBe('NOT_SERVING');
    await pollUntil('Watch to see NOT_SERVING', () => (watched.includes('NOT_SERVING') ? true : undefined));
    expect(await ready()).toBe(0);
    // the process itself is alive
    expect((await httpGet(kg.httpPort, '/healthz')).status).toBe(200);

    await redis.restart();
    await pollUntil('/readyz 200', async () => ((await httpGet(kg.httpPort, '/readyz')).status === 200 ? true : undefined), 15_000);
    expect(await healthCheck(health)).toBe('SERVING');
    await pollUntil('Watch to see SERVING again', () => (watched.length >= 3 ? true : undefined));
    expect(watched).toEqual(['SERVING', 'NOT_SERVING', 'SERVING']);
    expect(await ready()).toBe(1);
    // ready means the charge script is in the (new, empty) Redis too
    expect(await redis.client().script('EXISTS', chargeLuaScript().sha1)).toEqual([1]);
    // logged once each way
    const msgs = kg.logs.map((l) => JSON.parse(l).msg as string);
    expect(msgs.filter((m) => m === 'store unreachable: not ready')).toHaveLength(1);
    expect(msgs.filter((m) => m === 'store reachable: ready').length).toBeGreaterThanOrEqual(2); // start-up, recovery
    watch.cancel();
  });

  it('goes NOT_SERVING while draining', async () => {
    const other = await startObservedKeygate({ REDIS_URL: redis.url }, { readinessIntervalMs: 100 });
    const client = healthClient(other.grpcPort);
    expect(await healthCheck(client)).toBe('SERVING');
    const watched: string[] = [];
    const watch = client.Watch({ service: '' }) as grpc.ClientReadableStream<{ status: string }>;
    watch.on('data', (m: { status: string }) => watched.push(m.status));
    watch.on('error', () => {});
    await pollUntil('the first Watch message', () => (watched.length > 0 ? true : undefined));
    const stopping = other.stop({ timeoutMs: 500 });
    await pollUntil('Watch to see NOT_SERVING', () => (watched.includes('NOT_SERVING') ? true : undefined));
    await stopping;
    client.close();
  });
});
