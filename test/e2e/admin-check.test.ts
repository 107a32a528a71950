// keygate-admin check end to end: a whole keygate in-process on real Redis, plans and keys made with
// keygate-admin itself, then `check --target 127.0.0.1:<port>` over gRPC: verdicts, exit codes
// (0 allowed, 1 denied, 3 no verdict), the headers Envoy would set and strip, and that the key the
// operator typed never appears in what check prints.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/admin/cli';
import { ManualClock } from '../../src/clock';
import { generateKey } from '../../src/keys/format';
import { startTestKeygate, type TestKeygate } from '../helpers/keygate';
import { freePort, startRedis, type RedisServer } from '../helpers/redis';

const clock = new ManualClock(Date.UTC(2026, 5, 1, 12));
let redis: RedisServer;
let kg: TestKeygate;
let target: string;
/** every secret made here; none may appear in anything `check` prints */
const secrets: string[] = [];
const checkTranscript: string[] = [];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function admin(args: string[], env: Record<string, string> = { REDIS_URL: redis.url }): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env,
    clock,
  });
  if (args[0] === 'check') checkTranscript.push(`$ keygate-admin check ...\n${stdout}${stderr}`);
  return { code, stdout, stderr };
}

/** `check --target <this keygate> ...args` */
const check = (...args: string[]) => admin(['check', '--target', target, ...args], {});

async function ok(...args: string[]): Promise<string> {
  const run = await admin(args);
  expect(run, `keygate-admin ${args.join(' ')}`).toMatchObject({ code: 0 });
  return run.stdout;
}

async function newKey(...extra: string[]): Promise<{ id: string; key: string }> {
  const created = JSON.parse(await ok('key', 'create', '--owner', 'acme', '--plan', 'pro', '--scope', 'orders:read', '--json', ...extra)) as {
    id: string;
    key: string;
  };
  secrets.push(created.key);
  return created;
}

beforeAll(async () => {
  redis = await startRedis();
  kg = await startTestKeygate(
    { REDIS_URL: redis.url, KEYGATE_QUERY_PARAM: 'api_key', KEYGATE_CACHE_TTL_MS: '0', KEYGATE_NEGATIVE_CACHE_TTL_MS: '0', KEYGATE_CHECK_TIMEOUT_MS: '1000' },
    clock,
  );
  target = `127.0.0.1:${kg.grpcPort}`;
  await ok('plan', 'set', 'pro', '--limit', '100/m', '--limit', '10000/d');
});
afterAll(async () => {
  const everything = checkTranscript.join('\n');
  for (const secret of secrets) expect(everything).not.toContain(secret);
  expect(everything).not.toMatch(/[0-9a-f]{64}/i);
  await kg?.close();
  await redis?.close();
});

