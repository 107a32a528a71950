// Check logs end to end: a denied Check writes exactly one JSON line with Envoy's request id,
// key id, owner, decision, reason and latency; allowed Checks write none by default; a failed
// Check writes one warning. A canary key is sent in every place a key can travel (x-api-key,
// Authorization, the query string, an unrelated header, mangled) and neither it nor its SHA-256
// digest may appear in any log line, at debug level, through start-up, traffic, a Redis outage
// and shutdown.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/clock';
import { makeDigester } from '../../../src/keys/digest';
import { generateKey } from '../../../src/keys/format';
import { RedisKeyStore } from '../../../src/keys/redis-store';
import { checkRequest, startTestKeygate, type RequestParts, type TestKeygate } from '../../helpers/keygate';
import { startRedis, type RedisServer } from '../../helpers/redis';
import { httpGet, pollUntil } from './support';

const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
const CANARY = generateKey();
const CANARY_SHA256 = createHash('sha256').update(CANARY).digest('hex');
let redis: RedisServer;
let kg: TestKeygate;
let seq = 0;

type Line = Record<string, unknown>;

/** Sends a Check with its own Envoy request id; resolves with that id and the gRPC error, if any. */
async function send(parts: RequestParts): Promise<{ id: string; error?: { code: number } }> {
  const id = `req-${++seq}-${Date.now()}`;
  const req = checkRequest(parts) as { attributes: { request: { http: Record<string, unknown> } } };
  req.attributes.request.http.id = id;
  try {
    await kg.check(req);
    return { id };
  } catch (error) {
    return { id, error: error as { code: number } };
  }
}

async function createCanary(): Promise<void> {
  const admin = new RedisKeyStore(redis.client(), clock);
  await admin.putPlan({ name: 'pro', limits: [{ count: 1000, window: 's' }] });
  await admin.createKey(
    { id: 'key_canary', owner: 'acme', plan: 'pro', scopes: ['orders:read'], status: 'active', createdAt: clock.now(), cidrs: [], metadata: {} },
    { digest: makeDigester()(CANARY) },
  );
}

const linesFor = (id: string): Line[] => kg.logs.map((l) => JSON.parse(l) as Line).filter((l) => l.request_id === id);

beforeAll(async () => {
  redis = await startRedis();
  await createCanary();
  kg = await startTestKeygate(
    { REDIS_URL: redis.url, KEYGATE_LOG_ALLOWED: 'false', KEYGATE_QUERY_PARAM: 'api_key', KEYGATE_CACHE_TTL_MS: '0', KEYGATE_NEGATIVE_CACHE_TTL_MS: '0' },
    clock,
  );
});

afterAll(async () => {
  await kg?.close();
  if (redis && redis.process().exitCode === null && redis.process().signalCode !== null) await redis.restart();
  await redis?.close();
});

describe('Check log lines', () => {
  it('a denied Check writes one JSON line with request id, key id, owner, decision, reason and latency', async () => {
    const { id } = await send({ headers: { 'x-api-key': CANARY }, contextExtensions: { 'keygate.scope': 'orders:write' } });
    const lines = linesFor(id);
    expect(lines).toHaveLength(1);
    const [line] = lines;
    expect(line).toMatchObject({
      level: 'info',
      msg: 'check denied',
      service: 'keygate',
      request_id: id,
      key_id: 'key_canary',
      owner: 'acme',
      plan: 'pro',
      decision: 'deny',
      reason: 'insufficient_scope',
    });
    expect(typeof line.latency_ms).toBe('number');
    expect(line.latency_ms as number).toBeGreaterThan(0);
    expect(line.latency_ms as number).toBeLessThan(5000);
    expect(typeof line.time).toBe('string');
  });

  it('a denial before any key is known has no key fields', async () => {
    const { id } = await send({});
    const [line, ...rest] = linesFor(id);
    expect(rest).toEqual([]);
    expect(line).toMatchObject({ decision: 'deny', reason: 'missing_api_key' });
    expect(line).not.toHaveProperty('key_id');
  });

  it('allowed Checks write nothing by default (KEYGATE_LOG_ALLOWED=false)', async () => {
    const a = await send({ headers: { 'x-api-key': CANARY } });
    const b = await send({ headers: { authorization: `Bearer ${CANARY}` } });
    const c = await send({ path: `/orders?api_key=${CANARY}&x=1` });
    for (const r of [a, b, c]) {
      expect(r.error).toBeUndefined();
      expect(linesFor(r.id)).toEqual([]);
    }
  });

  it('a failed Check writes one warning with decision error and the reason', async () => {
    await redis.stop();
    await pollUntil('/readyz 503', async () => ((await httpGet(kg.httpPort, '/readyz')).status === 503 ? true : undefined));
    const r = await send({ headers: { 'x-api-key': CANARY, 'x-forwarded-for': CANARY } });
    expect(r.error?.code).toBe(14);
    const lines = linesFor(r.id);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', msg: 'check failed', decision: 'error', reason: 'store', request_id: r.id });
    expect(typeof lines[0].error).toBe('string');
    await redis.restart();
    await pollUntil('/readyz 200', async () => ((await httpGet(kg.httpPort, '/readyz')).status === 200 ? true : undefined), 15_000);
    await createCanary(); // the restarted Redis is empty
  });

  it('never logs the key or its digest, wherever the key was sent', async () => {
    await send({ headers: { 'x-api-key': CANARY } });
    await send({ headers: { 'x-api-key': CANARY, authorization: `ApiKey ${CANARY}x` } }); // two different keys
    await send({ headers: { 'x-api-key': `${CANARY.slice(0, -1)}${CANARY.endsWith('A') ? 'B' : 'A'}` } }); // malformed
    await send({ headers: { 'x-api-key': CANARY }, contextExtensions: { 'keygate.cost': 'abc' } }); // bad route setting
    await send({ headers: { 'x-debug': CANARY, 'x-request-id': 'r' } });
    await send({ rawHeaders: [['x-api-key', CANARY]] });
    const known = await send({ headers: { 'x-api-key': CANARY } });
    expect(known.error).toBeUndefined();
    expect(linesFor(known.id)).toEqual([]); // allowed: the key is known again
    await kg.close();
    expect(kg.logs.length).toBeGreaterThan(5);
    for (const line of kg.logs) {
      expect(line).not.toContain(CANARY);
      expect(line).not.toContain(CANARY.slice(3, -1)); // no fragment of the secret part either
      expect(line.toLowerCase()).not.toContain(CANARY_SHA256);
    }
    // and every line is one JSON object
    for (const line of kg.logs) expect(() => JSON.parse(line)).not.toThrow();
  });
});
