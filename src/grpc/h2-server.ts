// A small gRPC server on node:http2 for the methods keygate serves: unary ones
// (Authorization/Check, Health/Check) and one server-streaming one (Health/Watch).
//
// Why not grpc-js's server: on the 2-core machines keygate is measured on, a grpc-js server that
// answers every Check with a constant does ~6k req/s, the same on node:http2 with the framing
// below ~18k req/s (BENCHMARKS.md). Envoy waits for keygate on every request, so that share is
// everyone's latency. grpc-js stays what keygate's clients use (keygate-admin check, the tests).
//
// What it implements of gRPC over HTTP/2 (grpc/grpc doc/PROTOCOL-HTTP2.md):
// - requests: POST, content-type application/grpc[+proto|;...] (else HTTP 405 / 415), one
//   length-prefixed message (1-byte compressed flag, 4-byte big-endian length); compressed with
//   the grpc-encoding gzip or deflate, or identity; grpc-timeout → the call's deadline;
// - answers: HTTP 200 headers, the message, trailers grpc-status (+ grpc-message,
//   percent-encoded); a failure before any message is a trailers-only answer;
// - refusals: unknown method UNIMPLEMENTED; a message over the receive limit RESOURCE_EXHAUSTED
//   (the rest of its body is read and dropped, never buffered); a truncated or second message,
//   or a compressed flag without an encoding, INTERNAL; an unknown encoding UNIMPLEMENTED; a bad
//   grpc-timeout INVALID_ARGUMENT;
// - a call the client cancels (RST_STREAM) is marked cancelled and nothing more is written;
// - TLS and mTLS (ALPN h2 only); graceful shutdown (GOAWAY, in-flight calls finish) and forced
//   shutdown (connections destroyed).
// No socket, session or stream error ever reaches the process as an uncaught exception.
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import * as zlib from 'node:zlib';

/** gRPC status codes this server sends. */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** Default receive limit of one request message, bytes (as grpc-js: 4 MiB; keygate sets 1 MiB). */
export const DEFAULT_MAX_RECEIVE_BYTES = 4 * 1024 * 1024;

/** One call: its request message and deadline; answered through UnaryCall or StreamingCall. */
export interface ServerCall {
  /** the request message (decompressed), protobuf bytes */
  readonly message: Buffer;
  /** the caller's deadline (grpc-timeout) in performance.now() milliseconds; Infinity without one */
  readonly deadlineAt: number;
  /** true once the client cancelled the call or the connection went away */
  cancelled(): boolean;
}

export interface UnaryCall extends ServerCall {
  /** Answers with one message (protobuf bytes) and status OK. Only the first answer counts. */
  reply(message: Buffer): void;
  /** Answers with an error status. Only the first answer counts. */
  fail(code: number, details: string): void;
}

export interface StreamingCall extends ServerCall {
  /** Sends one message (protobuf bytes). */
  write(message: Buffer): void;
  /** Ends the call with a status (default OK). */
  end(code?: number, details?: string): void;
  /** Called once when the call is over (ended, cancelled, or the connection closed). */
  onClose(listener: () => void): void;
}

export type MethodHandler =
  | { kind: 'unary'; handle: (call: UnaryCall) => void }
  | { kind: 'server-stream'; handle: (call: StreamingCall) => void };

/** TLS for the listener: a certificate and key; with a client CA, clients must present a certificate it signed (mTLS). */
export interface ListenerTls {
  cert: Buffer;
  key: Buffer;
  clientCa?: Buffer;
}

export interface H2GrpcServerOptions {
  /** largest request message accepted, bytes; default DEFAULT_MAX_RECEIVE_BYTES */
  maxReceiveBytes?: number;
}