describe('check: allowed', () => {
  it('prints ALLOW, the key id, the upstream headers, what is removed and the rate-limit headers; exit 0', async () => {
    const { id, key } = await newKey();
    const run = await check('--key', key, '--path', '/orders');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
    const out = run.stdout;
    expect(out).toMatch(/^ALLOW {2}the request goes upstream {2}\(gRPC status 0 OK\)\n/);
    expect(out).toContain(`key:      ${id} (owner acme, plan pro)\n`);
    expect(out).toMatch(new RegExp(`\\nrequest: {2}GET /orders from 127\\.0\\.0\\.1 \\(x-request-id keygate-admin-check-[0-9a-f]{12}\\)\\nkeygate: {2}${target}, answered in \\d+ ms\\n`));
    expect(out).toContain(
      [
        "upstream request headers (set, replacing the client's):",
        `  x-keygate-key-id: ${id}`,
        '  x-keygate-owner: acme',
        '  x-keygate-plan: pro',
        'removed before the request goes upstream:',
        '  header x-api-key',
        'response headers to the client:',
        '  ratelimit-policy: "100/m";q=100;w=60, "10000/d";q=10000;w=86400',
      ].join('\n'),
    );
    expect(out).toContain('  x-ratelimit-limit: 100\n');
    expect(out).toContain(['dynamic metadata (for the access log):', `  key_id: ${id}`, '  owner: acme', '  plan: pro'].join('\n'));
    expect(out).not.toContain(key);
  });

  it('--json: the whole verdict for scripts', async () => {
    const { id, key } = await newKey();
    const run = await check('--key', key, '--json');
    expect(run.code).toBe(0);
    const view = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(view).toMatchObject({
      target,
      verdict: 'allow',
      grpcStatus: { code: 0, name: 'OK' },
      keyId: id,
      owner: 'acme',
      plan: 'pro',
      upstreamHeaders: { 'x-keygate-key-id': id, 'x-keygate-owner': 'acme', 'x-keygate-plan': 'pro' },
      removeHeaders: ['x-api-key'],
      removeQueryParams: [],
      dynamicMetadata: { key_id: id, owner: 'acme', plan: 'pro' },
    });
    expect((view.responseHeaders as Record<string, string>)['x-ratelimit-remaining']).toBe('99');
    expect(view.httpStatus).toBeUndefined();
  });

  it('takes the key from --header authorization=Bearer ... or from the query string, never printing it', async () => {
    const { id, key } = await newKey();
    const bearer = await check('--header', `authorization=Bearer ${key}`);
    expect(bearer.code).toBe(0);
    expect(bearer.stdout).toContain(`x-keygate-key-id: ${id}`);
    expect(bearer.stdout).toContain('  header authorization\n');
    expect(bearer.stdout).not.toContain(key);

    const query = await check('--path', `/orders?page=2&api_key=${key}`, '--method', 'post');
    expect(query.code).toBe(0);
    expect(query.stdout).toContain('request:  POST /orders?… from 127.0.0.1 (x-request-id');
    expect(query.stdout).toContain('  query parameter api_key\n');
    expect(query.stdout).not.toContain(key);
  });

  it('sends the route settings and the source address; the default target is KEYGATE_GRPC_PORT', async () => {
    const { key } = await newKey('--cidr', '10.0.0.0/8');
    const run = await admin(['check', '--key', key, '--scope', 'orders:read', '--cost', '2', '--source', '10.1.2.3'], { KEYGATE_GRPC_PORT: String(kg.grpcPort) });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('request:  GET / from 10.1.2.3 (scope orders:read, cost 2) (x-request-id');
    expect(run.stdout).toContain('x-ratelimit-remaining: 98'); // the cost was charged
  });

  it('shadow mode: allowed, with the limit that would have denied', async () => {
    await ok('plan', 'set', 'trial', '--limit', '1/m', '--shadow');
    const { key } = await newKey('--plan', 'trial');
    expect((await check('--key', key)).code).toBe(0);
    const over = await check('--key', key);
    expect(over.code).toBe(0);
    expect(over.stdout).toContain('shadow:   a limit would have denied it (rate_limited); shadow mode let it through\n');
    expect(over.stdout).toContain('  x-keygate-shadow-denial: rate_limited\n');
    expect(JSON.parse((await check('--key', key, '--json')).stdout)).toMatchObject({ verdict: 'allow', shadowDenial: 'rate_limited' });
  });

  it('counts in usage like any request (it is a real Check)', async () => {
    const { id, key } = await newKey();
    expect((await check('--key', key)).code).toBe(0);
    expect((await check('--key', key, '--scope', 'admin')).code).toBe(1);
    const usage = JSON.parse(await ok('usage', id, '--days', '1', '--json')) as { days: unknown[] };
    expect(usage.days).toEqual([{ day: '2026-06-01', allowed: 1, denied: { insufficient_scope: 1 }, wouldDeny: {} }]);
  });
});

