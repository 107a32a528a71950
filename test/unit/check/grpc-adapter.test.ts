// The gRPC adapter: CheckRequest → CheckInput (both header forms, missing parts, raw bytes) and
// CheckOutcome → CheckResponse (deny bodies and headers, identity headers, dynamic metadata),
// including a round trip through keygate's own protos.
import type * as grpc from '@grpc/grpc-js';
import { beforeEach, describe, expect, it } from 'vitest';
import { check, type Allowed, type CheckDeps, type CheckOutcome, type Denied } from '../../../src/check/check';
import { ALL_DENY_REASONS, DENY_REASONS, type DenyReason } from '../../../src/check/reasons';
import { ManualClock } from '../../../src/clock';
import { loadConfig } from '../../../src/config';
import { loadKeygateProtos, fromStruct, type CheckRequestObject, type CheckResponseObject, type HeaderValueOptionObject } from '../../../src/grpc/protos';
import { toCheckInput } from '../../../src/grpc/request';
import { toCheckResponse } from '../../../src/grpc/response';
import { CachedKeyLookup } from '../../../src/keys/cache';
import { makeDigester } from '../../../src/keys/digest';
import { generateKey } from '../../../src/keys/format';
import { MemoryKeyStore } from '../../../src/keys/memory-store';
import type { KeyRecord } from '../../../src/keys/types';
import { MemoryLimiter } from '../../../src/limits/memory-limiter';

const T0 = Date.UTC(2026, 0, 15, 12);

function checkMethod(): grpc.MethodDefinition<CheckRequestObject, CheckResponseObject> {
  return (loadKeygateProtos().authorizationService as Record<string, grpc.MethodDefinition<CheckRequestObject, CheckResponseObject>>).Check;
}

/** What Envoy would decode from keygate's answer: serialized and parsed with keygate's protos. */
function overTheWire(res: CheckResponseObject): CheckResponseObject {
  const m = checkMethod();
  return m.responseDeserialize(m.responseSerialize(res));
}

/** A request as grpc-js hands it to the server: serialized and parsed with keygate's protos. */
function received(req: CheckRequestObject): CheckRequestObject {
  const m = checkMethod();
  return m.requestDeserialize(m.requestSerialize(req));
}

const headerValues = (list: HeaderValueOptionObject[] | undefined, name: string) =>
  (list ?? []).filter((h) => h.header.key === name).map((h) => h.header.value);

