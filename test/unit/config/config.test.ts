// loadConfig(env): defaults, one test per bad value of every variable, all problems reported
// together, a frozen result, and the README's settings table naming every variable.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, SETTINGS, loadConfig, type Config } from '../../../src/config';

type Env = Record<string, string | undefined>;

/** The ConfigError loadConfig throws for env; fails the test when it does not throw one. */
function configError(env: Env): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

/** Asserts env is refused with exactly one problem, which names `variable`; returns that problem. */
function refusedFor(variable: string, value: string, extra: Env = {}): string {
  const err = configError({ ...extra, [variable]: value });
  expect(err.problems).toHaveLength(1);
  expect(err.problems[0]).toContain(variable);
  expect(err.message).toContain(variable);
  return err.problems[0];
}

/** SETTINGS variable → Config field, and the default as SETTINGS writes it parsed to the field's type. */
const FIELD_OF: Record<string, { field: keyof Config; parse: (text: string) => unknown }> = {
  REDIS_URL: { field: 'redisUrl', parse: () => undefined },
  KEYGATE_GRPC_HOST: { field: 'grpcHost', parse: (t) => t },
  KEYGATE_GRPC_PORT: { field: 'grpcPort', parse: Number },
  KEYGATE_HTTP_HOST: { field: 'httpHost', parse: (t) => t },
  KEYGATE_HTTP_PORT: { field: 'httpPort', parse: Number },
  KEYGATE_KEY_HEADERS: { field: 'keyHeaders', parse: (t) => t.split(',') },
  KEYGATE_QUERY_PARAM: { field: 'queryParam', parse: () => undefined },
  KEYGATE_UPSTREAM_HEADER_PREFIX: { field: 'upstreamHeaderPrefix', parse: (t) => t },
  KEYGATE_SEED_FILE: { field: 'seedFile', parse: () => undefined },
  KEYGATE_LOG_LEVEL: { field: 'logLevel', parse: (t) => t },
  KEYGATE_LOG_ALLOWED: { field: 'logAllowed', parse: (t) => t === 'true' },
  KEYGATE_KEY_PEPPER: { field: 'keyPepper', parse: () => undefined },
  KEYGATE_KEY_PREFIX: { field: 'keyPrefix', parse: (t) => t },
  KEYGATE_ACCEPT_FOREIGN_KEYS: { field: 'acceptForeignKeys', parse: (t) => t === 'true' },
  KEYGATE_TRUST_EXTERNAL_ADDRESS: { field: 'trustExternalAddress', parse: (t) => t === 'true' },
  KEYGATE_CACHE_TTL_MS: { field: 'cacheTtlMs', parse: Number },
  KEYGATE_CACHE_MAX_KEYS: { field: 'cacheMaxKeys', parse: Number },
  KEYGATE_NEGATIVE_CACHE_TTL_MS: { field: 'negativeCacheTtlMs', parse: Number },
  KEYGATE_CHECK_TIMEOUT_MS: { field: 'checkTimeoutMs', parse: Number },
  KEYGATE_QUOTA_ON_STORE_ERROR: { field: 'quotaOnStoreError', parse: (t) => t },
  KEYGATE_SHADOW: { field: 'shadow', parse: (t) => t === 'true' },
  KEYGATE_USAGE_RETENTION_DAYS: { field: 'usageRetentionDays', parse: Number },
  KEYGATE_SHUTDOWN_TIMEOUT_MS: { field: 'shutdownTimeoutMs', parse: Number },
  KEYGATE_METRICS_OWNER_CAP: { field: 'metricsOwnerCap', parse: Number },
  KEYGATE_AUTH_REALM: { field: 'authRealm', parse: (t) => t },
  KEYGATE_REDIS_TLS_CA: { field: 'redisTlsCa', parse: () => undefined },
  KEYGATE_GRPC_TLS_CERT: { field: 'grpcTlsCert', parse: () => undefined },
  KEYGATE_GRPC_TLS_KEY: { field: 'grpcTlsKey', parse: () => undefined },
  KEYGATE_GRPC_TLS_CLIENT_CA: { field: 'grpcTlsClientCa', parse: () => undefined },
  KEYGATE_CACHE_STALE_MS: { field: 'cacheStaleMs', parse: Number },
  KEYGATE_WORKERS: { field: 'workers', parse: Number },
  KEYGATE_MAX_INFLIGHT_CHECKS: { field: 'maxInflightChecks', parse: Number },
};

