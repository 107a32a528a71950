#!/usr/bin/env node
// `npm run bench`: keygate against a bare grpc-js Check server (the baseline), same machine,
// same request, same core. See BENCHMARKS.md (written by the default mode) and bench/README.md.
//
//   node bench/run.mjs            default: 9 rounds per scenario, ~14 minutes, writes BENCHMARKS.md
//   node bench/run.mjs --quick    1 short round, 100k bulk keys, no profile (~2-3 minutes)
//   node bench/run.mjs --smoke    seconds: two scenarios, tiny runs (CI: proves the harness works)
//   node bench/run.mjs --help     every option
//
// It starts its own redis-server, keygate (dist/src/main.js, built by `npm run build`) and the
// baseline (bench/baseline-server.mjs); pins the server under test to one core and h2load, Redis
// and itself to the other (taskset); proves with one raw request that each server gives the
// expected answer to the exact bytes h2load sends, and after every load run that keygate's
// keygate_checks_total grew only for the expected decision; and writes raw JSON to bench/results/.
// The `workers` scenario compares keygate with KEYGATE_WORKERS=1 and =2 instead (no baseline;
// keygate not pinned, so that two workers can use both cores): see runWorkers() below.
import { execFileSync, spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildCheckBody } from './lib/request.mjs';
import { h2loadArgs, h2loadProblems, h2loadVersion, runH2load } from './lib/h2load.mjs';
import { HAVE_TASKSET, allowedCpus, pin, sampler, sleep, spawnPinned, treeSampler, waitFor, waitQuiet } from './lib/proc.mjs';
import { REPO_DIR } from './lib/protos.mjs';
import { keygateRoot, mainJs, requireDist, snapshotKeygate } from './lib/keygate-lib.mjs';
import {
  answerProblems,
  checkCounts,
  countsDelta,
  monitorCommands,
  redisCommandCalls,
  redisVersion,
  sendRaw,
  startBaseline,
  startKeygate,
  startRedis,
} from './lib/servers.mjs';
import { summariseProfile } from './lib/cpuprofile.mjs';
import { renderMarkdown, renderTable } from './lib/report.mjs';

// --- options ------------------------------------------------------------------------------------

const SCENARIOS = {
  valid: { title: 'valid key, plan with 1 limit (10^9/s), cache warm', expect: 'allow' },
  'valid-3-limits': { title: 'valid key, plan with 3 limits (10^9/s, 10^9/h, 10^9/month)', expect: 'allow' },
  'unknown-key': { title: 'unknown key flood (well-formed, not in the store)', expect: 'invalid_api_key' },
  'junk-key': { title: 'junk key flood (bad checksum)', expect: 'invalid_api_key' },
  workers: { title: 'valid key (as `valid`), keygate with KEYGATE_WORKERS=1 vs KEYGATE_WORKERS=2, not pinned', expect: 'allow', kind: 'workers' },
  'bulk-keys': { title: 'valid key with N keys loaded (default 1M)', expect: 'allow' },
};

const PRESETS = {
  default: { rounds: 9, restartEvery: 3, startWarmup: 3, duration: 3, warmup: 1, probeDuration: 3, probeWarmup: 1, rates: [1000, 5000, 10000], bulkKeys: 1_000_000, profile: true, profileDuration: 8, writeMd: true, quietBudget: 60, adminImport: 1_000_000, scenarios: Object.keys(SCENARIOS) },
  quick: { rounds: 1, restartEvery: 0, startWarmup: 2, duration: 3, warmup: 1, probeDuration: 1, probeWarmup: 0.5, rates: [1000, 5000, 10000], bulkKeys: 100_000, profile: false, profileDuration: 4, writeMd: false, quietBudget: 10, adminImport: 0, scenarios: Object.keys(SCENARIOS) },
  smoke: { rounds: 1, restartEvery: 0, startWarmup: 0.5, duration: 1, warmup: 0.5, probeDuration: 1, probeWarmup: 0.5, rates: [1000], bulkKeys: 1000, profile: false, profileDuration: 2, writeMd: false, quietBudget: 5, adminImport: 0, scenarios: ['valid', 'junk-key'] },
};

const HELP = `usage: node bench/run.mjs [--quick | --smoke] [options]

presets
  (none)                  9 rounds x 3 s per server and scenario, probes 3 s, 1M bulk keys,
                          admin import of 1M keys, CPU profile; writes BENCHMARKS.md (~14 minutes)
  --quick                 1 round x 3 s, probes 1 s, 100k bulk keys, no profile (~2-3 minutes)
  --smoke                 scenarios valid,junk-key, 1 s runs, one probe rate (seconds; for CI)
options (override the preset)
  --rounds N              alternating baseline/keygate rounds per scenario (workers: 1/2 workers)
  --restart-every N       start both servers afresh every N rounds (default preset: 3; 0 = never)
  --duration S            measured seconds of each throughput run (after --warmup S)
  --warmup S              h2load warm-up seconds before each measured run
  --start-warmup S        unmeasured load on each freshly started server before its first round
  --probe-duration S      measured seconds of each fixed-rate latency probe (after --probe-warmup S)
  --rates R,R,...         fixed rates of the latency probe, req/s (total over all clients)
  --clients N             h2load connections (-c), default 16
  --streams N             h2load concurrent streams per connection (-m), default 32
  --scenarios A,B,...     of: ${Object.keys(SCENARIOS).join(', ')}
                          (workers: keygate KEYGATE_WORKERS=1 vs 2, throughput rounds only, keygate
                          not pinned; not in --smoke)
  --bulk-keys N           keys loaded for the bulk-keys scenario
  --admin-import N        also time \`keygate-admin key import\` of N new keys (JSON lines) into
                          an empty Redis database (default 0: off)
  --profile / --no-profile  CPU-profile keygate and the baseline under load (node --cpu-prof)
  --write-md / --no-write-md  write BENCHMARKS.md (default: only without --quick/--smoke)
  --quiet-budget S        before each run, wait (at most S seconds in all) for other processes
                          to stop using the CPU (>15% of a core); 0 = never wait
  --keygate-node-args "A B"   extra node flags for keygate (e.g. "--max-semi-space-size=64")
  --keygate-env NAME=VALUE    extra environment for keygate (repeatable)
  --keygate-log FILE      keep keygate's log (default: discarded; denials are logged per Check)
  --server-core N         core of the server under test (default 0)
  --client-core N         core of h2load, Redis and this script (default 1)
  --strict                exit 1 on errors under load too (default: only on wrong answers
                          or a broken harness)
  --no-pin                do not use taskset
  --out DIR               raw results directory (default bench/results/<timestamp>)
  --render FILE           only re-render BENCHMARKS.md and the table from a results.json
  --md FILE               write the Markdown report to FILE instead of BENCHMARKS.md (with
                          --render or --write-md)
`;

