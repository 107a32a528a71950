// The Check contract end to end: keygate on real Redis, called over gRPC on loopback with
// requests ENCODED BY ENVOY'S OFFICIAL PROTOS, answers decoded with the official protos — in
// both header forms Envoy sends (headers map, and header_map with raw byte values).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock';
import { makeDigester } from '../../src/keys/digest';
import { generateKey } from '../../src/keys/format';
import { RedisKeyStore } from '../../src/keys/redis-store';
import type { KeyRecord } from '../../src/keys/types';
import { startRedis, type RedisServer } from '../helpers/redis';
import { checkRequest, headerMap, startTestKeygate, type TestKeygate } from '../helpers/keygate';
import { checkRequestFixtureNames, checkRequestFromProto3Json, readCheckRequestFixture, withApiKey } from '../helpers/official-protos';

let redis: RedisServer;
let kg: TestKeygate;
let store: RedisKeyStore;
const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
const digest = makeDigester();
let seq = 0;

async function newKey(over: Partial<KeyRecord> = {}): Promise<{ key: string; record: KeyRecord }> {
  const key = generateKey();
  const record: KeyRecord = {
    id: `key_e2e${++seq}`,
    owner: 'acme',
    plan: 'pro',
    scopes: ['orders:read', 'orders:write', 'reports:export'],
    status: 'active',
    createdAt: clock.now(),
    cidrs: [],
    metadata: {},
    ...over,
  };
  await store.createKey(record, { digest: digest(key) });
  return { key, record };
}

beforeAll(async () => {
  redis = await startRedis();
  kg = await startTestKeygate({ REDIS_URL: redis.url, KEYGATE_QUERY_PARAM: 'api_key', KEYGATE_CACHE_TTL_MS: '0', KEYGATE_NEGATIVE_CACHE_TTL_MS: '0' }, clock);
  store = new RedisKeyStore(redis.client(), clock);
  await store.putPlan({ name: 'pro', limits: [{ count: 1000, window: 's' }, { count: 100000, window: 'd' }] });
});
afterAll(async () => {
  await kg?.close();
  await redis?.close();
});

type Msg = Record<string, any>;

/** A string google.protobuf.Value (protobufjs's bundled Struct decodes with camelCase names). */
const text = (v: Msg | undefined): string | undefined => v?.string_value ?? v?.stringValue;
const HTTP_NAMES: Record<number, string> = { 401: 'Unauthorized', 403: 'Forbidden', 429: 'TooManyRequests', 500: 'InternalServerError' };

function expectDenied(res: Msg, http: number, grpcCode: number, reason: string): void {
  expect(res.status.code).toBe(grpcCode);
  expect(res.http_response).toBe('denied_response');
  expect(res.denied_response.status.code).toBe(HTTP_NAMES[http]);
  const headers = headerMap(res.denied_response.headers);
  expect(headers['content-type']).toBe('application/json');
  const body = JSON.parse(res.denied_response.body);
  expect(body.error.code).toBe(reason);
  expect(typeof body.error.message).toBe('string');
  if (http === 401) expect(headers['www-authenticate']).toMatch(/^Bearer realm="keygate"/);
}

describe('official-proto contract', () => {
  it.each(checkRequestFixtureNames())('fixture %s with a valid key is allowed', async (name) => {
    const { key, record } = await newKey();
    const req = checkRequestFromProto3Json(withApiKey(readCheckRequestFixture(name), key));
    const res = (await kg.check(req)) as Msg;
    expect(res.status.code ?? 0).toBe(0);
    expect(res.http_response).toBe('ok_response');
    const up = headerMap(res.ok_response.headers);
    expect(up).toEqual({ 'x-keygate-key-id': record.id, 'x-keygate-owner': 'acme', 'x-keygate-plan': 'pro' });
    for (const h of res.ok_response.headers) expect(h.append_action).toBe('OVERWRITE_IF_EXISTS_OR_ADD');
    const md = res.dynamic_metadata.fields;
    expect([text(md.key_id), text(md.owner), text(md.plan)]).toEqual([record.id, 'acme', 'pro']);
    const client = headerMap(res.ok_response.response_headers_to_add);
    expect(client['ratelimit-policy']).toBe('"1000/s";q=1000;w=1, "100000/d";q=100000;w=86400');
    expect(client['x-ratelimit-limit']).toBeDefined();
  });

  it('header_map form: raw byte values, repeated names; the key header is removed', async () => {
    const { key, record } = await newKey();
    const res = (await kg.check(checkRequest({ rawHeaders: [['x-api-key', key], ['accept', 'a'], ['accept', 'b']] }))) as Msg;
    expect(res.http_response).toBe('ok_response');
    expect(headerMap(res.ok_response.headers)['x-keygate-key-id']).toBe(record.id);
    expect(res.ok_response.headers_to_remove).toContain('x-api-key');
  });

  it('header_map form with a non-UTF-8 key value is denied invalid_api_key, not an error', async () => {
    const res = (await kg.check(checkRequest({ rawHeaders: [['x-api-key', Buffer.from([0x6b, 0x67, 0x5f, 0xff, 0xfe, 0x00, 0x80])]] }))) as Msg;
    expectDenied(res, 401, 16, 'invalid_api_key');
  });

  it('a request with missing parts is denied, never an exception', async () => {
    for (const req of [{}, { attributes: {} }, { attributes: { request: {} } }, { attributes: { request: { http: {} } } }]) {
      expectDenied((await kg.check(req)) as Msg, 401, 16, 'missing_api_key');
    }
  });
});