const RESPONSE_HEADERS: http2.OutgoingHttpHeaders = {
  ':status': 200,
  'content-type': 'application/grpc+proto',
  'grpc-accept-encoding': 'identity,deflate,gzip',
};
const OK_TRAILERS: http2.OutgoingHttpHeaders = { 'grpc-status': '0' };
const RESPOND_WITH_TRAILERS: http2.ServerStreamResponseOptions = { waitForTrailers: true, sendDate: false } as http2.ServerStreamResponseOptions;
const RESPOND_AND_END: http2.ServerStreamResponseOptions = { endStream: true, sendDate: false } as http2.ServerStreamResponseOptions;

function ignoreError(): void {}

/** 'wantTrailers' listener of a unary call answered OK (`this` is the stream): no closure per call. */
function sendOkTrailers(this: http2.ServerHttp2Stream): void {
  try {
    this.sendTrailers(OK_TRAILERS);
  } catch {
    // the stream went away in between
  }
}

/** grpc-message is percent-encoded: bytes outside printable ASCII, and '%'. */
export function percentEncodeGrpcMessage(message: string): string {
  if (/^[\x20-\x24\x26-\x7e]*$/.test(message)) return message;
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** grpc-timeout ("100m", "2S", up to 8 digits and a unit) → milliseconds; undefined when malformed. */
export function parseGrpcTimeout(value: string): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  return m ? Number(m[1]) * TIMEOUT_UNIT_MS[m[2]] : undefined;
}

/** The gRPC frame of one message: flag 0 (not compressed), 4-byte length, the bytes. */
function frame(message: Buffer): Buffer {
  const framed = Buffer.allocUnsafe(5 + message.length);
  framed[0] = 0;
  framed.writeUInt32BE(message.length, 1);
  message.copy(framed, 5);
  return framed;
}

/** Answers a call that has sent nothing yet with a status only (trailers-only response). */
function trailersOnly(stream: http2.ServerHttp2Stream, code: number, details: string): void {
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  try {
    stream.respond(
      {
        ...RESPONSE_HEADERS,
        'grpc-status': String(code),
        ...(details && { 'grpc-message': percentEncodeGrpcMessage(details) }),
      },
      RESPOND_AND_END,
    );
  } catch {
    // the stream went away in between
  }
}

class Call implements UnaryCall, StreamingCall {
  private answered = false;
  private closeListeners: (() => void)[] | undefined;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    readonly message: Buffer,
    readonly deadlineAt: number,
  ) {}

  cancelled(): boolean {
    return this.stream.destroyed || this.stream.closed;
  }

  reply(message: Buffer): void {
    if (this.answered) return;
    this.answered = true;
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    try {
      stream.respond(RESPONSE_HEADERS, RESPOND_WITH_TRAILERS);
      stream.once('wantTrailers', sendOkTrailers);
      stream.end(frame(message));
    } catch {
      // the stream went away in between
    }
  }

  fail(code: number, details: string): void {
    if (this.answered) return;
    this.answered = true;
    trailersOnly(this.stream, code, details);
  }

  write(message: Buffer): void {
    const stream = this.stream;
    if (this.answered || stream.destroyed || stream.closed) return;
    try {
      if (!stream.headersSent) stream.respond(RESPONSE_HEADERS, RESPOND_WITH_TRAILERS);
      stream.write(frame(message));
    } catch {
      // the stream went away in between
    }
  }

  end(code: number = GrpcStatus.OK, details = ''): void {
    const stream = this.stream;
    if (this.answered) return;
    this.answered = true;
    if (stream.destroyed || stream.closed) return;
    if (!stream.headersSent) {
      trailersOnly(stream, code, details);
      return;
    }
    stream.once('wantTrailers', () => {
      try {
        stream.sendTrailers({ 'grpc-status': String(code), ...(details && { 'grpc-message': percentEncodeGrpcMessage(details) }) });
      } catch {
        // the stream went away in between
      }
    });
    stream.end();
  }

  onClose(listener: () => void): void {
    if (!this.closeListeners) {
      const listeners: (() => void)[] = [];
      this.closeListeners = listeners;
      this.stream.once('close', () => {
        for (const l of listeners) l();
      });
    }
    this.closeListeners.push(listener);
  }
}

