// encodeCheckResponse (the hand-written CheckResponse encoder of the hot path) writes what the
// protobufjs path writes: decoded with Envoy's OFFICIAL protos, its bytes give exactly the object
// that toCheckResponse + responseSerialize give, for random outcomes (fast-check) and for every
// deny reason; plus readable examples of the fields an Envoy operator relies on.
import { isUtf8 } from 'node:buffer';
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CheckOutcome } from '../../../src/check/check';
import type { HeaderPair } from '../../../src/check/ratelimit-headers';
import { ALL_DENY_REASONS, DENY_REASONS, type DenyReason } from '../../../src/check/reasons';
import { fromStruct, loadKeygateProtos, type CheckResponseObject, type StructObject } from '../../../src/grpc/protos';
import { encodeCheckResponse } from '../../../src/grpc/response-encoder';
import { toCheckResponse } from '../../../src/grpc/response';
import type { KeyRecord } from '../../../src/keys/types';
import { decodeOfficialCheckResponse, type PlainMessage } from '../../helpers/official-protos';

const RUNS = Number(process.env.KEYGATE_ENCODER_RUNS ?? 500);
const SEED = Number(process.env.KEYGATE_FUZZ_SEED ?? 20260126);

/** The current path: toCheckResponse, then proto-loader's (protobufjs) serializer. */
function protobufjsBytes(outcome: CheckOutcome): Buffer {
  const check = loadKeygateProtos().authorizationService.Check!;
  return check.responseSerialize(toCheckResponse(outcome) as never);
}

const decode = (bytes: Buffer): PlainMessage => decodeOfficialCheckResponse(bytes);

function keyRecord(id: string, owner: string, plan: string): KeyRecord {
  return { id, owner, plan, scopes: ['*'], status: 'active', createdAt: 0, cidrs: [], metadata: {} };
}

function expectSameDecoded(outcome: CheckOutcome): void {
  const ours = encodeCheckResponse(outcome);
  expect(decode(ours)).toEqual(decode(protobufjsBytes(outcome)));
}

// ---------------------------------------------------------------------------------------
// Generators.

/** Well-formed strings of every kind a header or a key field may hold. */
const text: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 24 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
  // around the encoder's short/long string thresholds, and lengths needing 2-byte varints
  { weight: 1, arbitrary: fc.string({ minLength: 40, maxLength: 200 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 30, maxLength: 120 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom('', ' ', 'x-keygate-key-id', 'héllo wörld', '日本語のキー', '🔑🔑', 'a'.repeat(127), 'é'.repeat(64)),
  },
);

const headers: fc.Arbitrary<HeaderPair[]> = fc.array(fc.tuple(text, text), { maxLength: 6 });
const names: fc.Arbitrary<string[]> = fc.array(text, { maxLength: 4 });

type Step =
  | { kind: 'allow'; key: number; ownPlan: boolean; plan: string; up: HeaderPair[]; rm: string[]; resp: HeaderPair[]; rq: string[] }
  | { kind: 'deny'; key: number | null; reason: DenyReason; resp: HeaderPair[] }
  | { kind: 'mutate'; key: number; field: 'id' | 'owner' | 'plan'; value: string };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('allow' as const),
      key: fc.nat(2),
      ownPlan: fc.boolean(),
      plan: text,
      up: headers,
      rm: names,
      resp: headers,
      rq: names,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('deny' as const),
      key: fc.option(fc.nat(2)),
      reason: fc.constantFrom(...ALL_DENY_REASONS),
      resp: headers,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('mutate' as const),
      key: fc.nat(2),
      field: fc.constantFrom('id' as const, 'owner' as const, 'plan' as const),
      value: text,
    }),
  },
);

/**
 * A few key records and a sequence of Checks on them: the same record object comes back (as it
 * does from the key cache), so the encoder's per-key cache is hit, and records are changed in
 * place in between, which must not serve stale metadata.
 */
