// A real Prometheus scrapes keygate: the `prometheus` binary (Debian package `prometheus`) runs
// with a throw-away config and data directory on loopback, scraping keygate's /metrics every
// second; the test sends Checks and reads keygate_checks_total back through Prometheus's HTTP
// query API, polling with a bounded wait. Prometheus is killed after.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDigester } from '../../../src/keys/digest';
import { generateKey } from '../../../src/keys/format';
import { checkRequest, startTestKeygate, type TestKeygate } from '../../helpers/keygate';
import { freePort } from '../../helpers/redis';
import { httpGet, pollUntil } from './support';

let kg: TestKeygate;
let prometheus: ChildProcess | undefined;
let promPort: number;
let dir: string;
let promOutput = '';

interface QueryResult {
  status: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

async function query(promql: string): Promise<QueryResult['data']['result']> {
  const res = await httpGet(promPort, `/api/v1/query?query=${encodeURIComponent(promql)}`);
  if (res.status !== 200) throw new Error(`Prometheus answered ${res.status}: ${res.body}`);
  const body = JSON.parse(res.body) as QueryResult;
  expect(body.status).toBe('success');
  return body.data.result;
}

beforeAll(async () => {
  // The embedded store: this test is about the scrape path, not Redis.
  kg = await startTestKeygate({});
  const digest = makeDigester();
  await kg.store.putPlan({ name: 'pro', limits: [{ count: 1000, window: 's' }] });
  const key = generateKey();
  await kg.store.createKey(
    { id: 'key_prom', owner: 'acme', plan: 'pro', scopes: [], status: 'active', createdAt: Date.now(), cidrs: [], metadata: {} },
    { digest: digest(key) },
  );
  for (let i = 0; i < 5; i++) await kg.check(checkRequest({ headers: { 'x-api-key': key } }));
  for (let i = 0; i < 2; i++) await kg.check(checkRequest({}));

  dir = mkdtempSync(join(tmpdir(), 'keygate-prometheus-'));
  promPort = await freePort();
  const config = [
    'global:',
    '  scrape_interval: 1s',
    '  scrape_timeout: 1s',
    '  evaluation_interval: 1s',
    'scrape_configs:',
    '  - job_name: keygate',
    '    static_configs:',
    `      - targets: ['127.0.0.1:${kg.httpPort}']`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'prometheus.yml'), config);
  const child = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  prometheus = child;
  const keep = (d: Buffer) => (promOutput = (promOutput + d.toString()).slice(-4000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('error', (err) => (promOutput += `\nspawn failed (Debian: apt-get install prometheus): ${err.message}`));
  await pollUntil(
    'Prometheus to be ready',
    async () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`prometheus exited: ${promOutput}`);
      return (await httpGet(promPort, '/-/ready')).status === 200 ? true : undefined;
    },
    20_000,
    100,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\nprometheus output:\n${promOutput}`);
  });
}, 40_000);

afterAll(async () => {
  const child = prometheus;
  if (child && child.exitCode === null && child.signalCode === null) {
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
  await kg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a real Prometheus scraping keygate', () => {
  it('reads keygate_checks_total back from the query API', async () => {
    const wait = <T>(what: string, probe: () => Promise<T | undefined>) =>
      pollUntil(what, probe, 20_000, 200).catch((err: Error) => {
        throw new Error(`${err.message}\nprometheus output:\n${promOutput}`);
      });

    await wait('5 allowed Checks in Prometheus', async () => {
      const r = await query('keygate_checks_total{job="keygate",decision="allow",reason="ok"}');
      return r.length === 1 && r[0].value[1] === '5' ? r : undefined;
    });
    const denied = await query('keygate_checks_total{decision="deny",reason="missing_api_key"}');
    expect(denied.map((s) => s.value[1])).toEqual(['2']);
    expect(denied[0].metric).toMatchObject({ __name__: 'keygate_checks_total', job: 'keygate', instance: `127.0.0.1:${kg.httpPort}` });

    // more traffic shows up at a later scrape
    for (let i = 0; i < 3; i++) await kg.check(checkRequest({}));
    await wait('5 missing_api_key denials', async () => {
      const r = await query('sum by (decision) (keygate_checks_total)');
      const byDecision = Object.fromEntries(r.map((s) => [s.metric.decision, s.value[1]]));
      return byDecision.deny === '5' && byDecision.allow === '5' && byDecision.error === '0' ? byDecision : undefined;
    });

    // the target is up and the other metric families arrived too
    expect((await query('up{job="keygate"}')).map((s) => s.value[1])).toEqual(['1']);
    expect((await query('keygate_usage_total{owner="acme",plan="pro",decision="allow"}')).map((s) => s.value[1])).toEqual(['5']);
    expect((await query('keygate_check_duration_seconds_count{decision="allow"}')).map((s) => s.value[1])).toEqual(['5']);
    expect(await query('keygate_build_info')).toHaveLength(1);
    // the alerting suggestions of the README are valid PromQL against these series
    for (const q of [
      'sum(rate(keygate_checks_total{decision="error"}[5m])) / sum(rate(keygate_checks_total[5m])) > 0.01',
      'histogram_quantile(0.99, sum by (le) (rate(keygate_check_duration_seconds_bucket[5m]))) > 0.05',
      'sum by (operation) (rate(keygate_redis_errors_total[5m])) > 0',
      'histogram_quantile(0.99, sum by (le, operation) (rate(keygate_redis_duration_seconds_bucket{operation!="ping"}[5m]))) > 0.025',
      'max_over_time(keygate_ready[2m]) == 0',
      'sum(rate(keygate_usage_total{owner="_other"}[15m])) > 0',
    ]) {
      await query(q);
    }
  }, 60_000);
});