function parseArgs(argv) {
  const flag = (name) => argv.includes(`--${name}`);
  const values = (name) => {
    const out = [];
    argv.forEach((a, i) => {
      if (a === `--${name}` && i + 1 < argv.length) out.push(argv[i + 1]);
      else if (a.startsWith(`--${name}=`)) out.push(a.slice(name.length + 3));
    });
    return out;
  };
  const value = (name) => values(name).at(-1);
  if (flag('help') || flag('h')) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const mode = flag('smoke') ? 'smoke' : flag('quick') ? 'quick' : 'default';
  const o = { mode, ...PRESETS[mode], clients: 16, streams: 32, serverCore: 0, clientCore: 1, pin: !flag('no-pin') };
  const num = (name, key) => {
    const v = value(name);
    if (v === undefined) return;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} ${v}: must be a positive number`);
    o[key] = n;
  };
  num('rounds', 'rounds');
  if (value('restart-every') !== undefined) o.restartEvery = Math.max(0, Number(value('restart-every')) || 0);
  num('duration', 'duration');
  num('warmup', 'warmup');
  num('start-warmup', 'startWarmup');
  num('probe-duration', 'probeDuration');
  num('probe-warmup', 'probeWarmup');
  num('clients', 'clients');
  num('streams', 'streams');
  num('bulk-keys', 'bulkKeys');
  num('profile-duration', 'profileDuration');
  if (value('admin-import') !== undefined) o.adminImport = Math.max(0, Number(value('admin-import')) || 0);
  if (value('quiet-budget') !== undefined) o.quietBudget = Math.max(0, Number(value('quiet-budget')) || 0);
  if (value('server-core') !== undefined) o.serverCore = Number(value('server-core'));
  if (value('client-core') !== undefined) o.clientCore = Number(value('client-core'));
  if (value('rates')) o.rates = value('rates').split(',').filter(Boolean).map(Number);
  if (o.rates.some((r) => !(r > 0))) throw new Error('--rates: positive numbers, comma-separated');
  if (value('scenarios')) o.scenarios = value('scenarios').split(',').filter(Boolean);
  for (const s of o.scenarios) if (!SCENARIOS[s]) throw new Error(`unknown scenario "${s}"; known: ${Object.keys(SCENARIOS).join(', ')}`);
  o.strict = flag('strict');
  if (flag('profile')) o.profile = true;
  if (flag('no-profile')) o.profile = false;
  if (flag('write-md')) o.writeMd = true;
  if (flag('no-write-md')) o.writeMd = false;
  o.keygateNodeArgs = (value('keygate-node-args') ?? '').split(/\s+/).filter(Boolean);
  o.keygateEnv = Object.fromEntries(
    values('keygate-env').map((kv) => {
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new Error(`--keygate-env ${kv}: expected NAME=VALUE`);
      return [kv.slice(0, eq), kv.slice(eq + 1)];
    }),
  );
  o.keygateLog = value('keygate-log');
  o.out = value('out');
  o.render = value('render');
  o.md = value('md');
  o.argv = argv;
  return o;
}

// --- helpers ------------------------------------------------------------------------------------

const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

const log = (msg) => process.stderr.write(`bench: ${msg}\n`);

function machineInfo() {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  const nproc = Number(spawnSync('nproc', [], { encoding: 'utf8' }).stdout?.trim()) || cpus().length;
  const pkg = (name) => {
    try {
      return JSON.parse(readFileSync(resolve(REPO_DIR, 'node_modules', name, 'package.json'), 'utf8')).version;
    } catch {
      return null;
    }
  };
  let commit = null;
  let dirty = null;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    dirty = execFileSync('git', ['--no-optional-locks', 'status', '--porcelain', '--untracked-files=no'], { cwd: REPO_DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== '';
  } catch {
    // not a git checkout
  }
  let keygateVersion = null;
  try {
    keygateVersion = JSON.parse(readFileSync(resolve(REPO_DIR, 'package.json'), 'utf8')).version;
  } catch {
    // ignore
  }
  return {
    nproc,
    cpuModel: model,
    memoryGb: Math.round(totalmem() / 2 ** 30),
    kernel: spawnSync('uname', ['-r'], { encoding: 'utf8' }).stdout?.trim(),
    node: process.version,
    redis: redisVersion(),
    h2load: h2loadVersion(),
    grpcJs: pkg('@grpc/grpc-js'),
    protoLoader: pkg('@grpc/proto-loader'),
    ioredis: pkg('ioredis'),
    keygate: keygateVersion,
    commit,
    dirty,
    taskset: HAVE_TASKSET,
    loadavgAtStart: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  };
}

// --- the run ------------------------------------------------------------------------------------

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.render) {
    // Re-renders the table and BENCHMARKS.md from a results.json (e.g. after a report change).
    const results = JSON.parse(readFileSync(o.render, 'utf8'));
    results.failures ??= [];
    process.stdout.write(renderTable(results));
    const md = resolve(o.md ?? resolve(REPO_DIR, 'BENCHMARKS.md'));
    writeFileSync(md, renderMarkdown(results, { jsonFile: relativeToRepo(resolve(o.render)) }));
    log(`wrote ${md} from ${o.render}`);
    return;
  }
  const started = new Date();
  const t0 = Date.now();
  if (!h2loadVersion()) throw new Error('h2load not found: install it (Debian/Ubuntu: apt-get install nghttp2-client)');
  if (!redisVersion()) throw new Error('redis-server not found on PATH: install it (Debian/Ubuntu: apt-get install redis-server)');
  if (!existsSync(mainJs())) throw new Error(`${mainJs()} not found: run npm run build first`);

  const machine = machineInfo(); // before pinning: nproc counts the cores this process may use
  // Before pinning, too: the cores of the unpinned keygate of the workers scenario (a child
  // spawned without taskset would inherit this process's pinning to the client core).
  const allCores = allowedCpus(process.pid);
  const pinning = o.pin && HAVE_TASKSET;
  const serverCore = pinning ? o.serverCore : null;
  const clientCore = pinning ? o.clientCore : null;
  if (pinning && !pin(process.pid, clientCore)) log(`could not pin this process to core ${clientCore}`);
  if (!pinning) log(o.pin ? 'taskset not found: processes are not pinned to cores' : 'not pinning (--no-pin)');

  const stamp = started.toISOString().replace(/[:.]/g, '-');
  const outDir = resolve(o.out ?? resolve(REPO_DIR, 'bench', 'results', `${stamp}-${o.mode}`));
  mkdirSync(outDir, { recursive: true });
  const command = `npm run bench${o.argv.length ? ` -- ${o.argv.join(' ')}` : ''}`;
  log(`${o.mode} run; results in ${outDir}`);
  snapshotKeygate(resolve(outDir, 'keygate'));
  log(`keygate runs from a copy of dist/ in ${relativeToRepo(resolve(outDir, 'keygate'))}`);

  const children = [];
  const stopAll = async () => {
    for (const c of children.splice(0).reverse()) await c.stop().catch(() => {});
  };
  const onSignal = () => {
    log('interrupted: stopping servers');
    stopAll().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const results = {
    mode: o.mode,
    command,
    startedAt: started.toISOString(),
    machine,
    options: { ...o, argv: undefined },
    pinning: pinning ? { server: serverCore, client: clientCore, redis: clientCore, harness: clientCore } : null,
    request: null,
    scenarios: [],
    profiles: null,
    // problems: errors under load (deadline/store errors, rates not reached) — reported;
    // failures: wrong answers or a broken harness — reported and exit code 1
    problems: [],
    failures: [],
  };

  const quietLeft = { ms: o.quietBudget * 1000 };
  const redis = await startRedis({ core: clientCore, dir: resolve(outDir, 'redis') });
  children.push(redis);
  try {
    // --- plans and keys ---------------------------------------------------------------------
    const { RedisKeyStore } = requireDist('keys/redis-store.js');
    const { generateKey, generateKeyId } = requireDist('keys/format.js');
    const { makeDigester } = requireDist('keys/digest.js');
    const digest = makeDigester();
    const store = new RedisKeyStore(redis.client);
    const HUGE = 1e9;
    await store.putPlan({ name: 'bench-1', limits: [{ count: HUGE, window: 's' }] });
    await store.putPlan({
      name: 'bench-3',
      limits: [
        { count: HUGE, window: 's' },
        { count: HUGE, window: 'h' },
        { count: HUGE, window: 'month' },
      ],
    });
    const makeKey = async (plan) => {
      const key = generateKey();
      const id = generateKeyId();
      const record = { id, owner: 'bench', plan, name: `bench ${plan}`, scopes: [], status: 'active', createdAt: Date.now(), cidrs: [], metadata: {} };
      await store.createKey(record, { digest: digest(key) });
      return { id, key };
    };
    const valid1 = await makeKey('bench-1');
    const valid3 = await makeKey('bench-3');
    const unknownKey = generateKey();
    const junkKey = breakChecksum(generateKey());
    // 1k other keys, so that "N keys loaded" is compared with a store that is not empty
    const small = await loadKeys(redis.url, 1000, serverCore, 'bench-1');
    results.baseKeys = { count: 1000 + 2, seconds: small.seconds };

    const bodies = {
      valid: buildCheckBody(valid1.key),
      'valid-3-limits': buildCheckBody(valid3.key),
      'unknown-key': buildCheckBody(unknownKey),
      'junk-key': buildCheckBody(junkKey),
    };
    bodies.workers = bodies.valid; // the workers scenario sends the very request of `valid`
    results.request = {
      messageBytes: bodies.valid.message.length,
      framedBytes: bodies.valid.body.length,
      example: redactKey(bodies.valid.object),
    };
    log(`CheckRequest: ${bodies.valid.message.length} bytes protobuf, ${bodies.valid.body.length} bytes framed`);

    for (const name of o.scenarios) {
      const scenario = { name, title: SCENARIOS[name].title, expect: SCENARIOS[name].expect, rounds: [], probes: [], problems: [], failures: [] };
      results.scenarios.push(scenario);
      try {
        let body = bodies[name];
        let scenarioRedis = redis;
        if (name === 'bulk-keys') {
          scenario.title = `valid key with ${fmtCount(o.bulkKeys)} keys loaded`;
          // A Redis of its own, so that the ~1k-key store of the other scenarios stays as it is
          // and the two can be compared side by side (runKeysAB below).
          const bulkRedis = await startRedis({ core: clientCore, dir: resolve(outDir, 'redis-bulk') });
          children.push(bulkRedis);
          scenarioRedis = bulkRedis;
          await new RedisKeyStore(bulkRedis.client).putPlan({ name: 'bench-1', limits: [{ count: HUGE, window: 's' }] });
          log(`loading ${o.bulkKeys} keys into a second Redis (pipelined RESP, bench/load-keys.mjs)...`);
          const before = await bulkRedis.client.dbsize();
          const load = await loadKeys(bulkRedis.url, o.bulkKeys, serverCore, 'bench-1');
          const mem = await bulkRedis.client.info('memory');
          scenario.load = {
            keys: o.bulkKeys,
            seconds: load.seconds,
            keysPerSec: load.keysPerSec,
            redisKeysBefore: before,
            redisKeysAfter: await bulkRedis.client.dbsize(),
            redisUsedMemoryMb: Number(/used_memory:(\d+)/.exec(mem)?.[1] ?? NaN) / 2 ** 20,
            loader: 'bench/load-keys.mjs (one socket, pipelined SET/SET/HSET per key + SADD per 1000)',
          };
          log(`loaded ${o.bulkKeys} keys in ${load.seconds.toFixed(1)} s (${Math.round(load.keysPerSec)} keys/s)`);
          body = buildCheckBody(load.samples[0].key);
        }
        const bodyFile = resolve(outDir, `body-${name}.bin`);
        writeFileSync(bodyFile, body.body);
        scenario.bodyFile = bodyFile;
        if (SCENARIOS[name].kind === 'workers') {
          scenario.kind = 'workers';
          await runWorkers({ o, scenario, bodyFile, body, redis, keygateCores: pinning ? allCores : null, clientCore, children, quietLeft });
        } else {
          await runScenario({ o, scenario, bodyFile, body, redis: scenarioRedis, serverCore, clientCore, outDir, children, quietLeft });
        }
        if (name === 'bulk-keys') {
          const smallBodyFile = resolve(outDir, 'body-valid.bin');
          writeFileSync(smallBodyFile, bodies.valid.body);
          scenario.keysAB = await runKeysAB({
            o,
            small: { redis, bodyFile: smallBodyFile, body: bodies.valid, keys: results.baseKeys.count },
            bulk: { redis: scenarioRedis, bodyFile, body, keys: o.bulkKeys },
            serverCore,
            clientCore,
            outDir,
            children,
            quietLeft,
            problems: scenario.problems,
          });
          await scenarioRedis.stop();
          children.splice(children.indexOf(scenarioRedis), 1);
        }
      } catch (err) {
        scenario.failures.push(`scenario failed: ${err.message}`);
        log(`scenario ${name} FAILED: ${err.message}`);
        // leave nothing of this scenario running
        for (const c of children.splice(1).reverse()) await c.stop().catch(() => {});
      }
      for (const p of scenario.problems) results.problems.push(`${name}: ${p}`);
      for (const p of scenario.failures) results.failures.push(`${name}: ${p}`);
      log(`scenario ${name} done (${Math.round((Date.now() - t0) / 1000)} s elapsed)`);
    }

    if (o.adminImport > 0) {
      try {
        results.adminImport = await timeAdminImport({ o, redis, outDir, serverCore });
      } catch (err) {
        results.failures.push(`admin import: ${err.message}`);
        log(`admin import FAILED: ${err.message}`);
      }
    }

    if (o.profile) {
      try {
        const bodyFile = resolve(outDir, 'body-valid.bin');
        if (!existsSync(bodyFile)) writeFileSync(bodyFile, bodies.valid.body);
        results.profiles = await runProfiles({ o, bodyFile, redis, serverCore, clientCore, outDir, children });
      } catch (err) {
        results.failures.push(`profile: ${err.message}`);
        log(`profiling FAILED: ${err.message}`);
      }
    }
  } finally {
    await stopAll();
  }

  results.finishedAt = new Date().toISOString();
  results.elapsedSeconds = (Date.now() - t0) / 1000;
  const jsonFile = resolve(outDir, 'results.json');
  writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(renderTable(results));
  if (o.writeMd) {
    const md = resolve(o.md ?? resolve(REPO_DIR, 'BENCHMARKS.md'));
    writeFileSync(md, renderMarkdown(results, { jsonFile: relativeToRepo(jsonFile) }));
    log(`wrote ${md}`);
  } else {
    log('BENCHMARKS.md not written (quick/smoke mode; --write-md to write it)');
  }
  log(`raw results: ${jsonFile}`);
  log(`finished in ${Math.round(results.elapsedSeconds)} s`);
  if (results.problems.length > 0) {
    log(`${results.problems.length} problem(s) under load (reported; --strict makes them fail the run):`);
    for (const p of results.problems) log(`  - ${p}`);
    if (o.strict) process.exitCode = 1;
  }
  if (results.failures.length > 0) {
    log(`${results.failures.length} FAILURE(S):`);
    for (const p of results.failures) log(`  - ${p}`);
    process.exitCode = 1;
  }
}

/** One scenario: both servers up, verified, alternating throughput rounds, then latency probes. */
async function runScenario({ o, scenario, bodyFile, body, redis, serverCore, clientCore, outDir, children, quietLeft }) {
  log(`--- ${scenario.name}: ${scenario.title}`);
  let baseline;
  let keygate;
  const servers = {};
  const expectOf = { baseline: 'allow', keygate: scenario.expect };
  /** Both servers as fresh processes, each proven to answer these exact bytes as expected. */
  const startPair = async () => {
    baseline = await startBaseline({ core: serverCore });
    children.push(baseline);
    keygate = await startKeygate({
      core: serverCore,
      redisUrl: redis.url,
      env: o.keygateEnv,
      nodeArgs: o.keygateNodeArgs,
      logFile: o.keygateLog,
    });
    children.push(keygate);
    Object.assign(servers, { baseline, keygate });
    scenario.sample = {};
    for (const [name, s] of Object.entries(servers)) {
      const a = await sendRaw(s.port, body.body);
      const problems = answerProblems(a, expectOf[name]);
      scenario.sample[name] = { dataBytes: a.dataBytes, grpcStatus: a.grpcStatus, httpResponse: a.response?.http_response, status: a.response?.status };
      if (problems.length) throw new Error(`${name} did not answer as expected: ${problems.join('; ')}`);
    }
    // A fresh process first compiles its hot path (and keygate fills its key cache): load each
    // for o.startWarmup seconds, unmeasured, so that no measured round pays for a cold start.
    for (const s of Object.values(servers)) {
      await runH2load({ port: s.port, bodyFile, clients: o.clients, streams: o.streams, duration: o.startWarmup, warmup: 0 }, { core: clientCore });
    }
  };
  const stopPair = async () => {
    for (const s of [keygate, baseline]) {
      await s.stop();
      children.splice(children.indexOf(s), 1);
    }
  };
  await startPair();
  log(`verified: baseline answers OK (${scenario.sample.baseline.dataBytes} bytes), keygate answers ${scenario.expect} (${scenario.sample.keygate.dataBytes} bytes)`);

  const expectedCounter = scenario.expect === 'allow' ? 'allow/ok' : `deny/${scenario.expect}`;
  const h2 = { port: 0, bodyFile, clients: o.clients, streams: o.streams };

  /** One h2load run against one server with CPU/RSS sampling and (keygate) counter checks. */
  const measure = async (name, extra) => {
    const s = servers[name];
    let quiet = null;
    if (quietLeft.ms > 0) {
      quiet = await waitQuiet({ ownPids: [baseline.pid, keygate.pid, redis.pid, process.pid], maxWaitMs: Math.min(20000, quietLeft.ms) });
      quietLeft.ms -= quiet.waitedMs;
      if (quiet.waitedMs >= 1000) log(`waited ${(quiet.waitedMs / 1000).toFixed(1)} s for other processes to quieten (last: ${Math.round(quiet.foreignPct)}% of a core)`);
    }
    const watched = { server: s.pid, redis: redis.pid, h2load: null };
    const smp = sampler(watched);
    const countsBefore = name === 'keygate' ? await checkCounts(s.httpPort) : null;
    const redisBefore = await redisCommandCalls(redis.client);
    const pids = {};
    const r = await runH2load(
      { ...h2, ...extra, port: s.port },
      {
        core: clientCore,
        onPhase: (phase, pid) => {
          if (phase === 'measure') {
            watched.h2load = pid;
            smp.start();
          } else if (phase === 'done') pids.done = smp.stop();
        },
      },
    );
    const usage = pids.done ?? null;
    // keygate's own counters (below) are exact; the DATA-bytes check is for the baseline
    const problems = h2loadProblems(r, name === 'baseline' ? scenario.sample[name].dataBytes : undefined);
    const failures = [];
    const redisAfter = await redisCommandCalls(redis.client);
    const redisDelta = commandDelta(redisBefore, redisAfter);
    let counts = null;
    if (countsBefore) {
      counts = countsDelta(countsBefore, await checkCounts(s.httpPort));
      const total = Object.values(counts).reduce((a, b) => a + b, 0);
      for (const [k, v] of Object.entries(counts)) {
        if (k === expectedCounter) continue;
        // error/deadline, error/store: the RPC failed (UNAVAILABLE) under load; anything else is a wrong answer
        (k.startsWith('error/') ? problems : failures).push(`keygate answered ${v} Checks with ${k} (expected only ${expectedCounter})`);
      }
      if (total < r.requests.done) problems.push(`keygate counted ${total} Checks, h2load completed ${r.requests.done}`);
      counts.total = total;
    }
    const checksTotal = counts?.total ?? null;
    // h2load counts a gRPC error (HTTP 200, grpc-status in the trailers) as a success: only the
    // expected answers count towards keygate's throughput.
    const goodFraction = counts && checksTotal ? (counts[expectedCounter] ?? 0) / checksTotal : 1;
    const redisPerCheck = checksTotal ? Object.fromEntries(Object.entries(redisDelta).map(([k, v]) => [k, v / checksTotal])) : null;
    return {
      server: name,
      reqPerSec: r.reqPerSec * goodFraction,
      h2loadReqPerSec: r.reqPerSec,
      requests: r.requests,
      status: r.status,
      dataBytesPerRequest: r.requests.succeeded ? r.traffic.data / r.requests.succeeded : null,
      latencyMs: r.latency ?? null,
      timeForRequest: r.timeForRequest,
      cpuPct: usage?.cpuPct.server ?? null,
      redisCpuPct: usage?.cpuPct.redis ?? null,
      h2loadCpuPct: usage?.cpuPct.h2load ?? null,
      maxRssMb: usage?.maxRssKb.server ? usage.maxRssKb.server / 1024 : null,
      coreBusyPct: usage?.coreBusyPct ?? null,
      machineBusyPct: usage?.machineBusyPct ?? null,
      // CPU that other processes took on the server's core during the measurement
      foreignServerCorePct:
        usage && serverCore !== null && usage.coreBusyPct[`cpu${serverCore}`] !== undefined && usage.cpuPct.server !== null
          ? Math.max(0, usage.coreBusyPct[`cpu${serverCore}`] - usage.cpuPct.server)
          : null,
      checks: counts,
      redisCommands: redisDelta,
      redisCommandsPerCheck: redisPerCheck,
      quietWaitMs: quiet?.waitedMs ?? null,
      foreignPctBefore: quiet?.foreignPct ?? null,
      errors:
        r.requests.failed +
        r.requests.errored +
        r.requests.timeout +
        Object.entries(counts ?? {}).reduce((a, [k, v]) => (k.startsWith('error/') ? a + v : a), 0),
      problems,
      failures,
      h2loadArgs: r.args,
    };
  };

  // Throughput: alternate which server goes first, round by round. Every o.restartEvery rounds
  // both servers start afresh: two runs of the same build differ by up to ~20% from one process
  // to the next (JIT and memory layout luck; `node bench/ab.mjs` on one build against itself), so
  // the median spans several process pairs, not one.
  for (let round = 1; round <= o.rounds; round++) {
    if (o.restartEvery > 0 && round > 1 && (round - 1) % o.restartEvery === 0) {
      await stopPair();
      await startPair();
      log(`${scenario.name}: both servers restarted (fresh processes) before round ${round}`);
    }
    const order = round % 2 === 1 ? ['baseline', 'keygate'] : ['keygate', 'baseline'];
    const entry = { round };
    for (const name of order) {
      const m = await measure(name, { duration: o.duration, warmup: o.warmup });
      entry[name] = m;
      for (const p of m.problems) scenario.problems.push(`round ${round} ${name}: ${p}`);
      for (const p of m.failures) scenario.failures.push(`round ${round} ${name}: ${p}`);
      log(`${scenario.name} round ${round} ${name}: ${Math.round(m.reqPerSec)} req/s, CPU ${fmt(m.cpuPct)}%, RSS ${fmt(m.maxRssMb)} MB${m.problems.length ? ` PROBLEMS: ${m.problems.join('; ')}` : ''}`);
    }
    entry.ratio = entry.baseline.reqPerSec > 0 ? entry.keygate.reqPerSec / entry.baseline.reqPerSec : null;
    scenario.rounds.push(entry);
  }
  scenario.throughput = {
    baselineReqPerSec: median(scenario.rounds.map((r) => r.baseline.reqPerSec)),
    keygateReqPerSec: median(scenario.rounds.map((r) => r.keygate.reqPerSec)),
    ratio: median(scenario.rounds.map((r) => r.ratio)),
    ratios: scenario.rounds.map((r) => r.ratio),
    keygateCpuPct: median(scenario.rounds.map((r) => r.keygate.cpuPct)),
    baselineCpuPct: median(scenario.rounds.map((r) => r.baseline.cpuPct)),
    keygateMaxRssMb: Math.max(...scenario.rounds.map((r) => r.keygate.maxRssMb ?? 0)),
    baselineMaxRssMb: Math.max(...scenario.rounds.map((r) => r.baseline.maxRssMb ?? 0)),
    redisCpuPct: median(scenario.rounds.map((r) => r.keygate.redisCpuPct)),
    h2loadCpuPct: median(scenario.rounds.flatMap((r) => [r.keygate.h2loadCpuPct, r.baseline.h2loadCpuPct])),
    redisCommandsPerCheck: scenario.rounds.at(-1)?.keygate.redisCommandsPerCheck ?? null,
    quietWaitMs: scenario.rounds.reduce((a, r) => a + (r.keygate.quietWaitMs ?? 0) + (r.baseline.quietWaitMs ?? 0), 0),
    foreignServerCorePct: Math.max(...scenario.rounds.flatMap((r) => [r.keygate.foreignServerCorePct ?? 0, r.baseline.foreignServerCorePct ?? 0])),
  };

  // Redis calls per Check in steady state (cache warm): MONITOR during 2000 Checks at low concurrency.
  {
    // Checks that missed their deadline under the saturating load may still have commands queued
    // (a deadline does not cancel them): wait until Redis stops receiving them.
    await settleRedis(redis.client);
    const before = await checkCounts(keygate.httpPort);
    const seen = await monitorCommands(redis.client, () =>
      runH2load({ port: keygate.port, bodyFile, clients: 4, streams: 4, requests: 2000 }, { core: clientCore }),
    );
    const checks = Object.values(countsDelta(before, await checkCounts(keygate.httpPort))).reduce((a, b) => a + b, 0);
    const per = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, v / Math.max(1, checks)]));
    scenario.redisCalls = { checks, fromClientsPerCheck: per(seen.fromClients), inScriptsPerCheck: per(seen.inScripts) };
    log(`${scenario.name}: Redis calls per Check: ${JSON.stringify(scenario.redisCalls.fromClientsPerCheck)} (+ inside scripts ${JSON.stringify(scenario.redisCalls.inScriptsPerCheck)})`);
  }

  // Latency at fixed rates (open loop): baseline and keygate at each rate.
  for (const rate of o.rates) {
    const probe = { rate };
    for (const name of ['baseline', 'keygate']) {
      const logFile = resolve(outDir, `probe-${scenario.name}-${name}-${rate}.log`);
      const m = await measure(name, { duration: o.probeDuration, warmup: o.probeWarmup, rps: rate / o.clients, logFile });
      probe[name] = m;
      const achieved = m.reqPerSec;
      m.rateReached = achieved >= rate * 0.95;
      if (!m.rateReached) m.problems.push(`achieved ${Math.round(achieved)} req/s of ${rate} asked`);
      for (const p of m.problems) scenario.problems.push(`probe ${rate}/s ${name}: ${p}`);
      for (const p of m.failures) scenario.failures.push(`probe ${rate}/s ${name}: ${p}`);
      const l = m.latencyMs;
      log(`${scenario.name} probe ${rate}/s ${name}: p50 ${fmt(l?.p50, 2)} p99 ${fmt(l?.p99, 2)} p99.9 ${fmt(l?.p999, 2)} ms, CPU ${fmt(m.cpuPct)}%`);
    }
    probe.p99Ratio = probe.baseline.latencyMs?.p99 ? probe.keygate.latencyMs.p99 / probe.baseline.latencyMs.p99 : null;
    scenario.probes.push(probe);
  }

  // Still the same answer after all that load (quotas not exhausted, nothing broken).
  const after = await sendRaw(keygate.port, body.body);
  const afterProblems = answerProblems(after, scenario.expect);
  if (afterProblems.length) scenario.failures.push(`after the load keygate answered differently: ${afterProblems.join('; ')}`);

  await keygate.stop();
  await baseline.stop();
  children.splice(children.indexOf(keygate), 1);
  children.splice(children.indexOf(baseline), 1);
}

/**
 * Check latency with many keys against few: keygate on the ~1k-key Redis and keygate on the
 * bulk-loaded one, both on the server core, probed in turn at the lowest fixed rate (open loop),
 * o.rounds times alternating which goes first. A single probe of each, minutes apart, mostly
 * measures how this machine's speed drifted in between; alternating short probes and taking the
 * median of the per-round p50 ratios does not.
 */
async function runKeysAB({ o, small, bulk, serverCore, clientCore, outDir, children, quietLeft, problems }) {
  const rate = Math.min(...o.rates);
  log(`--- keys A/B: keygate with ${fmtCount(small.keys)} keys vs ${fmtCount(bulk.keys)} keys, ${fmtCount(rate)} req/s, ${o.rounds} round(s)`);
  const sides = { small, bulk };
  for (const side of Object.values(sides)) {
    side.keygate = await startKeygate({ core: serverCore, redisUrl: side.redis.url, env: o.keygateEnv, nodeArgs: o.keygateNodeArgs, logFile: o.keygateLog });
    children.push(side.keygate);
    const answer = await sendRaw(side.keygate.port, side.body.body);
    const wrong = answerProblems(answer, 'allow');
    if (wrong.length) throw new Error(`keys A/B: keygate did not allow the key: ${wrong.join('; ')}`);
  }
  const rounds = [];
  try {
    for (let round = 1; round <= o.rounds; round++) {
      const order = round % 2 === 1 ? ['small', 'bulk'] : ['bulk', 'small'];
      const entry = { round };
      for (const name of order) {
        const side = sides[name];
        if (quietLeft.ms > 0) {
          const quiet = await waitQuiet({ ownPids: [side.keygate.pid, small.redis.pid, bulk.redis.pid, process.pid], maxWaitMs: Math.min(20000, quietLeft.ms) });
          quietLeft.ms -= quiet.waitedMs;
        }
        const logFile = resolve(outDir, `probe-keys-ab-${name}-${round}.log`);
        const r = await runH2load(
          { port: side.keygate.port, bodyFile: side.bodyFile, clients: o.clients, streams: o.streams, duration: o.probeDuration, warmup: o.probeWarmup, rps: rate / o.clients, logFile },
          { core: clientCore },
        );
        const failed = r.requests.failed + r.requests.errored + r.requests.timeout;
        if (failed > 0) problems.push(`keys A/B round ${round} ${name}: ${failed} failed requests`);
        entry[name] = { p50: r.latency?.p50 ?? null, p99: r.latency?.p99 ?? null, reqPerSec: r.reqPerSec };
        log(`keys A/B round ${round} ${name} (${fmtCount(side.keys)} keys): p50 ${fmt(entry[name].p50, 2)} p99 ${fmt(entry[name].p99, 2)} ms`);
      }
      entry.p50Ratio = entry.small.p50 ? entry.bulk.p50 / entry.small.p50 : null;
      entry.p99Ratio = entry.small.p99 ? entry.bulk.p99 / entry.small.p99 : null;
      rounds.push(entry);
    }
  } finally {
    for (const side of Object.values(sides)) {
      await side.keygate.stop();
      children.splice(children.indexOf(side.keygate), 1);
    }
  }
  const med = (xs) => median(xs.filter((x) => x !== null));
  return {
    rate,
    smallKeys: small.keys,
    bulkKeys: bulk.keys,
    rounds,
    small: { p50: med(rounds.map((r) => r.small.p50)), p99: med(rounds.map((r) => r.small.p99)) },
    bulk: { p50: med(rounds.map((r) => r.bulk.p50)), p99: med(rounds.map((r) => r.bulk.p99)) },
    p50Ratio: med(rounds.map((r) => r.p50Ratio)),
    p99Ratio: med(rounds.map((r) => r.p99Ratio)),
  };
}

/**
 * The workers scenario: keygate with KEYGATE_WORKERS=1 (one process, no node:cluster) and with
 * KEYGATE_WORKERS=2 (a primary and two workers on one gRPC port), the valid-key request of the
 * `valid` scenario, h2load closed loop with the same -c/-m, alternating which goes first round by
 * round; req/s, CPU% and RSS summed over each keygate's process tree (primary + workers).
 *
 * Placement: neither keygate is pinned (`taskset -c <every core>`, since a plain child would
 * inherit this process's pinning), so the workers can use both cores; h2load, Redis and this
 * script stay on the client core as in every other scenario. On a 2-core machine the second
 * worker therefore shares a core with the load generator and Redis.
 */
async function runWorkers({ o, scenario, bodyFile, body, redis, keygateCores, clientCore, children, quietLeft }) {
  log(`--- ${scenario.name}: ${scenario.title}`);
  const VARIANTS = [
    { id: 'w1', workers: 1, label: '1 worker' },
    { id: 'w2', workers: 2, label: '2 workers' },
  ];
  const servers = {};
  const roles = (v, tree) => tree.map((pid, i) => ({ pid, role: v.workers === 1 ? 'keygate' : i === 0 ? 'primary' : 'worker', cpus: allowedCpus(pid) }));
  for (const v of VARIANTS) {
    const s = await startKeygate({
      core: keygateCores,
      redisUrl: redis.url,
      env: { ...o.keygateEnv, KEYGATE_WORKERS: String(v.workers) },
      nodeArgs: o.keygateNodeArgs,
      logFile: o.keygateLog,
    });
    children.push(s);
    servers[v.id] = s;
    // /readyz of the primary is 200 only once every worker is ready: the tree is complete
    const tree = s.tree();
    const expected = v.workers === 1 ? 1 : v.workers + 1;
    if (tree.length !== expected) throw new Error(`KEYGATE_WORKERS=${v.workers}: expected ${expected} process(es), found ${tree.length} (pids ${tree.join(', ')})`);
  }
  scenario.placement = {
    keygate: keygateCores,
    h2load: clientCore,
    redis: clientCore,
    harness: clientCore,
    processes: Object.fromEntries(VARIANTS.map((v) => [v.id, roles(v, servers[v.id].tree())])),
  };
  const where = (c) => (c === null ? 'not pinned' : /^\d+$/.test(String(c)) ? `core ${c}` : `cores ${c}`);
  log(`placement: keygate (every process) ${where(keygateCores)}; h2load, Redis and the harness ${where(clientCore)}`);

  // Prove the answers, and that the primary's /metrics counts the Checks of every worker: one
  // Check per new connection (node:cluster hands connections to the workers in turn), 2 per worker.
  scenario.sample = {};
  const verify = async (v, when) => {
    const s = servers[v.id];
    const n = 2 * v.workers;
    const before = await checkCounts(s.httpPort);
    const answers = [];
    for (let i = 0; i < n; i++) answers.push(await sendRaw(s.port, body.body));
    const problems = answers.flatMap((a, i) => answerProblems(a, 'allow').map((p) => `Check ${i + 1} of ${n}: ${p}`));
    let delta = {};
    try {
      await waitFor(`/metrics to count ${n} allow/ok`, async () => {
        delta = countsDelta(before, await checkCounts(s.httpPort));
        return (delta['allow/ok'] ?? 0) >= n;
      }, 3000);
    } catch {
      // reported below with what /metrics did count
    }
    const total = Object.values(delta).reduce((a, b) => a + b, 0);
    if ((delta['allow/ok'] ?? 0) !== n || total !== n) problems.push(`after ${n} Checks on ${n} connections the primary's /metrics counted ${JSON.stringify(delta)} (expected {"allow/ok":${n}})`);
    if (problems.length) throw new Error(`${v.label} ${when}: ${problems.join('; ')}`);
    const a = answers[0];
    return { checks: n, dataBytes: a.dataBytes, grpcStatus: a.grpcStatus, httpResponse: a.response?.http_response, status: a.response?.status, metricsDelta: delta };
  };
  for (const v of VARIANTS) scenario.sample[v.id] = await verify(v, 'before the load');
  log(`verified: ${VARIANTS.map((v) => `${v.label}: ${scenario.sample[v.id].checks} Checks on as many connections answered ok_response, /metrics counted them`).join('; ')}`);

  const expectedCounter = 'allow/ok';
  const measure = async (v) => {
    const s = servers[v.id];
    let quiet = null;
    if (quietLeft.ms > 0) {
      const ownPids = [...Object.values(servers).flatMap((x) => x.tree()), redis.pid, process.pid];
      quiet = await waitQuiet({ ownPids, maxWaitMs: Math.min(20000, quietLeft.ms) });
      quietLeft.ms -= quiet.waitedMs;
      if (quiet.waitedMs >= 1000) log(`waited ${(quiet.waitedMs / 1000).toFixed(1)} s for other processes to quieten (last: ${Math.round(quiet.foreignPct)}% of a core)`);
    }
    const smp = treeSampler({ server: s.pid, redis: redis.pid, harness: process.pid }, { trees: ['server'] });
    const countsBefore = await checkCounts(s.httpPort);
    let usage = null;
    const r = await runH2load(
      { port: s.port, bodyFile, clients: o.clients, streams: o.streams, duration: o.duration, warmup: o.warmup },
      {
        core: clientCore,
        onPhase: (phase, pid) => {
          if (phase === 'measure') {
            smp.setRoot('h2load', pid);
            smp.start();
          } else if (phase === 'done') usage = smp.stop();
        },
      },
    );
    const problems = h2loadProblems(r);
    const failures = [];
    // From the primary (KEYGATE_WORKERS=2): the sum over the workers (prom-client aggregation).
    const counts = countsDelta(countsBefore, await checkCounts(s.httpPort));
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    for (const [k, n] of Object.entries(counts)) {
      if (k === expectedCounter) continue;
      (k.startsWith('error/') ? problems : failures).push(`keygate answered ${n} Checks with ${k} (expected only ${expectedCounter})`);
    }
    // h2load's count leaves out the warm-up, keygate's does not: fewer is a sign that /metrics
    // did not add up every worker (or that Checks went uncounted).
    if (total < r.requests.done) problems.push(`keygate's /metrics counted ${total} Checks, h2load completed ${r.requests.done}`);
    counts.total = total;
    const goodFraction = total ? (counts[expectedCounter] ?? 0) / total : 1;
    if (!usage) failures.push('no CPU/RSS sample (h2load did not report its measured window)');
    if (usage?.changed.includes('server')) failures.push(`keygate's processes changed during the run (a worker died or was restarted): ${JSON.stringify(usage.processes.server)}`);
    const procs = (usage?.processes.server ?? []).map((p, i) => ({
      pid: p.pid,
      role: v.workers === 1 ? 'keygate' : i === 0 ? 'primary' : 'worker',
      cpuPct: p.cpuPct,
      maxRssMb: p.maxRssKb === null ? null : p.maxRssKb / 1024,
    }));
    const workerCpu = procs.filter((p) => p.role === 'worker').map((p) => p.cpuPct ?? 0);
    if (workerCpu.length > 1 && Math.min(...workerCpu) < 0.1 * Math.max(...workerCpu)) {
      problems.push(`one worker did little of the work (CPU% per worker ${workerCpu.map((c) => c.toFixed(0)).join(' / ')})`);
    }
    const cores = usage ? Object.keys(usage.coreBusyPct).length : null;
    const ours = usage ? ['server', 'redis', 'harness', 'h2load'].reduce((a, k) => a + (usage.cpuPct[k] ?? 0), 0) : null;
    const reqPerSec = r.reqPerSec * goodFraction;
    const cpuPct = usage?.cpuPct.server ?? null;
    return {
      variant: v.id,
      workers: v.workers,
      reqPerSec,
      h2loadReqPerSec: r.reqPerSec,
      requests: r.requests,
      status: r.status,
      dataBytesPerRequest: r.requests.succeeded ? r.traffic.data / r.requests.succeeded : null,
      timeForRequest: r.timeForRequest,
      // CPU% of one core, summed over the process tree (primary + workers)
      cpuPct,
      cpuUsPerCheck: cpuPct !== null && reqPerSec > 0 ? (cpuPct * 1e4) / reqPerSec : null,
      processes: procs,
      maxRssMb: usage?.maxRssKb.server ? usage.maxRssKb.server / 1024 : null,
      redisCpuPct: usage?.cpuPct.redis ?? null,
      h2loadCpuPct: usage?.cpuPct.h2load ?? null,
      harnessCpuPct: usage?.cpuPct.harness ?? null,
      coreBusyPct: usage?.coreBusyPct ?? null,
      machineBusyPct: usage?.machineBusyPct ?? null,
      // CPU (of one core) that processes other than ours took on the whole machine
      foreignPct: usage && usage.machineBusyPct !== null ? Math.max(0, (usage.machineBusyPct * cores) - ours) : null,
      checks: counts,
      quietWaitMs: quiet?.waitedMs ?? null,
      foreignPctBefore: quiet?.foreignPct ?? null,
      errors: r.requests.failed + r.requests.errored + r.requests.timeout + Object.entries(counts).reduce((a, [k, n]) => (k.startsWith('error/') ? a + n : a), 0),
      problems,
      failures,
      h2loadArgs: r.args,
    };
  };

  const byId = Object.fromEntries(VARIANTS.map((v) => [v.id, v]));
  for (let round = 1; round <= o.rounds; round++) {
    const order = round % 2 === 1 ? ['w1', 'w2'] : ['w2', 'w1'];
    const entry = { round, order };
    for (const id of order) {
      const v = byId[id];
      const m = await measure(v);
      entry[id] = m;
      for (const p of m.problems) scenario.problems.push(`round ${round} ${v.label}: ${p}`);
      for (const p of m.failures) scenario.failures.push(`round ${round} ${v.label}: ${p}`);
      const split = m.processes.length > 1 ? ` (${m.processes.map((p) => `${p.role} ${fmt(p.cpuPct)}%`).join(', ')})` : '';
      log(`${scenario.name} round ${round} ${v.label}: ${Math.round(m.reqPerSec)} req/s, CPU ${fmt(m.cpuPct)}%${split}, RSS ${fmt(m.maxRssMb)} MB, h2load ${fmt(m.h2loadCpuPct)}%, Redis ${fmt(m.redisCpuPct)}%${m.problems.length ? ` PROBLEMS: ${m.problems.join('; ')}` : ''}`);
    }
    entry.ratio = entry.w1.reqPerSec > 0 ? entry.w2.reqPerSec / entry.w1.reqPerSec : null;
    log(`${scenario.name} round ${round}: 2 workers / 1 worker = ${fmt(entry.ratio, 2)}x`);
    scenario.rounds.push(entry);
  }
  const rounds = scenario.rounds;
  const roleCpu = (m, role) => m.processes.filter((p) => p.role === role).map((p) => p.cpuPct ?? 0);
  scenario.workers = {
    w1ReqPerSec: median(rounds.map((r) => r.w1.reqPerSec)),
    w2ReqPerSec: median(rounds.map((r) => r.w2.reqPerSec)),
    ratio: median(rounds.map((r) => r.ratio)),
    ratios: rounds.map((r) => r.ratio),
    w1CpuPct: median(rounds.map((r) => r.w1.cpuPct)),
    w2CpuPct: median(rounds.map((r) => r.w2.cpuPct)),
    w2PrimaryCpuPct: median(rounds.map((r) => roleCpu(r.w2, 'primary')[0])),
    w2WorkerCpuPct: [0, 1].map((i) => median(rounds.map((r) => roleCpu(r.w2, 'worker')[i]))),
    w1CpuUsPerCheck: median(rounds.map((r) => r.w1.cpuUsPerCheck)),
    w2CpuUsPerCheck: median(rounds.map((r) => r.w2.cpuUsPerCheck)),
    w1MaxRssMb: Math.max(...rounds.map((r) => r.w1.maxRssMb ?? 0)),
    w2MaxRssMb: Math.max(...rounds.map((r) => r.w2.maxRssMb ?? 0)),
    w1RedisCpuPct: median(rounds.map((r) => r.w1.redisCpuPct)),
    w2RedisCpuPct: median(rounds.map((r) => r.w2.redisCpuPct)),
    w1H2loadCpuPct: median(rounds.map((r) => r.w1.h2loadCpuPct)),
    w2H2loadCpuPct: median(rounds.map((r) => r.w2.h2loadCpuPct)),
    w1MachineBusyPct: median(rounds.map((r) => r.w1.machineBusyPct)),
    w2MachineBusyPct: median(rounds.map((r) => r.w2.machineBusyPct)),
    w1ForeignPct: median(rounds.map((r) => r.w1.foreignPct)),
    w2ForeignPct: median(rounds.map((r) => r.w2.foreignPct)),
    foreignPct: Math.max(...rounds.flatMap((r) => [r.w1.foreignPct ?? 0, r.w2.foreignPct ?? 0])),
    quietWaitMs: rounds.reduce((a, r) => a + (r.w1.quietWaitMs ?? 0) + (r.w2.quietWaitMs ?? 0), 0),
  };
  log(`${scenario.name}: 1 worker ${Math.round(scenario.workers.w1ReqPerSec)} req/s, 2 workers ${Math.round(scenario.workers.w2ReqPerSec)} req/s, ratio ${fmt(scenario.workers.ratio, 2)}x (median of ${fmt(rounds.length)} round(s))`);

  // Still the same answers, and still counted by the primary, after all that load.
  for (const v of VARIANTS) {
    try {
      await verify(v, 'after the load');
    } catch (err) {
      scenario.failures.push(err.message);
    }
  }

  for (const s of Object.values(servers)) {
    await s.stop();
    children.splice(children.indexOf(s), 1);
  }
}

