// The gRPC adapter: envoy.service.auth.v3.Authorization/Check and grpc.health.v1.Health on one
// gRPC server (src/grpc/h2-server.ts, on node:http2). It only translates (proto → CheckInput → check() → CheckResponse) and bounds
// each Check by a deadline: a store that fails or is slower than the deadline ends the RPC with
// UNAVAILABLE, so Envoy's failure_mode_allow / status_on_error decide. Never a hang, never an
// allow by accident.
//
// Overload: the deadline (and the Check's store budget) is measured from when the adapter took
// the call and never outlasts the caller's own grpc-timeout; at most maxInflight Checks are in
// flight (DEFAULT_MAX_INFLIGHT), past it a Check is answered UNAVAILABLE at once (error/overload)
// without any store call or quota charge. The Check request is decoded by decodeCheckInput
// (src/grpc/request.ts), which reads only the fields keygate uses.
import { readFileSync } from 'node:fs';
import type { CheckOutcome } from '../check/check';
import type { CheckInput } from '../check/request';
import { StoreDeadlineError } from '../check/store-budget';
import type { HealthState } from '../health';
import { GrpcStatus, H2GrpcServer, type ListenerTls, type StreamingCall, type UnaryCall } from './h2-server';
import { AUTHORIZATION_SERVICE, loadKeygateProtos } from './protos';
import { decodeCheckInput } from './request';
import { encodeCheckResponse } from './response-encoder';

/**
 * `deadlineAt`: when the Check's store work must end, in performance.now() milliseconds: the
 * handler's budget is measured from when the call was taken (not from when the Check path got to
 * it) and never outlasts the caller's own gRPC deadline.
 */
export type CheckHandler = (input: CheckInput, timing: CheckTiming) => Promise<CheckOutcome>;

export interface CheckTiming {
  /** performance.now() when the adapter took the call */
  startedAt: number;
  /** performance.now() past which the RPC is answered UNAVAILABLE (the backstop deadline) */
  deadlineAt: number;
}

/** What happened to one Check; `error` is set when the RPC failed (deadline, store, overload). */
export interface CheckEvent {
  input: CheckInput;
  outcome?: CheckOutcome;
  error?: 'deadline' | 'store' | 'internal' | 'overload';
  /** the error as thrown, for the log (never sent to Envoy) */
  cause?: unknown;
  seconds: number;
}

export interface CheckObserver {
  checked(event: CheckEvent): void;
}

/**
 * Default bound on Checks in flight (KeygateGrpcServer.inflight()). Past it a new Check is
 * answered UNAVAILABLE at once (counted as error/overload), without reading the store or charging
 * a quota: Envoy applies its failure_mode_allow / status_on_error, as for a deadline, but at once
 * instead of after the deadline, and the Checks already admitted still finish in time. 1024 is
 * far above what a healthy keygate holds (a few Checks per Redis round trip; one core answers
 * ~10k+ Checks/s, i.e. ~150 in flight at the 150 ms deadline even at the edge), so only real
 * overload reaches it. 0 disables the bound.
 */
export const DEFAULT_MAX_INFLIGHT = 1024;

export interface GrpcServerOptions {
  handler: CheckHandler;
  health: HealthState;
  /** deadline for one Check's store work, ms */
  timeoutMs: number;
  /** most Checks in flight; past it, UNAVAILABLE at once. Default DEFAULT_MAX_INFLIGHT; 0 = no bound */
  maxInflight?: number;
  observer?: CheckObserver;
  /** largest request message accepted, bytes; default MAX_RECEIVE_BYTES */
  maxReceiveBytes?: number;
}

/** Largest Check request accepted (Envoy's are a few KB; with a body sent along, up to its limit). */
export const MAX_RECEIVE_BYTES = 1024 * 1024;

/**
 * The backstop deadline fired. One shared instance without a stack trace: it only says which
 * kind of failure it was (the log names its class and message), and under overload thousands
 * fire per second.
 */
