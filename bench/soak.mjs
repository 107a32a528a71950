#!/usr/bin/env node
// npm run soak — a bounded soak of a real keygate process on a throw-away Redis: steady load at a
// fixed rate for --seconds (60), with faults injected on a schedule (unless --no-faults), then a
// report: allowed Checks seen by the client vs units counted in Redis ("lost counts"), errors,
// keygate's RSS and event-loop delay over time. Loopback only; stops by itself.
//
//   npm run soak                         60 s, faults at 15 s (SIGSTOP 2 s), 30 s (CLIENT PAUSE 1.5 s),
//                                        45 s (connections killed)
//   npm run soak -- --no-faults          the same load without faults: lost counts must be 0, RSS flat
//   npm run soak -- --seconds 20 --rate 300
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { memory } from './lib/proc.mjs';
import { grpc, loadProtos } from './lib/protos.mjs';
import { requireDist } from './lib/keygate-lib.mjs';
import { startKeygate, startRedis } from './lib/servers.mjs';
import { checkRequestObject } from './lib/request.mjs';
import { httpGet } from './lib/proc.mjs';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
if (args.includes('--help')) {
  console.log('usage: npm run soak -- [--seconds N (60)] [--rate REQ_PER_S (400)] [--no-faults]');
  process.exit(0);
}
const SECONDS = opt('seconds', 60);
const RATE = opt('rate', 400);
const FAULTS = !args.includes('--no-faults');
const MAX_INFLIGHT = 200;

const dir = mkdtempSync(join(tmpdir(), 'keygate-soak-'));
const redis = await startRedis({ core: null, dir });
const { RedisKeyStore } = requireDist('keys/redis-store.js');
const { generateKey } = requireDist('keys/format.js');
const { makeDigester } = requireDist('keys/digest.js');
const store = new RedisKeyStore(redis.client);
await store.putPlan({ name: 'soak', limits: [{ count: 1_000_000_000, window: 'month' }] });
const key = generateKey();
const keyId = 'key_soak';
await store.createKey(
  { id: keyId, owner: 'soak', plan: 'soak', scopes: [], status: 'active', createdAt: Date.now(), cidrs: [], metadata: {} },
  { digest: makeDigester()(key) },
);
const kg = await startKeygate({ core: null, redisUrl: redis.url, env: { KEYGATE_LOG_LEVEL: 'warn' } });

const { packageDefinition } = loadProtos();
const Client = grpc.makeClientConstructor(packageDefinition['envoy.service.auth.v3.Authorization'], 'Authorization');
const client = new Client(`127.0.0.1:${kg.port}`, grpc.credentials.createInsecure());
const request = checkRequestObject(key);

const totals = { sent: 0, allowed: 0, denied: 0, errors: 0, shed: 0 };
let window = { allowed: 0, errors: 0, maxMs: 0 };
let inflight = 0;
const samples = [];
const events = [];
const started = Date.now();

function send() {
  if (inflight >= MAX_INFLIGHT) {
    totals.shed++; // the client would be queueing without bound: count it, don't send
    return;
  }
  inflight++;
  totals.sent++;
  const t0 = performance.now();
  client.Check(request, { deadline: Date.now() + 2000 }, (err, res) => {
    inflight--;
    const ms = performance.now() - t0;
    if (ms > window.maxMs) window.maxMs = ms;
    if (err) {
      totals.errors++;
      window.errors++;
    } else if (res.http_response === 'ok_response') {
      totals.allowed++;
      window.allowed++;
    } else totals.denied++;
  });
}