describe('check: denied (exit 1, the verdict on stdout, nothing on stderr)', () => {
  it('an unknown key: DENY 401 invalid_api_key, with the JSON body and WWW-Authenticate', async () => {
    const unknown = generateKey();
    secrets.push(unknown);
    const run = await check('--key', unknown);
    expect(run).toMatchObject({ code: 1, stderr: '' });
    const out = run.stdout;
    expect(out).toMatch(/^DENY {2}401 invalid_api_key: The API key is not valid\. {2}\(gRPC status 16 UNAUTHENTICATED\)\n/);
    expect(out).toContain('key:      not identified');
    expect(out).toContain('  content-type: application/json\n');
    expect(out).toMatch(/ {2}www-authenticate: Bearer realm="keygate", error="invalid_token"\n/);
    expect(out).toContain('body:\n  {"error":{"code":"invalid_api_key","message":"The API key is not valid."}}\n');
    expect(out).toContain('  reason: invalid_api_key\n');
    expect(out).not.toContain(unknown);

    const json = JSON.parse((await check('--key', unknown, '--json')).stdout) as Record<string, unknown>;
    expect(json).toMatchObject({
      verdict: 'deny',
      httpStatus: 401,
      reason: 'invalid_api_key',
      grpcStatus: { code: 16, name: 'UNAUTHENTICATED' },
      body: { error: { code: 'invalid_api_key', message: 'The API key is not valid.' } },
    });
    expect(json.keyId).toBeUndefined();
  });

  it('a malformed key, and no key at all', async () => {
    const typo = 'kg_this-is-not-a-valid-key';
    secrets.push(typo);
    const malformed = await check('--key', typo);
    expect(malformed.code).toBe(1);
    expect(malformed.stdout).toMatch(/^DENY {2}401 invalid_api_key/);
    const none = await check();
    expect(none.code).toBe(1);
    expect(none.stdout).toMatch(/^DENY {2}401 missing_api_key: An API key is required\./);
  });

  it('names the key when keygate identified it: revoked, wrong scope, wrong address', async () => {
    const { id, key } = await newKey('--cidr', '192.0.2.0/24');
    const scope = await check('--key', key, '--scope', 'orders:write', '--source', '192.0.2.1');
    expect(scope.code).toBe(1);
    expect(scope.stdout).toMatch(/^DENY {2}403 insufficient_scope: /);
    expect(scope.stdout).toContain(`key:      ${id} (owner acme, plan pro)`);
    const address = await check('--key', key, '--source', '203.0.113.9');
    expect(address.stdout).toMatch(/^DENY {2}403 ip_not_allowed: /);
    await ok('key', 'revoke', id);
    const revoked = await check('--key', key, '--source', '192.0.2.1');
    expect(revoked.stdout).toMatch(/^DENY {2}401 invalid_api_key: /);
    expect(revoked.stdout).toContain(`key:      ${id} (owner acme, plan pro)`);
  });

  it('rate limited: 429 with Retry-After and the rate-limit headers; credits used up: 429 quota_exceeded', async () => {
    const limited = await newKey('--limit', '2/m');
    expect((await check('--key', limited.key)).code).toBe(0);
    expect((await check('--key', limited.key)).code).toBe(0);
    const third = await check('--key', limited.key);
    expect(third.code).toBe(1);
    expect(third.stdout).toMatch(/^DENY {2}429 rate_limited: Too many requests\. Retry later\. {2}\(gRPC status 8 RESOURCE_EXHAUSTED\)/);
    expect(third.stdout).toMatch(/\n {2}retry-after: \d+\n/);
    expect(third.stdout).toContain('  x-ratelimit-remaining: 0\n');

    const credits = await newKey('--credits', '1');
    expect((await check('--key', credits.key)).code).toBe(0);
    const broke = await check('--key', credits.key);
    expect(broke.stdout).toMatch(/^DENY {2}429 quota_exceeded: /);
    expect(await ok('key', 'credits', credits.id)).toMatch(/: 0 credits remaining/);
    await ok('key', 'credits', credits.id, '--add', '1');
    expect((await check('--key', credits.key)).code).toBe(0);
  });

  it('a bad route setting is shown as keygate answers it (500 invalid_route_config), never charged', async () => {
    const { key } = await newKey();
    const run = await check('--key', key, '--cost', 'lots');
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^DENY {2}500 invalid_route_config: /);
  });
});

