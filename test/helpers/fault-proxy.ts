// A loopback TCP proxy for fault tests: it sits between keygate and redis-server and misbehaves
// on demand, switchable at run time while traffic flows:
//   pass        bytes flow both ways at once
//   delay(ms)   every chunk, either direction, is held `ms` before it is forwarded (a request
//               and its reply gain 2 × ms); order is kept
//   blackhole   connections are accepted (new ones too) and read, but nothing is forwarded or
//               answered: the silent partition. What was read is held, and forwarded when the
//               mode goes back to pass or delay, as TCP would deliver it after a partition that
//               healed before the connection timed out (a network cannot drop bytes from the
//               middle of a TCP stream; for a partition that outlived the connection, call
//               reset() before pass())
//   reset       every open connection is reset (RST, both sides) and held bytes are discarded;
//               new connections are accepted and reset at once (a REJECT --reject-with tcp-reset)
// It counts connections (open, accepted, reset) and close() ends everything.
import net from 'node:net';

export type FaultMode = { kind: 'pass' } | { kind: 'delay'; ms: number } | { kind: 'blackhole' } | { kind: 'reset' };

export interface ProxyStats {
  /** connections open now (client side) */
  open: number;
  /** connections accepted since start */
  accepted: number;
  /** connections reset by the proxy (open ones at reset(), and new ones while in reset mode) */
  reset: number;
}

export interface FaultProxy {
  port: number;
  /** redis://127.0.0.1:<port> */
  url: string;
  mode(): FaultMode;
  pass(): void;
  delay(ms: number): void;
  blackhole(): void;
  reset(): void;
  stats(): ProxyStats;
  close(): Promise<void>;
}

interface Chunk {
  data: Buffer;
  /** when it may be forwarded (Date.now() ms); Infinity while held */
  dueAt: number;
}

/** One direction of one connection: chunks in arrival order, forwarded when due. */
class Pipe {
  private readonly queue: Chunk[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly to: net.Socket,
    private readonly modeNow: () => FaultMode,
  ) {}

  push(data: Buffer): void {
    this.queue.push({ data, dueAt: dueAt(this.modeNow(), Date.now()) });
    this.pump();
  }

  /** The mode changed: held chunks become due (pass, delay) or due chunks are held (blackhole). */
  retime(): void {
    const mode = this.modeNow();
    const now = Date.now();
    for (const c of this.queue) {
      if (mode.kind === 'blackhole') c.dueAt = Infinity;
      else if (c.dueAt === Infinity) c.dueAt = dueAt(mode, now);
    }
    this.pump();
  }

  discard(): void {
    this.queue.length = 0;
    clearTimeout(this.timer);
  }

  private pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0].dueAt <= now) {
      const chunk = this.queue.shift()!;
      if (!this.to.destroyed) this.to.write(chunk.data);
    }
    const head = this.queue[0];
    if (head && head.dueAt !== Infinity) this.timer = setTimeout(() => this.pump(), head.dueAt - now);
  }
}

function dueAt(mode: FaultMode, now: number): number {
  if (mode.kind === 'delay') return now + mode.ms;
  if (mode.kind === 'blackhole') return Infinity;
  return now;
}

interface Connection {
  client: net.Socket;
  upstream: net.Socket;
  up: Pipe;
  down: Pipe;
}

export async function startFaultProxy(target: { port: number; host?: string }): Promise<FaultProxy> {
  const host = target.host ?? '127.0.0.1';
  let mode: FaultMode = { kind: 'pass' };
  const connections = new Set<Connection>();
  const stats = { accepted: 0, reset: 0 };

  const resetSocket = (s: net.Socket) => {
    if (!s.destroyed) s.resetAndDestroy();
  };
  const drop = (c: Connection, reset: boolean) => {
    if (!connections.delete(c)) return;
    c.up.discard();
    c.down.discard();
    if (reset) {
      resetSocket(c.client);
      resetSocket(c.upstream);
    } else {
      c.client.destroy();
      c.upstream.destroy();
    }
  };

  const server = net.createServer((client) => {
    stats.accepted++;
    client.on('error', () => {});
    if (mode.kind === 'reset') {
      stats.reset++;
      resetSocket(client);
      return;
    }
    client.setNoDelay(true);
    const upstream = net.connect({ port: target.port, host });
    upstream.setNoDelay(true);
    upstream.on('error', () => {});
    const c: Connection = { client, upstream, up: new Pipe(upstream, () => mode), down: new Pipe(client, () => mode) };
    connections.add(c);
    client.on('data', (d: Buffer) => c.up.push(d));
    upstream.on('data', (d: Buffer) => c.down.push(d));
    // Either side gone (Redis killed, keygate disconnecting): the other side goes too.
    client.on('close', () => drop(c, false));
    upstream.on('close', () => drop(c, false));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const setMode = (next: FaultMode) => {
    mode = next;
    if (next.kind === 'reset') {
      for (const c of [...connections]) {
        stats.reset++;
        drop(c, true);
      }
      return;
    }
    for (const c of connections) {
      c.up.retime();
      c.down.retime();
    }
  };

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    mode: () => mode,
    pass: () => setMode({ kind: 'pass' }),
    delay: (ms: number) => setMode({ kind: 'delay', ms }),
    blackhole: () => setMode({ kind: 'blackhole' }),
    reset: () => setMode({ kind: 'reset' }),
    stats: () => ({ open: connections.size, ...stats }),
    async close() {
      for (const c of [...connections]) drop(c, false);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
