#!/usr/bin/env node
// Times `keygate-admin key import` of a large CSV file against a throw-away redis-server
// (issue #5, point 5: 1M keys in at most 60 s, with progress). Not part of `npm run bench`.
//
//   npm run build && node bench/import-1m.mjs [--count 1000000] [--again] [--keep] [--file PATH]
//                                             [--root DIR] [--batch-size N] [--pin]
//
// 1. Writes a CSV (`owner,plan,key`, 1000 owners) with N keys from keygate's own generateKey()
//    to a temporary file (or --file PATH; an existing file with N keys is reused).
// 2. Starts redis-server (no persistence) on a free port, creates plan `bench` with keygate-admin.
// 3. Waits (up to 60 s) for the machine to be quiet, then runs `node bin/keygate-admin.js key
//    import FILE --progress --json` with REDIS_URL set, passing its progress lines through to
//    stderr with the seconds since the start, and measures it: wall clock, CPU seconds of the CLI
//    and of redis-server, the CPU other processes took meanwhile (a busy machine slows the import
//    down: read that figure next to the time), the CLI's peak RSS. --again imports the same file
//    a second time (everything unchanged).
// 4. Checks the store: SCARD kg:keys == N, and a sample of keys found by the digest of their
//    secret with keygate's RedisKeyStore.
// Prints a summary and one JSON line. --root DIR runs the keygate build in DIR (dist/, bin/,
// src/limits/lua, protos/) instead of this repository's; --pin puts redis-server on core 1 and the
// CLI on core 0 (taskset).
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { CLK_TCK, coreTimes, cpuSeconds, memory, spawnPinned, waitQuiet } from './lib/proc.mjs';
import { REPO_DIR } from './lib/protos.mjs';

// A reader that stops early (`| head`) must not leave the throw-away redis-server running.
process.stdout.on('error', () => {});

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}
const flag = (name) => process.argv.includes(`--${name}`);