describe('check: no verdict (exit 3) and bad input', () => {
  it('a stopped keygate: exit 3 with the gRPC status in one line', async () => {
    const other = await startTestKeygate({ REDIS_URL: redis.url }, clock);
    const address = `127.0.0.1:${other.grpcPort}`;
    const { key } = await newKey();
    expect((await admin(['check', '--target', address, '--key', key], {})).code).toBe(0);
    await other.close();
    const run = await admin(['check', '--target', address, '--key', key], {});
    expect(run.code).toBe(3);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(new RegExp(`^keygate-admin: no verdict from keygate at ${address}: gRPC status 14 UNAVAILABLE: [^\\n]+\\(is keygate running there\\? If its listener uses TLS, add --tls-ca FILE or --tls\\)\\n$`));
    expect(run.stderr).not.toContain(key);

    const json = await admin(['check', '--target', address, '--key', key, '--json'], {});
    expect(json.code).toBe(3);
    expect(JSON.parse(json.stdout)).toMatchObject({ target: address, verdict: 'error', grpcStatus: { code: 14, name: 'UNAVAILABLE' } });
  });

  it("keygate answering UNAVAILABLE (its store is down): exit 3", async () => {
    const own = await startRedis();
    const other = await startTestKeygate({ REDIS_URL: own.url, KEYGATE_CACHE_TTL_MS: '0', KEYGATE_NEGATIVE_CACHE_TTL_MS: '0', KEYGATE_CHECK_TIMEOUT_MS: '200' }, clock);
    try {
      await own.stop();
      const unknown = generateKey();
      secrets.push(unknown);
      const run = await admin(['check', '--target', `127.0.0.1:${other.grpcPort}`, '--key', unknown], {});
      expect(run.code).toBe(3);
      expect(run.stderr).toMatch(
        /^keygate-admin: no verdict from keygate at [^:]+:\d+: gRPC status 14 UNAVAILABLE: keygate: store [^\n]+ \(keygate is up but its store failed[^\n]*\n$/,
      );
    } finally {
      await other.close();
      // Start it again so that close() has a running process to stop (older versions of the
      // helper's stop() waited forever for a process that a first stop() had already killed).
      await own.restart();
      await own.close();
    }
  });

  it('a port where nothing listens, bad options', async () => {
    const port = await freePort();
    expect((await admin(['check', '--target', `127.0.0.1:${port}`, '--key', 'x'], {})).code).toBe(3);
    const bad = async (args: string[], code: number, pattern: RegExp) => {
      const run = await admin(['check', ...args], {});
      expect(run.code, run.stderr).toBe(code);
      expect(run.stderr).toMatch(/^keygate-admin: [^\n]+\n$/);
      expect(run.stderr).toMatch(pattern);
    };
    await bad(['--target', 'nowhere'], 1, /--target "nowhere": expected HOST:PORT/);
    await bad(['--target', target, '--source', 'not-an-ip'], 1, /--source/);
    await bad(['--target', target, '--path', 'orders'], 1, /--path must start with "\/"/);
    await bad(['--target', target, '--header', 'x-ok=1', '--header', 'novalue'], 1, /^keygate-admin: --header number 2: expected NAME=VALUE/);
    // a key given to --header without its name is not quoted back
    const bare = generateKey();
    secrets.push(bare);
    await bad(['--target', target, '--header', bare], 1, /expected NAME=VALUE/);
    await bad(['--target', target, '--key', 'kg_x', '--header', 'x-api-key=kg_y'], 1, /not both/);
    await bad(['--target', target, '--timeout', '0'], 2, /--timeout/);
    const help = await admin(['check', '--help'], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: keygate-admin check/);
  });
});
