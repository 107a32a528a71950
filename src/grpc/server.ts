// The gRPC adapter: envoy.service.auth.v3.Authorization/Check and grpc.health.v1.Health on one
// grpc-js server. It only translates (proto → CheckInput → check() → CheckResponse) and bounds
// each Check by a deadline: a store that fails or is slower than the deadline ends the RPC with
// UNAVAILABLE, so Envoy's failure_mode_allow / status_on_error decide. Never a hang, never an
// allow by accident.
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { CheckOutcome } from '../check/check';
import type { CheckInput } from '../check/request';
import { StoreDeadlineError } from '../check/store-budget';
import type { HealthState } from '../health';
import { AUTHORIZATION_SERVICE, loadKeygateProtos, type CheckRequestObject, type CheckResponseObject } from './protos';
import { toCheckInput } from './request';
import { toCheckResponse } from './response';

export type CheckHandler = (input: CheckInput) => Promise<CheckOutcome>;

/** What happened to one Check; `error` is set when the RPC failed (deadline or store). */
export interface CheckEvent {
  input: CheckInput;
  outcome?: CheckOutcome;
  error?: 'deadline' | 'store' | 'internal';
  /** the error as thrown, for the log (never sent to Envoy) */
  cause?: unknown;
  seconds: number;
}

export interface CheckObserver {
  checked(event: CheckEvent): void;
}

export interface GrpcServerOptions {
  handler: CheckHandler;
  health: HealthState;
  /** deadline for one Check's store work, ms */
  timeoutMs: number;
  observer?: CheckObserver;
  /** grpc-js channel options (message size limits, keepalive) */
  channelOptions?: grpc.ServerOptions;
}

class DeadlineError extends Error {}

export interface KeygateGrpcServer {
  server: grpc.Server;
  /** Number of Checks being answered right now. */
  inflight(): number;
  /**
   * Ends every open Health/Watch stream (after its last status). Called by the drain right
   * before the server shuts down: a Watch never ends by itself, and an open stream would hold
   * a graceful shutdown until it is forced.
   */
  endWatches(): void;
}

export function createGrpcServer(opts: GrpcServerOptions): KeygateGrpcServer {
  const protos = loadKeygateProtos();
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 1024 * 1024,
    ...opts.channelOptions,
  });
  let inflight = 0;

  const Check: grpc.handleUnaryCall<CheckRequestObject, CheckResponseObject> = (call, callback) => {
    const started = process.hrtime.bigint();
    inflight++;
    let input: CheckInput;
    try {
      input = toCheckInput(call.request);
    } catch (cause) {
      inflight--;
      callback({ code: grpc.status.INTERNAL, details: 'keygate could not read the request' });
      opts.observer?.checked({ input: { headers: new Map(), contextExtensions: {} }, error: 'internal', cause, seconds: elapsed(started) });
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DeadlineError()), opts.timeoutMs);
    });
    Promise.race([opts.handler(input), deadline]).then(
      (outcome) => {
        clearTimeout(timer);
        inflight--;
        callback(null, toCheckResponse(outcome));
        opts.observer?.checked({ input, outcome, seconds: elapsed(started) });
      },
      (cause: unknown) => {
        clearTimeout(timer);
        inflight--;
        // The Check's own store budget (src/check/store-budget.ts) ends first; this timer is the backstop.
        const isDeadline = cause instanceof DeadlineError || cause instanceof StoreDeadlineError;
        callback({
          code: grpc.status.UNAVAILABLE,
          details: isDeadline ? `keygate: store did not answer within ${opts.timeoutMs} ms` : 'keygate: store unavailable',
        });
        opts.observer?.checked({ input, error: isDeadline ? 'deadline' : 'store', cause, seconds: elapsed(started) });
      },
    );
  };
  const watches = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  server.addService(protos.authorizationService, { Check });
  server.addService(protos.healthService, healthImplementation(opts.health, watches));
  return {
    server,
    inflight: () => inflight,
    endWatches() {
      for (const call of [...watches]) call.end();
      watches.clear();
    },
  };
}

function elapsed(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** Services the health endpoint answers for: "" (the whole server) and the Authorization service. */
const HEALTH_SERVICES = new Set(['', AUTHORIZATION_SERVICE]);

function healthImplementation(health: HealthState, watches: Set<grpc.ServerWritableStream<unknown, unknown>>): grpc.UntypedServiceImplementation {
  return {
    Check(call: grpc.ServerUnaryCall<{ service?: string }, unknown>, callback: grpc.sendUnaryData<unknown>) {
      const service = call.request?.service ?? '';
      if (!HEALTH_SERVICES.has(service)) {
        callback({ code: grpc.status.NOT_FOUND, details: `unknown service "${service}"` });
        return;
      }
      callback(null, { status: health.state });
    },
    Watch(call: grpc.ServerWritableStream<{ service?: string }, unknown>) {
      const service = call.request?.service ?? '';
      if (!HEALTH_SERVICES.has(service)) {
        call.write({ status: 'SERVICE_UNKNOWN' });
        return;
      }
      call.write({ status: health.state });
      const unlisten = health.onChange((s) => call.write({ status: s }));
      watches.add(call);
      const stop = () => {
        unlisten();
        watches.delete(call);
      };
      call.on('cancelled', stop);
      call.on('close', stop);
      call.on('finish', stop);
    },
  };
}

/** PEM files of the gRPC listener's TLS (KEYGATE_GRPC_TLS_CERT / _KEY / _CLIENT_CA). */
export interface GrpcTlsFiles {
  grpcTlsCert?: string;
  grpcTlsKey?: string;
  grpcTlsClientCa?: string;
}

/**
 * The listener's credentials: plaintext without a certificate; TLS with a certificate and key;
 * mTLS when a client CA is given too (a client must present a certificate that CA signed, or
 * the handshake fails before any RPC). Reads the files now, so a bad file fails start-up.
 */
export function grpcServerCredentials(tls: GrpcTlsFiles): grpc.ServerCredentials {
  if (!tls.grpcTlsCert || !tls.grpcTlsKey) return grpc.ServerCredentials.createInsecure();
  const pair = { cert_chain: readFileSync(tls.grpcTlsCert), private_key: readFileSync(tls.grpcTlsKey) };
  if (!tls.grpcTlsClientCa) return grpc.ServerCredentials.createSsl(null, [pair], false);
  return grpc.ServerCredentials.createSsl(readFileSync(tls.grpcTlsClientCa), [pair], true);
}

/** Binds the server; resolves with the port actually bound (useful with port 0). */
export function bindGrpc(server: grpc.Server, host: string, port: number, credentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
  const address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, bound) => (err ? reject(err) : resolve(bound)));
  });
}
