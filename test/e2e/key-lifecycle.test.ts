// A key's life through the admin CLI and the gRPC Check, against real Redis: create → allowed,
// rotate with a grace period → both secrets work until it ends, revoke → 401 invalid_api_key on
// the running server within the revocation bound. A canary secret is watched throughout: it may
// appear only in the output of the command that created it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/admin/cli';
import { ManualClock } from '../../src/clock';
import { makeDigester } from '../../src/keys/digest';
import { startRedis, type RedisServer } from '../helpers/redis';
import { checkRequest, startTestKeygate, type TestKeygate } from '../helpers/keygate';

let redis: RedisServer;
let kg: TestKeygate;
const clock = new ManualClock(Date.now());
const cliOutputs: { args: string[]; text: string }[] = [];

async function admin(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env: { REDIS_URL: redis.url },
    clock,
  });
  cliOutputs.push({ args, text: stdout + stderr });
  return { code, stdout, stderr };
}

type Msg = Record<string, any>;
const verdict = async (key: string): Promise<string> => {
  const res = (await kg.check(checkRequest({ headers: { 'x-api-key': key } }))) as Msg;
  return res.http_response === 'ok_response' ? 'allow' : JSON.parse(res.denied_response.body).error.code;
};

beforeAll(async () => {
  redis = await startRedis();
  kg = await startTestKeygate({ REDIS_URL: redis.url }, clock);
  expect((await admin('plan', 'set', 'pro', '--limit', '1000/s')).code).toBe(0);
});
afterAll(async () => {
  await kg?.close();
  await redis?.close();
});

describe('a key created with keygate-admin', () => {
  let canary = '';
  let canaryId = '';

  it('is allowed through a gRPC Check', async () => {
    const created = await admin('key', 'create', '--owner', 'acme', '--plan', 'pro', '--json');
    expect(created.code).toBe(0);
    const json = JSON.parse(created.stdout) as { id: string; key: string };
    canary = json.key;
    canaryId = json.id;
    expect(canary).toMatch(/^kg_[0-9A-Za-z]{38}$/);
    expect(await verdict(canary)).toBe('allow');
  });

  it('after key rotate --grace 1h both secrets work, after the grace only the new one', async () => {
    const rotated = await admin('key', 'rotate', canaryId, '--grace', '1h', '--json');
    expect(rotated.code).toBe(0);
    const fresh = (JSON.parse(rotated.stdout) as { key: string }).key;
    expect(fresh).not.toBe(canary);
    expect(await verdict(canary)).toBe('allow');
    expect(await verdict(fresh)).toBe('allow');
    clock.advance(3600_000 + 1);
    expect(await verdict(canary)).toBe('invalid_api_key');
    expect(await verdict(fresh)).toBe('allow');

    // revoke: the running keygate refuses the key within the revocation bound (pub/sub, TTL 1 s)
    expect((await admin('key', 'revoke', canaryId)).code).toBe(0);
    await pollUntil(() => verdict(fresh), 'invalid_api_key');
  });

  it('expired, disabled and CIDR-restricted keys are denied with their reasons', async () => {
    const make = async (...extra: string[]) => JSON.parse((await admin('key', 'create', '--owner', 'globex', '--plan', 'pro', '--json', ...extra)).stdout) as { id: string; key: string };
    const soon = await make('--expires', '1h');
    clock.advance(3600_000 + 1);
    expect(await verdict(soon.key)).toBe('expired_api_key');
    const off = await make();
    expect((await admin('key', 'disable', off.id)).code).toBe(0);
    await pollUntil(() => verdict(off.key), 'disabled_api_key');
    expect((await admin('key', 'enable', off.id)).code).toBe(0);
    await pollUntil(() => verdict(off.key), 'allow');
    const fenced = await make('--cidr', '10.0.0.0/8');
    expect(await verdict(fenced.key)).toBe('ip_not_allowed');
  });

  it('the canary secret appears in no log line and no CLI output but its own key create', () => {
    const digest = makeDigester()(canary);
    for (const line of kg.logs) {
      expect(line).not.toContain(canary);
      expect(line).not.toContain(digest);
    }
    const where = cliOutputs.filter((o) => o.text.includes(canary)).map((o) => o.args.slice(0, 2).join(' '));
    expect(where).toEqual(['key create']);
    for (const o of cliOutputs) expect(o.text).not.toContain(digest);
  });
});

/** Polls (no fixed sleep) until the verdict is reached or 1 s passes: the revocation bound. */
async function pollUntil(get: () => Promise<string>, want: string): Promise<void> {
  const started = Date.now();
  let last = '';
  while (Date.now() - started < 1000) {
    last = await get();
    if (last === want) return;
  }
  expect(last).toBe(want);
}
