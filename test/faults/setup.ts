// The world every fault test runs in: one plan whose limit is out of reach and one active key in
// Redis, a second well-formed key that Redis does not know, and two in-process keygates on the
// same REDIS_URL (Redis itself or a fault proxy in front of it): `strict` with the default failure
// policy (quota deny, no stale records) and `lenient` (quota allow, records up to 3 s past their
// 1 s TTL). Both are warmed up before any load.
import type Redis from 'ioredis';
import { makeDigester } from '../../src/keys/digest';
import { generateKey } from '../../src/keys/format';
import { RedisKeyStore } from '../../src/keys/redis-store';
import { startTestKeygate, type TestKeygate } from '../helpers/keygate';
import { warmUp, type Policy, type Target } from './load';

export const STRICT: Policy = { quotaOnStoreError: 'deny', cacheTtlMs: 1000, cacheStaleMs: 0 };
export const LENIENT: Policy = { quotaOnStoreError: 'allow', cacheTtlMs: 1000, cacheStaleMs: 3000 };
export const POLICIES: Record<string, Policy> = { strict: STRICT, lenient: LENIENT };

export interface FaultWorld {
  targets: Target[];
  keygates: TestKeygate[];
  close(): Promise<void>;
}

/** Seeds the plan and key through `admin` (a direct Redis client) and starts both keygates on `redisUrl`. */
export async function startFaultWorld(admin: Redis, redisUrl: string): Promise<FaultWorld> {
  const store = new RedisKeyStore(admin);
  await store.putPlan({ name: 'fault-plan', limits: [{ count: 1_000_000, window: 's' }] });
  const known = generateKey();
  await store.createKey(
    { id: `key_fault_${Date.now()}`, owner: 'acme', plan: 'fault-plan', scopes: [], status: 'active', createdAt: Date.now(), cidrs: [], metadata: {} },
    { digest: makeDigester()(known) },
  );
  const keys = { known, unknown: generateKey() };
  const env = (p: Policy) => ({
    REDIS_URL: redisUrl,
    KEYGATE_LOG_LEVEL: 'error',
    KEYGATE_LOG_ALLOWED: 'false',
    KEYGATE_CHECK_TIMEOUT_MS: '150',
    KEYGATE_QUOTA_ON_STORE_ERROR: p.quotaOnStoreError,
    KEYGATE_CACHE_TTL_MS: String(p.cacheTtlMs),
    KEYGATE_CACHE_STALE_MS: String(p.cacheStaleMs),
  });
  const keygates: TestKeygate[] = [];
  try {
    keygates.push(await startTestKeygate(env(STRICT)));
    keygates.push(await startTestKeygate(env(LENIENT)));
  } catch (err) {
    for (const kg of keygates) await kg.close();
    throw err;
  }
  const targets: Target[] = [
    { name: 'strict', kg: keygates[0], keys },
    { name: 'lenient', kg: keygates[1], keys },
  ];
  await warmUp(targets);
  return {
    targets,
    keygates,
    async close() {
      for (const kg of keygates) await kg.close();
    },
  };
}
