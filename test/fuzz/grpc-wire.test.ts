// Bad input on the wire, against a whole keygate on a real gRPC port:
//  1. a few hundred fuzzed CheckRequests (the generators of check-pipeline.test.ts) sent with
//     Envoy's official protos: every one gets a valid CheckResponse (or RESOURCE_EXHAUSTED when
//     it is over the 1 MiB receive limit), nothing is allowed without a valid key;
//  2. malformed gRPC frames written by hand with node:http2 (garbage as the message, a length
//     prefix longer than the body, the compressed flag without compression, a message over the
//     receive limit, truncated prefixes, two messages in a unary call, wrong content-type,
//     unknown methods, resets mid-message, bytes that are not HTTP/2 at all): each gets an error
//     status or a closed connection — never a verdict, never a hang — and after each one a
//     normal Check on a new connection succeeds.
import http2 from 'node:http2';
import net from 'node:net';
import * as fc from 'fast-check';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDigester } from '../../src/keys/digest';
import { generateKey } from '../../src/keys/format';
import type { CreditStore } from '../../src/limits/types';
import { checkRequest, startTestKeygate, type TestKeygate } from '../helpers/keygate';
import { OfficialAuthorizationClient, encodeOfficialCheckRequest, type PlainMessage } from '../helpers/official-protos';
import { FUZZ_ENV, FUZZ_SEED, checkRequestArb, expectValidResponse, makeKeys, seedStore, type StoredKey } from './support';

const GRPC_RUNS = Number(process.env.KEYGATE_FUZZ_GRPC_RUNS ?? 300);
const RECEIVE_LIMIT = 1024 * 1024;
const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

let kg: TestKeygate;
let keys: StoredKey[];

beforeAll(async () => {
  kg = await startTestKeygate({ ...FUZZ_ENV, KEYGATE_LOG_LEVEL: 'warn' });
  keys = makeKeys(Date.now());
  await seedStore(kg.store, keys, makeDigester());
  await (kg.limiter as unknown as CreditStore).setCredits('key_credits', 1_000_000);
});
afterAll(async () => kg?.close());

type AnyClient = grpc.Client & Record<string, any>;

/** A Check on a brand-new connection (so a connection broken by a bad frame cannot be reused). */
async function freshCheck(request: PlainMessage): Promise<PlainMessage> {
  const Client = OfficialAuthorizationClient();
  const client = new Client(`127.0.0.1:${kg.grpcPort}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as AnyClient;
  try {
    return await new Promise((resolve, reject) => {
      client.Check(request, { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, res: PlainMessage) => (err ? reject(err) : resolve(res)));
    });
  } finally {
    client.close();
  }
}

/** keygate still answers: an allowed Check with a stored key on a new connection. */
async function expectServing(): Promise<void> {
  const res = await freshCheck(checkRequest({ headers: { 'x-api-key': keys[0].secret } }));
  expect(res.http_response).toBe('ok_response');
}

describe(`fuzzed CheckRequests over gRPC (${GRPC_RUNS} runs, seed ${FUZZ_SEED})`, () => {
  it('every request gets a valid CheckResponse (or RESOURCE_EXHAUSTED over 1 MiB); the server keeps serving', async () => {
    const unknown = Array.from({ length: 4 }, () => generateKey());
    let verdicts = 0;
    let oversized = 0;
    await fc.assert(
      fc.asyncProperty(checkRequestArb(keys, unknown), async (c) => {
        const size = encodeOfficialCheckRequest(c.request).length;
        try {
          const res = await kg.check(c.request);
          expect(size).toBeLessThanOrEqual(RECEIVE_LIMIT);
          expectValidResponse(res, c, keys);
          verdicts++;
        } catch (err) {
          const e = err as grpc.ServiceError;
          if (size > RECEIVE_LIMIT && e.code === grpc.status.RESOURCE_EXHAUSTED) {
            oversized++;
            return;
          }
          throw err;
        }
      }),
      { numRuns: GRPC_RUNS, seed: FUZZ_SEED + 1, endOnFailure: true },
    );
    expect(verdicts + oversized).toBe(GRPC_RUNS);
    await expectServing();
  }, 120_000);
});

// ---------------------------------------------------------------------------------------
// hand-written frames

interface RawAnswer {
  /** HTTP :status */
  status?: number;
  /** grpc-status from the trailers (or trailers-only headers) */
  grpcStatus?: number;
  grpcMessage?: string;
  /** bytes of response messages (a verdict would be here) */
  body: Buffer;
  /** the stream or session failed instead of answering */
  error?: string;
}

/** Length-prefixed gRPC message: flag byte, 4-byte big-endian length, payload. */
function frame(payload: Buffer, opts: { compressed?: boolean; length?: number } = {}): Buffer {
  const head = Buffer.alloc(5);
  head[0] = opts.compressed ? 1 : 0;
  head.writeUInt32BE(opts.length ?? payload.length, 1);
  return Buffer.concat([head, payload]);
}

/** Sends one raw HTTP/2 request to keygate's gRPC port; resolves with what came back (bounded: 5 s). */
function rawCall(write: (stream: http2.ClientHttp2Stream) => void, headers: http2.OutgoingHttpHeaders = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${kg.grpcPort}`);
    const answer: RawAnswer = { body: Buffer.alloc(0) };
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error('no answer within 5 s'));
    }, 5000);
    const done = () => {
      clearTimeout(timer);
      session.close();
      resolve(answer);
    };
    session.on('error', (err) => {
      answer.error ??= `session: ${err.message}`;
      done();
    });
    const stream = session.request({
      ':method': 'POST',
      ':path': CHECK_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    stream.on('response', (h) => {
      answer.status = Number(h[':status']);
      if (h['grpc-status'] !== undefined) {
        answer.grpcStatus = Number(h['grpc-status']);
        answer.grpcMessage = String(h['grpc-message'] ?? '');
      }
    });
    stream.on('trailers', (t) => {
      if (t['grpc-status'] !== undefined) {
        answer.grpcStatus = Number(t['grpc-status']);
        answer.grpcMessage = String(t['grpc-message'] ?? '');
      }
    });
    stream.on('data', (d: Buffer) => (answer.body = Buffer.concat([answer.body, d])));
    stream.on('error', (err) => (answer.error ??= `stream: ${err.message}`));
    stream.on('close', done);
    write(stream);
  });
}

