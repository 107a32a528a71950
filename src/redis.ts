// Builds the ioredis client keygate and keygate-admin use, tuned for an authorization path:
// a bounded offline queue and retries (a Check must fail fast, not wait for a reconnect),
// command and connect timeouts, TCP keep-alive and capped reconnect backoff.
//
// REDIS_URL forms (one parser, parseRedisUrl, for validation and for the client):
//   redis://[user:pass@]host[:6379][/db]                  one Redis (rediss:// = TLS)
//   redis+sentinel://[user:pass@]h1[:26379],h2,…/master[/db]   Sentinel: asks the sentinels for
//                                                         the current primary of `master`
//                                                         (rediss+sentinel:// = TLS to both)
//   redis+cluster://[user:pass@]h1[:6379],h2,…            Redis Cluster seed nodes
//                                                         (rediss+cluster:// = TLS)
// The credentials are those of the Redis nodes; sentinels are asked without credentials.
// TLS always verifies the server certificate (Node's CAs, or KEYGATE_REDIS_TLS_CA); there is no
// switch to turn verification off and never a fallback to plaintext.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import Redis, { Cluster, type ClusterOptions, type RedisOptions } from 'ioredis';
import './redis-socket-guard';

/** The client keygate's Redis stores and limiter run on: one Redis (standalone or via Sentinel) or a Cluster. */
export type RedisClient = Redis | Cluster;

export type RedisTopology = 'standalone' | 'sentinel' | 'cluster';

export interface RedisEndpoint {
  host: string;
  port: number;
}

/** A parsed REDIS_URL. */
export interface RedisTarget {
  topology: RedisTopology;
  tls: boolean;
  /** standalone: the server; sentinel: the sentinels; cluster: the seed nodes */
  nodes: RedisEndpoint[];
  username?: string;
  password?: string;
  /** database number (always 0 on a Cluster) */
  db: number;
  /** sentinel: the name the sentinels monitor the primary under */
  masterName?: string;
}

const SCHEMES: Record<string, { topology: RedisTopology; tls: boolean }> = {
  redis: { topology: 'standalone', tls: false },
  rediss: { topology: 'standalone', tls: true },
  'redis+sentinel': { topology: 'sentinel', tls: false },
  'rediss+sentinel': { topology: 'sentinel', tls: true },
  'redis+cluster': { topology: 'cluster', tls: false },
  'rediss+cluster': { topology: 'cluster', tls: true },
};
const DEFAULT_PORT: Record<RedisTopology, number> = { standalone: 6379, sentinel: 26379, cluster: 6379 };
const MAX_DB = 1_000_000;

const FORMS =
  'redis://host:port[/db], rediss://… (TLS), redis+sentinel://host:26379,host:26379/<master-name>[/<db>] ' +
  'or redis+cluster://host:port,host:port (rediss+sentinel://, rediss+cluster:// for TLS)';

/** A REDIS_URL that cannot be used. The message never contains any part of the URL. */
export class RedisUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisUrlError';
  }
}