/** Times `keygate-admin key import FILE` of n new keys into Redis database 1 (empty). */
async function timeAdminImport({ o, redis, outDir, serverCore }) {
  const n = o.adminImport;
  const url = `${redis.url}/1`;
  const { RedisKeyStore } = requireDist('keys/redis-store.js');
  const { generateKey } = requireDist('keys/format.js');
  const db1 = redis.client.duplicate({ db: 1 });
  await db1.flushdb();
  await new RedisKeyStore(db1).putPlan({ name: 'bench-1', limits: [{ count: 1e9, window: 's' }] });
  db1.disconnect();
  const file = resolve(outDir, 'admin-import.jsonl');
  const lines = [];
  for (let i = 0; i < n; i++) lines.push(JSON.stringify({ owner: `owner-${i % 1000}`, plan: 'bench-1', key: generateKey() }));
  writeFileSync(file, `${lines.join('\n')}\n`);
  lines.length = 0;
  log(`timing keygate-admin key import of ${n} keys...`);
  const cli = resolve(keygateRoot(), 'dist', 'src', 'admin', 'cli.js');
  const runner = `require(${JSON.stringify(cli)}).runCli(process.argv.slice(1), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then((c) => process.exit(c))`;
  const t0 = process.hrtime.bigint();
  const r = await new Promise((resolvePromise, reject) => {
    const child = spawnPinned(serverCore, process.execPath, ['-e', runner, 'key', 'import', file, '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, REDIS_URL: url },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('error', reject);
    child.on('exit', (code) => resolvePromise({ code, out, err }));
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.code !== 0) throw new Error(`keygate-admin key import exited ${r.code}: ${(r.err || r.out).trim().split('\n').slice(-2).join(' | ')}`);
  let counts = null;
  try {
    counts = JSON.parse(r.out.trim().split('\n').at(-1));
  } catch {
    // not JSON: keep the text
  }
  const check = redis.client.duplicate({ db: 1 });
  const stored = await check.scard('kg:keys');
  check.disconnect();
  if (stored !== n) throw new Error(`after the import Redis holds ${stored} keys, expected ${n}`);
  log(`keygate-admin key import: ${n} keys in ${seconds.toFixed(1)} s (${Math.round(n / seconds)} keys/s)`);
  return { keys: n, seconds, keysPerSec: n / seconds, counts, command: `keygate-admin key import ${relativeToRepo(file)} --json` };
}

/** keygate and the baseline under closed-loop load with node --cpu-prof; summarised. */
async function runProfiles({ o, bodyFile, redis, serverCore, clientCore, outDir, children }) {
  const out = {};
  for (const name of ['keygate', 'baseline']) {
    const dir = resolve(outDir, `cpuprofile-${name}`);
    mkdirSync(dir, { recursive: true });
    const nodeArgs = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
    const s =
      name === 'keygate'
        ? await startKeygate({ core: serverCore, redisUrl: redis.url, env: o.keygateEnv, nodeArgs: [...o.keygateNodeArgs, ...nodeArgs] })
        : await startBaseline({ core: serverCore, nodeArgs });
    children.push(s);
    log(`profiling ${name} under load for ${o.profileDuration} s...`);
    const window = {};
    const nowUs = () => Number(process.hrtime.bigint() / 1000n);
    const r = await runH2load(
      { port: s.port, bodyFile, clients: o.clients, streams: o.streams, duration: o.profileDuration, warmup: 1 },
      { core: clientCore, onPhase: (phase) => (phase === 'measure' ? (window.fromUs = nowUs()) : (window.toUs = nowUs())) },
    );
    await s.stop();
    children.splice(children.indexOf(s), 1);
    await sleep(200);
    const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length === 0) throw new Error(`${name} wrote no .cpuprofile into ${dir}`);
    const file = resolve(dir, files[0]);
    out[name] = { file: relativeToRepo(file), reqPerSec: r.reqPerSec, window, ...summariseProfile(file, { window: window.toUs ? window : undefined }) };
  }
  return out;
}

// --- small helpers ----------------------------------------------------------------------------

function loadKeys(url, count, core, plan) {
  return new Promise((resolvePromise, reject) => {
    const child = spawnPinned(core, process.execPath, [resolve(REPO_DIR, 'bench', 'load-keys.mjs'), '--redis', url, '--count', String(count), '--plan', plan, '--quiet'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (c) => (out += c));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`load-keys exited with ${code}`));
      try {
        resolvePromise(JSON.parse(out.trim().split('\n').at(-1)));
      } catch (e) {
        reject(new Error(`load-keys printed no result: ${e.message}`));
      }
    });
  });
}