const scenario = fc.record({
  keys: fc.array(fc.tuple(text, text, text), { minLength: 3, maxLength: 3 }),
  steps: fc.array(step, { minLength: 1, maxLength: 6 }),
});

function* outcomes(s: { keys: [string, string, string][]; steps: Step[] }): Generator<CheckOutcome> {
  const keys = s.keys.map(([id, owner, plan]) => keyRecord(id, owner, plan));
  for (const st of s.steps) {
    if (st.kind === 'mutate') {
      keys[st.key]![st.field] = st.value;
    } else if (st.kind === 'allow') {
      const key = keys[st.key]!;
      yield {
        decision: 'allow',
        key,
        plan: st.ownPlan ? key.plan : st.plan,
        upstreamHeaders: st.up,
        removeHeaders: st.rm,
        responseHeaders: st.resp,
        removeQueryParams: st.rq,
      };
    } else {
      yield {
        decision: 'deny',
        reason: st.reason,
        ...(st.key === null ? {} : { key: keys[st.key]! }),
        responseHeaders: st.resp,
      };
    }
  }
}

// ---------------------------------------------------------------------------------------

describe('encodeCheckResponse: the same CheckResponse as toCheckResponse + protobufjs', () => {
  it('random allows and denies decode (official protos) to the same object', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        for (const outcome of outcomes(s)) expectSameDecoded(outcome);
      }),
      { numRuns: RUNS, seed: SEED },
    );
  });

  it('every deny reason, with and without a key, with and without response headers', () => {
    const key = keyRecord('key_0123', 'acme', 'pro');
    for (const reason of ALL_DENY_REASONS) {
      for (const withKey of [false, true]) {
        for (const responseHeaders of [[], [['retry-after', '3'], ['www-authenticate', 'ApiKey realm="api"'], ['x-empty', '']]] as HeaderPair[][]) {
          const outcome: CheckOutcome = { decision: 'deny', reason, responseHeaders, ...(withKey ? { key } : {}) };
          expectSameDecoded(outcome);
        }
      }
    }
  });

  it('an allow with nothing to change still carries an (empty) ok_response and status code 0', () => {
    const outcome: CheckOutcome = {
      decision: 'allow',
      key: keyRecord('', '', ''),
      plan: '',
      upstreamHeaders: [],
      removeHeaders: [],
      responseHeaders: [],
      removeQueryParams: [],
    };
    expectSameDecoded(outcome);
    expect(decode(encodeCheckResponse(outcome))).toMatchObject({ status: { code: 0 }, ok_response: {}, http_response: 'ok_response' });
  });

  it('large values (multi-byte length prefixes, a response over 64 KiB)', () => {
    const big = 'v'.repeat(70_000);
    const outcome: CheckOutcome = {
      decision: 'allow',
      key: keyRecord('k'.repeat(300), 'ö'.repeat(5_000), 'p'),
      plan: 'p',
      upstreamHeaders: [['x-big', big], ['x-é', 'ü'.repeat(20_000)]],
      removeHeaders: ['r'.repeat(200)],
      responseHeaders: [['ratelimit', '🔑'.repeat(4_000)]],
      removeQueryParams: ['q'.repeat(20_000)],
    };
    expectSameDecoded(outcome);
    expectSameDecoded({ decision: 'deny', reason: 'rate_limited', key: outcome.key, responseHeaders: outcome.upstreamHeaders });
  });

  it('a key record changed in place gets fresh dynamic_metadata', () => {
    const key = keyRecord('key_a', 'alice', 'free');
    const allow = (plan: string): CheckOutcome => ({
      decision: 'allow',
      key,
      plan,
      upstreamHeaders: [],
      removeHeaders: [],
      responseHeaders: [],
      removeQueryParams: [],
    });
    const meta = (o: CheckOutcome) => fromStruct(decode(encodeCheckResponse(o)).dynamic_metadata as StructObject);
    expect(meta(allow('free'))).toEqual({ key_id: 'key_a', owner: 'alice', plan: 'free' });
    key.owner = 'bob';
    expect(meta(allow('free'))).toEqual({ key_id: 'key_a', owner: 'bob', plan: 'free' });
    key.id = 'key_b';
    expect(meta(allow('free'))).toEqual({ key_id: 'key_b', owner: 'bob', plan: 'free' });
    expect(meta(allow('pro'))).toEqual({ key_id: 'key_b', owner: 'bob', plan: 'pro' });
    // a deny names key.plan, whatever the last allow's plan was
    expect(meta({ decision: 'deny', reason: 'quota_exceeded', key, responseHeaders: [] })).toEqual({
      reason: 'quota_exceeded',
      key_id: 'key_b',
      owner: 'bob',
      plan: 'free',
    });
  });

  it('lone surrogates become U+FFFD (valid UTF-8), where protobufjs writes invalid UTF-8 for short strings', () => {
    const wellFormed = (s: string) => s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
    const anyUnits = fc.string({ unit: fc.oneof(fc.constantFrom('\uD800', '\uDBFF', '\uDC00', '\uDFFF'), fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })), maxLength: 50 });
    fc.assert(
      fc.property(anyUnits, anyUnits, anyUnits, (a, b, c) => {
        const key = keyRecord(a, b, c);
        const outcome: CheckOutcome = {
          decision: 'allow',
          key,
          plan: c,
          upstreamHeaders: [[a, b]],
          removeHeaders: [c],
          responseHeaders: [[b, c]],
          removeQueryParams: [a],
        };
        const bytes = encodeCheckResponse(outcome);
        const decoded = decode(bytes);
        const normalised: CheckOutcome = {
          ...outcome,
          key: keyRecord(wellFormed(a), wellFormed(b), wellFormed(c)),
          plan: wellFormed(c),
          upstreamHeaders: [[wellFormed(a), wellFormed(b)]],
          removeHeaders: [wellFormed(c)],
          responseHeaders: [[wellFormed(b), wellFormed(c)]],
          removeQueryParams: [wellFormed(a)],
        };
        expect(decoded).toEqual(decode(protobufjsBytes(normalised)));
        // byte for byte what the well-formed strings give: every string field is valid UTF-8
        expect(bytes.equals(encodeCheckResponse(normalised))).toBe(true);
      }),
      { numRuns: 200, seed: SEED },
    );
    // the difference, concretely: a short value with a lone surrogate
    const outcome: CheckOutcome = { decision: 'deny', reason: 'invalid_api_key', responseHeaders: [['x', 'a\uD800b']] };
    const header = (bytes: Buffer) => ((decode(bytes).denied_response as PlainMessage).headers as PlainMessage[])[1]!.header;
    const ours = encodeCheckResponse(outcome);
    expect(header(ours)).toEqual({ key: 'x', value: 'a\uFFFDb' });
    expect(ours.includes(Buffer.from([0x61, 0xef, 0xbf, 0xbd, 0x62]))).toBe(true); // a U+FFFD b
    const cesu = Buffer.from([0x61, 0xed, 0xa0, 0x80, 0x62]); // a, D800 as 3 bytes, b: not UTF-8
    expect(isUtf8(cesu)).toBe(false);
    expect(protobufjsBytes(outcome).includes(cesu)).toBe(true);
    expect(header(protobufjsBytes(outcome))).toEqual({ key: 'x', value: 'a\uFFFD\uFFFD\uFFFDb' });
  });
});

