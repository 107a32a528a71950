// REDIS_URL forms (standalone, Sentinel, Cluster, each with TLS), their precise refusals (never
// echoing the URL: it may hold a password), and the ioredis client each form builds — no Redis
// needed: each client is disconnected as soon as it is made, then its options are inspected.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import Redis, { Cluster } from 'ioredis';
import { ConfigError, loadConfig } from '../../src/config';
import { createRedisClient, describeRedisUrl, isCluster, parseRedisUrl, reconnectDelayMs, redisUrlProblem } from '../../src/redis';
import { makeTestCerts } from '../helpers/certs';

describe('parseRedisUrl: the accepted forms', () => {
  it.each([
    ['redis://localhost', { topology: 'standalone', tls: false, nodes: [{ host: 'localhost', port: 6379 }], db: 0 }],
    ['redis://127.0.0.1:6380/2', { topology: 'standalone', tls: false, nodes: [{ host: '127.0.0.1', port: 6380 }], db: 2 }],
    ['rediss://:p%40ss%3Aw0rd@redis.example:6380/', { topology: 'standalone', tls: true, nodes: [{ host: 'redis.example', port: 6380 }], db: 0, password: 'p@ss:w0rd' }],
    ['redis://kg:secret@[::1]:7000', { topology: 'standalone', tls: false, nodes: [{ host: '::1', port: 7000 }], db: 0, username: 'kg', password: 'secret' }],
    [
      'redis+sentinel://kg:secret@s1:26379,s2,[fd00::3]:26380/kgmaster/3',
      {
        topology: 'sentinel',
        tls: false,
        nodes: [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }, { host: 'fd00::3', port: 26380 }],
        masterName: 'kgmaster',
        db: 3,
        username: 'kg',
        password: 'secret',
      },
    ],
    ['rediss+sentinel://s1/my-primary', { topology: 'sentinel', tls: true, nodes: [{ host: 's1', port: 26379 }], masterName: 'my-primary', db: 0 }],
    [
      'redis+cluster://:pw@10.0.0.1:7000,10.0.0.2:7001,node-3',
      { topology: 'cluster', tls: false, nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }, { host: 'node-3', port: 6379 }], db: 0, password: 'pw' },
    ],
    ['REDISS+CLUSTER://c1:7000/', { topology: 'cluster', tls: true, nodes: [{ host: 'c1', port: 7000 }], db: 0 }],
    ['rediss+cluster://c1:7000/0', { topology: 'cluster', tls: true, nodes: [{ host: 'c1', port: 7000 }], db: 0 }],
  ])('%s', (url, expected) => {
    expect(redisUrlProblem(url)).toBeNull();
    const parsed = parseRedisUrl(url);
    expect(JSON.parse(JSON.stringify(parsed))).toEqual(expected);
  });
});

