// Helpers for the observability tests: HTTP GET on loopback, a reader for the Prometheus text
// exposition format, `promtool check metrics`, bounded polling, a gRPC health client, and a
// keygate started with a short readiness interval (startTestKeygate's twin for health tests).
import { spawn } from 'node:child_process';
import http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import type { Clock } from '../../../src/clock';
import { loadKeygateProtos } from '../../../src/grpc/protos';
import { startTestKeygate, type TestKeygate } from '../../helpers/keygate';

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function httpGet(port: number, path: string, method = 'GET'): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** Polls `probe` until it returns a value other than undefined; fails after `timeoutMs`. */
export async function pollUntil<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** One sample of the text exposition format. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL_RE = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = SAMPLE_RE.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL_RE)) labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The samples of `name` whose labels include `match`. */
export function samples(all: Sample[], name: string, match: Record<string, string> = {}): Sample[] {
  return all.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample of `name` with exactly the labels `match` names (0 when absent). */
export function value(all: Sample[], name: string, match: Record<string, string> = {}): number {
  const found = samples(all, name, match).filter((s) => Object.keys(s.labels).length === Object.keys(match).length);
  if (found.length > 1) throw new Error(`${name}${JSON.stringify(match)} matches ${found.length} samples`);
  return found[0]?.value ?? 0;
}

/** Runs `promtool check metrics` on `text` (stdin); resolves with its exit code and output. */
export function promtoolCheckMetrics(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', (err) => reject(new Error(`promtool could not run (Debian: apt-get install prometheus): ${err.message}`)));
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}

/** A grpc.health.v1.Health client on keygate's gRPC port. */
export function healthClient(port: number): grpc.Client & Record<string, any> {
  const { HealthClient } = loadKeygateProtos();
  return new HealthClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, any>;
}

/** Health/Check: resolves with the status name, or rejects with the gRPC error. */
export function healthCheck(client: grpc.Client & Record<string, any>, service = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    client.Check({ service }, { deadline: Date.now() + 3000 }, (err: grpc.ServiceError | null, res: { status: string }) =>
      err ? reject(err) : resolve(res.status),
    );
  });
}

export type HarnessKeygate = TestKeygate;

/** A whole keygate on loopback with free ports, its logs captured, and startKeygate's options. */
export function startObservedKeygate(
  env: Record<string, string | undefined>,
  opts: { clock?: Clock; readinessIntervalMs?: number } = {},
): Promise<HarnessKeygate> {
  return startTestKeygate(env, opts.clock, { readinessIntervalMs: opts.readinessIntervalMs });
}