describe('verdicts', () => {
  it('no key: 401 missing_api_key with WWW-Authenticate', async () => {
    expectDenied((await kg.check(checkRequest())) as Msg, 401, 16, 'missing_api_key');
  });

  it('Authorization: Bearer and ApiKey schemes are accepted', async () => {
    const { key } = await newKey();
    for (const auth of [`Bearer ${key}`, `apikey ${key}`]) {
      const res = (await kg.check(checkRequest({ headers: { authorization: auth } }))) as Msg;
      expect(res.http_response).toBe('ok_response');
      expect(res.ok_response.headers_to_remove).toContain('authorization');
    }
  });

  it('a key in the query string is accepted and the parameter removed upstream', async () => {
    const { key } = await newKey();
    const res = (await kg.check(checkRequest({ path: `/orders?api_key=${key}&page=2` }))) as Msg;
    expect(res.http_response).toBe('ok_response');
    expect(res.ok_response.query_parameters_to_remove).toEqual(['api_key']);
  });

  it('two different keys in one request: invalid_api_key', async () => {
    const a = await newKey();
    const b = await newKey();
    expectDenied((await kg.check(checkRequest({ headers: { 'x-api-key': a.key, authorization: `Bearer ${b.key}` } }))) as Msg, 401, 16, 'invalid_api_key');
    expectDenied((await kg.check(checkRequest({ headers: { 'x-api-key': `${a.key},${b.key}` } }))) as Msg, 401, 16, 'invalid_api_key');
  });

  it('client-sent identity headers never reach the upstream unchanged', async () => {
    const { key, record } = await newKey();
    const res = (await kg.check(
      checkRequest({ headers: { 'x-api-key': key, 'x-keygate-owner': 'evil', 'x-keygate-admin': 'true', 'X-Keygate-Plan': 'enterprise' } }),
    )) as Msg;
    const up = headerMap(res.ok_response.headers);
    expect(up['x-keygate-owner']).toBe('acme');
    expect(up['x-keygate-key-id']).toBe(record.id);
    expect(res.ok_response.headers_to_remove).toContain('x-keygate-admin');
  });

  it('revoked and unknown keys are indistinguishable: 401 invalid_api_key', async () => {
    const { key, record } = await newKey();
    await store.updateKey({ ...record, status: 'revoked' });
    const revoked = (await kg.check(checkRequest({ headers: { 'x-api-key': key } }))) as Msg;
    const unknown = (await kg.check(checkRequest({ headers: { 'x-api-key': generateKey() } }))) as Msg;
    expectDenied(revoked, 401, 16, 'invalid_api_key');
    expect(revoked.denied_response.body).toBe(unknown.denied_response.body);
    expect(headerMap(revoked.denied_response.headers)).toEqual(headerMap(unknown.denied_response.headers));
  });

  it('expired and disabled keys are denied with their reasons', async () => {
    const expired = await newKey({ expiresAt: clock.now() - 1 });
    const disabled = await newKey({ status: 'disabled' });
    expectDenied((await kg.check(checkRequest({ headers: { 'x-api-key': expired.key } }))) as Msg, 401, 16, 'expired_api_key');
    expectDenied((await kg.check(checkRequest({ headers: { 'x-api-key': disabled.key } }))) as Msg, 401, 16, 'disabled_api_key');
  });

  it('CIDR allowlists (IPv4 and IPv6) are checked against the source address Envoy reports', async () => {
    const { key } = await newKey({ cidrs: ['198.51.100.0/24', '2001:db8::/32'] });
    const from = async (source: string) => (await kg.check(checkRequest({ headers: { 'x-api-key': key }, source }))) as Msg;
    expect((await from('198.51.100.9')).http_response).toBe('ok_response');
    expect((await from('2001:db8::1')).http_response).toBe('ok_response');
    expectDenied(await from('203.0.113.7'), 403, 7, 'ip_not_allowed');
    expectDenied(await from('2001:db9::1'), 403, 7, 'ip_not_allowed');
  });

  it('a route scope the key lacks: 403 insufficient_scope; a bad route setting: invalid_route_config', async () => {
    const { key } = await newKey({ scopes: ['orders:read'] });
    const res = (await kg.check(checkRequest({ headers: { 'x-api-key': key }, contextExtensions: { 'keygate.scope': 'admin' } }))) as Msg;
    expectDenied(res, 403, 7, 'insufficient_scope');
    const bad = (await kg.check(checkRequest({ headers: { 'x-api-key': key }, contextExtensions: { 'keygate.cost': '-3' } }))) as Msg;
    expectDenied(bad, 500, 13, 'invalid_route_config');
  });
});

describe('cost of refusing junk', () => {
  beforeEach(async () => {
    await redis.resetStats();
  });

  it('a malformed key causes zero Redis commands', async () => {
    const good = generateKey();
    const mangled = good.slice(0, 10) + (good[10] === 'A' ? 'B' : 'A') + good.slice(11);
    for (const junk of [mangled, 'kg_short', 'x'.repeat(300), 'abc']) {
      expectDenied((await kg.check(checkRequest({ headers: { 'x-api-key': junk } }))) as Msg, 401, 16, 'invalid_api_key');
    }
    const stats = await redis.commandStats();
    // Only the readiness probe (PING, once a second) may have run meanwhile.
    delete stats.ping;
    expect(stats).toEqual({});
  });
});
