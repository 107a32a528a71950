// The revocation bound across processes: two keygate PROCESSES on one Redis, the key (and its
// plan) cached on both, then keygate-admin revokes the key / lowers the plan / deletes the plan:
// both must apply the change within 1 s. Measured from the moment the admin command starts,
// by polling each process with back-to-back Checks (no fixed sleeps); the delays are printed.
//
//  - pub/sub: processes with a 60 s cache TTL, so that only the invalidation feed
//    (kg:invalidate) can deliver the change in time;
//  - TTL backstop: processes whose subscription is refused (their Redis user may not use any
//    channel) with the default 1 s TTL: no invalidation ever arrives (the invalidation counter
//    stays 0), and the TTL alone bounds the delay by 1 s plus one store round trip.
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnKeygate, type KeygateProcess } from '../helpers/keygate-process';
import { startRedis, type RedisServer } from '../helpers/redis';
import { adminCli, authClient, check, metric, responseHeader, verdictOf, type AnyClient } from './support';

const BOUND_MS = 1000;
/**
 * TTL backstop: the cached entry may have been fetched just before the write landed; after it
 * expires, the Check that finds the change needs one store lookup, and the poller may be waiting
 * for the Check before it: up to two Check round trips on a busy test machine.
 */
const TTL_MARGIN_MS = 250;

let redis: RedisServer;
const admin = adminCli(() => redis.url);

interface Instance {
  name: string;
  proc: KeygateProcess;
  client: AnyClient;
}
let fed: Instance[] = [];
let deaf: Instance[] = [];
const measured: Record<string, number[]> = {};

async function spawn(name: string, env: Record<string, string>): Promise<Instance> {
  const proc = await spawnKeygate({ REDIS_URL: redis.url, KEYGATE_LOG_LEVEL: 'info', ...env });
  return { name, proc, client: authClient(proc.grpcPort) };
}

beforeAll(async () => {
  redis = await startRedis();
  // a user that may run everything but use no pub/sub channel: SUBSCRIBE is refused
  await redis.client().call('ACL', 'SETUSER', 'deaf', 'on', '>deaf-password', '~*', 'resetchannels', '+@all');
  const deafUrl = `redis://deaf:deaf-password@127.0.0.1:${redis.port}`;
  [fed, deaf] = await Promise.all([
    Promise.all(['A', 'B'].map((n) => spawn(n, { KEYGATE_CACHE_TTL_MS: '60000' }))),
    Promise.all(['C', 'D'].map((n) => spawn(n, { REDIS_URL: deafUrl, KEYGATE_CACHE_TTL_MS: '1000' }))),
  ]);
  await admin.ok('plan', 'set', 'pro', '--limit', '1000000/s');
}, 60_000);

afterAll(async () => {
  for (const i of [...fed, ...deaf]) i.client.close();
  await Promise.all([...fed, ...deaf].map((i) => i.proc.stop('SIGKILL')));
  await redis?.close();
  console.log(`revocation delays (ms from the admin command's start, and after it returned):\n${Object.entries(measured).map(([k, v]) => `  ${k}: ${v.join(', ')}`).join('\n')}`);
});

async function newKey(plan = 'pro'): Promise<{ id: string; key: string }> {
  return JSON.parse((await admin.ok('key', 'create', '--owner', 'acme', '--plan', plan, '--json')).stdout) as { id: string; key: string };
}

/**
 * Checks the key on every instance until a Check is answered from the cache (the hit counter
 * grows). The first Check fills the cache; an invalidation of the admin commands just run (plan
 * set, key create) may still arrive after it and empty the cache once, so a few more may be needed.
 */
async function warm(instances: Instance[], key: string): Promise<void> {
  for (const i of instances) {
    let answeredFromCache = false;
    for (let n = 0; n < 10 && !answeredFromCache; n++) {
      const hits = await metric(i.proc.httpPort, 'keygate_key_cache_hits_total');
      expect(verdictOf(await check(i.client, { headers: { 'x-api-key': key } }))).toBe('allow');
      answeredFromCache = (await metric(i.proc.httpPort, 'keygate_key_cache_hits_total')) > hits;
    }
    expect(answeredFromCache, `keygate ${i.name} never answered from its cache`).toBe(true);
  }
}

/**
 * Polls one instance with back-to-back Checks until `done(response)`; resolves with the time
 * from `since` to the first such answer. Fails after `limitMs`.
 */
async function timeUntil(i: Instance, key: string, since: number, limitMs: number, done: (res: Record<string, unknown>) => boolean): Promise<number> {
  let checks = 0;
  for (;;) {
    const res = await check(i.client, { headers: { 'x-api-key': key } });
    checks++;
    const now = performance.now();
    if (done(res)) return now - since;
    if (now - since > limitMs) throw new Error(`keygate ${i.name}: still not applied after ${Math.round(now - since)} ms (${checks} Checks; last: ${verdictOf(res)})`);
  }
}

