// loadConfig(env): every setting keygate reads from the environment, validated together into one
// frozen Config. A bad environment produces one ConfigError that names every bad variable.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { isValidPrefix } from './keys/format';
import { redisUrlProblem } from './redis';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
export type StoreErrorPolicy = 'allow' | 'deny';

export interface Config {
  /** undefined → the embedded in-memory store */
  redisUrl?: string;
  grpcHost: string;
  grpcPort: number;
  httpHost: string;
  httpPort: number;
  /** lower-case header names, in order of preference */
  keyHeaders: string[];
  queryParam?: string;
  upstreamHeaderPrefix: string;
  seedFile?: string;
  logLevel: LogLevel;
  logAllowed: boolean;
  keyPepper?: string;
  keyPrefix: string;
  acceptForeignKeys: boolean;
  trustExternalAddress: boolean;
  cacheTtlMs: number;
  cacheMaxKeys: number;
  negativeCacheTtlMs: number;
  checkTimeoutMs: number;
  quotaOnStoreError: StoreErrorPolicy;
  shadow: boolean;
  usageRetentionDays: number;
  shutdownTimeoutMs: number;
  metricsOwnerCap: number;
  authRealm: string;
  /** CA bundle (PEM file) to verify Redis's certificate with rediss://; unset = system CAs */
  redisTlsCa?: string;
  /** PEM files: with cert and key the gRPC listener speaks TLS; with a client CA it requires mTLS */
  grpcTlsCert?: string;
  grpcTlsKey?: string;
  grpcTlsClientCa?: string;
  /** how long past its TTL a cached key record may still be used while the store is unreachable */
  cacheStaleMs: number;
  /** processes serving the gRPC port (node:cluster); 1 = no cluster */
  workers: number;
  /** Checks in flight past which new ones are answered UNAVAILABLE at once; 0 = no bound */
  maxInflightChecks: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** One setting: its variable, default (as the user would write it) and meaning, for the README. */
export interface SettingDoc {
  variable: string;
  default: string;
  meaning: string;
}

export const SETTINGS: readonly SettingDoc[] = [
  { variable: 'REDIS_URL', default: '(unset: embedded store)', meaning: '`redis://[user:pass@]host:port[/db]`, `rediss://` (TLS), `redis+sentinel://h1:26379,h2:26379/<master>[/<db>]`, `redis+cluster://h1:7000,h2:7001` (`rediss+…` for TLS; see [Redis topologies](#redis-topologies)). Unset: embedded in-memory store, single instance, not persistent' },
  { variable: 'KEYGATE_GRPC_HOST', default: '0.0.0.0', meaning: 'address the ext_authz gRPC server binds (`::` for IPv6)' },
  { variable: 'KEYGATE_GRPC_PORT', default: '9191', meaning: 'port of the ext_authz gRPC server (also serves grpc.health.v1)' },
  { variable: 'KEYGATE_HTTP_HOST', default: '0.0.0.0', meaning: 'address of the HTTP server for /metrics, /healthz, /readyz' },
  { variable: 'KEYGATE_HTTP_PORT', default: '9464', meaning: 'port of that HTTP server' },
  { variable: 'KEYGATE_KEY_HEADERS', default: 'x-api-key,authorization', meaning: 'headers searched for the key, comma-separated; `authorization` takes `Bearer K` or `ApiKey K`' },
  { variable: 'KEYGATE_QUERY_PARAM', default: '(unset: off)', meaning: 'query parameter that may carry the key, e.g. `api_key`; removed before the request goes upstream' },
  { variable: 'KEYGATE_UPSTREAM_HEADER_PREFIX', default: 'x-keygate-', meaning: 'prefix of the identity headers sent upstream; client-sent headers with it are removed' },
  { variable: 'KEYGATE_SEED_FILE', default: '(unset)', meaning: 'seed file (plans and keys) loaded into the embedded store at start-up' },
  { variable: 'KEYGATE_LOG_LEVEL', default: 'info', meaning: 'fatal, error, warn, info, debug, trace or silent' },
  { variable: 'KEYGATE_LOG_ALLOWED', default: 'false', meaning: 'also log one line per allowed Check (denied and failed ones are always logged)' },
  { variable: 'KEYGATE_KEY_PEPPER', default: '(unset)', meaning: 'server secret: stored digests become HMAC-SHA-256(pepper, key) instead of SHA-256(key). Changing it invalidates every stored key' },
  { variable: 'KEYGATE_KEY_PREFIX', default: 'kg', meaning: 'prefix of issued keys; a key with this prefix and a bad checksum is refused without a store lookup' },
  { variable: 'KEYGATE_ACCEPT_FOREIGN_KEYS', default: 'true', meaning: 'accept keys not in keygate format (imported from other systems, looked up by digest); false refuses them without a lookup' },
  { variable: 'KEYGATE_TRUST_EXTERNAL_ADDRESS', default: 'false', meaning: 'check CIDR allowlists against `x-envoy-external-address` instead of the peer address (only behind an Envoy that sets it)' },
  { variable: 'KEYGATE_CACHE_TTL_MS', default: '1000', meaning: 'how long a key record or plan may be served from the in-process cache; bounds revocation delay' },
  { variable: 'KEYGATE_CACHE_MAX_KEYS', default: '100000', meaning: 'most key records kept in the in-process cache (bounds memory)' },
  { variable: 'KEYGATE_NEGATIVE_CACHE_TTL_MS', default: '1000', meaning: 'how long an unknown key is remembered as unknown (0 = off)' },
  { variable: 'KEYGATE_CHECK_TIMEOUT_MS', default: '150', meaning: 'deadline of one Check\'s answer; its store calls share the deadline minus a fifth (at most 25 ms) and the failure policy decides within it; past it the RPC fails UNAVAILABLE. Keep below Envoy\'s ext_authz timeout' },
  { variable: 'KEYGATE_QUOTA_ON_STORE_ERROR', default: 'deny', meaning: '`deny`: a store failure during the quota charge fails the Check; `allow`: the Check is allowed uncharged (counted and logged)' },
  { variable: 'KEYGATE_SHADOW', default: 'false', meaning: 'shadow mode for every plan: quota decisions are computed, counted and reported, never enforced' },
  { variable: 'KEYGATE_USAGE_RETENTION_DAYS', default: '90', meaning: 'days of per-key daily usage history kept in the store' },
  { variable: 'KEYGATE_SHUTDOWN_TIMEOUT_MS', default: '10000', meaning: 'on SIGTERM: bound of the whole drain — NOT_SERVING at once, a grace of half of it (at most 5 s) still serving, then in-flight Checks finish; past it they are cancelled' },
  { variable: 'KEYGATE_METRICS_OWNER_CAP', default: '1000', meaning: 'most distinct owners labelled in usage metrics; later owners share the label `_other`' },
  { variable: 'KEYGATE_REDIS_TLS_CA', default: '(unset: system CAs)', meaning: 'PEM file of the CA that signed Redis\'s certificate, for `rediss://`, `rediss+sentinel://`, `rediss+cluster://` (an error with a plaintext REDIS_URL)' },
  { variable: 'KEYGATE_GRPC_TLS_CERT', default: '(unset: plaintext)', meaning: 'PEM certificate (chain) of the gRPC listener; with `KEYGATE_GRPC_TLS_KEY` the listener speaks TLS' },
  { variable: 'KEYGATE_GRPC_TLS_KEY', default: '(unset)', meaning: 'PEM private key of the gRPC listener' },
  { variable: 'KEYGATE_GRPC_TLS_CLIENT_CA', default: '(unset: no client certificates)', meaning: 'PEM CA bundle: when set, Envoy must present a client certificate signed by it (mTLS)' },
  { variable: 'KEYGATE_CACHE_STALE_MS', default: '0', meaning: 'while the store is unreachable, a cached key record or plan may be used this long past its TTL (0 = never); never an unknown key' },
  { variable: 'KEYGATE_WORKERS', default: '1', meaning: 'processes serving the gRPC port (`auto` = one per CPU); metrics are aggregated across them' },
  { variable: 'KEYGATE_MAX_INFLIGHT_CHECKS', default: '1024', meaning: 'Checks in flight past which new ones are answered UNAVAILABLE at once, uncharged (`reason="overload"`), so Envoy\'s failure mode applies without waiting; size it about throughput × deadline; 0 = no bound' },
  { variable: 'KEYGATE_AUTH_REALM', default: 'keygate', meaning: 'realm in the `WWW-Authenticate` header of 401 answers' },
];

const HEADER_NAME_RE = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const PARAM_RE = /^[A-Za-z0-9._~-]+$/;
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function loadConfig(env: Env): Readonly<Config> {
  const problems: string[] = [];
  const known = new Set(SETTINGS.map((s) => s.variable));
  const get = (name: string): string | undefined => {
    if (!known.has(name)) throw new Error(`setting ${name} is not documented in SETTINGS`);
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (name: string, def: number, min: number, max: number): number => {
    const v = get(name);
    if (v === undefined) return def;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      problems.push(`${name}="${v}": must be a whole number from ${min} to ${max}`);
      return def;
    }
    return Number(v);
  };
  const bool = (name: string, def: boolean): boolean => {
    const v = get(name)?.toLowerCase();
    if (v === undefined) return def;
    if (['true', '1', 'yes', 'on'].includes(v)) return true;
    if (['false', '0', 'no', 'off'].includes(v)) return false;
    problems.push(`${name}="${get(name)}": must be true or false`);
    return def;
  };
  const oneOf = <T extends string>(name: string, def: T, allowed: readonly T[]): T => {
    const v = get(name)?.toLowerCase();
    if (v === undefined) return def;
    if ((allowed as readonly string[]).includes(v)) return v as T;
    problems.push(`${name}="${get(name)}": must be one of ${allowed.join(', ')}`);
    return def;
  };
  const host = (name: string, def: string): string => {
    const v = get(name) ?? def;
    if (!/^[A-Za-z0-9.:_-]+$/.test(v) && !/^\[[0-9a-fA-F:.]+\]$/.test(v)) problems.push(`${name}="${v}": must be a host name or IP address`);
    return v;
  };

  const redisUrl = get('REDIS_URL');
  if (redisUrl !== undefined) {
    const problem = redisUrlProblem(redisUrl);
    if (problem) problems.push(`REDIS_URL: ${problem} (value not shown: it may hold a password)`);
  }

  const keyHeaders = (get('KEYGATE_KEY_HEADERS') ?? 'x-api-key,authorization')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== '');
  if (keyHeaders.length === 0 || keyHeaders.some((h) => !HEADER_NAME_RE.test(h) || h.startsWith(':'))) {
    problems.push(`KEYGATE_KEY_HEADERS="${get('KEYGATE_KEY_HEADERS')}": must be a comma-separated list of HTTP header names`);
  }
  const queryParam = get('KEYGATE_QUERY_PARAM');
  if (queryParam !== undefined && !PARAM_RE.test(queryParam)) {
    problems.push(`KEYGATE_QUERY_PARAM="${queryParam}": must be a plain query parameter name (letters, digits, . _ ~ -)`);
  }
  const upstreamHeaderPrefix = (get('KEYGATE_UPSTREAM_HEADER_PREFIX') ?? 'x-keygate-').toLowerCase();
  if (!HEADER_NAME_RE.test(upstreamHeaderPrefix) || upstreamHeaderPrefix.length < 2) {
    problems.push(`KEYGATE_UPSTREAM_HEADER_PREFIX="${get('KEYGATE_UPSTREAM_HEADER_PREFIX')}": must be the start of an HTTP header name, e.g. x-keygate-`);
  }
  const keyPrefix = get('KEYGATE_KEY_PREFIX') ?? 'kg';
  if (!isValidPrefix(keyPrefix)) problems.push(`KEYGATE_KEY_PREFIX="${keyPrefix}": must be 1-16 lowercase letters or digits, starting with a letter`);
  const keyPepper = get('KEYGATE_KEY_PEPPER');
  if (keyPepper !== undefined && keyPepper.length < 16) problems.push('KEYGATE_KEY_PEPPER: must be at least 16 characters (value not shown)');
  const authRealm = get('KEYGATE_AUTH_REALM') ?? 'keygate';
  if (!/^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,100}$/.test(authRealm)) problems.push(`KEYGATE_AUTH_REALM: must be printable text without quotes or backslashes`);

  const file = (name: string): string | undefined => {
    const v = get(name);
    if (v !== undefined && !existsSync(v)) problems.push(`${name}="${v}": no such file`);
    return v;
  };
  const grpcTlsCert = file('KEYGATE_GRPC_TLS_CERT');
  const grpcTlsKey = file('KEYGATE_GRPC_TLS_KEY');
  const grpcTlsClientCa = file('KEYGATE_GRPC_TLS_CLIENT_CA');
  if ((grpcTlsCert === undefined) !== (grpcTlsKey === undefined)) {
    problems.push('KEYGATE_GRPC_TLS_CERT and KEYGATE_GRPC_TLS_KEY: set both or neither');
  }
  if (grpcTlsClientCa !== undefined && grpcTlsCert === undefined) {
    problems.push('KEYGATE_GRPC_TLS_CLIENT_CA: needs KEYGATE_GRPC_TLS_CERT and KEYGATE_GRPC_TLS_KEY (mTLS is TLS first)');
  }
  const workersText = get('KEYGATE_WORKERS')?.toLowerCase();
  let workers = 1;
  if (workersText === 'auto') workers = Math.max(1, availableParallelism());
  else if (workersText !== undefined) workers = int('KEYGATE_WORKERS', 1, 1, 256);

  if (workers > 1 && redisUrl === undefined) {
    problems.push(`KEYGATE_WORKERS=${workersText}: several workers need REDIS_URL (the embedded store lives in one process; each worker would count quotas on its own)`);
  }

  const redisTlsCa = file('KEYGATE_REDIS_TLS_CA');
  if (redisTlsCa !== undefined && redisUrl !== undefined && !/^rediss/i.test(redisUrl)) {
    problems.push('KEYGATE_REDIS_TLS_CA is set but REDIS_URL is not a TLS form (rediss://, rediss+sentinel://, rediss+cluster://): the connection would not be encrypted');
  }

  const config: Config = {
    redisUrl,
    grpcHost: host('KEYGATE_GRPC_HOST', '0.0.0.0'),
    grpcPort: int('KEYGATE_GRPC_PORT', 9191, 0, 65535),
    httpHost: host('KEYGATE_HTTP_HOST', '0.0.0.0'),
    httpPort: int('KEYGATE_HTTP_PORT', 9464, 0, 65535),
    keyHeaders,
    queryParam,
    upstreamHeaderPrefix,
    seedFile: get('KEYGATE_SEED_FILE'),
    logLevel: oneOf('KEYGATE_LOG_LEVEL', 'info', LOG_LEVELS),
    logAllowed: bool('KEYGATE_LOG_ALLOWED', false),
    keyPepper,
    keyPrefix,
    acceptForeignKeys: bool('KEYGATE_ACCEPT_FOREIGN_KEYS', true),
    trustExternalAddress: bool('KEYGATE_TRUST_EXTERNAL_ADDRESS', false),
    cacheTtlMs: int('KEYGATE_CACHE_TTL_MS', 1000, 0, 3_600_000),
    cacheMaxKeys: int('KEYGATE_CACHE_MAX_KEYS', 100_000, 1, 100_000_000),
    negativeCacheTtlMs: int('KEYGATE_NEGATIVE_CACHE_TTL_MS', 1000, 0, 3_600_000),
    checkTimeoutMs: int('KEYGATE_CHECK_TIMEOUT_MS', 150, 1, 60_000),
    quotaOnStoreError: oneOf<StoreErrorPolicy>('KEYGATE_QUOTA_ON_STORE_ERROR', 'deny', ['allow', 'deny']),
    shadow: bool('KEYGATE_SHADOW', false),
    usageRetentionDays: int('KEYGATE_USAGE_RETENTION_DAYS', 90, 1, 3660),
    shutdownTimeoutMs: int('KEYGATE_SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    metricsOwnerCap: int('KEYGATE_METRICS_OWNER_CAP', 1000, 1, 1_000_000),
    authRealm,
    redisTlsCa,
    grpcTlsCert,
    grpcTlsKey,
    grpcTlsClientCa,
    cacheStaleMs: int('KEYGATE_CACHE_STALE_MS', 0, 0, 86_400_000),
    maxInflightChecks: int('KEYGATE_MAX_INFLIGHT_CHECKS', 1024, 0, 1_000_000),
    workers,
  };
  const portProblem = problems.some((p) => p.startsWith('KEYGATE_GRPC_PORT=') || p.startsWith('KEYGATE_HTTP_PORT='));
  if (config.grpcPort !== 0 && config.grpcPort === config.httpPort && !portProblem) {
    problems.push(`KEYGATE_GRPC_PORT and KEYGATE_HTTP_PORT are both ${config.grpcPort}: they must differ`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  config.keyHeaders = Object.freeze(config.keyHeaders) as string[];
  return Object.freeze(config);
}
