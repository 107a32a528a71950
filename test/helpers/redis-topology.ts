// Real local Redis topologies for the topology tests, all on loopback, free ports, one temporary
// directory each, every wait bounded (polled), every process SIGKILLed by close() (and, as a last
// resort, when the test process exits):
//   - startRedisCluster(): 6 nodes (3 primaries, 3 replicas) made with `redis-cli --cluster create`;
//   - startRedisSentinel(): a primary, one replica and 3 sentinels (`redis-server --sentinel`);
//   - startTlsRedis(): one redis-server speaking only TLS.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis, { type RedisOptions } from 'ioredis';
import { redisServerPath } from './redis';

const LOOPBACK = '127.0.0.1';

/** Every process started here, killed when the test process exits however it exits. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

function binPath(name: string): string {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status !== 0 || !path) throw new Error(`${name} not found on PATH (Debian: apt-get install -y redis-server redis-tools)`);
  return path;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, LOOPBACK, () => srv.close(() => resolve(true)));
  });
}

const claimed = new Set<number>();

/**
 * A free loopback port below 55000 whose +10000 neighbour (the cluster bus port) is free too.
 * Picked at random from 20000-54999 so that parallel test files rarely collide.
 */
export async function freeNodePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 35000);
    if (claimed.has(port) || claimed.has(port + 10000)) continue;
    if ((await portFree(port)) && (await portFree(port + 10000))) {
      claimed.add(port);
      return port;
    }
  }
  throw new Error('no free port pair found for a Redis node');
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `probe` every `everyMs` until it returns a value other than undefined/false; throws after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

/** One redis-server (or sentinel) process. */
export interface RedisNode {
  port: number;
  dir: string;
  process(): ChildProcess;
  alive(): boolean;
  /** Sends a signal (default SIGKILL) and, for SIGKILL/SIGTERM, waits until the process is gone. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the process again with the same arguments (same port, same directory), plus `extraArgs`. */
  restart(extraArgs?: string[]): Promise<void>;
  /** A plain client to this one node (disconnected by the topology's close()). */
  client(options?: RedisOptions): Redis;
}

interface SpawnOptions {
  port: number;
  dir: string;
  args: string[];
  /** how to tell it is up */
  ready: (node: RedisNode) => Promise<boolean>;
  clientOptions?: RedisOptions;
}

async function spawnNode(opts: SpawnOptions, clients: Redis[]): Promise<RedisNode> {
  const bin = redisServerPath();
  let child!: ChildProcess;
  const launch = async (extraArgs: string[] = []) => {
    child = spawn(bin, [...opts.args, ...extraArgs], { stdio: 'ignore', cwd: opts.dir });
    live.add(child);
    child.once('exit', () => live.delete(child));
    await waitFor(`redis node on port ${opts.port}`, async () => {
      if (child.exitCode !== null) throw new Error(`redis-server on port ${opts.port} exited with ${child.exitCode} (log in ${opts.dir})`);
      return opts.ready(node);
    }, 15_000);
  };
  const node: RedisNode = {
    port: opts.port,
    dir: opts.dir,
    process: () => child,
    alive: () => child.exitCode === null && child.signalCode === null,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (!node.alive()) return;
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill(signal);
      if (signal === 'SIGKILL' || signal === 'SIGTERM') await gone;
    },
    restart: launch,
    client(options: RedisOptions = {}) {
      const c = new Redis({ host: LOOPBACK, port: opts.port, maxRetriesPerRequest: 1, connectTimeout: 1000, commandTimeout: 2000, retryStrategy: () => 200, ...opts.clientOptions, ...options });
      c.on('error', () => {});
      clients.push(c);
      return c;
    },
  };
  await launch();
  return node;
}

/** PING over a raw socket (no client state to clean up); `+PONG` means up. */
function rawPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, LOOPBACK);
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => done(d.toString().startsWith('+PONG')));
    sock.once('error', () => done(false));
  });
}