/** Parses every REDIS_URL form; throws RedisUrlError (whose message never echoes the URL). */
export function parseRedisUrl(url: string): RedisTarget {
  const fail = (why: string): never => {
    throw new RedisUrlError(why);
  };
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([\s\S]*)$/.exec(url);
  if (!m) fail(`must look like ${FORMS}`);
  const kind = SCHEMES[m![1].toLowerCase()] ?? fail(`unknown scheme: use ${FORMS}`);
  const { topology, tls } = kind;
  const rest = m![2];
  if (/[?#]/.test(rest)) fail('query parameters and fragments (?…, #…) are not supported; percent-encode ? and # in a password (%3F, %23)');
  if (/[\s\x00-\x1f\x7f]/.test(rest)) fail('must not contain spaces or control characters');

  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  const at = authority.lastIndexOf('@');
  const hostList = authority.slice(at + 1);

  let username: string | undefined;
  let password: string | undefined;
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(':');
    const decode = (s: string): string => {
      try {
        return decodeURIComponent(s);
      } catch {
        return fail('the user name or password is not valid percent-encoding (encode % as %25)');
      }
    };
    const user = decode(colon < 0 ? userinfo : userinfo.slice(0, colon));
    const pass = colon < 0 ? '' : decode(userinfo.slice(colon + 1));
    if (user !== '' && pass === '') fail('a user name needs a password: user:password@host (or :password@host for the default user)');
    if (user !== '') username = user;
    if (pass !== '') password = pass;
  }

  if (hostList === '') fail(`has no host: use ${FORMS}`);
  const parts = hostList.split(',');
  if (topology === 'standalone' && parts.length > 1) {
    fail('redis:// and rediss:// take one host; list several hosts with redis+sentinel://…/<master-name> or redis+cluster://');
  }
  const nodes = parts.map((part, i) => {
    const where = parts.length > 1 ? `host ${i + 1} of the list` : 'the host';
    const endpoint = parseEndpoint(part, DEFAULT_PORT[topology]);
    if (typeof endpoint === 'string') return fail(`${where} ${endpoint}`);
    return endpoint;
  });

  const segments = path === '' ? [] : path.slice(1).split('/');
  if (segments.length > 0 && segments[segments.length - 1] === '') segments.pop(); // a trailing slash
  const dbNumber = (text: string): number => {
    if (!/^\d{1,7}$/.test(text) || Number(text) >= MAX_DB) fail('the database must be a number, e.g. /0');
    return Number(text);
  };
  let db = 0;
  let masterName: string | undefined;
  if (topology === 'standalone') {
    if (segments.length > 1) fail('the path must be a database number, e.g. redis://host:6379/0');
    if (segments.length === 1) db = dbNumber(segments[0]);
  } else if (topology === 'sentinel') {
    if (segments.length === 0 || segments[0] === '') {
      fail('must name the monitored primary after the sentinels: redis+sentinel://host:26379,host:26379/<master-name>[/<db>]');
    }
    if (segments.length > 2) fail('the path must be /<master-name> or /<master-name>/<db>');
    let name = '';
    try {
      name = decodeURIComponent(segments[0]);
    } catch {
      fail('the master name is not valid percent-encoding');
    }
    if (!/^[\x21-\x7e]{1,128}$/.test(name)) fail('the master name must be 1 to 128 visible characters');
    masterName = name;
    if (segments.length === 2) db = dbNumber(segments[1]);
  } else if (segments.length > 1 || (segments.length === 1 && segments[0] !== '0')) {
    fail('a Redis Cluster has only database 0: drop the path from redis+cluster://');
  }

  return { topology, tls, nodes, username, password, db, masterName };
}

function parseEndpoint(text: string, defaultPort: number): RedisEndpoint | string {
  if (text === '') return 'is empty';
  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return 'has an unclosed [ (an IPv6 address goes in brackets: [::1]:6379)';
    host = text.slice(1, close);
    const after = text.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) return 'has text after the ] of its IPv6 address';
    portText = after === '' ? undefined : after.slice(1);
    if (!/^[0-9A-Fa-f:.]+(%[A-Za-z0-9._~-]+)?$/.test(host) || !host.includes(':')) return 'is not an IPv6 address inside [ ]';
  } else {
    const colon = text.indexOf(':');
    if (colon >= 0 && text.indexOf(':', colon + 1) >= 0) return 'is an IPv6 address without brackets: write [::1]:6379';
    host = colon < 0 ? text : text.slice(0, colon);
    portText = colon < 0 ? undefined : text.slice(colon + 1);
    if (!/^[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})$/.test(host)) return 'is not a host name or IP address';
  }
  let port = defaultPort;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) return 'has a port that is not a number from 1 to 65535';
    port = Number(portText);
  }
  return { host, port };
}

/** Why a REDIS_URL cannot be used, or null when it can. Never echoes the URL (it may hold a password). */
export function redisUrlProblem(url: string): string | null {
  try {
    parseRedisUrl(url);
    return null;
  } catch (err) {
    if (err instanceof RedisUrlError) return err.message;
    throw err;
  }
}

/**
 * What a REDIS_URL points at, safe for messages and logs (no credentials), e.g.
 * `127.0.0.1:6379`, `sentinel master "kgmaster" via 10.0.0.1:26379,10.0.0.2:26379`,
 * `cluster 10.0.0.1:7000,10.0.0.2:7000`, with ` (TLS)` for the TLS forms.
 */