describe('loadConfig defaults', () => {
  it('an empty environment gives the documented defaults of the design', () => {
    const c = loadConfig({});
    expect(c.redisUrl).toBeUndefined();
    expect(c.grpcHost).toBe('0.0.0.0');
    expect(c.grpcPort).toBe(9191);
    expect(c.httpPort).toBe(9464);
    expect(c.keyHeaders).toEqual(['x-api-key', 'authorization']);
    expect(c.queryParam).toBeUndefined();
    expect(c.upstreamHeaderPrefix).toBe('x-keygate-');
    expect(c.keyPrefix).toBe('kg');
    expect(c.quotaOnStoreError).toBe('deny');
    expect(c.shadow).toBe(false);
    expect(c.trustExternalAddress).toBe(false);
  });

  it('SETTINGS documents every Config field exactly once, and no setting is missing from the map below', () => {
    expect(SETTINGS.map((s) => s.variable).sort()).toEqual(Object.keys(FIELD_OF).sort());
    const fields = Object.values(FIELD_OF).map((f) => f.field);
    expect(new Set(fields).size).toBe(fields.length);
    expect(Object.keys(loadConfig({ REDIS_URL: 'redis://h:1', KEYGATE_QUERY_PARAM: 'k', KEYGATE_SEED_FILE: 'f', KEYGATE_KEY_PEPPER: 'p'.repeat(16) })).sort()).toEqual(
      [...fields].sort(),
    );
  });

  for (const s of SETTINGS) {
    it(`${s.variable}: the default in SETTINGS ("${s.default}") is the default loadConfig uses`, () => {
      const { field, parse } = FIELD_OF[s.variable];
      expect(loadConfig({})[field]).toEqual(parse(s.default));
    });
  }

  it('every SETTINGS entry has a meaning for the README', () => {
    for (const s of SETTINGS) expect(s.meaning.length, s.variable).toBeGreaterThan(10);
  });

  it('empty and blank values mean "use the default"', () => {
    const env: Env = {};
    for (const s of SETTINGS) env[s.variable] = '   ';
    expect(loadConfig(env)).toEqual(loadConfig({}));
  });

  it('reads good values, trimmed; header names and the prefix are lower-cased', () => {
    const c = loadConfig({
      REDIS_URL: ' rediss://user:pw@redis.example:6380/2 ',
      KEYGATE_GRPC_HOST: '::',
      KEYGATE_GRPC_PORT: ' 10000 ',
      KEYGATE_HTTP_HOST: '[::1]',
      KEYGATE_HTTP_PORT: '10001',
      KEYGATE_KEY_HEADERS: 'X-Token, Authorization ,',
      KEYGATE_QUERY_PARAM: 'api_key',
      KEYGATE_UPSTREAM_HEADER_PREFIX: 'X-Acme-',
      KEYGATE_SEED_FILE: './seed.json',
      KEYGATE_LOG_LEVEL: 'DEBUG',
      KEYGATE_LOG_ALLOWED: 'yes',
      KEYGATE_KEY_PEPPER: '0123456789abcdef',
      KEYGATE_KEY_PREFIX: 'acme1',
      KEYGATE_ACCEPT_FOREIGN_KEYS: 'off',
      KEYGATE_TRUST_EXTERNAL_ADDRESS: 'ON',
      KEYGATE_CACHE_TTL_MS: '0',
      KEYGATE_CACHE_MAX_KEYS: '5',
      KEYGATE_NEGATIVE_CACHE_TTL_MS: '250',
      KEYGATE_CHECK_TIMEOUT_MS: '60000',
      KEYGATE_QUOTA_ON_STORE_ERROR: 'Allow',
      KEYGATE_SHADOW: '1',
      KEYGATE_USAGE_RETENTION_DAYS: '3660',
      KEYGATE_SHUTDOWN_TIMEOUT_MS: '0',
      KEYGATE_METRICS_OWNER_CAP: '1',
      KEYGATE_AUTH_REALM: 'Acme API',
      KEYGATE_REDIS_TLS_CA: __filename,
      KEYGATE_GRPC_TLS_CERT: __filename,
      KEYGATE_GRPC_TLS_KEY: __filename,
      KEYGATE_GRPC_TLS_CLIENT_CA: __filename,
      KEYGATE_CACHE_STALE_MS: '5000',
      KEYGATE_WORKERS: '3',
      KEYGATE_MAX_INFLIGHT_CHECKS: '0',
    });
    expect(c).toEqual({
      redisUrl: 'rediss://user:pw@redis.example:6380/2',
      grpcHost: '::',
      grpcPort: 10000,
      httpHost: '[::1]',
      httpPort: 10001,
      keyHeaders: ['x-token', 'authorization'],
      queryParam: 'api_key',
      upstreamHeaderPrefix: 'x-acme-',
      seedFile: './seed.json',
      logLevel: 'debug',
      logAllowed: true,
      keyPepper: '0123456789abcdef',
      keyPrefix: 'acme1',
      acceptForeignKeys: false,
      trustExternalAddress: true,
      cacheTtlMs: 0,
      cacheMaxKeys: 5,
      negativeCacheTtlMs: 250,
      checkTimeoutMs: 60000,
      quotaOnStoreError: 'allow',
      shadow: true,
      usageRetentionDays: 3660,
      shutdownTimeoutMs: 0,
      metricsOwnerCap: 1,
      authRealm: 'Acme API',
      redisTlsCa: __filename,
      grpcTlsCert: __filename,
      grpcTlsKey: __filename,
      grpcTlsClientCa: __filename,
      cacheStaleMs: 5000,
      workers: 3,
      maxInflightChecks: 0,
    });
  });

  it.each([
    ['true', true],
    ['1', true],
    ['yes', true],
    ['on', true],
    ['TRUE', true],
    ['false', false],
    ['0', false],
    ['no', false],
    ['Off', false],
  ])('boolean "%s" reads as %s', (text, value) => {
    expect(loadConfig({ KEYGATE_SHADOW: text }).shadow).toBe(value);
    expect(loadConfig({ KEYGATE_ACCEPT_FOREIGN_KEYS: text }).acceptForeignKeys).toBe(value);
  });

  it('accepts the port bounds 0 and 65535, and both ports 0 (ephemeral, for tests)', () => {
    expect(loadConfig({ KEYGATE_GRPC_PORT: '65535' }).grpcPort).toBe(65535);
    const c = loadConfig({ KEYGATE_GRPC_PORT: '0', KEYGATE_HTTP_PORT: '0' });
    expect([c.grpcPort, c.httpPort]).toEqual([0, 0]);
  });

  it('a pepper of exactly 16 characters is accepted', () => {
    expect(loadConfig({ KEYGATE_KEY_PEPPER: 'x'.repeat(16) }).keyPepper).toBe('x'.repeat(16));
  });

  it('reads nothing but its own variables (an unrelated environment changes nothing)', () => {
    expect(loadConfig({ PATH: '/usr/bin', HOME: '/root', KEYGATE_UNKNOWN: 'x' })).toEqual(loadConfig({}));
  });
});

