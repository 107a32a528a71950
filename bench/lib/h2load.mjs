// Runs h2load (nghttp2-client) against a gRPC Check endpoint and parses its summary.
// Closed loop (throughput): `-c C -m M -D seconds --warm-up-time w`.
// Open loop (latency probe): the same plus `--rps R/C` (each client sends on a fixed schedule,
// independent of responses, as long as fewer than M requests are in flight) and `--log-file`,
// from which p50/p99/p99.9 are computed (h2load itself prints only min/max/mean/sd).
import { readFileSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { spawnPinned } from './proc.mjs';
import { CHECK_PATH } from './protos.mjs';

export function h2loadVersion() {
  const r = spawnSync('h2load', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  return r.stdout.trim();
}

/** The argument list; also printed in BENCHMARKS.md so a run can be reproduced by hand. */
export function h2loadArgs({ port, bodyFile, clients, streams, duration, warmup, requests, rps, logFile }) {
  const ms = (seconds) => `${Math.round(seconds * 1000)}ms`;
  const args = ['-c', String(clients), '-m', String(streams)];
  if (requests !== undefined) args.push('-n', String(requests));
  else args.push('-D', ms(duration), '--warm-up-time', ms(warmup));
  if (rps !== undefined) args.push('--rps', String(rps));
  if (logFile) args.push('--log-file', logFile);
  args.push('-d', bodyFile, '-H', 'content-type: application/grpc', '-H', 'te: trailers', `http://127.0.0.1:${port}${CHECK_PATH}`);
  return args;
}

/**
 * Runs h2load; resolves with the parsed summary. `onPhase('measure')` is called when the warm-up
 * is over (h2load prints it), `onPhase('done')` when the measured duration ends.
 */
export function runH2load(opts, { core, onPhase } = {}) {
  const args = h2loadArgs(opts);
  return new Promise((resolve, reject) => {
    const child = spawnPinned(core, 'h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let measured = false;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (c) => {
      out += c;
      if (!measured && /Main benchmark duration is started/.test(out)) {
        measured = true;
        onPhase?.('measure', child.pid);
      }
      if (measured && /Main benchmark duration is over/.test(out)) {
        onPhase?.('done', child.pid);
        onPhase = undefined;
      }
    });
    child.stderr.on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`h2load exited with ${code}: ${(err || out).trim().split('\n').slice(-3).join(' | ')}`));
      try {
        const parsed = parseH2load(out);
        if (opts.logFile) {
          parsed.latency = latencyFromLog(opts.logFile);
          if (!opts.keepLog) rmSync(opts.logFile, { force: true });
        }
        parsed.args = args;
        resolve(parsed);
      } catch (e) {
        reject(new Error(`${e.message}\n--- h2load output ---\n${out}\n${err}`));
      }
    });
  });
}

const num = (s) => Number(String(s).replace(/,/g, ''));

/** Parses h2load's summary text. Throws when a line it needs is missing. */
export function parseH2load(text) {
  const need = (re, what) => {
    const m = re.exec(text);
    if (!m) throw new Error(`h2load output has no ${what} line`);
    return m;
  };
  const fin = need(/finished in ([\d.]+)(m?s), ([\d.]+) req\/s/, 'finished');
  const req = need(
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/,
    'requests',
  );
  const st = need(/status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/, 'status codes');
  const tr = need(/traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers .*?, .*?\((\d+)\) data/, 'traffic');
  const tfr = /time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)/.exec(text);
  return {
    reqPerSec: num(fin[3]),
    finishedSeconds: fin[2] === 'ms' ? num(fin[1]) / 1000 : num(fin[1]),
    requests: {
      total: num(req[1]),
      started: num(req[2]),
      done: num(req[3]),
      succeeded: num(req[4]),
      failed: num(req[5]),
      errored: num(req[6]),
      timeout: num(req[7]),
    },
    status: { '2xx': num(st[1]), '3xx': num(st[2]), '4xx': num(st[3]), '5xx': num(st[4]) },
    traffic: { total: num(tr[1]), headers: num(tr[2]), data: num(tr[3]) },
    timeForRequest: tfr ? { min: tfr[1], max: tfr[2], mean: tfr[3], sd: tfr[4] } : null,
  };
}

/** Latency percentiles (ms) from an h2load --log-file (3rd column: µs until end of response). */
export function latencyFromLog(file) {
  const lines = readFileSync(file, 'utf8').split('\n');
  const us = [];
  for (const line of lines) {
    if (!line) continue;
    const cols = line.split('\t');
    const v = Number(cols[2]);
    if (Number.isFinite(v)) us.push(v);
  }
  us.sort((a, b) => a - b);
  const pct = (p) => (us.length === 0 ? null : us[Math.min(us.length - 1, Math.ceil((p / 100) * us.length) - 1)] / 1000);
  return { samples: us.length, p50: pct(50), p90: pct(90), p99: pct(99), p999: pct(99.9), max: us.length ? us[us.length - 1] / 1000 : null };
}

/** Problems with one h2load result (empty = clean). `expectedBytes`: DATA bytes of one response. */
export function h2loadProblems(r, expectedBytes) {
  const p = [];
  const q = r.requests;
  if (q.done === 0) p.push('no request completed');
  if (q.failed || q.errored || q.timeout) p.push(`${q.failed} failed, ${q.errored} errored, ${q.timeout} timeout`);
  if (q.succeeded !== q.done) p.push(`${q.done - q.succeeded} of ${q.done} requests did not succeed`);
  if (r.status['3xx'] || r.status['4xx'] || r.status['5xx']) p.push(`HTTP status codes other than 2xx: ${JSON.stringify(r.status)}`);
  if (expectedBytes && q.succeeded > 0) {
    // A gRPC error is an HTTP 200 with trailers only (no DATA): it shows up as missing bytes.
    // h2load counts the warm-up's traffic but not its requests, so only a shortfall is a sign.
    const perReq = r.traffic.data / q.succeeded;
    if (perReq < expectedBytes * 0.95) {
      p.push(`response DATA ${perReq.toFixed(1)} bytes/request, expected at least ~${expectedBytes}: some answers were gRPC errors (no DATA)`);
    }
  }
  return p;
}
