// Exactness under concurrency: two keygate PROCESSES sharing one Redis, 500 concurrent Checks
// split between them, against a quota of 137 and against 137 credits → exactly 137 allowed.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDigester } from '../../src/keys/digest';
import { generateKey } from '../../src/keys/format';
import { RedisKeyStore } from '../../src/keys/redis-store';
import { RedisLimiter } from '../../src/limits/redis-limiter';
import type { Limit } from '../../src/limits/types';
import { startRedis, type RedisServer } from '../helpers/redis';
import { spawnKeygate, type KeygateProcess } from '../helpers/keygate-process';
import { checkRequest } from '../helpers/keygate';
import { OfficialAuthorizationClient, type PlainMessage } from '../helpers/official-protos';

let redis: RedisServer;
const procs: KeygateProcess[] = [];
const clients: grpc.Client[] = [];

beforeAll(async () => {
  redis = await startRedis();
  for (let i = 0; i < 2; i++) {
    const p = await spawnKeygate({ REDIS_URL: redis.url, KEYGATE_LOG_LEVEL: 'warn', KEYGATE_CHECK_TIMEOUT_MS: '5000' });
    procs.push(p);
    const Client = OfficialAuthorizationClient();
    clients.push(new Client(`127.0.0.1:${p.grpcPort}`, grpc.credentials.createInsecure()));
  }
}, 60_000);
afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  await redis?.close();
});

function check(client: grpc.Client, request: PlainMessage): Promise<PlainMessage> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, Function>).Check.call(client, request, { deadline: Date.now() + 10_000 }, (err: Error | null, res: PlainMessage) =>
      err ? reject(err) : resolve(res),
    );
  });
}

async function storm(key: string): Promise<{ allowed: number; denied: Record<string, number> }> {
  const request = checkRequest({ headers: { 'x-api-key': key } });
  const results = await Promise.all(Array.from({ length: 500 }, (_, i) => check(clients[i % 2], request)));
  const denied: Record<string, number> = {};
  let allowed = 0;
  for (const r of results as Record<string, any>[]) {
    if (r.http_response === 'ok_response') allowed++;
    else {
      const reason = JSON.parse(r.denied_response.body).error.code as string;
      denied[reason] = (denied[reason] ?? 0) + 1;
    }
  }
  return { allowed, denied };
}

async function newKey(id: string, plan: string, limits: Limit[], credits = false): Promise<string> {
  const store = new RedisKeyStore(redis.client());
  await store.putPlan({ name: plan, limits });
  const key = generateKey();
  await store.createKey(
    { id, owner: 'acme', plan, scopes: [], status: 'active', createdAt: Date.now(), cidrs: [], metadata: {}, credits },
    { digest: makeDigester()(key) },
  );
  return key;
}

describe('two keygate processes, one Redis, 500 concurrent Checks', () => {
  it('a 137/d quota allows exactly 137', async () => {
    const key = await newKey('key_conc_quota', 'q137', [{ count: 137, window: 'd' }]);
    expect(await storm(key)).toEqual({ allowed: 137, denied: { quota_exceeded: 363 } });
  });

  it('137 credits allow exactly 137', async () => {
    const key = await newKey('key_conc_credits', 'unlimited', [], true);
    await new RedisLimiter(redis.client()).setCredits('key_conc_credits', 137);
    expect(await storm(key)).toEqual({ allowed: 137, denied: { quota_exceeded: 363 } });
    expect(await new RedisLimiter(redis.client()).getCredits('key_conc_credits')).toBe(0);
  });
});