describe('loadConfig result', () => {
  it('is frozen, and so is its header list', () => {
    const c = loadConfig({});
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.keyHeaders)).toBe(true);
    expect(() => {
      (c as Config).grpcPort = 1;
    }).toThrow(TypeError);
    expect(() => (c.keyHeaders as string[]).push('x-evil')).toThrow(TypeError);
    expect(c.grpcPort).toBe(9191);
    expect(c.keyHeaders).toEqual(['x-api-key', 'authorization']);
  });

  it('two calls give independent objects', () => {
    expect(loadConfig({})).not.toBe(loadConfig({}));
  });
});

describe('loadConfig bad values: one problem, naming the variable', () => {
  describe('REDIS_URL (never echoed: it may hold a password)', () => {
    it.each([
      ['http scheme', 'http://:hunter2secret@localhost:6379'],
      ['no scheme', 'hunter2secret@localhost:6379'],
      ['no host', 'redis://:hunter2secret@:6379'],
      ['no slashes', 'redis:hunter2secret'],
      ['not a URL', 'hunter2secret'],
      ['unix socket scheme', 'unix:///tmp/hunter2secret.sock'],
    ])('%s', (_label, value) => {
      const problem = refusedFor('REDIS_URL', value);
      const err = configError({ REDIS_URL: value });
      expect(problem).not.toContain(value);
      expect(err.message).not.toContain('hunter2secret');
      expect(String(err.stack)).not.toContain('hunter2secret');
      expect(JSON.stringify(err.problems)).not.toContain('hunter2secret');
    });
  });

  for (const variable of ['KEYGATE_GRPC_PORT', 'KEYGATE_HTTP_PORT']) {
    describe(variable, () => {
      it.each(['abc', '-1', '65536', '99999999999', '80.5', '8o80', '0x50', '1e3', '+80'])('"%s"', (value) => {
        expect(refusedFor(variable, value)).toContain(value);
      });
    });
  }

  for (const variable of ['KEYGATE_GRPC_HOST', 'KEYGATE_HTTP_HOST']) {
    describe(variable, () => {
      it.each(['bad host', 'host/path', 'user@host', 'http://host', '[::1'])('"%s"', (value) => {
        refusedFor(variable, value);
      });
    });
  }

  describe('KEYGATE_KEY_HEADERS', () => {
    it.each([
      ['only commas', ','],
      ['space inside a name', 'x api key'],
      ['a pseudo-header', ':authority'],
      ['one good, one bad', 'x-api-key,bad header'],
      ['non-ASCII', 'x-clé'],
      ['separator character', 'x-api-key;authorization'],
      ['colon inside', 'x:key'],
    ])('%s', (_label, value) => {
      refusedFor('KEYGATE_KEY_HEADERS', value);
    });
  });

  describe('KEYGATE_QUERY_PARAM', () => {
    it.each(['api key', 'a&b', 'a=b', 'api%5Fkey', '?api_key', 'api_key#', 'clé'])('"%s"', (value) => {
      refusedFor('KEYGATE_QUERY_PARAM', value);
    });
  });

  describe('KEYGATE_UPSTREAM_HEADER_PREFIX', () => {
    it.each(['x keygate-', 'x', ':x-', 'x-kg/', 'x-kg:', 'x-clé-'])('"%s"', (value) => {
      refusedFor('KEYGATE_UPSTREAM_HEADER_PREFIX', value);
    });
  });

  describe('KEYGATE_KEY_PREFIX', () => {
    it.each(['KG', '1kg', 'kg_', 'k-g', 'abcdefghijklmnopq', '_'])('"%s"', (value) => {
      refusedFor('KEYGATE_KEY_PREFIX', value);
    });
  });

  describe('KEYGATE_KEY_PEPPER (never echoed)', () => {
    it.each(['short', 'x'.repeat(15), 'fifteen-chars!!'])('"%s"', (value) => {
      const problem = refusedFor('KEYGATE_KEY_PEPPER', value);
      expect(problem).not.toContain(value);
      expect(configError({ KEYGATE_KEY_PEPPER: value }).message).not.toContain(value);
    });
  });

  describe('KEYGATE_LOG_LEVEL', () => {
    it.each(['verbose', 'warning', 'information', '3', 'info,debug'])('"%s"', (value) => {
      refusedFor('KEYGATE_LOG_LEVEL', value);
    });
  });

  for (const variable of ['KEYGATE_LOG_ALLOWED', 'KEYGATE_ACCEPT_FOREIGN_KEYS', 'KEYGATE_TRUST_EXTERNAL_ADDRESS', 'KEYGATE_SHADOW']) {
    describe(variable, () => {
      it.each(['maybe', 'tru', '2', 'y', 'enabled', '-1'])('"%s"', (value) => {
        refusedFor(variable, value);
      });
    });
  }

  describe('KEYGATE_QUOTA_ON_STORE_ERROR', () => {
    it.each(['fail', 'open', 'closed', 'true'])('"%s"', (value) => {
      refusedFor('KEYGATE_QUOTA_ON_STORE_ERROR', value);
    });
  });

  const ranges: [string, string[]][] = [
    ['KEYGATE_CACHE_TTL_MS', ['-1', '3600001', 'abc', '1.5', '1s']],
    ['KEYGATE_CACHE_MAX_KEYS', ['0', '100000001', 'lots']],
    ['KEYGATE_NEGATIVE_CACHE_TTL_MS', ['-5', '3600001', 'off']],
    ['KEYGATE_CHECK_TIMEOUT_MS', ['0', '60001', '150ms']],
    ['KEYGATE_USAGE_RETENTION_DAYS', ['0', '3661', '90d']],
    ['KEYGATE_SHUTDOWN_TIMEOUT_MS', ['600001', '-1', '10s']],
    ['KEYGATE_METRICS_OWNER_CAP', ['0', '1000001', 'many']],
  ];
  for (const [variable, values] of ranges) {
    describe(variable, () => {
      it.each(values)('"%s"', (value) => {
        refusedFor(variable, value);
      });
    });
  }

  describe('KEYGATE_AUTH_REALM', () => {
    it.each([
      ['a double quote', 'acme"api'],
      ['a backslash', 'acme\\api'],
      ['a control character', 'acme\napi'],
      ['non-ASCII', 'acmé'],
      ['too long', 'a'.repeat(101)],
    ])('%s', (_label, value) => {
      refusedFor('KEYGATE_AUTH_REALM', value);
    });
  });

  it('KEYGATE_GRPC_PORT equal to KEYGATE_HTTP_PORT', () => {
    const err = configError({ KEYGATE_GRPC_PORT: '8080', KEYGATE_HTTP_PORT: '8080' });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toContain('KEYGATE_GRPC_PORT');
    expect(err.problems[0]).toContain('KEYGATE_HTTP_PORT');
  });

  it('the default gRPC port given as the HTTP port', () => {
    const err = configError({ KEYGATE_HTTP_PORT: '9191' });
    expect(err.problems.join('\n')).toContain('KEYGATE_HTTP_PORT');
  });
});

