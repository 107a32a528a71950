// The gRPC adapter's in-flight bound: past maxInflight a Check is answered UNAVAILABLE at once
// (error/overload), without calling the handler; Checks already admitted are answered normally.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { CheckOutcome } from '../../../src/check/check';
import { HealthState } from '../../../src/health';
import { loadKeygateProtos } from '../../../src/grpc/protos';
import { bindGrpc, createGrpcServer, type CheckEvent } from '../../../src/grpc/server';

const DENY: CheckOutcome = { decision: 'deny', reason: 'missing_api_key', responseHeaders: [] };

let cleanup: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanup) c();
  cleanup = [];
});

describe('in-flight bound', () => {
  it('sheds Checks past maxInflight with UNAVAILABLE at once; admitted ones are answered', async () => {
    const gates: (() => void)[] = [];
    let calls = 0;
    const events: CheckEvent[] = [];
    const grpcServer = createGrpcServer({
      handler: () => {
        calls++;
        return new Promise<CheckOutcome>((resolve) => gates.push(() => resolve(DENY)));
      },
      health: new HealthState(),
      timeoutMs: 5000,
      maxInflight: 2,
      observer: { checked: (e) => events.push(e) },
    });
    const port = await bindGrpc(grpcServer.server, '127.0.0.1', 0);
    cleanup.push(() => grpcServer.server.forceShutdown());
    const client = new (loadKeygateProtos().AuthorizationClient)(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    cleanup.push(() => client.close());
    const call = () =>
      new Promise<{ err: grpc.ServiceError | null }>((resolve) => {
        (client as unknown as { Check: (req: unknown, cb: (err: grpc.ServiceError | null) => void) => void }).Check(
          { attributes: { request: { http: { id: 'r1' } } } },
          (err) => resolve({ err }),
        );
      });
    const first = [call(), call()];
    while (grpcServer.inflight() < 2) await new Promise((r) => setTimeout(r, 5));
    const shed = await call();
    expect(shed.err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(shed.err?.details).toMatch(/overloaded/);
    expect(calls).toBe(2);
    expect(events.map((e) => e.error)).toEqual(['overload']);
    expect(events[0].input.requestId).toBe('r1');
    for (const go of gates) go();
    for (const r of await Promise.all(first)) expect(r.err).toBeNull();
    expect(grpcServer.inflight()).toBe(0);
  });
});
