// decodeCheckInput (the Check path's one-pass decoder, which reads only what keygate uses) gives
// exactly the CheckInput that toCheckInput makes of proto-loader's full decode of the same bytes.
import type * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { loadKeygateProtos, toStruct, type CheckRequestObject, type CheckResponseObject } from '../../../src/grpc/protos';
import { decodeCheckInput, toCheckInput } from '../../../src/grpc/request';

function checkMethod(): grpc.MethodDefinition<CheckRequestObject, CheckResponseObject> {
  return (loadKeygateProtos().authorizationService as Record<string, grpc.MethodDefinition<CheckRequestObject, CheckResponseObject>>).Check;
}

function bothWays(buf: Buffer): { full: unknown; lean: unknown } {
  const m = checkMethod();
  let full: unknown;
  let lean: unknown;
  try {
    full = toCheckInput(m.requestDeserialize(buf));
  } catch {
    full = 'throws';
  }
  try {
    lean = decodeCheckInput(buf);
  } catch {
    lean = 'throws';
  }
  return { full, lean };
}

const REQUESTS: CheckRequestObject[] = [
  {},
  { attributes: {} },
  {
    attributes: {
      source: { address: { socket_address: { address: '10.1.2.3', port_value: 4242 } }, principal: 'spiffe://x' },
      destination: { address: { socket_address: { address: '10.0.0.5', port_value: 8080 } } },
      request: {
        time: { seconds: '1767225600', nanos: 5 },
        http: {
          id: 'req-1',
          method: 'GET',
          path: '/v1/orders?api_key=kg_x&b=2',
          host: 'api.example.com',
          scheme: 'https',
          protocol: 'HTTP/1.1',
          size: '-1',
          body: 'hello',
          raw_body: Buffer.from([0, 1, 2]),
          headers: { ':path': '/v1/orders', 'x-api-key': 'kg_abc', 'x-keygate-owner': 'me', '': '' },
        },
      },
      context_extensions: { 'keygate.scope': 'orders:read', 'keygate.cost': '3', other: '' },
      metadata_context: { filter_metadata: { a: toStruct({ b: 1, c: 'd', e: [true, null] }) } },
      tls_session: { sni: 'api.example.com' },
    },
  },
  {
    attributes: {
      source: { address: { pipe: { path: '/tmp/s' } } },
      request: {
        http: {
          header_map: {
            headers: [
              { key: ':authority', raw_value: Buffer.from('api.example.com') },
              { key: 'X-Api-Key', raw_value: Buffer.from([0x6b, 0x67, 0xff, 0xfe]) },
              { key: 'x-api-key', value: 'second' },
              { key: 'x-empty', raw_value: Buffer.alloc(0) },
              { key: 'x-keygate-plan', raw_value: Buffer.from('free') },
              { value: 'nameless' },
              { key: 'ünïcode', raw_value: Buffer.from('väl', 'utf8') },
            ],
          },
          headers: { 'x-ignored': 'because header_map is set' },
        },
      },
    },
  },
  { attributes: { request: { http: { header_map: { headers: [] }, headers: { 'x-api-key': 'kg_map' } } } } },
  { attributes: { request: { http: { header_map: {} } } } },
];

describe('decodeCheckInput', () => {
  it('gives toCheckInput what the full proto-loader decode gives it', () => {
    const m = checkMethod();
    for (const req of REQUESTS) {
      const { full, lean } = bothWays(m.requestSerialize(req));
      expect(lean).toEqual(full);
    }
  });

  it('a field sent twice: the last one wins, as with protobufjs; repeated and map fields add up', () => {
    const m = checkMethod();
    const a = m.requestSerialize({ attributes: { request: { http: { path: '/a', headers: { x: '1' } } }, context_extensions: { k: 'v1' } } });
    const b = m.requestSerialize({ attributes: { request: { http: { path: '/b', headers: { y: '2' } } }, context_extensions: { k: 'v2' } } });
    const { full, lean } = bothWays(Buffer.concat([a, b]));
    expect(lean).toEqual(full);
  });

  it('agrees with the full decode on truncated and mutated messages (both reject or both read the same)', () => {
    const m = checkMethod();
    const base = m.requestSerialize(REQUESTS[2]);
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
    for (let cut = 0; cut < base.length; cut += 3) {
      const { full, lean } = bothWays(base.subarray(0, cut));
      if (full !== 'throws') expect(lean).toEqual(full);
    }
    for (let i = 0; i < 300; i++) {
      const buf = Buffer.from(base);
      buf[Math.floor(rand() * buf.length)] = Math.floor(rand() * 256);
      const { full, lean } = bothWays(buf);
      // The lean decoder does not read fields keygate ignores, so it may accept a message whose
      // ignored part is malformed; whatever both read must agree.
      if (full !== 'throws' && lean !== 'throws') expect(lean).toEqual(full);
    }
  });
});
