// Throw-away redis-server processes for integration tests: each test file starts its own on
// a free loopback port, so files run in parallel without sharing state, and stops it after.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import Redis from 'ioredis';

export function redisServerPath(): string {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status !== 0 || !path) {
    throw new Error(
      'redis-server not found on PATH: the integration tests need a real Redis. ' +
        'Install it (Debian: apt-get install -y redis-server) and run npm test again.',
    );
  }
  return path;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  port: number;
  url: string;
  /** A plain client for assertions (INFO commandstats, reading counters). */
  client(): Redis;
  /** Total calls per command name since start or the last resetStats(). */
  commandStats(): Promise<Record<string, number>>;
  resetStats(): Promise<void>;
  stop(): Promise<void>;
  /** Starts the server again on the same port (after stop()). */
  restart(): Promise<void>;
  process(): ChildProcess;
  /** Stops the server, disconnects the helper's clients and removes its directory. */
  close(): Promise<void>;
  /**
   * Records the commands clients send from now on (MONITOR), without those run inside Lua
   * scripts: the round trips keygate makes. `sent()` waits until everything sent before it is in.
   */
  monitor(): Promise<CommandMonitor>;
}

export interface CommandMonitor {
  /** lower-case names of the commands clients sent, in order */
  sent(): Promise<string[]>;
  stop(): void;
}

export async function startRedis(extraArgs: string[] = []): Promise<RedisServer> {
  const bin = redisServerPath();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'keygate-redis-'));
  let child: ChildProcess;
  const clients: Redis[] = [];

  const launch = async () => {
    child = spawn(
      bin,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs],
      { stdio: 'ignore' },
    );
    await waitForPing(port);
  };
  await launch();

  const admin = new Redis({ port, host: '127.0.0.1', lazyConnect: false, maxRetriesPerRequest: 1 });
  admin.on('error', () => {});
  clients.push(admin);

  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    client() {
      const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
      c.on('error', () => {});
      clients.push(c);
      return c;
    },
    async commandStats() {
      const info = await admin.info('commandstats');
      const out: Record<string, number> = {};
      for (const line of info.split('\n')) {
        const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
        if (m) out[m[1]] = Number(m[2]);
      }
      // The helper's own bookkeeping (this INFO, the RESETSTAT before it) is not traffic.
      delete out.info;
      delete out['config|resetstat'];
      return out;
    },
    async resetStats() {
      await admin.config('RESETSTAT');
    },
    async stop() {
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
    },
    async restart() {
      await launch();
    },
    process: () => child,
    async monitor() {
      const watcher = server.client();
      const feed = await watcher.monitor();
      const seen: string[] = [];
      let markers = 0;
      feed.on('monitor', (_time: string, args: string[], source: string) => {
        if (source === 'lua') return;
        seen.push(String(args[0]).toLowerCase());
      });
      return {
        async sent() {
          const marker = `keygate-test-marker-${++markers}`;
          await admin.echo(marker);
          const deadline = Date.now() + 5000;
          while (!seen.includes('echo')) {
            if (Date.now() > deadline) throw new Error('MONITOR did not deliver the marker in 5 s');
            await new Promise((r) => setImmediate(r));
          }
          const upTo = seen.indexOf('echo');
          return seen.splice(0, upTo + 1).slice(0, upTo);
        },
        stop() {
          feed.disconnect();
          watcher.disconnect();
        },
      };
    },
    async close() {
      for (const c of clients) c.disconnect();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

async function waitForPing(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.write('PING\r\n');
      });
      sock.once('data', (d) => {
        sock.destroy();
        resolve(d.toString().startsWith('+PONG'));
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port} within 10 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