describe('redisUrlProblem: precise refusals that never echo the URL', () => {
  const SECRET = 'hunter2secret';
  it.each([
    ['http://:hunter2secret@h', /unknown scheme/],
    ['hunter2secret@h:6379', /must look like redis:\/\/host:port/],
    ['redis://:hunter2secret@', /has no host/],
    ['redis://:hunter2secret@h1,h2', /take one host; list several hosts with redis\+sentinel/],
    ['redis://:hunter2secret@h:0', /port that is not a number from 1 to 65535/],
    ['redis://:hunter2secret@h:65536', /port that is not a number/],
    ['redis://:hunter2secret@h:63a', /port that is not a number/],
    ['redis://:hunter2secret@::1:6379', /IPv6 address without brackets/],
    ['redis://:hunter2secret@[::1', /unclosed \[/],
    ['redis://:hunter2secret@[zz]:1', /not an IPv6 address/],
    ['redis://:hunter2secret@bad_host!:1', /not a host name or IP address/],
    ['redis://:hunter2secret@h/x', /database must be a number/],
    ['redis://:hunter2secret@h/1/2', /path must be a database number/],
    ['redis://:hunter2secret@h?tls=false', /query parameters .* are not supported/],
    ['redis://:hunter2secret@h#frag', /query parameters and fragments/],
    ['redis://hunter2secret@h', /user name needs a password/],
    ['redis://:hunter2%ZZsecret@h', /not valid percent-encoding/],
    ['redis://:hunter2 secret@h', /spaces or control characters/],
    ['redis+sentinel://:hunter2secret@s1:26379,s2:26379', /must name the monitored primary/],
    ['redis+sentinel://:hunter2secret@s1:26379,s2:26379/', /must name the monitored primary/],
    ['redis+sentinel://:hunter2secret@s1/m/1/2', /\/<master-name> or \/<master-name>\/<db>/],
    ['redis+sentinel://:hunter2secret@s1/m/x', /database must be a number/],
    ['redis+sentinel://:hunter2secret@s1,,s3/m', /host 2 of the list is empty/],
    ['redis+cluster://:hunter2secret@c1:7000,c2:7000/1', /only database 0/],
    ['redis+cluster://:hunter2secret@c1:7000,c2:99999', /host 2 of the list has a port/],
  ])('%s', (url, message) => {
    const problem = redisUrlProblem(url);
    expect(problem).toMatch(message);
    expect(problem).not.toContain(SECRET);
    expect(problem).not.toContain('hunter2');
    // and through loadConfig, as keygate and keygate-admin report it
    let err: unknown;
    try {
      loadConfig({ REDIS_URL: url });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([`REDIS_URL: ${problem} (value not shown: it may hold a password)`]);
    expect(String((err as Error).stack)).not.toContain('hunter2');
  });
});

describe('describeRedisUrl: where, without credentials', () => {
  it.each([
    ['redis://:pw@127.0.0.1:6379/1', '127.0.0.1:6379'],
    ['rediss://u:pw@[::1]:6380', '[::1]:6380 (TLS)'],
    ['redis+sentinel://:pw@a:26379,b:26380/kgmaster', 'sentinel master "kgmaster" via a:26379,b:26380'],
    ['rediss+cluster://:pw@c1:7000,c2:7001', 'cluster c1:7000,c2:7001 (TLS)'],
    ['nonsense', 'REDIS_URL'],
  ])('%s → %s', (url, text) => {
    expect(describeRedisUrl(url)).toBe(text);
  });
});

describe('createRedisClient: the client each form builds', () => {
  const make = (...args: Parameters<typeof createRedisClient>) => {
    const c = createRedisClient(...args);
    c.disconnect();
    return c;
  };

  it('standalone: fail fast (no offline queue, no per-request retries), timeouts, keep-alive, READONLY reconnect', () => {
    const c = make('redis://:pw@127.0.0.1:1/3', { commandTimeoutMs: 250 }) as Redis;
    expect(isCluster(c)).toBe(false);
    expect(c.options).toMatchObject({ host: '127.0.0.1', port: 1, db: 3, password: 'pw', enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 250, keepAlive: 10_000, connectTimeout: 2000 });
    expect(c.options.tls).toBeUndefined();
    const reconnect = c.options.reconnectOnError as (e: Error) => boolean;
    expect(reconnect(new Error("READONLY You can't write against a read only replica."))).toBe(true);
    expect(reconnect(new Error('ERR other'))).toBe(false);
    // keygate-admin: may wait for a connection
    const cli = make('redis://127.0.0.1:1', { failFast: false }) as Redis;
    expect(cli.options).toMatchObject({ enableOfflineQueue: true, maxRetriesPerRequest: 3 });
  });

  it('reconnect backoff is capped at 500 ms', () => {
    expect([1, 2, 3, 4, 5, 50].map(reconnectDelayMs)).toEqual([100, 200, 400, 500, 500, 500]);
  });

  it('sentinel: the sentinels, the master name, role master, fail fast', () => {
    const c = make('redis+sentinel://:pw@127.0.0.1:1,127.0.0.1:2/kgmaster/4') as Redis;
    expect(isCluster(c)).toBe(false);
    expect(c.options).toMatchObject({
      sentinels: [{ host: '127.0.0.1', port: 1 }, { host: '127.0.0.1', port: 2 }],
      name: 'kgmaster',
      role: 'master',
      db: 4,
      password: 'pw',
      failoverDetector: false, // replaced by watchSentinelFailovers (see sentinel.test.ts, manual failover)
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
    });
    expect(c.options.sentinelPassword).toBeFalsy(); // sentinels are asked without credentials
    expect(c.options.enableTLSForSentinelMode).toBeFalsy();
  });

  it('cluster: a Cluster client reading and writing on primaries, fail fast, node options passed down', () => {
    const c = make('redis+cluster://:pw@127.0.0.1:1,127.0.0.1:2', { commandTimeoutMs: 300 });
    expect(isCluster(c)).toBe(true);
    const options = (c as Cluster).options;
    expect(options).toMatchObject({ scaleReads: 'master', enableOfflineQueue: false, retryDelayOnFailover: 0, retryDelayOnClusterDown: 0, slotsRefreshInterval: 5000 });
    expect(options.redisOptions).toMatchObject({ password: 'pw', commandTimeout: 300, maxRetriesPerRequest: 0, keepAlive: 10_000 });
    expect(typeof options.clusterRetryStrategy).toBe('function');
    const cli = make('redis+cluster://127.0.0.1:1', { failFast: false }) as Cluster;
    expect(cli.options).toMatchObject({ enableOfflineQueue: true, retryDelayOnFailover: 100 });
  });

  it('TLS forms verify the server certificate, with the CA from KEYGATE_REDIS_TLS_CA when given', () => {
    const certs = makeTestCerts();
    try {
      const pem = readFileSync(certs.caFile, 'utf8');
      const plainTls = make('rediss://127.0.0.1:1') as Redis;
      expect(plainTls.options.tls).toEqual({ rejectUnauthorized: true, minVersion: 'TLSv1.2' });
      const withCa = make('rediss://127.0.0.1:1', { tlsCaFile: certs.caFile }) as Redis;
      expect(withCa.options.tls).toEqual({ rejectUnauthorized: true, minVersion: 'TLSv1.2', ca: pem });
      const sentinel = make('rediss+sentinel://127.0.0.1:1/m', { tlsCaFile: certs.caFile }) as Redis;
      expect(sentinel.options).toMatchObject({ enableTLSForSentinelMode: true, tls: { ca: pem, rejectUnauthorized: true }, sentinelTLS: { ca: pem, rejectUnauthorized: true } });
      const cluster = make('rediss+cluster://127.0.0.1:1', { tlsCaFile: certs.caFile }) as Cluster;
      expect(cluster.options.redisOptions?.tls).toEqual({ rejectUnauthorized: true, minVersion: 'TLSv1.2', ca: pem });
      // the CA is ignored by the plaintext forms (keygate warns at start-up)
      expect((make('redis://127.0.0.1:1', { tlsCaFile: certs.caFile }) as Redis).options.tls).toBeUndefined();
    } finally {
      certs.remove();
    }
  });
});