describe('encodeCheckResponse: what Envoy reads', () => {
  it('an allow: identity headers overwrite, key header and parameter removed, rate-limit headers to the client', () => {
    const key = keyRecord('key_7f3a', 'acme-corp', 'pro');
    const outcome: CheckOutcome = {
      decision: 'allow',
      key,
      plan: 'pro',
      upstreamHeaders: [
        ['x-keygate-key-id', 'key_7f3a'],
        ['x-keygate-owner', 'acme-corp'],
        ['x-keygate-plan', 'pro'],
      ],
      removeHeaders: ['x-api-key', 'x-keygate-owner'],
      removeQueryParams: ['api_key'],
      responseHeaders: [
        ['ratelimit-policy', '"100/min";q=100;w=60'],
        ['ratelimit', '"100/min";r=99;t=60'],
        ['x-ratelimit-limit', '100'],
        ['x-ratelimit-remaining', '99'],
        ['x-ratelimit-reset', '60'],
      ],
    };
    const bytes = encodeCheckResponse(outcome);
    const r = decode(bytes);
    const overwrite = ([k, v]: HeaderPair) => ({ header: { key: k, value: v }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' });
    expect(r).toEqual({
      status: { code: 0 },
      http_response: 'ok_response',
      ok_response: {
        headers: outcome.upstreamHeaders.map(overwrite),
        headers_to_remove: ['x-api-key', 'x-keygate-owner'],
        response_headers_to_add: outcome.responseHeaders.map(overwrite),
        query_parameters_to_remove: ['api_key'],
      },
      dynamic_metadata: {
        fields: {
          key_id: { stringValue: 'key_7f3a', kind: 'stringValue' },
          owner: { stringValue: 'acme-corp', kind: 'stringValue' },
          plan: { stringValue: 'pro', kind: 'stringValue' },
        },
      },
    });
    // keygate's own protos (what keygate-admin check uses) read it the same way
    const own = loadKeygateProtos().authorizationService.Check!.responseDeserialize(bytes) as CheckResponseObject;
    expect(fromStruct(own.dynamic_metadata)).toEqual({ key_id: 'key_7f3a', owner: 'acme-corp', plan: 'pro' });
    expect(bytes.equals(encodeCheckResponse(outcome))).toBe(true);
  });

  it('a 429 rate_limited deny: gRPC RESOURCE_EXHAUSTED, HTTP 429, JSON body, Retry-After and metadata', () => {
    const key = keyRecord('key_7f3a', 'acme-corp', 'pro');
    const outcome: CheckOutcome = {
      decision: 'deny',
      reason: 'rate_limited',
      key,
      retryAfterSeconds: 12,
      responseHeaders: [
        ['retry-after', '12'],
        ['ratelimit-policy', '"100/min";q=100;w=60'],
        ['ratelimit', '"100/min";r=0;t=12'],
      ],
    };
    const r = decode(encodeCheckResponse(outcome));
    expect(r.status).toEqual({ code: 8, message: 'rate_limited' });
    expect(r.http_response).toBe('denied_response');
    expect(r.ok_response).toBeUndefined();
    const denied = r.denied_response as { status: unknown; headers: { header: { key: string; value: string }; append_action: string }[]; body: string };
    expect(denied.status).toEqual({ code: 'TooManyRequests' });
    expect(denied.headers.map((h) => [h.header.key, h.header.value])).toEqual([['content-type', 'application/json'], ...outcome.responseHeaders]);
    expect(new Set(denied.headers.map((h) => h.append_action))).toEqual(new Set(['OVERWRITE_IF_EXISTS_OR_ADD']));
    expect(JSON.parse(denied.body)).toEqual({ error: { code: 'rate_limited', message: DENY_REASONS.rate_limited.message } });
    expect(fromStruct(r.dynamic_metadata as StructObject)).toEqual({ reason: 'rate_limited', key_id: 'key_7f3a', owner: 'acme-corp', plan: 'pro' });
  });

  it('a deny without a key: only the reason in dynamic_metadata; 401 with WWW-Authenticate', () => {
    const r = decode(encodeCheckResponse({ decision: 'deny', reason: 'missing_api_key', responseHeaders: [['www-authenticate', 'ApiKey realm="keygate"']] }));
    expect(r.status).toEqual({ code: 16, message: 'missing_api_key' });
    expect((r.denied_response as PlainMessage).status).toEqual({ code: 'Unauthorized' });
    expect(fromStruct(r.dynamic_metadata as StructObject)).toEqual({ reason: 'missing_api_key' });
  });
});
