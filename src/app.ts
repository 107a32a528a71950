// Wires one keygate instance from a Config: store (Redis or embedded), key cache, limiter,
// gRPC server, HTTP server, readiness monitor. main.ts runs it as a process; tests start it
// in-process on port 0. stop() drains: NOT_SERVING first, in-flight Checks finish, then close.
import { readFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import type Redis from 'ioredis';
import { systemClock, type Clock } from './clock';
import type { Config } from './config';
import { check, type CheckDeps } from './check/check';
import { bindGrpc, createGrpcServer, type CheckObserver } from './grpc/server';
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
import { createRedisClient } from './redis';
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
}

export interface RunningKeygate {
  grpcPort: number;
  httpPort: number;
  health: HealthState;
  metrics: KeygateMetrics;
  store: KeyStore;
  limiter: Limiter & UsageStore;
  cache: CachedKeyLookup;
  /** Drains and stops; resolves when everything is closed. */
  stop(opts?: { timeoutMs?: number }): Promise<void>;
}

/**
 * Redis commands time out a little after the Check deadline: the deadline decides (and is
 * counted as `deadline`), the command timeout only frees the command afterwards.
 */
const COMMAND_TIMEOUT_SLACK_MS = 100;
const READINESS_INTERVAL_MS = 1000;

export async function startKeygate({ config, logger, clock = systemClock, readinessIntervalMs = READINESS_INTERVAL_MS }: KeygateOptions): Promise<RunningKeygate> {
  const health = new HealthState();
  const metrics = createMetrics({ version: VERSION, ownerCap: config.metricsOwnerCap, health });
  const digest = makeDigester(config.keyPepper);

  let redis: Redis | undefined;
  let store: KeyStore;
  let limiter: Limiter & UsageStore;
  if (config.redisUrl) {
    redis = createRedisClient(config.redisUrl, { commandTimeoutMs: config.checkTimeoutMs + COMMAND_TIMEOUT_SLACK_MS });
    store = instrumentKeyStore(new RedisKeyStore(redis, clock), metrics.store);
    limiter = instrumentLimiter(new RedisLimiter(redis, { usageRetentionDays: config.usageRetentionDays }), metrics.store);
    logger.info({ store: 'redis' }, 'using Redis');
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
    { ttlMs: config.cacheTtlMs, negativeTtlMs: config.negativeCacheTtlMs, maxKeys: config.cacheMaxKeys },
    metrics.cacheEvents,
  );
  const deps: CheckDeps = { config, clock, keys: cache, limiter, usage: limiter, digest };
  const log = checkLogger(logger, config.logAllowed);
  const observer: CheckObserver = {
    checked(e) {
      metrics.checked(e);
      log.checked(e);
    },
  };
  const grpc = createGrpcServer({ handler: (input) => check(input, deps), health, timeoutMs: config.checkTimeoutMs, observer });
  metrics.trackInflight(grpc.inflight);
  const http: HttpServer = createHttpServer({ host: config.httpHost, port: config.httpPort, health, registry: metrics.registry });

  // Readiness: the store answers a PING (and Redis holds the charge script); re-checked every readinessIntervalMs.
  const conditions: ReadinessCondition[] = [storeReachable(store)];
  if (redis) conditions.push(scriptLoaded(redis, 'charge', chargeLuaScript()));
  const probe = readinessProbe(health, logger, conditions);
  if (redis) {
    // A reconnect may have missed invalidation messages: start from an empty cache.
    redis.on('ready', () => cache.clear());
    await waitReady(redis, 5000).catch(() => undefined);
  }
  await probe();
  const timer = setInterval(() => void probe(), readinessIntervalMs);
  timer.unref();

  const grpcPort = await bindGrpc(grpc.server, config.grpcHost, config.grpcPort);
  const httpPort = await listenHttp(http, config.httpHost, config.httpPort);
  logger.info({ grpc: `${config.grpcHost}:${grpcPort}`, http: `${config.httpHost}:${httpPort}`, version: VERSION }, 'keygate listening');

  let stopping: Promise<void> | undefined;
  const stop = (opts: { timeoutMs?: number } = {}) => {
    stopping ??= (async () => {
      const timeoutMs = opts.timeoutMs ?? config.shutdownTimeoutMs;
      health.startDraining();
      clearInterval(timer);
      logger.info({ inflight: grpc.inflight(), timeout_ms: timeoutMs }, 'draining');
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          grpc.server.forceShutdown();
          resolve();
        }, timeoutMs);
        grpc.server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      await new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections?.();
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

function waitReady(redis: Redis, timeoutMs: number): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout')), timeoutMs);
    redis.once('ready', () => {
      clearTimeout(t);
      resolve();
    });
  });
}