// Faults on a schedule (times in seconds from the start; each heals by itself).
const schedule = FAULTS
  ? [
      { at: 0.25, name: 'SIGSTOP redis 2 s', run: async () => { process.kill(redis.pid, 'SIGSTOP'); setTimeout(() => process.kill(redis.pid, 'SIGCONT'), 2000); } },
      { at: 0.5, name: 'CLIENT PAUSE 1500 ALL', run: async () => { await redis.client.call('CLIENT', 'PAUSE', '1500', 'ALL'); } },
      { at: 0.75, name: 'CLIENT KILL TYPE normal (connections dropped)', run: async () => { await redis.client.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes'); } },
    ]
  : [];
for (const f of schedule) {
  setTimeout(() => {
    events.push({ t: (Date.now() - started) / 1000, fault: f.name });
    f.run().catch((err) => events.push({ t: (Date.now() - started) / 1000, fault: `${f.name} failed: ${err.message}` }));
  }, f.at * SECONDS * 1000);
}

// Fixed-rate sender: every 10 ms send the requests due so far (open loop, bounded in-flight).
const tick = setInterval(() => {
  const due = Math.floor(((Date.now() - started) / 1000) * RATE);
  while (totals.sent + totals.shed < due) send();
}, 10);

// Once a second: keygate's RSS and event-loop delay (nodejs_eventloop_lag_p99_seconds).
const sampler = setInterval(async () => {
  const t = Math.round((Date.now() - started) / 1000);
  const rssMb = (memory(kg.pid)?.rssKb ?? 0) / 1024;
  let lagMs = NaN;
  try {
    const text = (await httpGet(kg.httpPort, '/metrics')).body;
    const line = text.split('\n').find((l) => l.startsWith('nodejs_eventloop_lag_p99_seconds'));
    if (line) lagMs = Number(line.split(' ').pop()) * 1000;
  } catch {
    // keygate busy: leave NaN
  }
  samples.push({ t, okPerS: window.allowed, errors: window.errors, maxMs: Math.round(window.maxMs), rssMb: Math.round(rssMb * 10) / 10, lagP99Ms: Math.round(lagMs * 10) / 10 });
  window = { allowed: 0, errors: 0, maxMs: 0 };
}, 1000);

await new Promise((r) => setTimeout(r, SECONDS * 1000));
clearInterval(tick);
clearInterval(sampler);
const drainEnd = Date.now() + 5000;
while (inflight > 0 && Date.now() < drainEnd) await new Promise((r) => setTimeout(r, 20));

const month = new Date().toISOString().slice(0, 7).replace('-', '');
const counted = Number((await redis.client.get(`kg:{${keyId}}:q:month:${month}`)) ?? 0);
client.close();
await kg.stop();
await redis.stop();
rmSync(dir, { recursive: true, force: true });

const lost = Math.max(0, totals.allowed - counted);
const chargedNotAllowed = Math.max(0, counted - totals.allowed);
const rss = samples.map((s) => s.rssMb).filter((n) => n > 0);
const firstHalf = rss.slice(Math.floor(rss.length * 0.2), Math.floor(rss.length * 0.5));
const secondHalf = rss.slice(Math.floor(rss.length * 0.5));
const avg = (a) => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);

console.log(`keygate soak: ${SECONDS} s at ${RATE} req/s, faults ${FAULTS ? 'on' : 'off'} (${new Date().toISOString()})`);
console.log('');
console.log('   t  ok/s  errors  max ms  RSS MB  loop p99 ms');
for (const s of samples.filter((_, i) => i % 5 === 4 || samples.length <= 20)) {
  console.log(`${String(s.t).padStart(4)}  ${String(s.okPerS).padStart(4)}  ${String(s.errors).padStart(6)}  ${String(s.maxMs).padStart(6)}  ${String(s.rssMb).padStart(6)}  ${String(s.lagP99Ms).padStart(11)}`);
}
for (const e of events) console.log(`fault at ${e.t.toFixed(1)} s: ${e.fault}`);
console.log('');
console.log(`sent ${totals.sent}, allowed ${totals.allowed}, denied ${totals.denied}, errors (UNAVAILABLE/deadline) ${totals.errors}, not sent (client in-flight cap) ${totals.shed}`);
console.log(`units counted in Redis ${counted}: lost counts ${lost}, charged but not seen allowed ${chargedNotAllowed}`);
console.log(`RSS: ${rss[0] ?? '?'} MB at start, mean ${avg(firstHalf).toFixed(1)} MB (20-50 %) vs ${avg(secondHalf).toFixed(1)} MB (50-100 %), max ${Math.max(...rss)} MB`);
const ok = lost === 0 && (FAULTS || (totals.errors === 0 && avg(secondHalf) <= avg(firstHalf) * 1.2 + 5));
console.log(ok ? 'result: OK' : 'result: PROBLEM (see above)');
process.exit(ok ? 0 : 1);
