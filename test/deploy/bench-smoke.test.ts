// The benchmark harness (npm run bench) must not rot: its smoke mode (seconds) runs here, in CI,
// end to end: its own Redis, keygate and the bare grpc-js baseline, h2load against both, every
// answer verified. Only that it works is asserted, never a speed (BENCHMARKS.md records those).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(__dirname, '..', '..');
const out = mkdtempSync(join(tmpdir(), 'keygate-bench-smoke-'));

afterAll(() => rmSync(out, { recursive: true, force: true }));

interface SmokeResults {
  scenarios: { name: string; failures: unknown[]; throughput: { baselineReqPerSec: number; keygateReqPerSec: number } }[];
  failures: unknown[];
}

describe('npm run bench -- --smoke', () => {
  it('runs both servers under h2load and verifies every answer', () => {
    const h2load = spawnSync('sh', ['-c', 'command -v h2load'], { encoding: 'utf8' });
    expect(h2load.status, 'h2load not found on PATH: the harness drives load with it (Debian: apt-get install -y nghttp2-client)').toBe(0);
    const run = spawnSync(process.execPath, ['bench/run.mjs', '--smoke', '--quiet-budget', '0', '--out', out], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 150_000,
    });
    expect(run.status, `bench --smoke exited ${run.status}\n${run.stdout.slice(-3000)}\n${run.stderr.slice(-3000)}`).toBe(0);
    expect(run.stdout).toContain('every answer verified');
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as SmokeResults;
    expect(results.failures).toEqual([]);
    expect(results.scenarios.map((s) => s.name)).toEqual(['valid', 'junk-key']);
    for (const s of results.scenarios) {
      expect(s.failures, s.name).toEqual([]);
      expect(s.throughput.baselineReqPerSec, s.name).toBeGreaterThan(0);
      expect(s.throughput.keygateReqPerSec, s.name).toBeGreaterThan(0);
    }
  }, 180_000);
});