/** PING through a fresh client of the node (uses the node's client options, e.g. TLS). */
async function clientPing(n: RedisNode): Promise<boolean> {
  const c = n.client({ retryStrategy: () => null, lazyConnect: true });
  try {
    await c.connect();
    return (await c.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

const COMMON_ARGS = ['--bind', LOOPBACK, '--save', '', '--appendonly', 'no', '--protected-mode', 'no'];

/** Certificate files (makeTestCerts) for the TLS variants. */
export interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** redis-server arguments for TLS only on `port` (plaintext port 0), TLS replication and cluster bus, no client certificates. */
function tlsArgs(port: number, tls: TlsFiles): string[] {
  return [
    '--port', '0', '--tls-port', String(port),
    '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile, '--tls-ca-cert-file', tls.caFile,
    '--tls-auth-clients', 'no', '--tls-replication', 'yes', '--tls-cluster', 'yes',
  ];
}

function tlsClientOptions(tls: TlsFiles | undefined): RedisOptions | undefined {
  return tls ? { tls: { ca: readFileSync(tls.caFile, 'utf8') } } : undefined;
}

function infoField(info: string, field: string): string | undefined {
  const m = new RegExp(`^${field}:(.*)$`, 'm').exec(info);
  return m?.[1].trim();
}

// ---------------------------------------------------------------- Redis Cluster

export interface ClusterNodeInfo {
  id: string;
  port: number;
  role: 'master' | 'slave';
  /** for a replica: the id of its primary */
  masterId?: string;
  failed: boolean;
  slots: [number, number][];
}

export interface RedisClusterTopology {
  nodes: RedisNode[];
  /** redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3 (three seed nodes) */
  url: string;
  dir: string;
  /** CLUSTER NODES as seen by a live node. */
  clusterNodes(): Promise<ClusterNodeInfo[]>;
  /** The slot of a key (CLUSTER KEYSLOT). */
  keySlot(key: string): Promise<number>;
  /** The live node that is primary for a slot now, as seen by a live node. */
  primaryForSlot(slot: number): Promise<RedisNode>;
  /** The node's replica(s). */
  replicasOf(primary: RedisNode): Promise<RedisNode[]>;
  node(port: number): RedisNode;
  /** Waits until every live node reports cluster_state:ok and every live replica is in sync. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

function parseClusterNodes(text: string): ClusterNodeInfo[] {
  const out: ClusterNodeInfo[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    if (f.length < 8) continue;
    const port = Number(/:(\d+)@/.exec(f[1])?.[1] ?? NaN);
    const flags = f[2].split(',');
    const slots: [number, number][] = [];
    for (const s of f.slice(8)) {
      if (s.startsWith('[')) continue; // migrating / importing
      const [a, b] = s.split('-').map(Number);
      slots.push([a, b ?? a]);
    }
    out.push({
      id: f[0],
      port,
      role: flags.includes('master') ? 'master' : 'slave',
      masterId: f[3] === '-' ? undefined : f[3],
      failed: flags.includes('fail') || flags.includes('fail?') || flags.includes('noaddr'),
      slots,
    });
  }
  return out;
}

export async function startRedisCluster(options: { nodeTimeoutMs?: number; extraArgs?: string[]; tls?: TlsFiles } = {}): Promise<RedisClusterTopology> {
  const cli = binPath('redis-cli');
  const dir = mkdtempSync(join(tmpdir(), 'keygate-cluster-'));
  const clients: Redis[] = [];
  const nodes: RedisNode[] = [];
  const close = async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 6; i++) {
      const port = await freeNodePort();
      const nodeDir = join(dir, String(port));
      mkdirSync(nodeDir);
      nodes.push(
        await spawnNode(
          {
            port,
            dir: nodeDir,
            args: [
              '--port', String(port), ...COMMON_ARGS, '--dir', nodeDir, '--logfile', join(nodeDir, 'redis.log'),
              ...(options.tls ? tlsArgs(port, options.tls) : []),
              '--cluster-enabled', 'yes', '--cluster-config-file', join(nodeDir, 'nodes.conf'),
              '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 1000),
              // A replica may always take over, however long its link was down.
              '--cluster-replica-validity-factor', '0',
              ...(options.extraArgs ?? []),
            ],
            clientOptions: tlsClientOptions(options.tls),
            ready: options.tls ? clientPing : (n) => rawPing(n.port),
          },
          clients,
        ),
      );
    }
    const tlsCli = options.tls ? ['--tls', '--cacert', options.tls.caFile] : [];
    const created = spawnSync(cli, [...tlsCli, '--cluster', 'create', ...nodes.map((n) => `${LOOPBACK}:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed (${created.status}): ${created.stdout}\n${created.stderr}`);
  } catch (err) {
    await close();
    throw err;
  }

  const admin = new Map<number, Redis>();
  const adminOf = (n: RedisNode) => {
    let c = admin.get(n.port);
    if (!c) {
      c = n.client({ retryStrategy: () => 100, enableOfflineQueue: false });
      admin.set(n.port, c);
    }
    return c;
  };
  const liveNodes = () => nodes.filter((n) => n.alive());
  const byPort = (port: number) => {
    const n = nodes.find((x) => x.port === port);
    if (!n) throw new Error(`no cluster node on port ${port}`);
    return n;
  };
  const topology: RedisClusterTopology = {
    nodes,
    dir,
    url: `${options.tls ? 'rediss' : 'redis'}+cluster://${nodes.slice(0, 3).map((n) => `${LOOPBACK}:${n.port}`).join(',')}`,
    async clusterNodes() {
      for (const n of liveNodes()) {
        try {
          return parseClusterNodes((await adminOf(n).cluster('NODES')) as string);
        } catch {
          // ask the next node
        }
      }
      throw new Error('no live cluster node answered CLUSTER NODES');
    },
    async keySlot(key) {
      for (const n of liveNodes()) {
        try {
          return (await adminOf(n).cluster('KEYSLOT', key)) as number;
        } catch {
          // ask the next node
        }
      }
      throw new Error('no live cluster node answered CLUSTER KEYSLOT');
    },
    async primaryForSlot(slot) {
      const infos = await topology.clusterNodes();
      const owner = infos.find((i) => i.role === 'master' && !i.failed && i.slots.some(([a, b]) => slot >= a && slot <= b));
      if (!owner) throw new Error(`no live primary serves slot ${slot}`);
      return byPort(owner.port);
    },
    async replicasOf(primary) {
      const infos = await topology.clusterNodes();
      const me = infos.find((i) => i.port === primary.port);
      return infos.filter((i) => i.masterId === me?.id).map((i) => byPort(i.port));
    },
    node: byPort,
    async waitHealthy(timeoutMs = 20_000) {
      await waitFor(
        'a healthy cluster (cluster_state:ok everywhere, replicas in sync)',
        async () => {
          for (const n of liveNodes()) {
            const c = adminOf(n);
            const info = (await c.cluster('INFO')) as string;
            if (infoField(info, 'cluster_state') !== 'ok' || infoField(info, 'cluster_slots_ok') !== '16384') return false;
            const repl = await c.info('replication');
            if (infoField(repl, 'role') === 'slave' && infoField(repl, 'master_link_status') !== 'up') return false;
          }
          const infos = await topology.clusterNodes();
          const primaries = infos.filter((i) => i.role === 'master' && !i.failed && i.slots.length > 0);
          return primaries.length === 3;
        },
        timeoutMs,
        100,
      );
    },
    close,
  };
  try {
    await topology.waitHealthy();
  } catch (err) {
    await close();
    throw err;
  }
  return topology;
}

// ---------------------------------------------------------------- Sentinel

export const SENTINEL_MASTER_NAME = 'kgmaster';

export interface RedisSentinelTopology {
  /** the primary at start (index 0) and its replica (index 1) */
  servers: RedisNode[];
  sentinels: RedisNode[];
  masterName: string;
  /** redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/kgmaster */
  url: string;
  dir: string;
  /** The port the sentinels name as primary (SENTINEL GET-MASTER-ADDR-BY-NAME on a live sentinel). */
  primaryPort(): Promise<number>;
  /** The server process that is primary now according to the sentinels. */
  primary(): Promise<RedisNode>;
  close(): Promise<void>;
}

export async function startRedisSentinel(options: { downAfterMs?: number; failoverTimeoutMs?: number; tls?: TlsFiles } = {}): Promise<RedisSentinelTopology> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-sentinel-'));
  const clients: Redis[] = [];
  const servers: RedisNode[] = [];
  const sentinels: RedisNode[] = [];
  const close = async () => {
    for (const c of clients) c.disconnect();
    await Promise.all([...sentinels, ...servers].map((n) => n.kill('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  };
  const serverArgs = (port: number, nodeDir: string) => [
    '--port', String(port), ...COMMON_ARGS, '--dir', nodeDir, '--logfile', join(nodeDir, 'redis.log'),
    ...(options.tls ? tlsArgs(port, options.tls) : []),
  ];
  const clientOptions = tlsClientOptions(options.tls);
  const ready = options.tls ? clientPing : (n: RedisNode) => rawPing(n.port);
  try {
    const primaryPort = await freeNodePort();
    const primaryDir = join(dir, `server-${primaryPort}`);
    mkdirSync(primaryDir);
    servers.push(await spawnNode({ port: primaryPort, dir: primaryDir, args: serverArgs(primaryPort, primaryDir), clientOptions, ready }, clients));
    const replicaPort = await freeNodePort();
    const replicaDir = join(dir, `server-${replicaPort}`);
    mkdirSync(replicaDir);
    servers.push(
      await spawnNode(
        { port: replicaPort, dir: replicaDir, args: [...serverArgs(replicaPort, replicaDir), '--replicaof', LOOPBACK, String(primaryPort)], clientOptions, ready },
        clients,
      ),
    );
    const replicaAdmin = servers[1].client();
    await waitFor('the replica in sync', async () => infoField(await replicaAdmin.info('replication'), 'master_link_status') === 'up', 15_000, 50);

    for (let i = 0; i < 3; i++) {
      const port = await freeNodePort();
      const sDir = join(dir, `sentinel-${port}`);
      mkdirSync(sDir);
      const conf = join(sDir, 'sentinel.conf');
      writeFileSync(
        conf,
        [
          ...(options.tls
            ? [
                'port 0',
                `tls-port ${port}`,
                `tls-cert-file ${options.tls.certFile}`,
                `tls-key-file ${options.tls.keyFile}`,
                `tls-ca-cert-file ${options.tls.caFile}`,
                'tls-auth-clients no',
                'tls-replication yes',
              ]
            : [`port ${port}`]),
          `bind ${LOOPBACK}`,
          `dir ${sDir}`,
          `logfile ${join(sDir, 'sentinel.log')}`,
          'protected-mode no',
          'sentinel resolve-hostnames no',
          'sentinel announce-hostnames no',
          `sentinel monitor ${SENTINEL_MASTER_NAME} ${LOOPBACK} ${primaryPort} 2`,
          `sentinel down-after-milliseconds ${SENTINEL_MASTER_NAME} ${options.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${SENTINEL_MASTER_NAME} ${options.failoverTimeoutMs ?? 5000}`,
          `sentinel parallel-syncs ${SENTINEL_MASTER_NAME} 1`,
          '',
        ].join('\n'),
      );
      sentinels.push(await spawnNode({ port, dir: sDir, args: [conf, '--sentinel'], clientOptions, ready }, clients));
    }
    // Sentinels find the replica (INFO of the primary) and each other (hello messages): wait for both,
    // or a failover could not be agreed on.
    const sentinelAdmins = sentinels.map((s) => s.client());
    await waitFor(
      'every sentinel to know the replica and the 2 other sentinels',
      async () => {
        for (const s of sentinelAdmins) {
          const flat = (await s.call('SENTINEL', 'MASTER', SENTINEL_MASTER_NAME)) as string[];
          const m = new Map<string, string>();
          for (let i = 0; i + 1 < flat.length; i += 2) m.set(flat[i], flat[i + 1]);
          if (m.get('num-slaves') !== '1' || m.get('num-other-sentinels') !== '2' || m.get('flags') !== 'master') return false;
        }
        return true;
      },
      20_000,
      100,
    );
  } catch (err) {
    await close();
    throw err;
  }

  const sentinelClients = new Map<number, Redis>();
  const topology: RedisSentinelTopology = {
    servers,
    sentinels,
    masterName: SENTINEL_MASTER_NAME,
    dir,
    url: `${options.tls ? 'rediss' : 'redis'}+sentinel://${sentinels.map((s) => `${LOOPBACK}:${s.port}`).join(',')}/${SENTINEL_MASTER_NAME}`,
    async primaryPort() {
      for (const s of sentinels.filter((x) => x.alive())) {
        let c = sentinelClients.get(s.port);
        if (!c) {
          c = s.client();
          sentinelClients.set(s.port, c);
        }
        try {
          const [, port] = (await c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', SENTINEL_MASTER_NAME)) as [string, string];
          return Number(port);
        } catch {
          // ask the next sentinel
        }
      }
      throw new Error('no sentinel answered');
    },
    async primary() {
      const port = await topology.primaryPort();
      const n = servers.find((s) => s.port === port);
      if (!n) throw new Error(`the sentinels name an unknown primary on port ${port}`);
      return n;
    },
    close,
  };
  return topology;
}

// ---------------------------------------------------------------- TLS

export interface TlsRedis {
  node: RedisNode;
  /** rediss://127.0.0.1:<tls port> */
  url: string;
  port: number;
  /** A client that trusts the test CA, for assertions. */
  client(): Redis;
  close(): Promise<void>;
}

/** A redis-server with TLS only (`--port 0`), certificate from makeTestCerts(), no client certificates required. */
export async function startTlsRedis(certs: TlsFiles): Promise<TlsRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-tls-redis-'));
  const clients: Redis[] = [];
  const port = await freeNodePort();
  let node: RedisNode;
  try {
    node = await spawnNode(
      {
        port,
        dir,
        args: ['--port', String(port), ...COMMON_ARGS, '--dir', dir, '--logfile', join(dir, 'redis.log'), ...tlsArgs(port, certs)],
        clientOptions: tlsClientOptions(certs),
        ready: clientPing,
      },
      clients,
    );
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    node,
    port,
    url: `rediss://${LOOPBACK}:${port}`,
    client: () => node.client(),
    async close() {
      for (const c of clients) c.disconnect();
      await node.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