if (flag('help')) {
  process.stdout.write(readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(1, 21).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
  process.exit(0);
}

const count = Number(arg('count', '1000000'));
const root = resolve(arg('root', process.env.KEYGATE_BENCH_ROOT || REPO_DIR));
process.env.KEYGATE_BENCH_ROOT = root;
const { requireDist } = await import('./lib/keygate-lib.mjs');
const { startRedis } = await import('./lib/servers.mjs');
const pinned = flag('pin');
const work = mkdtempSync(join(tmpdir(), 'keygate-import-bench-'));
const file = resolve(arg('file', join(work, `keys-${count}.csv`)));
const cli = join(root, 'bin', 'keygate-admin.js');
const note = (text) => process.stderr.write(`[import-1m] ${text}\n`);

const { generateKey } = requireDist('keys/format.js');
const { makeDigester } = requireDist('keys/digest.js');
const { RedisKeyStore } = requireDist('keys/redis-store.js');

/** Writes the CSV; returns a few secrets (line numbers spread over the file) for the final check. */
async function writeFile() {
  const samples = [];
  const sampleAt = new Set([0, Math.floor(count / 2), count - 1]);
  const out = createWriteStream(file);
  out.write('owner,plan,key\n');
  let chunk = '';
  for (let i = 0; i < count; i++) {
    const key = generateKey();
    if (sampleAt.has(i)) samples.push(key);
    chunk += `owner${i % 1000},bench,${key}\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
  return samples;
}

/** The secrets of lines 2, the middle and the last of an existing file. */
function samplesOf(text) {
  const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('owner,'));
  return [lines[0], lines[Math.floor(lines.length / 2)], lines[lines.length - 1]].map((l) => l.split(',')[2]);
}

function run(args, env, { passStderr = false } = {}) {
  const started = process.hrtime.bigint();
  const redisCpu0 = redis ? cpuSeconds(redis.pid) : 0;
  const machine0 = coreTimes().cpu;
  const own0 = cpuSeconds(process.pid);
  const child = spawnPinned(pinned ? 0 : null, process.execPath, [cli, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let peakKb = 0;
  let cliCpu = 0;
  const timer = setInterval(() => {
    const m = memory(child.pid);
    if (m && m.hwmKb > peakKb) peakKb = m.hwmKb;
    cliCpu = cpuSeconds(child.pid) ?? cliCpu;
  }, 200);
  child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c) => {
    stderr += c;
    // progress lines, each with the seconds since the start
    if (passStderr) process.stderr.write(c.replace(/^(?=.)/gm, () => `[${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(1).padStart(5)} s] `));
  });
  return new Promise((resolveRun) => {
    child.on('exit', (code) => {
      clearInterval(timer);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const redisCpuSeconds = redis ? cpuSeconds(redis.pid) - redisCpu0 : 0;
      const machineBusySeconds = (coreTimes().cpu.busy - machine0.busy) / CLK_TCK;
      // CPU that neither the CLI, nor redis-server, nor this script used: other sessions' work
      const otherCpuSeconds = Math.max(0, machineBusySeconds - cliCpu - redisCpuSeconds - (cpuSeconds(process.pid) - own0));
      resolveRun({
        code,
        stdout,
        stderr,
        seconds,
        peakRssMb: Math.round(peakKb / 1024),
        // CPU seconds: the CLI's as last sampled (up to 0.2 s short), redis-server's exact
        cliCpuSeconds: Number(cliCpu.toFixed(1)),
        redisCpuSeconds: Number(redisCpuSeconds.toFixed(1)),
        otherProcessesCpuPct: Math.round((100 * otherCpuSeconds) / seconds),
      });
    });
  });
}

let redis;
try {
  let samples;
  if (existsSync(file) && flag('file')) {
    note(`reusing ${file}`);
    samples = samplesOf(readFileSync(file, 'utf8'));
  } else {
    note(`writing ${count} keys to ${file}`);
    const t0 = Date.now();
    samples = await writeFile();
    note(`wrote ${(statSync(file).size / 1e6).toFixed(1)} MB in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }

  redis = await startRedis({ core: pinned ? 1 : null, dir: join(work, 'redis') });
  const env = { REDIS_URL: redis.url };
  const plan = await run(['plan', 'set', 'bench', '--limit', '1000000/s'], env);
  if (plan.code !== 0) throw new Error(`plan set failed: ${plan.stderr}`);

  const importArgs = ['key', 'import', file, '--progress', '--progress-every', String(Math.max(1, Math.floor(count / 10))), '--json'];
  if (arg('batch-size')) importArgs.push('--batch-size', arg('batch-size'));
  const quiet = await waitQuiet({ ownPids: [process.pid, redis.pid], maxWaitMs: 60_000 });
  note(`other processes used ${Math.round(quiet.foreignPct)}% CPU just before the import (waited ${quiet.waitedMs} ms for quiet)`);
  note(`$ REDIS_URL=${redis.url} node ${cli} ${importArgs.join(' ')}`);
  const first = await run(importArgs, env, { passStderr: true });
  if (first.code !== 0) throw new Error(`import failed (exit ${first.code}): ${first.stderr}`);
  const counts = JSON.parse(first.stdout);
  const stored = await redis.client.scard('kg:keys');
  const usedMemoryMb = Math.round(Number(/used_memory:(\d+)/.exec(await redis.client.info('memory'))?.[1] ?? 0) / 1048576);
  const store = new RedisKeyStore(redis.client);
  const digest = makeDigester();
  const found = await Promise.all(samples.map(async (s) => (await store.lookup(digest(s)))?.plan === 'bench'));
  const result = {
    count,
    seconds: Number(first.seconds.toFixed(2)),
    keysPerSec: Math.round(count / first.seconds),
    peakRssMb: first.peakRssMb,
    cliCpuSeconds: first.cliCpuSeconds,
    redisCpuSeconds: first.redisCpuSeconds,
    foreignCpuPctBefore: Math.round(quiet.foreignPct),
    otherProcessesCpuPctDuring: first.otherProcessesCpuPct,
    redisUsedMemoryMb: usedMemoryMb,
    created: counts.created,
    storedKeys: stored,
    samplesFound: found.every(Boolean),
  };
  if (flag('again')) {
    const again = await run(importArgs, env, { passStderr: true });
    if (again.code !== 0) throw new Error(`second import failed: ${again.stderr}`);
    const c2 = JSON.parse(again.stdout);
    result.again = {
      seconds: Number(again.seconds.toFixed(2)),
      unchanged: c2.unchanged,
      created: c2.created,
      updated: c2.updated,
      peakRssMb: again.peakRssMb,
      cliCpuSeconds: again.cliCpuSeconds,
      redisCpuSeconds: again.redisCpuSeconds,
      otherProcessesCpuPctDuring: again.otherProcessesCpuPct,
    };
  }
  note(
    `${count} keys imported in ${result.seconds} s (${result.keysPerSec} keys/s; CPU: CLI ${result.cliCpuSeconds} s, redis-server ${result.redisCpuSeconds} s), ` +
      `other processes ${result.otherProcessesCpuPctDuring}% of a core meanwhile, CLI peak RSS ${result.peakRssMb} MB, ` +
      `Redis ${usedMemoryMb} MB; kg:keys holds ${stored}; samples found: ${result.samplesFound}` +
      (result.again ? `; again: ${result.again.seconds} s, ${result.again.unchanged} unchanged` : ''),
  );
  process.stdout.write(`${JSON.stringify(result)}\n`);
  if (stored !== count || counts.created !== count || !result.samplesFound) process.exitCode = 1;
} finally {
  if (redis) await redis.stop();
  if (!flag('keep')) rmSync(work, { recursive: true, force: true });
  else note(`kept ${work}`);
}