describe('loadConfig with several bad variables', () => {
  it('throws ONE ConfigError whose problems name every bad variable, once each', () => {
    const bad: Env = {
      REDIS_URL: 'ftp://:hunter2secret@h',
      KEYGATE_GRPC_PORT: 'abc',
      KEYGATE_HTTP_PORT: '70000',
      KEYGATE_GRPC_HOST: 'bad host',
      KEYGATE_KEY_HEADERS: 'bad header',
      KEYGATE_QUERY_PARAM: 'a&b',
      KEYGATE_UPSTREAM_HEADER_PREFIX: 'x y',
      KEYGATE_LOG_LEVEL: 'loud',
      KEYGATE_LOG_ALLOWED: 'maybe',
      KEYGATE_KEY_PEPPER: 'short',
      KEYGATE_KEY_PREFIX: 'KG',
      KEYGATE_SHADOW: 'perhaps',
      KEYGATE_CACHE_TTL_MS: '-1',
      KEYGATE_CHECK_TIMEOUT_MS: '0',
      KEYGATE_QUOTA_ON_STORE_ERROR: 'explode',
      KEYGATE_AUTH_REALM: 'a"b',
    };
    const err = configError(bad);
    expect(err.problems).toHaveLength(Object.keys(bad).length);
    for (const variable of Object.keys(bad)) {
      expect(err.problems.filter((p) => p.startsWith(variable)), variable).toHaveLength(1);
      expect(err.message).toContain(variable);
    }
    expect(err.message).not.toContain('hunter2secret');
  });

  it('a port clash is reported together with an unrelated bad variable', () => {
    // The clash is a problem of its own; another bad variable must not hide it.
    const err = configError({ KEYGATE_GRPC_PORT: '8080', KEYGATE_HTTP_PORT: '8080', KEYGATE_LOG_LEVEL: 'loud' });
    expect(err.problems.some((p) => p.startsWith('KEYGATE_LOG_LEVEL'))).toBe(true);
    expect(err.problems.some((p) => p.includes('KEYGATE_GRPC_PORT') && p.includes('KEYGATE_HTTP_PORT'))).toBe(true);
  });

  it('an invalid port does not cause a spurious clash with the other port default', () => {
    // KEYGATE_GRPC_PORT is bad (falls back to 9191); HTTP is explicitly 9191: only the bad value is a problem.
    const err = configError({ KEYGATE_GRPC_PORT: 'abc', KEYGATE_HTTP_PORT: '9191' });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0].startsWith('KEYGATE_GRPC_PORT')).toBe(true);
  });
});