/** Waits (at most 10 s) until Redis has received no command other than our INFO for 300 ms. */
async function settleRedis(client) {
  const end = Date.now() + 10000;
  let last = -1;
  while (Date.now() < end) {
    const calls = await redisCommandCalls(client);
    const n = Object.entries(calls).reduce((a, [k, v]) => (k === 'info' || k === 'ping' ? a : a + v), 0);
    if (n === last) return;
    last = n;
    await sleep(300);
  }
}

/** A well-shaped keygate key whose checksum no longer matches. */
function breakChecksum(key) {
  const last = key.at(-1);
  return key.slice(0, -1) + (last === 'A' ? 'B' : 'A');
}

function redactKey(obj) {
  const copy = JSON.parse(JSON.stringify(obj));
  const h = copy.attributes?.request?.http?.headers;
  if (h?.['x-api-key']) h['x-api-key'] = `${h['x-api-key'].slice(0, 6)}… (a valid key)`;
  return copy;
}

const HOUSEKEEPING = new Set(['info', 'ping', 'script|exists', 'script|load', 'subscribe', 'publish', 'select', 'client|setinfo', 'client|setname', 'hello']);
function commandDelta(before, after) {
  const out = {};
  for (const [k, v] of Object.entries(after)) {
    if (HOUSEKEEPING.has(k)) continue;
    const d = v - (before[k] ?? 0);
    if (d > 0) out[k] = d;
  }
  return out;
}

function relativeToRepo(p) {
  return p.startsWith(`${REPO_DIR}/`) ? p.slice(REPO_DIR.length + 1) : p;
}

function fmt(x, digits = 0) {
  return x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(digits);
}

function fmtCount(n) {
  return n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}k` : String(n);
}

export { h2loadArgs };

main().catch((err) => {
  process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