export function describeRedisUrl(url: string | undefined): string {
  let target: RedisTarget;
  try {
    target = parseRedisUrl(url ?? '');
  } catch {
    return 'REDIS_URL';
  }
  const hosts = target.nodes.map((n) => (n.host.includes(':') ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`)).join(',');
  const tls = target.tls ? ' (TLS)' : '';
  if (target.topology === 'sentinel') return `sentinel master "${target.masterName}" via ${hosts}${tls}`;
  if (target.topology === 'cluster') return `cluster ${hosts}${tls}`;
  return `${hosts}${tls}`;
}

export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}

export interface RedisClientOptions {
  /** ms a single command may take before it fails (the Check deadline bounds it too) */
  commandTimeoutMs?: number;
  /** false for the CLI: it may wait for a connection instead of failing at once */
  failFast?: boolean;
  /** PEM file with the CA(s) that sign the Redis certificates (KEYGATE_REDIS_TLS_CA); TLS forms only. Unset: Node's CAs */
  tlsCaFile?: string;
}

/** Reconnect backoff: 100, 200, 400, then every 500 ms (a Redis that is back is found within 0.5 s). */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(50 * 2 ** Math.min(Math.max(attempt, 1), 4), 500);
}

/** TLS settings for the TLS forms: server certificates are always verified. */
function tlsOptions(caFile: string | undefined): ConnectionOptions {
  return {
    rejectUnauthorized: true,
    minVersion: 'TLSv1.2',
    ...(caFile !== undefined && { ca: readFileSync(caFile, 'utf8') }),
  };
}

/**
 * The client for a REDIS_URL (any form; see the top of this file). Throws RedisUrlError for a bad
 * URL (config validation reports it before this is called).
 *
 * failFast (keygate): no offline queue and no per-request retries — while Redis is unreachable a
 * command fails at once and the Check fails UNAVAILABLE within its deadline; on a Cluster a
 * command whose node is gone fails instead of being retried in the background (MOVED/ASK
 * redirections are still followed, and every MOVED refreshes the slot map). Not fail-fast (keygate-admin): commands wait in the offline queue for a (re)connect.
 */
export function createRedisClient(url: string, opts: RedisClientOptions = {}): RedisClient {
  const target = parseRedisUrl(url);
  const failFast = opts.failFast ?? true;
  const tls = target.tls ? tlsOptions(opts.tlsCaFile) : undefined;
  const node: RedisOptions = {
    connectTimeout: 2000,
    keepAlive: 10_000,
    noDelay: true,
    commandTimeout: opts.commandTimeoutMs,
    maxRetriesPerRequest: failFast ? 0 : 3,
    // A primary demoted to replica (failover) answers writes with READONLY: reconnect, which
    // finds the current primary again (Sentinel asks the sentinels, Cluster refreshes slots).
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
    ...(target.username !== undefined && { username: target.username }),
    ...(target.password !== undefined && { password: target.password }),
    ...(tls && { tls }),
  };

  let client: RedisClient;
  if (target.topology === 'cluster') {
    const options: ClusterOptions = {
      scaleReads: 'master',
      enableOfflineQueue: !failFast,
      enableAutoPipelining: true,
      enableReadyCheck: true,
      clusterRetryStrategy: reconnectDelayMs,
      retryDelayOnFailover: failFast ? 0 : 100,
      retryDelayOnClusterDown: failFast ? 0 : 100,
      retryDelayOnTryAgain: 100,
      slotsRefreshTimeout: 1000,
      // After a failover, the first command for a moved slot gets MOVED from a live primary,
      // which updates the slot at once and refreshes the whole map; this is the backstop.
      slotsRefreshInterval: 5000,
      // With TLS keep host names as given, so that certificates are checked against them.
      ...(tls && { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) }),
      redisOptions: node,
    };
    client = new Cluster(target.nodes, options);
    client.on('node error', () => {});
  } else {
    const common: RedisOptions = {
      ...node,
      lazyConnect: false,
      // keygate (failFast) batches its writes itself (coalesceWrites): ioredis's auto-pipelining
      // keeps one pipeline in flight per connection, so every command waited for the whole
      // previous batch's replies. keygate-admin keeps auto-pipelining.
      enableAutoPipelining: !failFast,
      enableOfflineQueue: !failFast,
      retryStrategy: reconnectDelayMs,
      db: target.db,
    };
    if (target.topology === 'sentinel') {
      const sentinelClient = new Redis({
        ...common,
        sentinels: target.nodes,
        name: target.masterName,
        role: 'master',
        sentinelRetryStrategy: reconnectDelayMs,
        sentinelCommandTimeout: 1000,
        // ioredis's own failoverDetector reconnects on every +switch-master message, also when
        // the client already found the new primary: a second, needless outage in the middle of
        // each failover. watchSentinelFailovers reconnects only when it helps.
        failoverDetector: false,
        ...(tls && { enableTLSForSentinelMode: true, sentinelTLS: tls }),
      });
      if (failFast) watchSentinelFailovers(sentinelClient, target, tls);
      client = sentinelClient;
    } else {
      client = new Redis({ ...common, host: target.nodes[0].host, port: target.nodes[0].port });
    }
    if (failFast) coalesceWrites(client);
  }
  // Errors surface on the commands that fail; the event is only noise (and could carry the URL).
  client.on('error', () => {});
  return client;
}

/**
 * One socket write per event-loop turn for a single-connection client: the first command of a
 * turn corks the connection, and it is uncorked in that turn's check phase (setImmediate), so the
 * commands of every Check that turn handled leave in one write, and the next turn's commands need
 * not wait for this turn's replies (as with ioredis's auto-pipelining, which keeps one pipeline in
 * flight). On a quiet loop the delay is microseconds.
 */
function coalesceWrites(client: Redis): void {
  const send = client.sendCommand.bind(client);
  let corked: Redis['stream'] | undefined;
  const uncork = () => {
    const stream = corked;
    corked = undefined;
    stream?.uncork();
  };
  client.sendCommand = (command, stream) => {
    const connection = client.stream;
    if (corked === undefined && connection && client.status === 'ready' && !connection.destroyed) {
      corked = connection;
      connection.cork();
      setImmediate(uncork);
    }
    return send(command, stream);
  };
}

/**
 * Sentinel failover detection for a client connected through Sentinel: one connection per
 * sentinel of the URL, subscribed to `+switch-master`; when a sentinel announces a new primary
 * for our master name and the client is connected (ready) to another address, the client
 * reconnects at once — it then asks the sentinels for the primary again. This matters when the
 * old primary is still reachable (a partition, a manual SENTINEL FAILOVER): without it writes
 * would keep going to a primary that has been replaced. A dead primary is found anyway (its
 * connection closes and every reconnect asks the sentinels). The watchers end with the client
 * (its 'end' event, or disconnect()).
 */
function watchSentinelFailovers(client: Redis, target: RedisTarget, tls: ConnectionOptions | undefined): void {
  const watchers = target.nodes.map((sentinel) => {
    const watcher = new Redis({
      host: sentinel.host,
      port: sentinel.port,
      connectTimeout: 2000,
      keepAlive: 10_000,
      retryStrategy: reconnectDelayMs,
      maxRetriesPerRequest: null,
      enableReadyCheck: false,
      ...(tls && { tls }),
    });
    watcher.on('error', () => {});
    watcher.subscribe('+switch-master').catch(() => {});
    watcher.on('message', (_channel: string, message: string) => {
      // "<master name> <old ip> <old port> <new ip> <new port>"
      const [name, , , host, port] = message.split(' ');
      if (name !== target.masterName || client.status !== 'ready') return;
      const stream = client.stream as { remoteAddress?: string; remotePort?: number } | undefined;
      if (stream?.remoteAddress === host && stream?.remotePort === Number(port)) return;
      client.disconnect(true);
    });
    return watcher;
  });
  const stop = () => {
    for (const w of watchers) w.disconnect();
  };
  client.once('end', stop);
  // disconnect() while ioredis waits to reconnect ends the client without an 'end' event.
  const disconnect = client.disconnect.bind(client);
  client.disconnect = (reconnect = false) => {
    if (!reconnect) stop();
    disconnect(reconnect);
  };
}

/**
 * Makes sure every reachable primary holds a Lua script (SCRIPT EXISTS, SCRIPT LOAD when missing).
 * A standalone/Sentinel client has one primary; a Cluster routes EVALSHA by key slot to any of its
 * primaries, while a keyless SCRIPT command would reach only one random node. Resolves when at
 * least one primary answered and every primary that answered holds the script; a primary that
 * does not answer is left to the NOSCRIPT → EVAL fallback (its keys fail anyway while it is gone).
 */
export async function ensureScriptLoaded(client: RedisClient, script: { source: string; sha1: string }): Promise<void> {
  const loadOn = async (redis: Redis) => {
    const [exists] = (await redis.script('EXISTS', script.sha1)) as number[];
    if (exists === 1) return;
    const sha = (await redis.script('LOAD', script.source)) as string;
    if (sha !== script.sha1) throw new Error(`SCRIPT LOAD returned ${sha}, expected ${script.sha1}`);
  };
  if (!isCluster(client)) return loadOn(client);
  const primaries = client.nodes('master');
  if (primaries.length === 0) throw new Error('no Redis Cluster primary known');
  const results = await Promise.allSettled(primaries.map(loadOn));
  const wrong = results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && /SCRIPT LOAD returned/.test(String((r.reason as Error)?.message)));
  if (wrong) throw wrong.reason;
  if (!results.some((r) => r.status === 'fulfilled')) throw (results[0] as PromiseRejectedResult).reason;
}

/** PING: on a Cluster every primary is pinged and one answer is enough (a lost shard fails only its own keys). */
export async function pingRedis(client: RedisClient): Promise<void> {
  if (!isCluster(client)) {
    await client.ping();
    return;
  }
  const primaries = client.nodes('master');
  if (primaries.length === 0) throw new Error('no Redis Cluster primary known');
  await Promise.any(primaries.map((p) => p.ping())).catch((err: AggregateError) => {
    throw err.errors[0] ?? err;
  });
}