describe('README', () => {
  it("names every setting of SETTINGS in its configuration table (a Markdown table row)", () => {
    const readme = resolve(__dirname, '../../../README.md');
    expect(existsSync(readme), 'README.md is missing at the repository root').toBe(true);
    const tableRows = readFileSync(readme, 'utf8')
      .split('\n')
      .filter((line) => line.trimStart().startsWith('|'));
    const missing = SETTINGS.map((s) => s.variable).filter((v) => !tableRows.some((row) => row.includes(`\`${v}\``) || row.includes(`| ${v} `)));
    expect(missing, 'settings missing from the README table').toEqual([]);
  });
});

describe('TLS files and workers', () => {
  it('refuses a TLS file that does not exist, naming the variable', () => {
    expect(refusedFor('KEYGATE_REDIS_TLS_CA', '/nonexistent/ca.pem')).toMatch(/no such file/);
  });
  it('refuses a certificate without a key, and a client CA without a certificate', () => {
    expect(() => loadConfig({ KEYGATE_GRPC_TLS_CERT: __filename })).toThrow(/set both or neither/);
    expect(() => loadConfig({ KEYGATE_GRPC_TLS_CLIENT_CA: __filename })).toThrow(/mTLS is TLS first/);
  });
  it('KEYGATE_WORKERS: a number, or auto for one per CPU', () => {
    const redis = { REDIS_URL: 'redis://127.0.0.1:6379' };
    expect(loadConfig({ ...redis, KEYGATE_WORKERS: 'auto' }).workers).toBeGreaterThanOrEqual(1);
    expect(loadConfig({ ...redis, KEYGATE_WORKERS: '2' }).workers).toBe(2);
    expect(refusedFor('KEYGATE_WORKERS', 'many')).toMatch(/whole number/);
  });
  it('refuses a Redis CA file with a plaintext REDIS_URL (it would not be used)', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', KEYGATE_REDIS_TLS_CA: __filename })).toThrow(/not a TLS form/);
    expect(loadConfig({ REDIS_URL: 'rediss://127.0.0.1:6379', KEYGATE_REDIS_TLS_CA: __filename }).redisTlsCa).toBe(__filename);
  });
  it('refuses several workers on the embedded store (each would count quotas on its own)', () => {
    expect(refusedFor('KEYGATE_WORKERS', '2')).toMatch(/need REDIS_URL/);
  });
});