describe('toCheckInput', () => {
  it.each([
    ['null', null],
    ['undefined', undefined],
    ['{}', {}],
    ['{attributes:{}}', { attributes: {} }],
    ['no http', { attributes: { request: {} } }],
    ['empty http', { attributes: { request: { http: {} } } }],
    ['empty header_map', { attributes: { request: { http: { header_map: {} } } } }],
    ['empty headers', { attributes: { request: { http: { headers: {} } } } }],
  ])('%s → an empty input, never an exception', (_label, reqObj) => {
    const input = toCheckInput(reqObj as CheckRequestObject | null | undefined);
    expect(input.headers).toBeInstanceOf(Map);
    expect(input.headers.size).toBe(0);
    expect(input.contextExtensions).toEqual({});
    expect(input.path).toBeUndefined();
    expect(input.sourceAddress).toBeUndefined();
  });

  it('reads the headers map form: names lower-cased, path/method/host/id and source address', () => {
    const input = toCheckInput({
      attributes: {
        source: { address: { socket_address: { address: '10.1.2.3', port_value: 5555 } } },
        request: {
          http: {
            id: 'req-1',
            method: 'POST',
            path: '/orders?page=2',
            host: 'api.example.com',
            headers: { 'X-Api-Key': 'kg_abc', accept: 'application/json', ':path': '/ignored' },
          },
        },
        context_extensions: { 'keygate.scope': 'orders:write', 'keygate.cost': '2' },
      },
    });
    expect(input.headers.get('x-api-key')).toEqual(['kg_abc']);
    expect(input.headers.get('accept')).toEqual(['application/json']);
    expect(input.path).toBe('/orders?page=2');
    expect(input.method).toBe('POST');
    expect(input.host).toBe('api.example.com');
    expect(input.requestId).toBe('req-1');
    expect(input.sourceAddress).toBe('10.1.2.3');
    expect(input.contextExtensions).toEqual({ 'keygate.scope': 'orders:write', 'keygate.cost': '2' });
  });

  it('reads header_map with raw_value bytes, keeping repeated names apart', () => {
    const input = toCheckInput(
      received({
        attributes: {
          request: {
            http: {
              header_map: {
                headers: [
                  { key: ':path', raw_value: Buffer.from('/v1/x?api_key=1') },
                  { key: ':method', raw_value: Buffer.from('GET') },
                  { key: ':authority', raw_value: Buffer.from('api.example.com') },
                  { key: 'x-request-id', raw_value: Buffer.from('rid-9') },
                  { key: 'X-Forwarded-For', raw_value: Buffer.from('198.51.100.23') },
                  { key: 'x-forwarded-for', raw_value: Buffer.from('192.0.2.99') },
                  { key: 'x-api-key', raw_value: Buffer.from('kg_abc') },
                ],
              },
            },
          },
        },
      }),
    );
    expect(input.headers.get('x-forwarded-for')).toEqual(['198.51.100.23', '192.0.2.99']);
    expect(input.headers.get('x-api-key')).toEqual(['kg_abc']);
    // no path/method/host/id fields: the pseudo-headers stand in
    expect(input.path).toBe('/v1/x?api_key=1');
    expect(input.method).toBe('GET');
    expect(input.host).toBe('api.example.com');
    expect(input.requestId).toBe('rid-9');
  });

  it('keeps non-UTF-8 raw bytes as latin1 characters, one per byte', () => {
    const bytes = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0xff, 0xfe]);
    const input = toCheckInput(received({ attributes: { request: { http: { header_map: { headers: [{ key: 'x-legacy', raw_value: bytes }] } } } } }));
    const value = input.headers.get('x-legacy')![0];
    expect(value).toBe('caf\u00e9 \u00ff\u00fe');
    expect(Buffer.from(value, 'latin1')).toEqual(bytes);
    expect(value).not.toContain('\ufffd');
  });

  it('header_map entries with a string value, or broken entries, are handled', () => {
    const input = toCheckInput({
      attributes: {
        request: {
          http: {
            header_map: {
              headers: [{ key: 'x-api-key', value: 'kg_text' }, null as unknown as { key: string }, { value: 'no name' }, { key: 'x-empty' }],
            },
          },
        },
      },
    });
    expect(input.headers.get('x-api-key')).toEqual(['kg_text']);
    expect(input.headers.get('x-empty')).toEqual(['']);
    expect(input.headers.size).toBe(2);
  });

  it('an empty header_map falls back to the headers map', () => {
    const input = toCheckInput({ attributes: { request: { http: { header_map: { headers: [] }, headers: { 'x-api-key': 'kg_map' } } } } });
    expect(input.headers.get('x-api-key')).toEqual(['kg_map']);
  });

  it('drops context extensions that are not strings', () => {
    const input = toCheckInput({ attributes: { context_extensions: { 'keygate.cost': 3 as unknown as string, 'keygate.scope': 'a' } } });
    expect(input.contextExtensions).toEqual({ 'keygate.scope': 'a' });
  });

  it('a source given as a pipe (no socket address) has no address', () => {
    expect(toCheckInput({ attributes: { source: { address: { pipe: { path: '/tmp/s' } } } } }).sourceAddress).toBeUndefined();
  });
});

