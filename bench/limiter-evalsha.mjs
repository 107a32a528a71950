#!/usr/bin/env node
// Micro-benchmark of the quota script alone: EVALSHA calls/s of charge.lua against a throw-away
// redis-server, and Redis's own time per call (INFO commandstats usec_per_call, which does not
// depend on the client), for one or more versions of the script side by side; plus the JS cost
// of building one call (encodeCharge). Not part of `npm run bench`.
//
//   npm run build && node bench/limiter-evalsha.mjs [--script NAME=PATH ...] [--scenario NAME ...]
//                                                   [--seconds 3] [--rounds 3] [--pin]
//
// Default script: current=src/limits/lua/charge.lua. To compare with another version, e.g. the
// committed one:  git show HEAD:src/limits/lua/charge.lua > /tmp/charge-head.lua
//                 node bench/limiter-evalsha.mjs --script head=/tmp/charge-head.lua --script current=src/limits/lua/charge.lua
// Every script must take the KEYS/ARGV that this build's encodeCharge lays out.
//
// Scenarios (cost 1, limits far too high to refuse, `now` = the wall clock):
//   hot-5     one key, 5 limits (s, m, h, d, month): the busy key of the Check benchmark
//   hot-1     one key, 1 limit (s)
//   spread-5  1,000 keys in turn, 5 limits: most charges of a key open a new s and m bucket
//   full-m    one key, 1 limit (m) whose window is full (61 buckets): `now` is a simulated clock
//             that moves 2 ms per call, after 35,000 calls (70 s) that fill the window
// The client keeps 4 pipelines of 100 EVALSHA in flight. Rounds alternate the scripts; the
// table shows the median of the rounds: calls/s, Redis's time per call (usec_per_call), and
// redis-server's CPU time per call (from /proc: unlike the others, not inflated when other
// processes take the core). Each round first waits (up to 20 s) for the machine to be quiet.
// --pin: redis-server on core 1, this process on core 0.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { requireDist } from './lib/keygate-lib.mjs';
import { cpuSeconds, pin, waitQuiet } from './lib/proc.mjs';
import { REPO_DIR } from './lib/protos.mjs';
import { startRedis } from './lib/servers.mjs';

// A reader that stops early (`| head`) must not leave the throw-away redis-server running.
process.stdout.on('error', () => {});

const argv = process.argv.slice(2);
const values = (name) => argv.flatMap((a, i) => (a === `--${name}` && i + 1 < argv.length ? [argv[i + 1]] : []));
const value = (name, def) => values(name)[0] ?? def;
if (argv.includes('--help')) {
  process.stdout.write(readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1, 25).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
  process.exit(0);
}
const seconds = Number(value('seconds', '3'));
const rounds = Number(value('rounds', '3'));
const pinned = argv.includes('--pin');
const scripts = (values('script').length > 0 ? values('script') : [`current=${resolve(REPO_DIR, 'src/limits/lua/charge.lua')}`]).map((spec) => {
  const eq = spec.indexOf('=');
  const source = readFileSync(resolve(spec.slice(eq + 1)), 'utf8');
  return { name: spec.slice(0, eq), source, sha1: createHash('sha1').update(source).digest('hex') };
});

const { encodeCharge } = requireDist('limits/charge-call.js');
const { parseLimit } = requireDist('limits/plans.js');
const five = ['1000000000/s', '1000000000/m', '1000000000/h', '1000000000/d', '1000000000/month'].map(parseLimit);
const scenarios = [
  { name: 'hot-5', keys: 1, limits: five },
  { name: 'hot-1', keys: 1, limits: [parseLimit('1000000000/s')] },
  { name: 'spread-5', keys: 1_000, limits: five },
  { name: 'full-m', keys: 1, limits: [parseLimit('1000000000/m')], stepMs: 2, fillCalls: 35_000 },
].filter((s) => values('scenario').length === 0 || values('scenario').includes(s.name));

