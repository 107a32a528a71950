// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per category
// (GC, node:http2, grpc-js, protobufjs, ioredis, prom-client, pino, keygate's own code, ...).
import { readFileSync } from 'node:fs';

const CATEGORIES = [
  ['(garbage collector)', (f) => f.functionName === '(garbage collector)'],
  ['(idle)', (f) => f.functionName === '(idle)'],
  ['(program)', (f) => f.functionName === '(program)'],
  ['@grpc/grpc-js', (f) => f.url.includes('/@grpc/grpc-js/')],
  ['@grpc/proto-loader', (f) => f.url.includes('/@grpc/proto-loader/')],
  ['protobufjs', (f) => f.url.includes('/protobufjs/') || f.url.includes('/@protobufjs/')],
  ['ioredis', (f) => f.url.includes('/ioredis/') || f.url.includes('/@ioredis/') || f.url.includes('/redis-parser/') || f.url.includes('/denque/')],
  ['prom-client', (f) => f.url.includes('/prom-client/') || f.url.includes('/tdigest/') || f.url.includes('/bintrees/')],
  ['pino', (f) => f.url.includes('/pino') || f.url.includes('/sonic-boom/') || f.url.includes('/thread-stream/') || f.url.includes('/fast-redact/') || f.url.includes('/quick-format-unescaped/')],
  ['lru-cache', (f) => f.url.includes('/lru-cache/')],
  ['keygate (dist/src)', (f) => f.url.includes('/dist/src/')],
  ['bench baseline', (f) => f.url.includes('/bench/')],
  ['node:http2', (f) => f.url.startsWith('node:internal/http2') || f.url === 'node:http2'],
  ['node:events/timers/task queues', (f) => /^node:(events|timers|internal\/(timers|process\/task_queues|event_target|async_hooks))$/.test(f.url) || f.url === 'node:events'],
  ['node:net/stream', (f) => /^node:internal\/(streams|stream_base_commons|net)|^node:net$/.test(f.url)],
  ['node:internal (other)', (f) => f.url.startsWith('node:')],
  ['native / builtins', (f) => f.url === ''],
];

function categorise(frame) {
  for (const [name, test] of CATEGORIES) if (test(frame)) return name;
  return 'other';
}

function shortUrl(url) {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const d = url.indexOf('/dist/');
  if (d >= 0) return url.slice(d + 1);
  const b = url.indexOf('/bench/');
  if (b >= 0) return url.slice(b + 1);
  return url.replace(/^file:\/\//, '');
}

/** { totalMs, busyMs, categories: [{name, ms, pct}], functions: [{name, where, ms, pct}] } (pct of busy time). */
// `window` ({fromUs, toUs}, CLOCK_MONOTONIC microseconds, as process.hrtime.bigint() / 1000n):
// only samples taken inside it count, so start-up and shutdown stay out of the summary. V8
// stamps profiles with the same monotonic clock on Linux.
export function summariseProfile(file, { top = 25, window } = {}) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  const { samples, timeDeltas } = prof;
  let t = prof.startTime;
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i];
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    // timeDeltas[i] is the time *before* sample i; attribute the following interval to sample i
    const dt = timeDeltas[i + 1] ?? 0;
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + Math.max(0, dt));
  }
  const fn = new Map();
  const cat = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const f = byId.get(id).callFrame;
    total += us;
    if (f.functionName === '(idle)') idle += us;
    const key = `${f.functionName || '(anonymous)'}\u0000${f.url}:${f.lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const c = categorise(f);
    cat.set(c, (cat.get(c) ?? 0) + us);
  }
  const busy = Math.max(1, total - idle);
  const functions = [...fn.entries()]
    .filter(([k]) => !k.startsWith('(idle)'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, us]) => {
      const [name, where] = k.split('\u0000');
      return { name, where: shortUrl(where), ms: us / 1000, pct: (100 * us) / busy };
    });
  const categories = [...cat.entries()]
    .filter(([n]) => n !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .map(([name, us]) => ({ name, ms: us / 1000, pct: (100 * us) / busy }));
  return { totalMs: total / 1000, busyMs: busy / 1000, idlePct: (100 * idle) / Math.max(1, total), categories, functions };
}