/**
 * The server: register methods by path (`/package.Service/Method`), listen, shut down.
 */
export class H2GrpcServer {
  private readonly methods = new Map<string, MethodHandler>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly maxReceiveBytes: number;
  private server: http2.Http2Server | http2.Http2SecureServer | undefined;

  constructor(opts: H2GrpcServerOptions = {}) {
    this.maxReceiveBytes = opts.maxReceiveBytes ?? DEFAULT_MAX_RECEIVE_BYTES;
  }

  /** Serves `path` (e.g. /envoy.service.auth.v3.Authorization/Check) with `handler`. */
  addMethod(path: string, handler: MethodHandler): void {
    this.methods.set(path, handler);
  }

  /** Listens on host:port (port 0: any free one); resolves with the bound port. With `tls`, HTTP/2 over TLS only. */
  listen(host: string, port: number, tls?: ListenerTls): Promise<number> {
    if (this.server) return Promise.reject(new Error('the gRPC server is already listening'));
    const common = {
      // As grpc-js: Node's per-session memory bound degrades badly when reached under load.
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
    };
    const server = tls
      ? http2.createSecureServer({
          ...common,
          cert: tls.cert,
          key: tls.key,
          ...(tls.clientCa && { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true }),
          ALPNProtocols: ['h2'],
          allowHTTP1: false,
          minVersion: 'TLSv1.2',
        })
      : http2.createServer(common);
    server.on('stream', (stream, headers) => this.onStream(stream, headers));
    server.on('session', (session) => {
      this.sessions.add(session);
      session.on('error', ignoreError);
      session.once('close', () => this.sessions.delete(session));
    });
    server.on('sessionError', ignoreError);
    server.on('error', ignoreError);
    if (tls) {
      server.on('secureConnection', (socket) => socket.on('error', ignoreError));
      server.on('tlsClientError', ignoreError);
    }
    this.server = server;
    return new Promise((resolve, reject) => {
      const failed = (err: Error) => {
        this.server = undefined;
        reject(err);
      };
      server.once('error', failed);
      server.listen(port, host, () => {
        server.removeListener('error', failed);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  /**
   * Graceful shutdown: stop accepting connections, GOAWAY on every open one, let the calls in
   * flight finish; `done` runs when every connection is closed.
   */
  tryShutdown(done: () => void): void {
    const server = this.server;
    if (!server) {
      done();
      return;
    }
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      done();
    };
    server.close(finish);
    for (const session of this.sessions) {
      try {
        session.close();
      } catch {
        // already closing
      }
    }
    if (this.sessions.size === 0 && !server.listening) finish();
  }

  /** Forced shutdown: stop accepting and destroy every connection (calls in flight are cancelled). */
  forceShutdown(): void {
    this.server?.close();
    for (const session of this.sessions) session.destroy();
    this.sessions.clear();
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', ignoreError);
    if (headers[':method'] !== 'POST') {
      this.refuseHttp(stream, 405);
      return;
    }
    const contentType = headers['content-type'];
    if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
      this.refuseHttp(stream, 415);
      return;
    }
    const path = headers[':path'];
    const method = typeof path === 'string' ? this.methods.get(path) : undefined;
    if (!method) {
      trailersOnly(stream, GrpcStatus.UNIMPLEMENTED, `method ${String(path)} is not implemented`);
      stream.resume();
      return;
    }
    let deadlineAt = Infinity;
    const timeout = headers['grpc-timeout'];
    if (timeout !== undefined) {
      const ms = typeof timeout === 'string' ? parseGrpcTimeout(timeout) : undefined;
      if (ms === undefined) {
        trailersOnly(stream, GrpcStatus.INVALID_ARGUMENT, `bad grpc-timeout "${String(timeout)}"`);
        stream.resume();
        return;
      }
      deadlineAt = performance.now() + ms;
    }
    const encoding = headers['grpc-encoding'];
    const limit = this.maxReceiveBytes;

    // The body: chunks until the end of the stream, dropped (never kept) once refused.
    let first: Buffer | undefined;
    let more: Buffer[] | undefined;
    let length = 0;
    let refused = false;
    let headChecked = false;
    const refuse = (code: number, details: string) => {
      refused = true;
      first = undefined;
      more = undefined;
      trailersOnly(stream, code, details);
    };
    stream.on('data', (chunk: Buffer) => {
      if (refused) return;
      length += chunk.length;
      if (first === undefined) first = chunk;
      else (more ??= [first]).push(chunk);
      if (!headChecked && length >= 5) {
        headChecked = true;
        const declared = (more ? Buffer.concat(more, 5) : first).readUInt32BE(1);
        if (declared > limit) {
          refuse(GrpcStatus.RESOURCE_EXHAUSTED, `request message larger than the limit (${declared} vs. ${limit} bytes)`);
          return;
        }
      }
      // One message of at most `limit` bytes fits in limit + 5: anything past it is a second message.
      if (length > limit + 5) refuse(GrpcStatus.INTERNAL, 'more than one request message for a method that takes one');
    });
    stream.once('end', () => {
      if (refused || stream.destroyed || stream.closed) return;
      const body = more ? Buffer.concat(more, length) : first;
      const message = this.readMessage(stream, body, typeof encoding === 'string' ? encoding : undefined);
      if (!message) return;
      const call = new Call(stream, message, deadlineAt);
      try {
        if (method.kind === 'unary') method.handle(call);
        else method.handle(call);
      } catch {
        call.fail(GrpcStatus.INTERNAL, 'the server failed to handle the call');
      }
    });
  }

  /** The one request message of a body, or undefined after answering the call with the error. */
  private readMessage(stream: http2.ServerHttp2Stream, body: Buffer | undefined, encoding: string | undefined): Buffer | undefined {
    if (!body || body.length < 5) {
      trailersOnly(stream, GrpcStatus.INTERNAL, body?.length ? 'truncated request message' : 'no request message');
      return undefined;
    }
    const compressed = body[0];
    const declared = body.readUInt32BE(1);
    if (body.length < 5 + declared) {
      trailersOnly(stream, GrpcStatus.INTERNAL, 'truncated request message');
      return undefined;
    }
    if (body.length > 5 + declared) {
      trailersOnly(stream, GrpcStatus.INTERNAL, 'more than one request message for a method that takes one');
      return undefined;
    }
    const message = body.subarray(5);
    if (compressed === 0) return message;
    if (compressed !== 1) {
      trailersOnly(stream, GrpcStatus.INTERNAL, `bad compressed flag ${compressed}`);
      return undefined;
    }
    if (encoding === undefined || encoding === 'identity') {
      trailersOnly(stream, GrpcStatus.INTERNAL, 'compressed message without a grpc-encoding');
      return undefined;
    }
    if (encoding !== 'gzip' && encoding !== 'deflate') {
      trailersOnly(stream, GrpcStatus.UNIMPLEMENTED, `unsupported grpc-encoding "${encoding}"`);
      return undefined;
    }
    try {
      const options = { maxOutputLength: this.maxReceiveBytes };
      return encoding === 'gzip' ? zlib.gunzipSync(message, options) : zlib.inflateSync(message, options);
    } catch (err) {
      const tooLarge = (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
      trailersOnly(
        stream,
        tooLarge ? GrpcStatus.RESOURCE_EXHAUSTED : GrpcStatus.INTERNAL,
        tooLarge ? `decompressed request message larger than the limit (${this.maxReceiveBytes} bytes)` : `could not decompress the request message (${encoding})`,
      );
      return undefined;
    }
  }

  private refuseHttp(stream: http2.ServerHttp2Stream, status: number): void {
    try {
      stream.respond({ ':status': status }, RESPOND_AND_END);
    } catch {
      // the stream went away in between
    }
    stream.resume();
  }
}