class DeadlineError extends Error {
  constructor() {
    super('the Check deadline passed before the answer');
    this.name = 'DeadlineError';
  }
}
const DEADLINE: DeadlineError = (() => {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new DeadlineError();
  } finally {
    Error.stackTraceLimit = limit;
  }
})();

/** A shed Check (too many in flight); shared, stackless, like DEADLINE. */
export class OverloadError extends Error {
  constructor(limit: number) {
    super(`more than ${limit} Checks in flight`);
    this.name = 'OverloadError';
  }
}

export interface KeygateGrpcServer {
  server: H2GrpcServer;
  /** Number of Checks being answered right now. */
  inflight(): number;
  /**
   * Ends every open Health/Watch stream (after its last status). Called by the drain right
   * before the server shuts down: a Watch never ends by itself, and an open stream would hold
   * a graceful shutdown until it is forced.
   */
  endWatches(): void;
}

const NO_HEADERS: Map<string, string[]> = new Map();

export function createGrpcServer(opts: GrpcServerOptions): KeygateGrpcServer {
  const protos = loadKeygateProtos();
  const server = new H2GrpcServer({ maxReceiveBytes: opts.maxReceiveBytes ?? MAX_RECEIVE_BYTES });
  let inflight = 0;
  const maxInflight = opts.maxInflight ?? DEFAULT_MAX_INFLIGHT;
  const timeoutMs = opts.timeoutMs;
  const deadlineDetails = `keygate: store did not answer within ${timeoutMs} ms`;
  const overload = (() => {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new OverloadError(maxInflight);
    } finally {
      Error.stackTraceLimit = limit;
    }
  })();
  const overloadDetails = `keygate: overloaded (more than ${maxInflight} Checks in flight)`;
  const observer = opts.observer;

  const Check = (call: UnaryCall) => {
    const startedAt = performance.now();
    let input: CheckInput;
    try {
      input = decodeCheckInput(call.message);
    } catch (cause) {
      call.fail(GrpcStatus.INTERNAL, 'keygate could not read the request');
      observer?.checked({ input: { headers: NO_HEADERS, contextExtensions: {} }, error: 'internal', cause, seconds: (performance.now() - startedAt) / 1e3 });
      return;
    }
    if (maxInflight > 0 && inflight >= maxInflight) {
      // Shed before any work: no store call, no quota charged.
      call.fail(GrpcStatus.UNAVAILABLE, overloadDetails);
      observer?.checked({ input: { headers: NO_HEADERS, contextExtensions: {}, requestId: input.requestId }, error: 'overload', cause: overload, seconds: (performance.now() - startedAt) / 1e3 });
      return;
    }
    inflight++;
    // The caller's own deadline (grpc-timeout, e.g. Envoy's ext_authz timeout) when it is sooner:
    // work past it is wasted, Envoy has answered without us.
    const deadlineAt = Math.min(startedAt + timeoutMs, call.deadlineAt);
    // One timer and no Promise.race: whichever of the answer and the deadline comes first
    // answers; the other finds `done` set.
    let done = false;
    const expire = () => {
      if (done) return;
      done = true;
      inflight--;
      call.fail(GrpcStatus.UNAVAILABLE, deadlineDetails);
      observer?.checked({ input, error: 'deadline', cause: DEADLINE, seconds: (performance.now() - startedAt) / 1e3 });
    };
    // The Check's own store budget (src/check/store-budget.ts) ends first; this timer is the
    // backstop. Like the budget, it gives way to I/O already received in this loop iteration.
    const timer = setTimeout(() => setImmediate(expire), Math.max(0, Math.ceil(deadlineAt - startedAt)));
    let pending: Promise<CheckOutcome>;
    try {
      pending = opts.handler(input, { startedAt, deadlineAt });
    } catch (cause) {
      pending = Promise.reject(cause);
    }
    pending.then(
      (outcome) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        inflight--;
        call.reply(encodeCheckResponse(outcome));
        observer?.checked({ input, outcome, seconds: (performance.now() - startedAt) / 1e3 });
      },
      (cause: unknown) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        inflight--;
        const isDeadline = cause instanceof StoreDeadlineError;
        call.fail(GrpcStatus.UNAVAILABLE, isDeadline ? deadlineDetails : 'keygate: store unavailable');
        observer?.checked({ input, error: isDeadline ? 'deadline' : 'store', cause, seconds: (performance.now() - startedAt) / 1e3 });
      },
    );
  };
  const watches = new Set<StreamingCall>();
  server.addMethod(`/${AUTHORIZATION_SERVICE}/Check`, { kind: 'unary', handle: Check });
  addHealthService(server, protos.healthService, opts.health, watches);
  return {
    server,
    inflight: () => inflight,
    endWatches() {
      for (const call of [...watches]) call.end();
      watches.clear();
    },
  };
}

