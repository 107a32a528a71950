// Process and machine measurements from /proc: CPU time and RSS of one process or of a process
// tree (keygate's primary and its workers), per-core busy time (to see how much CPU *other*
// processes took on the server's core during a run), spawning pinned to a core with taskset,
// free ports, and waiting for things to come up.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import http from 'node:http';

export const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

export const HAVE_TASKSET = spawnSync('taskset', ['-V'], { encoding: 'utf8' }).status === 0;

/** CPU seconds (user+system) a process has used so far, or null when it is gone. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the ")" that closes comm: state is field 3, utime 14, stime 15
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return null;
  }
}

/** { rssKb, hwmKb } from /proc/<pid>/status, or null. */
export function memory(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch {
    return null;
  }
}

/** Busy and total jiffies per core ("cpu0", "cpu1", ... and "cpu" for all). */
export function coreTimes() {
  const out = {};
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    if (!line.startsWith('cpu')) continue;
    const [name, ...f] = line.trim().split(/\s+/);
    const v = f.map(Number);
    const idle = v[3] + (v[4] || 0); // idle + iowait
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // without guest (already in user)
    out[name] = { busy: total - idle, total };
  }
  return out;
}

/** Per-core and whole-machine busy % between two coreTimes() readings. */
function busySince(cores0, cores1) {
  const coreBusyPct = {};
  for (const [n, c] of Object.entries(cores1)) {
    const b = cores0[n];
    if (!b || n === 'cpu') continue;
    coreBusyPct[n] = (100 * (c.busy - b.busy)) / Math.max(1, c.total - b.total);
  }
  const machineBusyPct = cores1.cpu && cores0.cpu ? (100 * (cores1.cpu.busy - cores0.cpu.busy)) / Math.max(1, cores1.cpu.total - cores0.cpu.total) : null;
  return { coreBusyPct, machineBusyPct };
}

/**
 * Samples a set of processes over a window: CPU% (of one core) of each, max RSS of each,
 * and the busy% of each core. start() … stop() → summary. `pids` is read at start(), so a pid
 * known only later (h2load's) can be filled in until then; a missing or vanished process has
 * CPU% null. treeSampler() with single-process groups does the work.
 */
export function sampler(pids) {
  const inner = treeSampler({});
  return {
    start() {
      for (const [name, pid] of Object.entries(pids)) if (pid) inner.setRoot(name, pid);
      inner.start();
    },
    stop() {
      const r = inner.stop();
      const cpuPct = Object.fromEntries(Object.keys(pids).map((name) => [name, r.cpuPct[name] ?? null]));
      return { seconds: r.seconds, cpuPct, maxRssKb: r.maxRssKb, coreBusyPct: r.coreBusyPct, machineBusyPct: r.machineBusyPct };
    },
  };
}

