// Runs keygate as a real process (node dist/src/main.js) on loopback free ports, for tests that
// need several instances or signals. Resolves once /readyz answers 200; collects its log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { join, resolve } from 'node:path';
import { freePort } from './redis';

const MAIN = join(resolve(__dirname, '..', '..'), 'dist', 'src', 'main.js');

export interface KeygateProcess {
  grpcPort: number;
  httpPort: number;
  child: ChildProcess;
  /** stdout + stderr lines so far */
  lines: string[];
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function spawnKeygate(env: Record<string, string>, opts: { waitReady?: boolean } = {}): Promise<KeygateProcess> {
  const grpcPort = await freePort();
  const httpPort = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    env: {
      PATH: process.env.PATH ?? '',
      KEYGATE_GRPC_HOST: '127.0.0.1',
      KEYGATE_GRPC_PORT: String(grpcPort),
      KEYGATE_HTTP_HOST: '127.0.0.1',
      KEYGATE_HTTP_PORT: String(httpPort),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  // Whole lines only: a chunk may end in the middle of one (kept until its newline arrives).
  const lineCollector = () => {
    let partial = '';
    return (chunk: Buffer) => {
      const parts = (partial + chunk.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      lines.push(...parts.filter(Boolean));
    };
  };
  child.stdout!.on('data', lineCollector());
  child.stderr!.on('data', lineCollector());
  // 'close', not 'exit': it comes after the last output has been read.
  const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  const proc: KeygateProcess = {
    grpcPort,
    httpPort,
    child,
    lines,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  if (opts.waitReady !== false) await waitReady(proc);
  return proc;
}

export function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

/** Polls /readyz until 200 (bounded: 15 s), failing early if the process exits. */
export async function waitReady(p: KeygateProcess): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (p.child.exitCode !== null) throw new Error(`keygate exited with ${p.child.exitCode}:\n${p.lines.join('\n')}`);
    const res = await httpGet(p.httpPort, '/readyz').catch(() => ({ status: 0, body: '' }));
    if (res.status === 200) return;
    if (Date.now() > deadline) throw new Error(`keygate not ready in 15 s:\n${p.lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