describe('the adapter with the Check path', () => {
  let deps: CheckDeps;
  let store: MemoryKeyStore;

  beforeEach(async () => {
    const config = loadConfig({});
    const clock = new ManualClock(T0);
    store = new MemoryKeyStore(clock);
    const limiter = new MemoryLimiter();
    deps = { config, clock, keys: new CachedKeyLookup(store, clock, { ttlMs: 1000, negativeTtlMs: 1000, maxKeys: 10 }), limiter, usage: limiter, digest: makeDigester() };
    await store.putPlan({ name: 'basic', limits: [{ count: 10, window: 's' }] });
  });

  async function issue(extra: Partial<KeyRecord> = {}): Promise<{ secret: string; key: KeyRecord }> {
    const secret = generateKey();
    const key: KeyRecord = { id: 'key_abc', owner: 'acme', plan: 'basic', scopes: [], status: 'active', createdAt: T0, cidrs: [], metadata: {}, ...extra };
    await store.createKey(key, { digest: deps.digest(secret) });
    return { secret, key };
  }

  it.each([
    ['null', null],
    ['undefined', undefined],
    ['{}', {}],
    ['{attributes:{}}', { attributes: {} }],
  ])('a request with missing parts (%s) is denied missing_api_key, never thrown', async (_label, reqObj) => {
    const out = await check(toCheckInput(reqObj as CheckRequestObject | null), deps);
    expect(out.decision === 'deny' && out.reason).toBe('missing_api_key');
  });

  it('a non-UTF-8 key in header_map is denied invalid_api_key', async () => {
    const raw = Buffer.concat([Buffer.from('kg_'), Buffer.from([0xff, 0xfe]), Buffer.from('a'.repeat(36))]);
    const input = toCheckInput(received({ attributes: { request: { http: { header_map: { headers: [{ key: 'x-api-key', raw_value: raw }] } } } } }));
    const out = await check(input, deps);
    expect(out.decision === 'deny' && out.reason).toBe('invalid_api_key');
  });

  it('a key sent in header_map form is allowed, as in the headers form', async () => {
    const { secret } = await issue();
    const viaMap = toCheckInput(received({ attributes: { request: { http: { header_map: { headers: [{ key: 'authorization', raw_value: Buffer.from(`Bearer ${secret}`) }] } } } } }));
    const viaHeaders = toCheckInput(received({ attributes: { request: { http: { headers: { authorization: `Bearer ${secret}` } } } } }));
    expect((await check(viaMap, deps)).decision).toBe('allow');
    expect((await check(viaHeaders, deps)).decision).toBe('allow');
  });

  it('on allow: OVERWRITE identity headers, removals, rate-limit headers and dynamic metadata, over the wire', async () => {
    const { secret } = await issue({ owner: 'team-blue' });
    const input = toCheckInput(
      received({
        attributes: {
          request: { http: { path: `/orders?x=1`, headers: { 'x-api-key': secret, 'x-keygate-owner': 'evil', 'x-keygate-admin': 'yes' } } },
        },
      }),
    );
    const out = (await check(input, deps)) as Allowed;
    expect(out.decision).toBe('allow');
    const res = overTheWire(toCheckResponse(out));
    expect(res.status.code ?? 0).toBe(0);
    expect(res.http_response).toBe('ok_response');
    const ok = res.ok_response!;
    expect(ok.headers?.map((h) => [h.header.key, h.header.value, h.append_action])).toEqual([
      ['x-keygate-key-id', 'key_abc', 'OVERWRITE_IF_EXISTS_OR_ADD'],
      ['x-keygate-owner', 'team-blue', 'OVERWRITE_IF_EXISTS_OR_ADD'],
      ['x-keygate-plan', 'basic', 'OVERWRITE_IF_EXISTS_OR_ADD'],
    ]);
    expect([...(ok.headers_to_remove ?? [])].sort()).toEqual(['x-api-key', 'x-keygate-admin']);
    const responseHeaders = (ok.response_headers_to_add ?? []).map((h) => h.header.key);
    for (const name of ['ratelimit-policy', 'ratelimit', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset']) {
      expect(responseHeaders, name).toContain(name);
    }
    expect(fromStruct(res.dynamic_metadata)).toEqual({ key_id: 'key_abc', owner: 'team-blue', plan: 'basic' });
    expect(JSON.stringify(res)).not.toContain(secret);
    expect(JSON.stringify(res)).not.toContain(deps.digest(secret));
  });

  it('on allow with the key in the URL: the query parameter is removed', async () => {
    deps = { ...deps, config: loadConfig({ KEYGATE_QUERY_PARAM: 'api_key' }) };
    const { secret } = await issue();
    const out = await check(toCheckInput({ attributes: { request: { http: { path: `/o?api_key=${secret}` } } } }), deps);
    expect(overTheWire(toCheckResponse(out)).ok_response?.query_parameters_to_remove).toEqual(['api_key']);
  });

  it('denials carry the key identity in dynamic metadata for the access log, never the secret', async () => {
    const { secret } = await issue({ status: 'disabled' });
    const res = overTheWire(toCheckResponse(await check(toCheckInput({ attributes: { request: { http: { headers: { 'x-api-key': secret } } } } }), deps)));
    expect(fromStruct(res.dynamic_metadata)).toEqual({ reason: 'disabled_api_key', key_id: 'key_abc', owner: 'acme', plan: 'basic' });
    expect(JSON.stringify(res)).not.toContain(secret);
  });

  it('every 401 the Check path produces carries WWW-Authenticate in the Envoy response', async () => {
    const { secret: disabled } = await issue({ status: 'disabled' });
    const inputs: Record<string, string | undefined> = {
      missing: undefined,
      malformed: 'kg_short',
      unknown: generateKey(),
      disabled,
    };
    for (const [label, key] of Object.entries(inputs)) {
      const out = await check(toCheckInput({ attributes: { request: { http: { headers: key ? { 'x-api-key': key } : {} } } } }), deps);
      const res = overTheWire(toCheckResponse(out));
      expect(res.denied_response?.status?.code, label).toBe('Unauthorized');
      expect(headerValues(res.denied_response?.headers, 'www-authenticate')[0], label).toMatch(/^Bearer realm="keygate"/);
    }
  });
});

describe('toCheckResponse for every deny reason', () => {
  const key: KeyRecord = { id: 'key_1', owner: 'acme', plan: 'basic', scopes: [], status: 'active', createdAt: T0, cidrs: [], metadata: {} };
  const outcome = (reason: DenyReason): Denied => ({
    decision: 'deny',
    reason,
    key,
    detail: 'operator-only detail',
    responseHeaders: DENY_REASONS[reason].http === 401 ? [['www-authenticate', 'Bearer realm="keygate"']] : DENY_REASONS[reason].http === 429 ? [['retry-after', '3']] : [],
  });

  for (const reason of ALL_DENY_REASONS) {
    it(`${reason}: HTTP status, gRPC code, JSON body and content-type`, () => {
      const spec = DENY_REASONS[reason];
      const res = toCheckResponse(outcome(reason));
      expect(res.status.code).toBe(spec.grpc);
      expect(res.ok_response).toBeUndefined();
      expect(res.denied_response?.status?.code).toBe(spec.http);
      expect(JSON.parse(res.denied_response!.body!)).toEqual({ error: { code: reason, message: spec.message } });
      expect(headerValues(res.denied_response?.headers, 'content-type')).toEqual(['application/json']);
      expect(res.denied_response?.body).not.toContain('operator-only detail');
      for (const h of res.denied_response?.headers ?? []) expect(h.append_action).toBe('OVERWRITE_IF_EXISTS_OR_ADD');
      // the reason's own headers are kept
      for (const [name, value] of outcome(reason).responseHeaders) expect(headerValues(res.denied_response?.headers, name)).toEqual([value]);
      // and it survives the wire
      const wire = overTheWire(res);
      expect(wire.http_response).toBe('denied_response');
      expect(wire.status.code).toBe(spec.grpc);
      expect(wire.denied_response?.body).toBe(res.denied_response?.body);
    });
  }

  it('a denial without a key has only the reason in its metadata', () => {
    const res = toCheckResponse({ decision: 'deny', reason: 'missing_api_key', responseHeaders: [] });
    expect(fromStruct(res.dynamic_metadata)).toEqual({ reason: 'missing_api_key' });
  });

  it('an allow outcome produces no denied_response and gRPC OK', () => {
    const allow: CheckOutcome = {
      decision: 'allow',
      key,
      plan: 'basic',
      upstreamHeaders: [['x-keygate-key-id', 'key_1']],
      removeHeaders: ['x-api-key'],
      removeQueryParams: [],
      responseHeaders: [['x-ratelimit-limit', '10']],
    };
    const res = toCheckResponse(allow);
    expect(res.status.code).toBe(0);
    expect(res.denied_response).toBeUndefined();
    expect(res.ok_response?.response_headers_to_add).toEqual([{ header: { key: 'x-ratelimit-limit', value: '10' }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' }]);
    expect(res.ok_response?.headers_to_remove).toEqual(['x-api-key']);
  });
});