/** Services the health endpoint answers for: "" (the whole server) and the Authorization service. */
const HEALTH_SERVICES = new Set(['', AUTHORIZATION_SERVICE]);

/** grpc.health.v1.Health: Check and Watch report `health` (SERVING, NOT_SERVING while not ready or draining). */
function addHealthService(server: H2GrpcServer, service: ReturnType<typeof loadKeygateProtos>['healthService'], health: HealthState, watches: Set<StreamingCall>): void {
  const check = service.Check;
  const watch = service.Watch;
  if (!check || !watch) throw new Error('Health service without Check and Watch');
  const serviceOf = (call: { message: Buffer }) => (check.requestDeserialize(call.message) as { service?: string } | null)?.service ?? '';
  server.addMethod(check.path, {
    kind: 'unary',
    handle(call) {
      const service = serviceOf(call);
      if (!HEALTH_SERVICES.has(service)) {
        call.fail(GrpcStatus.NOT_FOUND, `unknown service "${service}"`);
        return;
      }
      call.reply(check.responseSerialize({ status: health.state }));
    },
  });
  server.addMethod(watch.path, {
    kind: 'server-stream',
    handle(call) {
      // An unknown service is reported once (SERVICE_UNKNOWN) and the stream stays open, as the
      // health protocol says; the drain ends every stream (endWatches).
      const service = serviceOf(call);
      const known = HEALTH_SERVICES.has(service);
      call.write(watch.responseSerialize({ status: known ? health.state : 'SERVICE_UNKNOWN' }));
      const unlisten = known ? health.onChange((s) => call.write(watch.responseSerialize({ status: s }))) : () => {};
      watches.add(call);
      call.onClose(() => {
        unlisten();
        watches.delete(call);
      });
    },
  });
}

/** PEM files of the gRPC listener's TLS (KEYGATE_GRPC_TLS_CERT / _KEY / _CLIENT_CA). */
export interface GrpcTlsFiles {
  grpcTlsCert?: string;
  grpcTlsKey?: string;
  grpcTlsClientCa?: string;
}

/**
 * The listener's TLS: none (plaintext) without a certificate; TLS with a certificate and key;
 * mTLS when a client CA is given too (a client must present a certificate that CA signed, or
 * the handshake fails before any RPC). Reads the files now, so a bad file fails start-up.
 */
export function grpcServerCredentials(tls: GrpcTlsFiles): ListenerTls | undefined {
  if (!tls.grpcTlsCert || !tls.grpcTlsKey) return undefined;
  const pair = { cert: readFileSync(tls.grpcTlsCert), key: readFileSync(tls.grpcTlsKey) };
  return tls.grpcTlsClientCa ? { ...pair, clientCa: readFileSync(tls.grpcTlsClientCa) } : pair;
}

/** Binds the server; resolves with the port actually bound (useful with port 0). */
export function bindGrpc(server: H2GrpcServer, host: string, port: number, tls?: ListenerTls): Promise<number> {
  return server.listen(host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host, port, tls);
}
