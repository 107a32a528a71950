#!/usr/bin/env node
// Two builds of keygate against each other: "is my change faster?" on a machine whose speed drifts.
// Both run on the server core against one Redis, with the valid-key request of `npm run bench`;
// h2load loads them in turn (closed loop), round after round, alternating which goes first. The
// verdict is the median of the per-round ratios B/A, for req/s and for keygate CPU µs per Check.
//
//   node bench/ab.mjs --snapshot DIR          copy this tree's build (npm run build first) to DIR
//   node bench/ab.mjs --a DIR --b DIR [--rounds 12] [--duration 3] [--warmup 1]
//
// A build is a directory made by --snapshot (dist/src, the Lua scripts, node_modules linked).
// Typical use: `npm run build && node bench/ab.mjs --snapshot /tmp/kg-before`, make the change,
// `npm run build && node bench/ab.mjs --snapshot /tmp/kg-after`, then
// `node bench/ab.mjs --a /tmp/kg-before --b /tmp/kg-after`. Not part of `npm run bench`.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runH2load } from './lib/h2load.mjs';
import { snapshotKeygate } from './lib/keygate-lib.mjs';
import { HAVE_TASKSET, cpuSeconds, waitQuiet } from './lib/proc.mjs';
import { buildCheckBody } from './lib/request.mjs';
import { startKeygate, startRedis } from './lib/servers.mjs';

const argv = process.argv.slice(2);
const value = (name, def) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def;
};
if (argv.includes('--help') || argv.length === 0) {
  process.stdout.write(
    `${readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1, 13).map((l) => l.replace(/^\/\/ ?/, '')).join('\n')}\n`,
  );
  process.exit(argv.length === 0 ? 2 : 0);
}
if (value('snapshot')) {
  const dir = resolve(value('snapshot'));
  snapshotKeygate(dir);
  process.stdout.write(`build copied to ${dir}\n`);
  process.exit(0);
}

const builds = { a: value('a'), b: value('b') };
for (const [name, dir] of Object.entries(builds)) {
  if (!dir || !existsSync(resolve(dir, 'dist', 'src', 'main.js'))) {
    process.stderr.write(`ab: --${name} DIR must name a build made with --snapshot (no ${dir ?? '(missing)'}/dist/src/main.js)\n`);
    process.exit(2);
  }
}
const rounds = Number(value('rounds', '12'));
const duration = Number(value('duration', '3'));
const warmup = Number(value('warmup', '1'));
const serverCore = HAVE_TASKSET ? 0 : null;
const clientCore = HAVE_TASKSET ? 1 : null;
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const log = (line) => process.stderr.write(`ab: ${line}\n`);

const work = mkdtempSync(join(tmpdir(), 'keygate-ab-'));
const children = [];
try {
  const redis = await startRedis({ core: clientCore, dir: join(work, 'redis') });
  children.push(redis);
  // The key and plan, written with build A's own store code (the schema both builds read).
  // (Not snapshotKeygate: that would copy this tree's build over build A.)
  const requireA = createRequire(resolve(builds.a, 'dist', 'src', 'main.js'));
  const requireDist = (rel) => requireA(`./${rel}`);
  const { RedisKeyStore } = requireDist('keys/redis-store.js');
  const { generateKey, generateKeyId } = requireDist('keys/format.js');
  const { makeDigester } = requireDist('keys/digest.js');
  const store = new RedisKeyStore(redis.client);
  await store.putPlan({ name: 'bench-1', limits: [{ count: 1e9, window: 's' }] });
  const key = generateKey();
  await store.createKey(
    { id: generateKeyId(), owner: 'bench', plan: 'bench-1', name: 'ab', scopes: [], status: 'active', createdAt: Date.now(), cidrs: [], metadata: {} },
    { digest: makeDigester()(key) },
  );
  const bodyFile = join(work, 'body.bin');
  writeFileSync(bodyFile, buildCheckBody(key).body);

  const servers = {};
  for (const [name, dir] of Object.entries(builds)) {
    servers[name] = await startKeygate({ core: serverCore, redisUrl: redis.url, cwd: resolve(dir), main: resolve(dir, 'dist', 'src', 'main.js') });
    children.push(servers[name]);
  }
  const results = { a: [], b: [] };
  const ratios = { reqPerSec: [], cpuUsPerCheck: [] };
  for (let round = 1; round <= rounds; round++) {
    const order = round % 2 === 1 ? ['a', 'b'] : ['b', 'a'];
    const entry = {};
    for (const name of order) {
      const s = servers[name];
      await waitQuiet({ ownPids: [servers.a.pid, servers.b.pid, redis.pid, process.pid], maxWaitMs: 10_000 });
      let cpu0 = 0;
      let cpu1 = 0;
      const r = await runH2load(
        { port: s.port, bodyFile, clients: 16, streams: 32, duration, warmup },
        {
          core: clientCore,
          onPhase: (phase) => {
            if (phase === 'measure') cpu0 = cpuSeconds(s.pid);
            else if (phase === 'done') cpu1 = cpuSeconds(s.pid);
          },
        },
      );
      const done = r.requests.succeeded;
      entry[name] = { reqPerSec: r.reqPerSec, cpuUsPerCheck: done > 0 ? ((cpu1 - cpu0) * 1e6) / (r.reqPerSec * duration) : null };
      results[name].push(entry[name]);
    }
    ratios.reqPerSec.push(entry.b.reqPerSec / entry.a.reqPerSec);
    ratios.cpuUsPerCheck.push(entry.b.cpuUsPerCheck / entry.a.cpuUsPerCheck);
    log(
      `round ${round}: A ${Math.round(entry.a.reqPerSec)} req/s ${entry.a.cpuUsPerCheck?.toFixed(1)} µs/Check, ` +
        `B ${Math.round(entry.b.reqPerSec)} req/s ${entry.b.cpuUsPerCheck?.toFixed(1)} µs/Check`,
    );
  }
  const summary = {
    a: builds.a,
    b: builds.b,
    rounds,
    durationSeconds: duration,
    aReqPerSec: Math.round(median(results.a.map((r) => r.reqPerSec))),
    bReqPerSec: Math.round(median(results.b.map((r) => r.reqPerSec))),
    aCpuUsPerCheck: Number(median(results.a.map((r) => r.cpuUsPerCheck)).toFixed(1)),
    bCpuUsPerCheck: Number(median(results.b.map((r) => r.cpuUsPerCheck)).toFixed(1)),
    reqPerSecRatio: Number(median(ratios.reqPerSec).toFixed(3)),
    cpuPerCheckRatio: Number(median(ratios.cpuUsPerCheck).toFixed(3)),
    reqPerSecRatios: ratios.reqPerSec.map((x) => Number(x.toFixed(2))),
  };
  process.stdout.write(
    `B/A req/s ${summary.reqPerSecRatio}x (A ${summary.aReqPerSec}, B ${summary.bReqPerSec}; per round ${summary.reqPerSecRatios.join(' / ')})\n` +
      `B/A keygate CPU per Check ${summary.cpuPerCheckRatio}x (A ${summary.aCpuUsPerCheck} µs, B ${summary.bCpuUsPerCheck} µs)\n` +
      `${JSON.stringify(summary)}\n`,
  );
} finally {
  for (const c of children.reverse()) await c.stop().catch(() => {});
  rmSync(work, { recursive: true, force: true });
}
