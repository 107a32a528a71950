// keygate's gRPC server on node:http2 (src/grpc/h2-server.ts), driven by real grpc-js clients and
// raw HTTP/2 requests over loopback: what an Envoy or grpc-js client relies on besides the Check
// itself (compressed requests, deadlines, status details, cancellation, drain). Malformed frames
// and oversized messages are in test/fuzz/grpc-wire.test.ts.
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { GrpcStatus, H2GrpcServer, parseGrpcTimeout, percentEncodeGrpcMessage, type UnaryCall } from '../../../src/grpc/h2-server';

const ECHO = '/test.Echo/Say';
const identity = (b: Buffer) => b;

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup.reverse()) c();
  cleanup = [];
});

async function serve(handle: (call: UnaryCall) => void): Promise<{ server: H2GrpcServer; port: number }> {
  const server = new H2GrpcServer({ maxReceiveBytes: 64 * 1024 });
  server.addMethod(ECHO, { kind: 'unary', handle });
  const port = await server.listen('127.0.0.1', 0);
  cleanup.push(() => server.forceShutdown());
  return { server, port };
}

function client(port: number, options: grpc.ChannelOptions = {}): grpc.Client {
  const c = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options);
  cleanup.push(() => c.close());
  return c;
}

function call(c: grpc.Client, message: Buffer, opts: { path?: string; deadlineMs?: number } = {}): Promise<{ err: grpc.ServiceError | null; reply?: Buffer }> {
  return new Promise((resolve) => {
    const options: grpc.CallOptions = opts.deadlineMs === undefined ? {} : { deadline: Date.now() + opts.deadlineMs };
    c.makeUnaryRequest(opts.path ?? ECHO, identity, identity, message, new grpc.Metadata(), options, (err, reply) => resolve({ err, reply }));
  });
}

function rawRequest(port: number, headers: http2.OutgoingHttpHeaders): Promise<http2.IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const req = session.request(headers);
    req.on('response', (h) => {
      req.resume();
      req.on('end', () => {
        session.close();
        resolve(h);
      });
    });
    req.on('error', reject);
    req.end();
  });
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => resolve(true));
    session.on('connect', () => {
      session.destroy();
      resolve(false);
    });
  });
}

describe('H2GrpcServer', () => {
  it('answers a unary call; a gzip-compressed request (grpc-js with default compression) is decompressed', async () => {
    const { port } = await serve((c) => c.reply(Buffer.concat([Buffer.from('echo:'), c.message])));
    const plain = await call(client(port), Buffer.from('hello'));
    expect(plain.err).toBeNull();
    expect(plain.reply?.toString()).toBe('echo:hello');
    // 2 = gzip; grpc-js compresses messages it sends on this channel
    const gz = await call(client(port, { 'grpc.default_compression_algorithm': 2 }), Buffer.alloc(2000, 'z'));
    expect(gz.err).toBeNull();
    expect(gz.reply?.toString()).toBe(`echo:${'z'.repeat(2000)}`);
  });

  it("gives the handler the caller's deadline (grpc-timeout) in performance.now() time", async () => {
    let seen = NaN;
    const { port } = await serve((c) => {
      seen = c.deadlineAt - performance.now();
      c.reply(Buffer.alloc(0));
    });
    await call(client(port), Buffer.from('x'), { deadlineMs: 5000 });
    expect(seen).toBeGreaterThan(4000);
    expect(seen).toBeLessThanOrEqual(5000);
    await call(client(port), Buffer.from('x'));
    expect(seen).toBe(Infinity);
  });

  it('sends status and details; details outside printable ASCII survive (percent-encoding)', async () => {
    const details = 'refusé: 100 % sûr — ключ';
    const { port } = await serve((c) => c.fail(GrpcStatus.UNAVAILABLE, details));
    const { err } = await call(client(port), Buffer.from('x'));
    expect(err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(err?.details).toBe(details);
    expect(percentEncodeGrpcMessage('plain text')).toBe('plain text');
    expect(percentEncodeGrpcMessage('50%')).toBe('50%25');
  });

  it('an unknown method is UNIMPLEMENTED; a non-gRPC or non-POST request gets HTTP 415 / 405', async () => {
    const { port } = await serve((c) => c.reply(Buffer.alloc(0)));
    const { err } = await call(client(port), Buffer.from('x'), { path: '/test.Echo/Nope' });
    expect(err?.code).toBe(grpc.status.UNIMPLEMENTED);
    expect((await rawRequest(port, { ':method': 'POST', ':path': ECHO, 'content-type': 'application/json' }))[':status']).toBe(415);
    expect((await rawRequest(port, { ':method': 'GET', ':path': ECHO, 'content-type': 'application/grpc' }))[':status']).toBe(405);
  });

  it('parses grpc-timeout units and refuses a malformed one', () => {
    expect(parseGrpcTimeout('150m')).toBe(150);
    expect(parseGrpcTimeout('2S')).toBe(2000);
    expect(parseGrpcTimeout('1M')).toBe(60_000);
    expect(parseGrpcTimeout('1H')).toBe(3_600_000);
    expect(parseGrpcTimeout('2500u')).toBe(2.5);
    expect(parseGrpcTimeout('123456789m')).toBeUndefined(); // more than 8 digits
    expect(parseGrpcTimeout('soon')).toBeUndefined();
    expect(parseGrpcTimeout('10')).toBeUndefined();
  });

  it('a call the client cancels is marked cancelled, and answering it later is harmless', async () => {
    let held: UnaryCall | undefined;
    const { port } = await serve((c) => (held = c));
    const c = client(port);
    const pending = new Promise<grpc.ServiceError | null>((resolve) => {
      const req = c.makeUnaryRequest(ECHO, identity, identity, Buffer.from('x'), (err) => resolve(err));
      const started = setInterval(() => {
        if (held) {
          clearInterval(started);
          req.cancel();
        }
      }, 2);
    });
    expect((await pending)?.code).toBe(grpc.status.CANCELLED);
    await expect.poll(() => held?.cancelled()).toBe(true);
    expect(() => held!.reply(Buffer.from('late'))).not.toThrow();
    // the server keeps serving
    let answered = 0;
    held = undefined;
    const next = await serve((c2) => {
      answered++;
      c2.reply(Buffer.from('ok'));
    });
    expect((await call(client(next.port), Buffer.from('x'))).reply?.toString()).toBe('ok');
    expect(answered).toBe(1);
  });

  it('tryShutdown lets a call in flight finish, then closes; forceShutdown ends calls in flight with an error', async () => {
    let held: UnaryCall | undefined;
    const { server, port } = await serve((c) => (held = c));
    const c = client(port);
    const inFlight = call(c, Buffer.from('x'));
    await expect.poll(() => held !== undefined).toBe(true);
    let closed = false;
    server.tryShutdown(() => (closed = true));
    // the listener is closed at once (a new connection is refused) but the server is not done:
    await expect.poll(() => refused(port)).toBe(true);
    expect(closed).toBe(false); // it waits for the call in flight
    held!.reply(Buffer.from('finished'));
    expect((await inFlight).reply?.toString()).toBe('finished');
    await expect.poll(() => closed).toBe(true);

    held = undefined;
    const second = await serve((c2) => (held = c2));
    const cut = call(client(second.port), Buffer.from('x'));
    await expect.poll(() => held !== undefined).toBe(true);
    second.server.forceShutdown();
    const { err } = await cut;
    expect(err).not.toBeNull();
    expect(err?.code).not.toBe(grpc.status.OK);
  });
});
