// The Redis limiter against the shared limiter behaviour, on a real throw-away redis-server.
import type Redis from 'ioredis';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { RedisLimiter } from '../../../src/limits/redis-limiter';
import { startRedis, type RedisServer } from '../../helpers/redis';
import { limiterSuite } from '../../shared/limiter-suite';

let server: RedisServer;
const clients: Redis[] = [];

beforeAll(async () => {
  server = await startRedis();
});
afterEach(() => {
  for (const client of clients.splice(0)) client.disconnect();
});
afterAll(async () => {
  await server.close();
});

limiterSuite('RedisLimiter', async () => {
  const client = server.client();
  clients.push(client);
  return new RedisLimiter(client);
});
