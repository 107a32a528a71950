// Wires one keygate instance from a Config: store (Redis or embedded), key cache, limiter,
// gRPC server, HTTP server, readiness monitor. main.ts runs it as a process; tests start it
// in-process on port 0. stop() drains: NOT_SERVING first, a grace while Checks are still answered
// (so that Envoy's health check moves traffic away), then the listener closes, in-flight Checks
// finish (up to the shutdown timeout, then they are cancelled), and everything closes.
import { readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { systemClock, type Clock } from './clock';
import type { Config } from './config';
import { check, type CheckDeps } from './check/check';
import { storeFallbackLogger } from './check/fallback-log';
import { bindGrpc, createGrpcServer, grpcServerCredentials, type CheckObserver } from './grpc/server';
import { HealthState } from './health';
import { createHttpServer, listenHttp } from './http/server';
import { CachedKeyLookup } from './keys/cache';
import { makeDigester } from './keys/digest';
import { MemoryKeyStore } from './keys/memory-store';
import { RedisKeyStore } from './keys/redis-store';
import type { KeyStore } from './keys/types';
import { MemoryLimiter } from './limits/memory-limiter';
import { RedisLimiter, chargeLuaScript } from './limits/redis-limiter';
import type { Limiter, UsageStore } from './limits/types';
import type { Logger } from './log';
import { checkLogger } from './observe/check-log';
import { instrumentKeyStore, instrumentLimiter } from './observe/instrument';
import { createMetrics, type KeygateMetrics } from './observe/metrics';
import { readinessProbe, scriptLoaded, storeReachable, type ReadinessCondition } from './observe/readiness';
import { createRedisClient, describeRedisUrl, ensureScriptLoaded, isCluster, type RedisClient } from './redis';
import { applySeed, parseSeed } from './admin/seed';

export const VERSION: string = (() => {
  for (const p of ['../package.json', '../../package.json']) {
    try {
      return (JSON.parse(readFileSync(require.resolve(p), 'utf8')) as { version: string }).version;
    } catch {
      // try the next location (src/ vs dist/src/)
    }
  }
  return '0.0.0';
})();

export interface KeygateOptions {
  config: Readonly<Config>;
  logger: Logger;
  clock?: Clock;
  /** How often readiness (store PING, scripts loaded) is re-checked, ms. Default 1000. */
  readinessIntervalMs?: number;
  /**
   * Drain grace, ms: after stop() reports NOT_SERVING, Checks (and new connections) are still
   * served this long before the listener closes, so that Envoy's health check notices first.
   * main.ts sets drainGraceMs(config.shutdownTimeoutMs); default 0 (tests, embedding).
   */
  drainGraceMs?: number;
  /** false in a KEYGATE_WORKERS worker: the primary serves /metrics, /healthz, /readyz. Default true. */
  serveHttp?: boolean;
}

/** Longest drain grace: covers Envoy health checking every 2 s with unhealthy_threshold 2. */
export const MAX_DRAIN_GRACE_MS = 5000;

/**
 * The drain grace main.ts uses: half the shutdown timeout, at most MAX_DRAIN_GRACE_MS, so that
 * at least half of KEYGATE_SHUTDOWN_TIMEOUT_MS is left for in-flight Checks after the listener
 * closes (default 10 s → 5 s grace, then up to 5 s for in-flight Checks).
 */
export function drainGraceMs(shutdownTimeoutMs: number): number {
  return Math.min(MAX_DRAIN_GRACE_MS, Math.floor(shutdownTimeoutMs / 2));
}

export interface RunningKeygate {
  grpcPort: number;
  httpPort: number;
  health: HealthState;
  metrics: KeygateMetrics;
  store: KeyStore;
  limiter: Limiter & UsageStore;
  cache: CachedKeyLookup;
  /**
   * Drains and stops; resolves when everything is closed. `timeoutMs` (default
   * KEYGATE_SHUTDOWN_TIMEOUT_MS) bounds the whole drain, grace included; `graceMs` overrides
   * the drain grace (KeygateOptions.drainGraceMs).
   */
  stop(opts?: { timeoutMs?: number; graceMs?: number }): Promise<void>;
}

/**
 * Redis commands time out a little after the Check deadline: the deadline decides (and is
 * counted as `deadline`), the command timeout only frees the command afterwards.
 */
const COMMAND_TIMEOUT_SLACK_MS = 100;
const READINESS_INTERVAL_MS = 1000;

export async function startKeygate({
  config,
  logger,
  clock = systemClock,
  readinessIntervalMs = READINESS_INTERVAL_MS,
  drainGraceMs: defaultGraceMs = 0,
  serveHttp = true,
}: KeygateOptions): Promise<RunningKeygate> {
  const health = new HealthState();
  const metrics = createMetrics({ version: VERSION, ownerCap: config.metricsOwnerCap, health });
  const digest = makeDigester(config.keyPepper);

  let redis: RedisClient | undefined;
  let store: KeyStore;
  let limiter: Limiter & UsageStore;
  if (config.redisUrl) {
    redis = createRedisClient(config.redisUrl, { commandTimeoutMs: config.checkTimeoutMs + COMMAND_TIMEOUT_SLACK_MS, tlsCaFile: config.redisTlsCa });
    store = instrumentKeyStore(new RedisKeyStore(redis, clock), metrics.store);
    limiter = instrumentLimiter(new RedisLimiter(redis, { usageRetentionDays: config.usageRetentionDays }), metrics.store);
    logger.info({ store: 'redis', redis: describeRedisUrl(config.redisUrl) }, 'using Redis');
  } else {
    store = new MemoryKeyStore(clock);
    limiter = new MemoryLimiter({ usageRetentionDays: config.usageRetentionDays });
    logger.warn(
      { store: 'memory' },
      'REDIS_URL is not set: using the EMBEDDED IN-MEMORY STORE. It serves this one process only and ' +
        'forgets every key, plan and counter on exit. Set REDIS_URL for production.',
    );
    if (config.seedFile) {
      const seed = parseSeed(readFileSync(config.seedFile, 'utf8'), { digester: digest, now: clock.now(), nativePrefixes: [config.keyPrefix] });
      const counts = await applySeed(store, seed);
      logger.info({ seed_file: config.seedFile, ...counts }, 'seeded the embedded store');
    }
  }
  if (config.seedFile && config.redisUrl) {
    logger.warn({ seed_file: config.seedFile }, 'KEYGATE_SEED_FILE is ignored with REDIS_URL: load it with keygate-admin import');
  }

  const cache = new CachedKeyLookup(
    store,
    clock,
    { ttlMs: config.cacheTtlMs, negativeTtlMs: config.negativeCacheTtlMs, maxKeys: config.cacheMaxKeys, staleMs: config.cacheStaleMs },
    metrics.cacheEvents,
  );
  const deps: CheckDeps = { config, clock, keys: cache, limiter, usage: limiter, digest };
  const log = checkLogger(logger, config.logAllowed);
  const fallbackLog = storeFallbackLogger(logger);
  const observer: CheckObserver = {
    checked(e) {
      metrics.checked(e);
      log.checked(e);
      fallbackLog.checked(e);
    },
  };
  const grpc = createGrpcServer({
    handler: (input, timing) => check(input, deps, timing),
    health,
    timeoutMs: config.checkTimeoutMs,
    maxInflight: config.maxInflightChecks,
    observer,
  });
  metrics.trackInflight(grpc.inflight);
  // Under KEYGATE_WORKERS the primary serves HTTP for every worker (src/workers.ts).
  const http: HttpServer | undefined = serveHttp
    ? createHttpServer({ host: config.httpHost, port: config.httpPort, health, registry: metrics.registry })
    : undefined;

  // Readiness: the store answers a PING (and Redis holds the charge script); re-checked every readinessIntervalMs.
  const conditions: ReadinessCondition[] = [storeReachable(store)];
  if (redis) {
    const client = redis;
    // A Cluster routes EVALSHA by slot to any primary: the script is loaded on every primary.
    conditions.push(
      isCluster(client)
        ? { problem: 'charge script not loaded', run: () => ensureScriptLoaded(client, chargeLuaScript()) }
        : scriptLoaded(client, 'charge', chargeLuaScript()),
    );
  }
  const probe = readinessProbe(health, logger, conditions);
  if (redis) {
    // A reconnect may have missed invalidation messages: start from an empty cache.
    redis.on('ready', () => cache.clear());
    await waitReady(redis, 5000).catch(() => undefined);
  }
  await probe();
  const timer = setInterval(() => void probe(), readinessIntervalMs);
  timer.unref();

  const grpcPort = await bindGrpc(grpc.server, config.grpcHost, config.grpcPort, grpcServerCredentials(config));
  const httpPort = http ? await listenHttp(http, config.httpHost, config.httpPort) : 0;
  const tls = config.grpcTlsClientCa ? 'mtls' : config.grpcTlsCert ? 'tls' : 'plaintext';
  logger.info({ grpc: `${config.grpcHost}:${grpcPort}`, grpc_tls: tls, http: `${config.httpHost}:${httpPort}`, version: VERSION }, 'keygate listening');

  let stopping: Promise<void> | undefined;
  const stop = (opts: { timeoutMs?: number; graceMs?: number } = {}) => {
    stopping ??= (async () => {
      const started = Date.now();
      const timeoutMs = opts.timeoutMs ?? config.shutdownTimeoutMs;
      const graceMs = Math.max(0, Math.min(opts.graceMs ?? defaultGraceMs, timeoutMs));
      // 1. NOT_SERVING at once: /readyz 503, Health/Check and every Health/Watch say NOT_SERVING.
      health.startDraining();
      clearInterval(timer);
      logger.info({ inflight: grpc.inflight(), grace_ms: graceMs, timeout_ms: timeoutMs }, 'draining');
      // 2. Grace: Checks and new connections are still served while Envoy's health check notices.
      if (graceMs > 0) await new Promise((resolve) => setTimeout(resolve, graceMs));
      // 3. Close the listener (new connections are refused), GOAWAY on open connections, let
      //    in-flight Checks finish; past the timeout, cancel them (Envoy sees an error, never an allow).
      grpc.endWatches();
      const inflightAtClose = grpc.inflight();
      const forced = await new Promise<boolean>((resolve) => {
        const force = setTimeout(() => {
          grpc.server.forceShutdown();
          resolve(true);
        }, Math.max(0, timeoutMs - (Date.now() - started)));
        grpc.server.tryShutdown(() => {
          clearTimeout(force);
          resolve(false);
        });
      });
      if (forced) logger.warn({ inflight: grpc.inflight(), timeout_ms: timeoutMs }, 'shutdown timeout: cancelled the Checks still in flight');
      else logger.info({ finished: inflightAtClose, ms: Date.now() - started }, 'gRPC server closed');
      if (http) {
        await new Promise<void>((resolve) => http.close(() => resolve()));
        http.closeAllConnections?.();
      }
      cache.close();
      await limiter.close();
      await store.close();
      redis?.disconnect();
      logger.info('stopped');
    })();
    return stopping;
  };

  return { grpcPort, httpPort, health, metrics, store, limiter, cache, stop };
}

function waitReady(redis: RedisClient, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout')), timeoutMs);
    redis.once('ready', () => {
      clearTimeout(t);
      resolve();
    });
  });
}