/** Runs `change` while polling every instance; returns each instance's delay in ms. */
async function measure(
  label: string,
  instances: Instance[],
  key: string,
  change: () => Promise<unknown>,
  done: (res: Record<string, unknown>) => boolean,
  limitMs: number,
): Promise<number[] & { commandMs: number }> {
  const since = performance.now();
  let commandMs = 0;
  const run = change().then(() => (commandMs = performance.now() - since));
  const [, ...delays] = await Promise.all([run, ...instances.map((i) => timeUntil(i, key, since, limitMs, done))]);
  measured[label] = delays.map((d) => Math.round(d * 10) / 10);
  measured[`${label}, after the command returned`] = delays.map((d) => Math.round((d - commandMs) * 10) / 10);
  return Object.assign(delays, { commandMs });
}

const denied = (reason: string) => (res: Record<string, unknown>) => verdictOf(res) === reason;
const policyHas = (item: string) => (res: Record<string, unknown>) => (responseHeader(res, 'ratelimit-policy') ?? '').includes(item);

describe('two keygate processes, cache warm, invalidation through pub/sub (cache TTL 60 s)', () => {
  it('key revoke: both refuse the key within 1 s', async () => {
    const { id, key } = await newKey();
    await warm(fed, key);
    const delays = await measure('revoke (pub/sub)', fed, key, () => admin.ok('key', 'revoke', id), denied('invalid_api_key'), 3000);
    for (const d of delays) expect(d).toBeLessThan(BOUND_MS);
    // and it stays refused
    for (const i of fed) for (let n = 0; n < 5; n++) expect(verdictOf(await check(i.client, { headers: { 'x-api-key': key } }))).toBe('invalid_api_key');
  });

  it('key disable: both refuse it within 1 s (disabled_api_key)', async () => {
    const { id, key } = await newKey();
    await warm(fed, key);
    const delays = await measure('disable (pub/sub)', fed, key, () => admin.ok('key', 'disable', id), denied('disabled_api_key'), 3000);
    for (const d of delays) expect(d).toBeLessThan(BOUND_MS);
  });

  it('plan set lowering a limit: the new limit applies on both within 1 s', async () => {
    await admin.ok('plan', 'set', 'gold', '--limit', '1000000/s');
    const { key } = await newKey('gold');
    await warm(fed, key);
    for (const i of fed) expect(responseHeader(await check(i.client, { headers: { 'x-api-key': key } }), 'ratelimit-policy')).toContain('"1000000/s"');
    const delays = await measure('plan set (pub/sub)', fed, key, () => admin.ok('plan', 'set', 'gold', '--limit', '3/m'), policyHas('"3/m"'), 3000);
    for (const d of delays) expect(d).toBeLessThan(BOUND_MS);
    // the lower limit is enforced across both processes: 3 per minute in all
    const verdicts: string[] = [];
    for (let n = 0; n < 3; n++) for (const i of fed) verdicts.push(verdictOf(await check(i.client, { headers: { 'x-api-key': key } })));
    expect(verdicts.every((v) => v === 'allow' || v === 'rate_limited')).toBe(true);
    expect(verdicts.filter((v) => v === 'rate_limited').length).toBeGreaterThanOrEqual(3);
  });

  it('plan delete --force: both deny plan_not_found within 1 s', async () => {
    await admin.ok('plan', 'set', 'trial', '--limit', '1000000/s');
    const { key } = await newKey('trial');
    await warm(fed, key);
    const delays = await measure('plan delete (pub/sub)', fed, key, () => admin.ok('plan', 'delete', 'trial', '--force'), denied('plan_not_found'), 3000);
    for (const d of delays) expect(d).toBeLessThan(BOUND_MS);
  });
});

describe('pub/sub broken (SUBSCRIBE refused): the 1 s cache TTL bounds the delay', () => {
  it('the deaf processes receive no invalidations at all', async () => {
    const { id, key } = await newKey();
    await warm(deaf, key);
    await admin.ok('key', 'update', id, '--name', 'renamed');
    await admin.ok('plan', 'set', 'pro', '--limit', '1000000/s', '--description', 'touched');
    for (const i of deaf) expect(await metric(i.proc.httpPort, 'keygate_key_cache_invalidations_total')).toBe(0);
    for (const i of fed) expect(await metric(i.proc.httpPort, 'keygate_key_cache_invalidations_total')).toBeGreaterThan(0);
  });

  it('key revoke: both refuse the key within the TTL (1 s) after the command, plus a Check round trip', async () => {
    const { id, key } = await newKey();
    await warm(deaf, key);
    const delays = await measure('revoke (TTL only)', deaf, key, () => admin.ok('key', 'revoke', id), denied('invalid_api_key'), 3000);
    for (const d of delays) expect(d).toBeLessThan(delays.commandMs + BOUND_MS + TTL_MARGIN_MS);
  });

  it('plan set lowering a limit: applies within the TTL plus a Check round trip', async () => {
    await admin.ok('plan', 'set', 'silver', '--limit', '1000000/s');
    const { key } = await newKey('silver');
    await warm(deaf, key);
    const delays = await measure('plan set (TTL only)', deaf, key, () => admin.ok('plan', 'set', 'silver', '--limit', '7/m'), policyHas('"7/m"'), 3000);
    for (const d of delays) expect(d).toBeLessThan(delays.commandMs + BOUND_MS + TTL_MARGIN_MS);
  });
});
