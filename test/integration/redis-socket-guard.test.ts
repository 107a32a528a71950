// A Redis socket that fails twice must not crash keygate: ioredis listens for socket errors with
// once(), and a TLS socket can emit a second error (a server alert read after Node refused the
// certificate). src/redis-socket-guard.ts keeps a listener on every socket ioredis opens.
import Redis, { SentinelConnector } from 'ioredis';
import StandaloneConnector from 'ioredis/built/connectors/StandaloneConnector';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisClient } from '../../src/redis';
import { startRedis, type RedisServer } from '../helpers/redis';

let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.close();
});

describe('Redis sockets always keep an error listener', () => {
  it('is installed on the standalone and the sentinel connector (cluster nodes and subscribers use them)', () => {
    // src/redis.ts (what keygate and keygate-admin build their clients with) installs it on load
    const marked = (proto: object) => (proto as Record<symbol, unknown>)[Symbol.for('keygate.redisSocketGuard')];
    expect(marked(StandaloneConnector.prototype)).toBe(true);
    expect(marked(SentinelConnector.prototype)).toBe(true);
  });

  it('a second error on a failed socket is absorbed; the client reconnects and serves', async () => {
    const client = createRedisClient(redis.url) as Redis;
    try {
      await expect.poll(() => client.status, { timeout: 5000, interval: 20 }).toBe('ready');
      const stream = client.stream;
      // The first error is ioredis's to handle (its once() listener); the second has only the guard.
      // Without it, emit() throws ERR_UNHANDLED_ERROR / the error itself right here.
      expect(() => stream.emit('error', new Error('first failure'))).not.toThrow();
      expect(() => stream.emit('error', new Error('tlsv1 alert decode error'))).not.toThrow();
      stream.destroy();
      await expect.poll(() => client.ping().catch(() => 'down'), { timeout: 5000, interval: 50 }).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });
});
