// Keeps an 'error' listener on every socket ioredis opens, so that no Redis socket error can
// ever become an uncaught exception that kills keygate.
//
// ioredis listens for a socket's errors with once(). A TLS socket can emit two: when Node refuses
// the server certificate (an untrusted CA) it destroys the socket with that error, and a TLS alert
// the server sent in the same read is emitted as a second error. The second one had no listener
// and crashed the process (seen in CI against a TLS Redis Cluster with a missing
// KEYGATE_REDIS_TLS_CA). ioredis still sees the first error through its own listener and reports
// it as before; later errors of an already failed socket carry no news and are dropped here.
//
// Every ioredis client in the process opens its sockets through one of the two connector classes
// (cluster nodes, cluster subscribers and sentinel clients included), so the guard goes on their
// prototypes once, when this module is loaded.
import { SentinelConnector } from 'ioredis';
import StandaloneConnector from 'ioredis/built/connectors/StandaloneConnector';
import type { NetStream } from 'ioredis/built/types';

const GUARDED = Symbol.for('keygate.redisSocketGuard');

function ignoreLaterErrors(): void {}

type Connect = (this: unknown, ...args: unknown[]) => Promise<NetStream>;

function guard(proto: { connect: Connect; [GUARDED]?: true }): void {
  if (proto[GUARDED]) return;
  const connect = proto.connect;
  proto.connect = async function guardedConnect(this: unknown, ...args: unknown[]): Promise<NetStream> {
    const stream = await connect.apply(this, args);
    stream.on('error', ignoreLaterErrors);
    return stream;
  };
  proto[GUARDED] = true;
}

guard(StandaloneConnector.prototype as unknown as Parameters<typeof guard>[0]);
guard(SentinelConnector.prototype as unknown as Parameters<typeof guard>[0]);

