// Starting and checking the processes under test: a throw-away redis-server, keygate
// (dist/src/main.js) and the baseline server, each pinned to its core; one raw HTTP/2 request
// with the exact bytes h2load sends, to prove what the server answers; keygate's
// keygate_checks_total from /metrics, to prove what it answered under load.
import { spawnSync } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, closeSync } from 'node:fs';
import http2 from 'node:http2';
import { resolve } from 'node:path';
import { freePort, httpGet, processTree, sleep, spawnPinned, stopChild, waitFor, waitForLine } from './proc.mjs';
import { CHECK_PATH, REPO_DIR, loadProtos } from './protos.mjs';
import { Redis, keygateRoot, mainJs } from './keygate-lib.mjs';
import { grpcMessages } from './request.mjs';

export function redisVersion() {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  return /v=(\S+)/.exec(r.stdout)?.[1] ?? r.stdout.trim();
}

/** A throw-away redis-server (no persistence) on a free port. */
export async function startRedis({ core, dir }) {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const log = openSync(resolve(dir, 'redis.log'), 'a');
  const child = spawnPinned(
    core,
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'],
    { stdio: ['ignore', log, log] },
  );
  closeSync(log);
  const url = `redis://127.0.0.1:${port}`;
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: true });
  client.on('error', () => {});
  await waitFor('redis-server to answer PING', async () => {
    if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}); see ${dir}/redis.log`);
    if (client.status === 'wait' || client.status === 'end') await client.connect().catch(() => {});
    return (await client.ping()) === 'PONG';
  });
  return {
    url,
    port,
    pid: child.pid,
    client,
    async stop() {
      client.disconnect();
      await stopChild(child);
    },
  };
}

/**
 * keygate as `node [nodeArgs] dist/src/main.js`, with its log sent to logFile (or discarded).
 * core null: not pinned. With KEYGATE_WORKERS=N in env the process is the node:cluster primary
 * (it serves /readyz and /metrics for all workers; ready = every worker ready); stop() then also
 * makes sure no worker outlives it.
 */
export async function startKeygate({ core, redisUrl, env = {}, nodeArgs = [], logFile, cwd = keygateRoot(), main = mainJs() }) {
  const grpcPort = await freePort();
  let httpPort = await freePort();
  while (httpPort === grpcPort) httpPort = await freePort();
  const out = openSync(logFile ?? '/dev/null', 'a');
  const child = spawnPinned(core, process.execPath, [...nodeArgs, main], {
    cwd,
    stdio: ['ignore', out, out],
    env: {
      ...process.env,
      REDIS_URL: redisUrl,
      KEYGATE_GRPC_HOST: '127.0.0.1',
      KEYGATE_GRPC_PORT: String(grpcPort),
      KEYGATE_HTTP_HOST: '127.0.0.1',
      KEYGATE_HTTP_PORT: String(httpPort),
      KEYGATE_LOG_LEVEL: 'info',
      ...env,
    },
  });
  closeSync(out);
  let exited = null;
  child.on('exit', (code, signal) => (exited = { code, signal }));
  await waitFor(
    'keygate /readyz to answer 200',
    async () => {
      if (exited) throw new Error(`keygate exited (${JSON.stringify(exited)})${logFile ? `; see ${logFile}` : ''}`);
      return (await httpGet(httpPort, '/readyz')).status === 200;
    },
    30000,
  );
  return {
    name: 'keygate',
    pid: child.pid,
    port: grpcPort,
    httpPort,
    child,
    /** this process and its workers (KEYGATE_WORKERS > 1), primary first */
    tree: () => processTree(child.pid),
    async stop() {
      const tree = processTree(child.pid);
      await stopChild(child, 15000);
      // The workers exit with the primary (drained by it, or on the lost IPC channel when it was
      // killed); give them a moment, then kill any that are still there.
      const isOurs = (pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(mainJs());
        } catch {
          return false;
        }
      };
      const end = Date.now() + 5000;
      while (tree.slice(1).some(isOurs) && Date.now() < end) await sleep(100);
      for (const pid of tree.slice(1)) {
        if (!isOurs(pid)) continue;
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
}

/** The baseline: bench/baseline-server.mjs (bare grpc-js, answers OK). */
export async function startBaseline({ core, nodeArgs = [] }) {
  const port = await freePort();
  const child = spawnPinned(core, process.execPath, [...nodeArgs, resolve(REPO_DIR, 'bench', 'baseline-server.mjs'), '--port', String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await waitForLine(child, /listening (\d+)/, 'baseline server');
  child.stdout.resume();
  return { name: 'baseline', pid: child.pid, port, child, stop: () => stopChild(child) };
}

/**
 * Sends `body` (a framed gRPC message, the bytes h2load sends) once over HTTP/2 with h2load's
 * headers. Resolves with { httpStatus, grpcStatus, grpcMessage, dataBytes, response }.
 */
export function sendRaw(port, body) {
  return new Promise((resolvePromise, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const req = session.request({
      ':method': 'POST',
      ':path': CHECK_PATH,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    let headers = {};
    let trailers = {};
    const chunks = [];
    req.on('response', (h) => (headers = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c) => chunks.push(c));
    req.on('error', reject);
    req.on('end', () => {
      session.close();
      const data = Buffer.concat(chunks);
      const grpcStatus = trailers['grpc-status'] ?? headers['grpc-status'];
      const messages = grpcMessages(data);
      let response = null;
      if (messages.length === 1) response = loadProtos().decodeResponse(messages[0]);
      resolvePromise({
        httpStatus: headers[':status'],
        grpcStatus: grpcStatus === undefined ? null : Number(grpcStatus),
        grpcMessage: trailers['grpc-message'] ?? headers['grpc-message'],
        dataBytes: data.length,
        response,
      });
    });
    req.end(body);
  });
}

/** Problems with one raw answer, given what the scenario expects ('allow' or a deny reason). */
export function answerProblems(a, expect) {
  const p = [];
  if (a.httpStatus !== 200) p.push(`HTTP status ${a.httpStatus}`);
  if (a.grpcStatus !== 0) p.push(`grpc-status ${a.grpcStatus} (${a.grpcMessage ?? ''})`);
  const r = a.response;
  if (!r) return [...p, 'no CheckResponse message'];
  if (expect === 'allow') {
    if (r.http_response !== 'ok_response' || (r.status?.code ?? 0) !== 0) p.push(`expected ok_response, got ${r.http_response} status ${r.status?.code}`);
  } else {
    const reason = r.status?.message;
    if (r.http_response !== 'denied_response' || reason !== expect) p.push(`expected denied_response ${expect}, got ${r.http_response} ${reason ?? ''}`);
  }
  return p;
}

/** keygate_checks_total as { "allow/ok": n, "deny/invalid_api_key": n, ... } from /metrics. */
export async function checkCounts(httpPort) {
  const { status, body } = await httpGet(httpPort, '/metrics', 5000);
  if (status !== 200) throw new Error(`/metrics answered ${status}`);
  const out = {};
  const re = /^keygate_checks_total\{([^}]*)\}\s+([0-9.e+]+)/gm;
  let m;
  while ((m = re.exec(body))) {
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    out[`${labels.decision}/${labels.reason}`] = Number(m[2]);
  }
  return out;
}

/** The growth of each counter between two checkCounts() snapshots (only the ones that grew). */
export function countsDelta(before, after) {
  const out = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d > 0) out[k] = d;
  }
  return out;
}

/** The Redis INFO commandstats calls per command, e.g. { evalsha: 123, get: 4 }. */
export async function redisCommandCalls(client) {
  const text = await client.info('commandstats');
  const out = {};
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1]] = Number(m[2]);
  return out;
}


/**
 * Counts the commands Redis receives while `during()` runs, with MONITOR: those sent by clients
 * (network calls) and those run inside Lua scripts, by command name. Commands of the harness's
 * own housekeeping (INFO, PING, ...) are left out.
 */
export async function monitorCommands(client, during) {
  const monitor = await client.monitor();
  const fromClients = {};
  const inScripts = {};
  const SKIP = new Set(['info', 'ping', 'monitor', 'script', 'client', 'hello', 'select', 'publish', 'subscribe']);
  monitor.on('monitor', (_time, args, source) => {
    const name = String(args[0] ?? '').toLowerCase();
    if (SKIP.has(name)) return;
    const into = source === 'lua' ? inScripts : fromClients;
    into[name] = (into[name] ?? 0) + 1;
  });
  try {
    await during();
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    monitor.disconnect();
  }
  return { fromClients, inScripts };
}