if (pinned) pin(process.pid, 0);
const dir = mkdtempSync(join(tmpdir(), 'keygate-evalsha-'));
const redis = await startRedis({ core: pinned ? 1 : null, dir });
const client = redis.client;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(scenario, script) {
  await client.flushall();
  const ids = Array.from({ length: scenario.keys }, (_, i) => `bench${i}`);
  let next = 0;
  let simulated = Date.now() - (scenario.fillCalls ?? 0) * (scenario.stepMs ?? 0);
  const clock = scenario.stepMs ? () => (simulated += scenario.stepMs) : () => Date.now();
  const send = async () => {
    const pipeline = client.pipeline();
    for (let i = 0; i < 100; i++) {
      const { keys, args } = encodeCharge({ keyId: ids[next++ % ids.length], limits: scenario.limits, cost: 1, now: clock() }, 90);
      pipeline.evalsha(script.sha1, keys.length, ...keys, ...args);
    }
    const results = await pipeline.exec();
    for (const [err] of results) if (err) throw err;
    return results.length;
  };
  for (let filled = 0; filled < (scenario.fillCalls ?? 0); ) filled += await send();
  const quiet = await waitQuiet({ ownPids: [process.pid, redis.pid] });
  await client.config('RESETSTAT');
  const cpu0 = cpuSeconds(redis.pid);
  let calls = 0;
  const started = Date.now();
  const end = started + seconds * 1000;
  const worker = async () => {
    while (Date.now() < end) calls += await send();
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  const elapsed = (Date.now() - started) / 1000;
  const redisCpuUsecPerCall = ((cpuSeconds(redis.pid) - cpu0) * 1e6) / calls;
  const stats = await client.info('commandstats');
  const usec = Number(/cmdstat_evalsha:calls=\d+,usec=\d+,usec_per_call=([\d.]+)/.exec(stats)?.[1] ?? NaN);
  const pexpire = Number(/cmdstat_pexpire:calls=(\d+)/.exec(stats)?.[1] ?? 0);
  return { callsPerSec: calls / elapsed, usecPerCall: usec, redisCpuUsecPerCall, pexpirePerCall: pexpire / calls, foreignCpuPct: quiet.foreignPct };
}

function encodeRate() {
  const request = { keyId: 'bench0', limits: five, cost: 1, now: Date.now() };
  const n = 300_000;
  for (let i = 0; i < 20_000; i++) encodeCharge({ ...request, now: request.now + i }, 90); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) encodeCharge({ ...request, now: request.now + i }, 90);
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

try {
  for (const script of scripts) await client.script('LOAD', script.source);
  const results = {};
  for (const scenario of scenarios) {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? scripts : [...scripts].reverse();
      for (const script of order) {
        const r = await measure(scenario, script);
        ((results[scenario.name] ??= {})[script.name] ??= []).push(r);
        process.stderr.write(
          `[evalsha] ${scenario.name} ${script.name} round ${round + 1}: ${Math.round(r.callsPerSec)} calls/s, ${r.usecPerCall} µs/call in Redis, ` +
            `${r.redisCpuUsecPerCall.toFixed(1)} µs redis-server CPU/call (other processes: ${Math.round(r.foreignCpuPct ?? -1)}% CPU before the round)\n`,
        );
      }
    }
  }
  const rows = [];
  for (const scenario of scenarios) {
    for (const script of scripts) {
      const rs = results[scenario.name][script.name];
      rows.push({
        scenario: scenario.name,
        script: script.name,
        callsPerSec: Math.round(median(rs.map((r) => r.callsPerSec))),
        redisUsecPerCall: median(rs.map((r) => r.usecPerCall)),
        redisCpuUsecPerCall: Number(median(rs.map((r) => r.redisCpuUsecPerCall)).toFixed(1)),
        pexpirePerCall: Number(median(rs.map((r) => r.pexpirePerCall)).toFixed(3)),
      });
    }
  }
  const encodePerSec = Math.round(encodeRate());
  process.stdout.write('scenario   script      EVALSHA/s   µs/call in Redis   redis CPU µs/call   PEXPIRE/call\n');
  for (const r of rows) {
    process.stdout.write(
      `${r.scenario.padEnd(10)} ${r.script.padEnd(10)} ${String(r.callsPerSec).padStart(10)} ${String(r.redisUsecPerCall).padStart(18)} ` +
        `${String(r.redisCpuUsecPerCall).padStart(19)} ${String(r.pexpirePerCall).padStart(14)}\n`,
    );
  }
  process.stdout.write(`encodeCharge (5 limits), this build: ${encodePerSec} calls/s\n`);
  process.stdout.write(`${JSON.stringify({ seconds, rounds, pinned, rows, encodePerSec })}\n`);
} finally {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