const goodRequest = () => encodeOfficialCheckRequest(checkRequest({ headers: { 'x-api-key': keys[0].secret } }));

/** An answer that is an error, not a verdict. */
function expectRefused(a: RawAnswer, codes: number[]): void {
  expect(a.body.length, 'no response message').toBe(0);
  if (a.grpcStatus === undefined && codes.includes(-1)) return; // no answer expected
  if (a.error === undefined || a.grpcStatus !== undefined) {
    expect(codes, `grpc-status ${String(a.grpcStatus)} ${a.grpcMessage ?? ''} (HTTP ${String(a.status)})`).toContain(a.grpcStatus);
  }
}

describe('malformed gRPC frames leave the server serving others', () => {
  it('control: a well-formed hand-written frame gets a verdict', async () => {
    const a = await rawCall((s) => s.end(frame(goodRequest())));
    expect(a.grpcStatus).toBe(0);
    expect(a.body.length).toBeGreaterThan(5);
  });

  const cases: [string, (s: http2.ClientHttp2Stream) => void, number[], http2.OutgoingHttpHeaders?][] = [
    ['garbage bytes as the message', (s) => s.end(frame(Buffer.from('\xff\xff\xff\xff\x0f garbage that is no protobuf \x00\x01\x02', 'latin1'))), [grpc.status.INTERNAL]],
    ['random bytes as the message (seeded)', (s) => s.end(frame(Buffer.from(fc.sample(fc.uint8Array({ minLength: 50, maxLength: 50 }), { numRuns: 1, seed: FUZZ_SEED })[0]))), [grpc.status.INTERNAL, grpc.status.OK]],
    // grpc-js ends the call when the stream ends before a whole message: "no request message"
    ['a length prefix longer than the body', (s) => s.end(frame(goodRequest(), { length: goodRequest().length + 100 })), [grpc.status.UNIMPLEMENTED, grpc.status.INTERNAL]],
    ['a truncated prefix (3 of 5 bytes)', (s) => s.end(Buffer.from([0, 0, 0])), [grpc.status.UNIMPLEMENTED, grpc.status.INTERNAL]],
    // grpc-js is lenient with these two: it reads the first whole message (a valid request here)
    // and answers it, ignoring trailing bytes / a compressed flag with the identity encoding
    ['a length prefix shorter than the body (trailing garbage)', (s) => s.end(Buffer.concat([frame(goodRequest()), Buffer.from([1, 2, 3])])), [grpc.status.OK, grpc.status.INTERNAL, grpc.status.UNIMPLEMENTED]],
    ['the compressed flag without any compression', (s) => s.end(frame(goodRequest(), { compressed: true })), [grpc.status.OK, grpc.status.INTERNAL, grpc.status.UNIMPLEMENTED]],
    ['the compressed flag with gzip declared but plain bytes', (s) => s.end(frame(goodRequest(), { compressed: true })), [grpc.status.INTERNAL], { 'grpc-encoding': 'gzip' }],
    ['an unknown message encoding', (s) => s.end(frame(goodRequest(), { compressed: true })), [grpc.status.UNIMPLEMENTED, grpc.status.INTERNAL], { 'grpc-encoding': 'snappy-nonsense' }],
    ['a message over the 1 MiB receive limit', (s) => s.end(frame(Buffer.alloc(RECEIVE_LIMIT + 1024, 0x0a))), [grpc.status.RESOURCE_EXHAUSTED]],
    ['a length prefix of 4 GiB with a tiny body', (s) => s.end(frame(Buffer.from([0x0a, 0x00]), { length: 0xffffffff })), [grpc.status.RESOURCE_EXHAUSTED, grpc.status.INTERNAL]],
    ['no message at all', (s) => s.end(), [grpc.status.INTERNAL, grpc.status.UNIMPLEMENTED]],
    ['two messages in a unary call', (s) => s.end(Buffer.concat([frame(goodRequest()), frame(goodRequest())])), [grpc.status.INTERNAL, grpc.status.UNIMPLEMENTED]],
    // the client gives up: there is nobody to answer (no status is fine), the server must just cope
    ['a reset in the middle of a message', (s) => {
      s.write(frame(goodRequest()).subarray(0, 10));
      setImmediate(() => s.close(http2.constants.NGHTTP2_CANCEL));
    }, [grpc.status.CANCELLED, -1]],
    ['a bad grpc-timeout', (s) => s.end(frame(goodRequest())), [grpc.status.OK, grpc.status.INTERNAL, grpc.status.INVALID_ARGUMENT], { 'grpc-timeout': 'soon' }],
    ['a huge request header', (s) => s.end(frame(goodRequest())), [grpc.status.OK, grpc.status.INTERNAL, grpc.status.RESOURCE_EXHAUSTED], { 'x-big': 'b'.repeat(12_000) }],
  ];

  for (const [name, write, codes, headers] of cases) {
    it(`${name}: an error status, no verdict, then a normal Check succeeds`, async () => {
      const a = await rawCall(write, headers);
      if (a.grpcStatus === grpc.status.OK) {
        // tolerated only where a whole valid request was sent: then it is its real verdict
        expect(codes).toContain(grpc.status.OK);
        expect(a.body.length).toBeGreaterThan(5);
      } else {
        expectRefused(a, codes);
      }
      await expectServing();
    });
  }

  it('a wrong content-type is refused (415 or an error status) and the server keeps serving', async () => {
    const a = await rawCall((s) => s.end(frame(goodRequest())), { 'content-type': 'text/plain' });
    expect(a.body.length).toBe(0);
    expect(a.status === 415 || (a.grpcStatus !== undefined && a.grpcStatus !== 0) || a.error !== undefined).toBe(true);
    await expectServing();
  });

  it('an unknown method gets UNIMPLEMENTED', async () => {
    const a = await rawCall((s) => s.end(frame(goodRequest())), { ':path': '/envoy.service.auth.v3.Authorization/Nope' });
    expect(a.grpcStatus).toBe(grpc.status.UNIMPLEMENTED);
    await expectServing();
  });

  it('bytes that are not HTTP/2 at all close that connection only', async () => {
    for (const bytes of [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.from(fc.sample(fc.uint8Array({ minLength: 200, maxLength: 200 }), { numRuns: 1, seed: FUZZ_SEED })[0]), Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x04\x09\x00\x00\x00\x00\x00garbage', 'latin1')]) {
      await new Promise<void>((resolve, reject) => {
        const sock = net.connect(kg.grpcPort, '127.0.0.1');
        const timer = setTimeout(() => {
          sock.destroy();
          reject(new Error('the connection stayed open for 5 s'));
        }, 5000);
        sock.on('connect', () => sock.write(bytes));
        sock.on('data', () => {});
        sock.on('error', () => {});
        sock.on('close', () => {
          clearTimeout(timer);
          resolve();
        });
      });
      await expectServing();
    }
  });

  it('many bad streams on one connection, then good ones on the same connection', async () => {
    const session = http2.connect(`http://127.0.0.1:${kg.grpcPort}`);
    session.on('error', () => {});
    const call = (body: Buffer) =>
      new Promise<number | undefined>((resolve) => {
        const s = session.request({ ':method': 'POST', ':path': CHECK_PATH, 'content-type': 'application/grpc', te: 'trailers' });
        let status: number | undefined;
        s.on('response', (h) => h['grpc-status'] !== undefined && (status = Number(h['grpc-status'])));
        s.on('trailers', (t) => (status = Number(t['grpc-status'])));
        s.on('data', () => {});
        s.on('error', () => {});
        s.on('close', () => resolve(status));
        s.end(body);
      });
    try {
      const bad = await Promise.all(
        Array.from({ length: 60 }, (_, i) => call([frame(Buffer.from('garbage')), frame(goodRequest(), { length: 0xffffffff }), Buffer.from([0, 0])][i % 3])),
      );
      for (const s of bad) expect(s).not.toBe(0);
      const good = await Promise.all(Array.from({ length: 5 }, () => call(frame(goodRequest()))));
      expect(good).toEqual([0, 0, 0, 0, 0]);
    } finally {
      session.close();
    }
  });
});