/** The cores a process may run on ("0-1", "1"), from /proc/<pid>/status; null when it is gone. */
export function allowedCpus(pid) {
  try {
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** The parent pid of a process, or null when it is gone. */
export function parentPid(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/** `root` and all its descendants (from the ppid of every process in /proc), root first. */
export function processTree(root) {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const ppid = parentPid(d);
    if (ppid === null) continue;
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(Number(d));
  }
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...(children.get(out[i]) ?? []));
  return out;
}

/**
 * Like sampler(), with process trees: the groups named in `trees` count their root pid and all
 * its descendants (e.g. keygate's primary and its node:cluster workers), the others their own
 * pid only (this script is the parent of everything it starts). The trees are read from /proc at
 * start(); RSS is sampled every 250 ms as the sum over each group (and per process); stop() →
 * per group CPU% (of one core, summed over the group) and max summed RSS, per process CPU% and
 * max RSS, per-core and machine busy%, and `changed`: tree groups whose processes were not the
 * same at the end (one died or was started during the window). setRoot(name, pid) adds a group.
 */
export function treeSampler(roots, { trees: treeGroups = [] } = {}) {
  const groups = { ...roots };
  let t0, cores0, timer;
  const trees = {};
  const cpu0 = {};
  const maxRss = {};
  const maxRssOf = {};
  const sampleRss = () => {
    for (const [name, pids] of Object.entries(trees)) {
      let sum = 0;
      for (const pid of pids) {
        const m = memory(pid);
        if (!m || !Number.isFinite(m.rssKb)) continue;
        sum += m.rssKb;
        if (!(maxRssOf[pid] >= m.rssKb)) maxRssOf[pid] = m.rssKb;
      }
      if (!(maxRss[name] >= sum)) maxRss[name] = sum;
    }
  };
  return {
    setRoot(name, pid) {
      groups[name] = pid;
    },
    start() {
      t0 = process.hrtime.bigint();
      for (const [name, root] of Object.entries(groups)) {
        if (!root) continue;
        trees[name] = treeGroups.includes(name) ? processTree(root) : [root];
        for (const pid of trees[name]) cpu0[pid] = cpuSeconds(pid);
      }
      cores0 = coreTimes();
      sampleRss();
      timer = setInterval(sampleRss, 250);
    },
    stop() {
      clearInterval(timer);
      sampleRss();
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const cores1 = coreTimes();
      const cpuPct = {};
      const maxRssKb = {};
      const processes = {};
      const changed = [];
      for (const [name, pids] of Object.entries(trees)) {
        let sum = 0;
        processes[name] = pids.map((pid) => {
          const c1 = cpuSeconds(pid);
          const pct = c1 === null || cpu0[pid] === null ? null : (100 * (c1 - cpu0[pid])) / seconds;
          if (pct !== null) sum += pct;
          return { pid, cpuPct: pct, maxRssKb: maxRssOf[pid] ?? null };
        });
        cpuPct[name] = processes[name].some((p) => p.cpuPct !== null) ? sum : null;
        maxRssKb[name] = maxRss[name] ?? null;
        if (!treeGroups.includes(name)) continue;
        const now = processTree(pids[0]);
        if (now.length !== pids.length || now.some((p) => !pids.includes(p)) || processes[name].some((p) => p.cpuPct === null)) changed.push(name);
      }
      const { coreBusyPct, machineBusyPct: all } = busySince(cores0, cores1);
      return { seconds, cpuPct, maxRssKb, processes, changed, coreBusyPct, machineBusyPct: all };
    },
  };
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Spawns `cmd args` pinned to `core` (when taskset exists and core is not null). */
export function spawnPinned(core, cmd, args, opts = {}) {
  if (HAVE_TASKSET && core !== null && core !== undefined) return spawn('taskset', ['-c', String(core), cmd, ...args], opts);
  return spawn(cmd, args, opts);
}

/** Pins an already running process (e.g. this one) to a core; false when it could not. */
export function pin(pid, core) {
  if (!HAVE_TASKSET || core === null || core === undefined) return false;
  return spawnSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { encoding: 'utf8' }).status === 0;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** GET http://host:port/path → { status, body } (rejects on connection errors). */
export function httpGet(port, path, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Polls until fn() resolves truthy; throws after timeoutMs with `what` in the message. */
export async function waitFor(what, fn, timeoutMs = 15000, everyMs = 100) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      if (await fn()) return;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (${last.message})` : ''}`);
}

/** Waits for a child's stdout to print a line matching re; resolves with the match. */
export function waitForLine(child, re, what, timeoutMs = 15000) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => done(new Error(`timed out waiting for ${what}`)), timeoutMs);
    const onData = (chunk) => {
      buf += chunk;
      const m = re.exec(buf);
      if (m) done(null, m);
    };
    const onExit = (code) => done(new Error(`${what} exited (code ${code}) before it was ready`));
    function done(err, m) {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m);
    }
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', onData);
    child.on('exit', onExit);
  });
}

/** SIGTERM, then SIGKILL after graceMs; resolves when the process has exited. */
export function stopChild(child, graceMs = 5000) {
  return new Promise((resolve) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Waits until the machine is quiet: over a `windowMs` window, the CPU used by processes other
 * than `ownPids` is at most `thresholdPct` (percent of one core, summed over cores). Gives up
 * after maxWaitMs. Resolves with { waitedMs, foreignPct } (the last window's foreign CPU).
 */
export async function waitQuiet({ ownPids = [], thresholdPct = 15, windowMs = 500, maxWaitMs = 20000 } = {}) {
  const started = Date.now();
  let foreignPct = null;
  for (;;) {
    const c0 = coreTimes().cpu;
    const own0 = ownPids.map((p) => cpuSeconds(p) ?? 0);
    const t0 = process.hrtime.bigint();
    await sleep(windowMs);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const c1 = coreTimes().cpu;
    const own = ownPids.reduce((sum, p, i) => sum + Math.max(0, (cpuSeconds(p) ?? own0[i]) - own0[i]), 0);
    const busySeconds = (c1.busy - c0.busy) / CLK_TCK;
    foreignPct = Math.max(0, (100 * (busySeconds - own)) / seconds);
    if (foreignPct <= thresholdPct || Date.now() - started >= maxWaitMs) return { waitedMs: Date.now() - started, foreignPct };
  }
}
