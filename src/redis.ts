// Builds the ioredis client keygate and keygate-admin use, tuned for an authorization path:
// a bounded offline queue and retries (a Check must fail fast, not wait for a reconnect),
// command and connect timeouts, TCP keep-alive and capped reconnect backoff.
import Redis, { type RedisOptions } from 'ioredis';

/** Why a REDIS_URL cannot be used, or null when it can. Never echoes the URL (it may hold a password). */
export function redisUrlProblem(url: string): string | null {
  try {
    const u = new URL(url);
    if ((u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '') return null;
  } catch {
    // fall through
  }
  return 'must look like redis://host:port or rediss://host:port';
}

export interface RedisClientOptions {
  /** ms a single command may take before it fails (the Check deadline bounds it too) */
  commandTimeoutMs?: number;
  /** false for the CLI: it may wait for a connection instead of failing at once */
  failFast?: boolean;
}

export function createRedisClient(url: string, opts: RedisClientOptions = {}): Redis {
  const failFast = opts.failFast ?? true;
  const options: RedisOptions = {
    lazyConnect: false,
    enableAutoPipelining: true,
    connectTimeout: 2000,
    keepAlive: 10_000,
    noDelay: true,
    commandTimeout: opts.commandTimeoutMs,
    maxRetriesPerRequest: failFast ? 0 : 3,
    enableOfflineQueue: !failFast,
    retryStrategy: (attempt) => Math.min(50 * 2 ** Math.min(attempt, 6), 2000),
    reconnectOnError: (err) => err.message.startsWith('READONLY'),
  };
  const client = new Redis(url, options);
  // Errors surface on the commands that fail; the event is only noise (and could carry the URL).
  client.on('error', () => {});
  return client;
}
