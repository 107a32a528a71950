// The Check path with in-memory twins (MemoryKeyStore behind CachedKeyLookup, MemoryLimiter) and a
// manual clock: every deny reason, the allow path, and what never touches the store.
import { beforeEach, describe, expect, it } from 'vitest';
import { check, routeSettings, scopeGranted, type Allowed, type CheckDeps, type CheckOutcome, type Denied } from '../../../src/check/check';
import { ALL_DENY_REASONS, DENY_REASONS, type DenyReason } from '../../../src/check/reasons';
import type { CheckInput } from '../../../src/check/request';
import { ManualClock } from '../../../src/clock';
import { loadConfig } from '../../../src/config';
import { toCheckResponse } from '../../../src/grpc/response';
import { CachedKeyLookup } from '../../../src/keys/cache';
import { makeDigester } from '../../../src/keys/digest';
import { generateKey } from '../../../src/keys/format';
import { MemoryKeyStore } from '../../../src/keys/memory-store';
import type { KeyRecord } from '../../../src/keys/types';
import { MemoryLimiter } from '../../../src/limits/memory-limiter';
import type { Limit } from '../../../src/limits/types';

const T0 = Date.UTC(2026, 0, 15, 12, 0, 0); // noon UTC: 12 h until the day's quota resets

interface World {
  clock: ManualClock;
  store: MemoryKeyStore;
  limiter: MemoryLimiter;
  deps: CheckDeps;
  /** store.lookup calls that reached the store (through the cache) */
  lookups: number;
}

let w: World;

function makeWorld(env: Record<string, string> = {}): World {
  const config = loadConfig(env);
  const clock = new ManualClock(T0);
  const store = new MemoryKeyStore(clock);
  const limiter = new MemoryLimiter();
  const world = { clock, store, limiter, lookups: 0 } as World;
  const counting = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'lookup') {
        return (digest: string) => {
          world.lookups++;
          return target.lookup(digest);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const keys = new CachedKeyLookup(counting, clock, { ttlMs: config.cacheTtlMs, negativeTtlMs: config.negativeCacheTtlMs, maxKeys: config.cacheMaxKeys });
  world.deps = { config, clock, keys, limiter, usage: limiter, digest: makeDigester(config.keyPepper) };
  return world;
}

async function setPlan(name: string, limits: Limit[], shadow?: boolean): Promise<void> {
  await w.store.putPlan(shadow === undefined ? { name, limits } : { name, limits, shadow });
}

let nextId = 0;
/** Stores a new key and returns its secret and record. */
async function issue(extra: Partial<KeyRecord> = {}, secret = generateKey(w.deps.config.keyPrefix)): Promise<{ secret: string; key: KeyRecord }> {
  const key: KeyRecord = {
    id: `key_${++nextId}`,
    owner: 'acme',
    plan: 'basic',
    scopes: [],
    status: 'active',
    createdAt: T0 - 1000,
    cidrs: [],
    metadata: {},
    ...extra,
  };
  await w.store.createKey(key, { digest: w.deps.digest(secret) });
  return { secret, key };
}

interface Req {
  headers?: Record<string, string | string[]>;
  path?: string;
  source?: string;
  ext?: Record<string, string>;
}

function req({ headers = {}, path = '/orders', source = '203.0.113.9', ext = {} }: Req = {}): CheckInput {
  const map = new Map<string, string[]>();
  for (const [name, value] of Object.entries(headers)) map.set(name, Array.isArray(value) ? value : [value]);
  return { headers: map, path, method: 'GET', sourceAddress: source, contextExtensions: ext };
}

const withKey = (secret: string, more: Req = {}): CheckInput => req({ ...more, headers: { 'x-api-key': secret, ...more.headers } });

function denied(out: CheckOutcome, reason: DenyReason): Denied {
  expect(out.decision === 'deny' ? out.reason : `allowed (expected ${reason})`).toBe(reason);
  return out as Denied;
}

function allowed(out: CheckOutcome): Allowed {
  expect(out.decision === 'allow' ? 'allow' : `denied: ${(out as Denied).reason}`).toBe('allow');
  return out as Allowed;
}

const header = (pairs: [string, string][], name: string): string | undefined => pairs.find(([n]) => n === name)?.[1];
const AUTH_INVALID = 'Bearer realm="keygate", error="invalid_token"';

beforeEach(async () => {
  w = makeWorld();
  await setPlan('basic', [{ count: 10, window: 's' }, { count: 1000, window: 'month' }]);
});

describe('routeSettings', () => {
  it('defaults to cost 1 and no scope', () => {
    expect(routeSettings({})).toEqual({ cost: 1, scope: undefined });
  });

  it('reads keygate.cost and keygate.scope; other extensions are ignored', () => {
    expect(routeSettings({ 'keygate.cost': '5', 'keygate.scope': 'orders:read', other: 'x' })).toEqual({ cost: 5, scope: 'orders:read' });
    expect(routeSettings({ 'keygate.cost': '999999999' })).toEqual({ cost: 999999999, scope: undefined });
    expect(routeSettings({ 'keygate.scope': 'reports/export.v2' })).toEqual({ cost: 1, scope: 'reports/export.v2' });
  });

  it.each(['0', '-1', '01', '1.5', '1e3', ' 1', '1 ', '', 'one', '1000000000', '0x10'])('refuses keygate.cost "%s"', (cost) => {
    const r = routeSettings({ 'keygate.cost': cost });
    expect(r).toHaveProperty('problem');
    expect((r as { problem: string }).problem).toContain('keygate.cost');
  });

  it.each(['', 'has space', '*', '-orders', 'orders read', 'a'.repeat(129), 'ordérs', 'orders,write'])('refuses keygate.scope "%s"', (scope) => {
    const r = routeSettings({ 'keygate.scope': scope });
    expect(r).toHaveProperty('problem');
    expect((r as { problem: string }).problem).toContain('keygate.scope');
  });

  it('quotes at most 40 characters of a bad value', () => {
    const r = routeSettings({ 'keygate.scope': `${'x'.repeat(200)} y` }) as { problem: string };
    expect(r.problem.length).toBeLessThan(100);
  });
});

describe('scopeGranted', () => {
  it('an exact scope grants', () => {
    expect(scopeGranted(['orders:read'], 'orders:read')).toBe(true);
    expect(scopeGranted(['orders:read'], 'orders:write')).toBe(false);
    expect(scopeGranted(['orders:read'], 'orders:rea')).toBe(false);
    expect(scopeGranted(['orders:read'], 'orders:read:all')).toBe(false);
  });

  it('"*" grants everything', () => {
    expect(scopeGranted(['*'], 'orders:write')).toBe(true);
    expect(scopeGranted(['*'], 'anything/at.all')).toBe(true);
  });

  it('a trailing wildcard grants what starts with the text before it', () => {
    expect(scopeGranted(['orders:*'], 'orders:read')).toBe(true);
    expect(scopeGranted(['orders:*'], 'orders:read:own')).toBe(true);
    expect(scopeGranted(['orders:*'], 'orders')).toBe(false);
    expect(scopeGranted(['orders:*'], 'ordersX')).toBe(false);
    expect(scopeGranted(['orders:*'], 'invoices:read')).toBe(false);
  });

  it('a wildcard in the middle is literal text', () => {
    expect(scopeGranted(['orders:*:read'], 'orders:eu:read')).toBe(false);
    expect(scopeGranted(['orders:*:read'], 'orders:*:read')).toBe(true);
  });

  it('a required wildcard scope is granted only by a wildcard that covers it', () => {
    expect(scopeGranted(['orders:read'], 'orders:*')).toBe(false);
    expect(scopeGranted(['orders:*'], 'orders:*')).toBe(true);
  });

  it('no scopes grant nothing; any one matching scope is enough', () => {
    expect(scopeGranted([], 'orders:read')).toBe(false);
    expect(scopeGranted(['invoices:read', 'orders:read'], 'orders:read')).toBe(true);
  });
});

describe('check: missing_api_key', () => {
  it('no key: 401 reason with WWW-Authenticate (no error attribute), and no store call', async () => {
    const out = denied(await check(req(), w.deps), 'missing_api_key');
    expect(out.responseHeaders).toEqual([['www-authenticate', 'Bearer realm="keygate"']]);
    expect(out.key).toBeUndefined();
    expect(w.lookups).toBe(0);
  });

  it('the realm comes from KEYGATE_AUTH_REALM', async () => {
    w = makeWorld({ KEYGATE_AUTH_REALM: 'Acme API' });
    const out = denied(await check(req(), w.deps), 'missing_api_key');
    expect(header(out.responseHeaders, 'www-authenticate')).toBe('Bearer realm="Acme API"');
  });

  it('an Authorization header with the Basic scheme is no API key', async () => {
    denied(await check(req({ headers: { authorization: 'Basic dXNlcjpwYXNz' } }), w.deps), 'missing_api_key');
  });

  it('an input with nothing in it is denied, never thrown', async () => {
    denied(await check({ headers: new Map(), contextExtensions: {} }, w.deps), 'missing_api_key');
  });
});

describe('check: invalid_api_key', () => {
  it('a malformed key (bad checksum) is refused without calling the store', async () => {
    const { secret } = await issue();
    const last = secret.at(-1) === 'a' ? 'b' : 'a';
    const out = denied(await check(withKey(secret.slice(0, -1) + last), w.deps), 'invalid_api_key');
    expect(out.responseHeaders).toEqual([['www-authenticate', AUTH_INVALID]]);
    expect(out.key).toBeUndefined();
    expect(w.lookups).toBe(0);
  });

  it.each([
    ['too long', 'x'.repeat(300)],
    ['too short', 'abc'],
    ['kg_ of the wrong shape', 'kg_notakey'],
    ['non-ASCII', 'kg_clé-secrète-0123456789'],
    ['a control character', 'abcdefghijklmnop\u0001q'],
  ])('a malformed key (%s) never calls the store', async (_label, text) => {
    denied(await check(withKey(text), w.deps), 'invalid_api_key');
    denied(await check(req({ headers: { authorization: `Bearer ${text}` } }), w.deps), 'invalid_api_key');
    expect(w.lookups).toBe(0);
  });

  it('a malformed key with the configured custom prefix never calls the store', async () => {
    w = makeWorld({ KEYGATE_KEY_PREFIX: 'acme' });
    denied(await check(withKey(`acme_${'0'.repeat(38)}`), w.deps), 'invalid_api_key');
    expect(w.lookups).toBe(0);
  });

  it('an unknown (well-formed) key is looked up once and refused', async () => {
    const out = denied(await check(withKey(generateKey()), w.deps), 'invalid_api_key');
    expect(out.responseHeaders).toEqual([['www-authenticate', AUTH_INVALID]]);
    expect(w.lookups).toBe(1);
  });

  it('two different keys in one request are refused without a lookup', async () => {
    const a = await issue();
    const b = await issue();
    denied(await check(req({ headers: { 'x-api-key': a.secret, authorization: `Bearer ${b.secret}` } }), w.deps), 'invalid_api_key');
    denied(await check(req({ headers: { 'x-api-key': `${a.secret}, ${b.secret}` } }), w.deps), 'invalid_api_key');
    expect(w.lookups).toBe(0);
  });

  it('a revoked key is refused', async () => {
    const { secret } = await issue({ status: 'revoked' });
    denied(await check(withKey(secret), w.deps), 'invalid_api_key');
  });

  it('a revoked key answers the client exactly as an unknown key does', async () => {
    const { secret } = await issue({ status: 'revoked' });
    const revoked = denied(await check(withKey(secret), w.deps), 'invalid_api_key');
    const unknown = denied(await check(withKey(generateKey()), w.deps), 'invalid_api_key');
    const malformed = denied(await check(withKey(`kg_${'a'.repeat(38)}`), w.deps), 'invalid_api_key');
    expect(revoked.responseHeaders).toEqual(unknown.responseHeaders);
    expect(malformed.responseHeaders).toEqual(unknown.responseHeaders);
    const [r, u, m] = [revoked, unknown, malformed].map(toCheckResponse);
    expect(r.status).toEqual(u.status);
    expect(r.denied_response).toEqual(u.denied_response);
    expect(m.status).toEqual(u.status);
    expect(m.denied_response).toEqual(u.denied_response);
  });

  it('a revocation takes effect at the next Check, without waiting for the cache TTL', async () => {
    const { secret, key } = await issue();
    allowed(await check(withKey(secret), w.deps));
    await w.store.updateKey({ ...key, status: 'revoked' });
    denied(await check(withKey(secret), w.deps), 'invalid_api_key');
  });

  it('foreign keys are refused without a lookup when KEYGATE_ACCEPT_FOREIGN_KEYS=false', async () => {
    w = makeWorld({ KEYGATE_ACCEPT_FOREIGN_KEYS: 'false' });
    await setPlan('basic', []);
    const { secret } = await issue({}, 'legacy-0123456789abcdef0123456789');
    denied(await check(withKey(secret), w.deps), 'invalid_api_key');
    expect(w.lookups).toBe(0);
  });

  it('an imported foreign key is found by its digest when foreign keys are accepted (the default)', async () => {
    const { secret, key } = await issue({}, 'legacy-0123456789abcdef0123456789');
    expect(allowed(await check(withKey(secret), w.deps)).key.id).toBe(key.id);
  });
});

describe('check: expired_api_key and disabled_api_key', () => {
  it('a key is allowed until expiresAt and expired from then on', async () => {
    const { secret } = await issue({ expiresAt: T0 + 1000 });
    allowed(await check(withKey(secret), w.deps));
    w.clock.advance(999);
    allowed(await check(withKey(secret), w.deps));
    w.clock.advance(1);
    const out = denied(await check(withKey(secret), w.deps), 'expired_api_key');
    expect(out.responseHeaders).toEqual([['www-authenticate', AUTH_INVALID]]);
    expect(out.key?.id).toBeDefined();
  });

  it('a disabled key is refused with its own reason', async () => {
    const { secret } = await issue({ status: 'disabled' });
    const out = denied(await check(withKey(secret), w.deps), 'disabled_api_key');
    expect(out.responseHeaders).toEqual([['www-authenticate', AUTH_INVALID]]);
  });

  it('re-enabling a disabled key lets it through at once', async () => {
    const { secret, key } = await issue({ status: 'disabled' });
    denied(await check(withKey(secret), w.deps), 'disabled_api_key');
    await w.store.updateKey({ ...key, status: 'active' });
    allowed(await check(withKey(secret), w.deps));
  });

  it('denials of a known key are counted in its usage', async () => {
    const { secret, key } = await issue({ expiresAt: T0 });
    denied(await check(withKey(secret), w.deps), 'expired_api_key');
    const [day] = await w.limiter.readUsage(key.id, '2026-01-15', 1);
    expect(day.denied).toEqual({ expired_api_key: 1 });
  });
});

describe('check: ip_not_allowed', () => {
  it('the source address must be in the key’s allowlist', async () => {
    const { secret } = await issue({ cidrs: ['10.0.0.0/8', '2001:db8::/32'] });
    allowed(await check(withKey(secret, { source: '10.1.2.3' }), w.deps));
    allowed(await check(withKey(secret, { source: '2001:db8::42' }), w.deps));
    allowed(await check(withKey(secret, { source: '::ffff:10.9.9.9' }), w.deps));
    const out = denied(await check(withKey(secret, { source: '192.168.1.1' }), w.deps), 'ip_not_allowed');
    expect(out.responseHeaders).toEqual([]);
    denied(await check(withKey(secret, { source: '2001:db9::1' }), w.deps), 'ip_not_allowed');
  });

  it('an absent source address is denied when the key has an allowlist', async () => {
    const { secret } = await issue({ cidrs: ['10.0.0.0/8'] });
    const input = withKey(secret);
    delete input.sourceAddress;
    denied(await check(input, w.deps), 'ip_not_allowed');
  });

  it('x-envoy-external-address is ignored unless KEYGATE_TRUST_EXTERNAL_ADDRESS is on', async () => {
    const { secret } = await issue({ cidrs: ['10.0.0.0/8'] });
    denied(await check(withKey(secret, { source: '192.168.1.1', headers: { 'x-envoy-external-address': '10.1.2.3' } }), w.deps), 'ip_not_allowed');
  });

  it('with KEYGATE_TRUST_EXTERNAL_ADDRESS=true the allowlist is checked against x-envoy-external-address', async () => {
    w = makeWorld({ KEYGATE_TRUST_EXTERNAL_ADDRESS: 'true' });
    await setPlan('basic', []);
    const { secret } = await issue({ cidrs: ['10.0.0.0/8'] });
    allowed(await check(withKey(secret, { source: '192.168.1.1', headers: { 'x-envoy-external-address': '10.1.2.3' } }), w.deps));
    denied(await check(withKey(secret, { source: '10.1.2.3', headers: { 'x-envoy-external-address': '192.168.1.1' } }), w.deps), 'ip_not_allowed');
    denied(await check(withKey(secret, { source: '10.1.2.3' }), w.deps), 'ip_not_allowed');
  });

  it('a key without an allowlist is allowed from anywhere', async () => {
    const { secret } = await issue();
    allowed(await check(withKey(secret, { source: '198.51.100.1' }), w.deps));
    const input = withKey(secret);
    delete input.sourceAddress;
    allowed(await check(input, w.deps));
  });
});

describe('check: insufficient_scope', () => {
  it('a route scope the key does not hold is refused with 403 and no WWW-Authenticate', async () => {
    const { secret } = await issue({ scopes: ['orders:read'] });
    const out = denied(await check(withKey(secret, { ext: { 'keygate.scope': 'orders:write' } }), w.deps), 'insufficient_scope');
    expect(out.responseHeaders).toEqual([]);
    allowed(await check(withKey(secret, { ext: { 'keygate.scope': 'orders:read' } }), w.deps));
  });

  it('wildcard scopes grant what they cover', async () => {
    const orders = await issue({ scopes: ['orders:*'] });
    const all = await issue({ scopes: ['*'] });
    allowed(await check(withKey(orders.secret, { ext: { 'keygate.scope': 'orders:write' } }), w.deps));
    denied(await check(withKey(orders.secret, { ext: { 'keygate.scope': 'invoices:read' } }), w.deps), 'insufficient_scope');
    allowed(await check(withKey(all.secret, { ext: { 'keygate.scope': 'invoices:read' } }), w.deps));
  });

  it('a route without a scope admits a key without scopes', async () => {
    const { secret } = await issue({ scopes: [] });
    allowed(await check(withKey(secret), w.deps));
  });
});

describe('check: plan_not_found', () => {
  it('a key whose plan does not exist is refused', async () => {
    const { secret } = await issue({ plan: 'ghost' });
    const out = denied(await check(withKey(secret), w.deps), 'plan_not_found');
    expect(DENY_REASONS[out.reason].http).toBe(403);
  });

  it('a plan deleted after the key was used takes effect at once', async () => {
    const { secret } = await issue();
    allowed(await check(withKey(secret), w.deps));
    await w.store.deletePlan('basic');
    denied(await check(withKey(secret), w.deps), 'plan_not_found');
  });
});

describe('check: invalid_route_config', () => {
  it.each([
    [{ 'keygate.cost': '0' }],
    [{ 'keygate.cost': '-1' }],
    [{ 'keygate.cost': 'two' }],
    [{ 'keygate.cost': '1.5' }],
    [{ 'keygate.scope': 'bad scope' }],
    [{ 'keygate.scope': '' }],
  ])('%j is a route misconfiguration, reported before any store call', async (ext) => {
    const { secret } = await issue();
    const out = denied(await check(withKey(secret, { ext }), w.deps), 'invalid_route_config');
    expect(out.detail).toMatch(/keygate\.(cost|scope)/);
    expect(w.lookups).toBe(0);
    const res = toCheckResponse(out);
    expect(res.denied_response?.status?.code).toBe(500);
    expect(res.denied_response?.body).not.toContain(out.detail ?? '\u0000');
  });
});

describe('check: rate_limited and quota_exceeded', () => {
  it('a rate limit refuses with 429, Retry-After and rate-limit headers, and lets through again after Retry-After', async () => {
    await setPlan('basic', [{ count: 2, window: 's' }]);
    const { secret } = await issue();
    allowed(await check(withKey(secret), w.deps));
    allowed(await check(withKey(secret), w.deps));
    const out = denied(await check(withKey(secret), w.deps), 'rate_limited');
    expect(out.retryAfterSeconds).toBe(1);
    expect(header(out.responseHeaders, 'retry-after')).toBe('1');
    expect(header(out.responseHeaders, 'ratelimit')).toBe('"2/s";r=0;t=1');
    expect(header(out.responseHeaders, 'ratelimit-policy')).toBe('"2/s";q=2;w=1');
    expect(header(out.responseHeaders, 'x-ratelimit-remaining')).toBe('0');
    expect(header(out.responseHeaders, 'x-ratelimit-limit')).toBe('2');
    expect(out.key?.id).toBeDefined();
    w.clock.advance(out.retryAfterSeconds! * 1000);
    allowed(await check(withKey(secret), w.deps));
  });

  it('a quota refuses with 429 quota_exceeded and Retry-After until the window ends', async () => {
    await setPlan('basic', [{ count: 2, window: 'd' }]);
    const { secret } = await issue();
    allowed(await check(withKey(secret), w.deps));
    allowed(await check(withKey(secret), w.deps));
    const out = denied(await check(withKey(secret), w.deps), 'quota_exceeded');
    expect(out.retryAfterSeconds).toBe(12 * 3600);
    expect(header(out.responseHeaders, 'retry-after')).toBe(String(12 * 3600));
    expect(header(out.responseHeaders, 'x-ratelimit-reset')).toBe(String(12 * 3600));
    w.clock.advance(12 * 3600 * 1000 - 1);
    denied(await check(withKey(secret), w.deps), 'quota_exceeded');
    w.clock.advance(1);
    allowed(await check(withKey(secret), w.deps));
  });

  it('keygate.cost charges that many units', async () => {
    await setPlan('basic', [{ count: 5, window: 'm' }]);
    const { secret } = await issue();
    const first = allowed(await check(withKey(secret, { ext: { 'keygate.cost': '3' } }), w.deps));
    expect(header(first.responseHeaders, 'x-ratelimit-remaining')).toBe('2');
    denied(await check(withKey(secret, { ext: { 'keygate.cost': '3' } }), w.deps), 'rate_limited');
    allowed(await check(withKey(secret, { ext: { 'keygate.cost': '2' } }), w.deps));
  });

  it('limits are per key', async () => {
    await setPlan('basic', [{ count: 1, window: 's' }]);
    const a = await issue();
    const b = await issue();
    allowed(await check(withKey(a.secret), w.deps));
    denied(await check(withKey(a.secret), w.deps), 'rate_limited');
    allowed(await check(withKey(b.secret), w.deps));
  });

  it('a key’s own limits replace its plan’s', async () => {
    const { secret } = await issue({ limits: [{ count: 1, window: 'h' }] });
    const first = allowed(await check(withKey(secret), w.deps));
    expect(header(first.responseHeaders, 'ratelimit-policy')).toBe('"1/h";q=1;w=3600');
    denied(await check(withKey(secret), w.deps), 'rate_limited');
  });

  it('shadow mode (KEYGATE_SHADOW) lets the request through and reports what would have been refused', async () => {
    w = makeWorld({ KEYGATE_SHADOW: 'true' });
    await setPlan('basic', [{ count: 1, window: 's' }]);
    const { secret } = await issue();
    allowed(await check(withKey(secret), w.deps));
    const out = allowed(await check(withKey(secret), w.deps));
    expect(out.shadowDenial).toBe('rate_limited');
    expect(header(out.upstreamHeaders, 'x-keygate-shadow-denial')).toBe('rate_limited');
  });

  it('a plan in shadow mode is not enforced', async () => {
    await setPlan('basic', [{ count: 1, window: 's' }], true);
    const { secret } = await issue();
    allowed(await check(withKey(secret), w.deps));
    expect(allowed(await check(withKey(secret), w.deps)).shadowDenial).toBe('rate_limited');
  });
});

describe('check: allowed', () => {
  it('sets identity headers under the default prefix', async () => {
    const { secret, key } = await issue({ owner: 'team-blue', plan: 'basic' });
    const out = allowed(await check(withKey(secret), w.deps));
    expect(out.upstreamHeaders).toEqual([
      ['x-keygate-key-id', key.id],
      ['x-keygate-owner', 'team-blue'],
      ['x-keygate-plan', 'basic'],
    ]);
    expect(out.key.id).toBe(key.id);
    expect(out.plan).toBe('basic');
    expect(out.shadowDenial).toBeUndefined();
  });

  it('uses the configured prefix', async () => {
    w = makeWorld({ KEYGATE_UPSTREAM_HEADER_PREFIX: 'x-acme-' });
    await setPlan('basic', []);
    const { secret, key } = await issue();
    const out = allowed(await check(withKey(secret, { headers: { 'x-acme-owner': 'evil', 'x-acme-admin': 'true', 'x-keygate-owner': 'other' } }), w.deps));
    expect(out.upstreamHeaders.map(([n]) => n)).toEqual(['x-acme-key-id', 'x-acme-owner', 'x-acme-plan']);
    expect(header(out.upstreamHeaders, 'x-acme-key-id')).toBe(key.id);
    expect(out.removeHeaders).toContain('x-acme-admin');
    expect(out.removeHeaders).not.toContain('x-keygate-owner'); // not our prefix any more
  });

  it('no client-sent header under the prefix reaches the upstream: each is overwritten or removed', async () => {
    const { secret, key } = await issue({ owner: 'acme' });
    const spoofed = {
      'x-keygate-owner': 'evil-corp',
      'x-keygate-key-id': 'key_admin',
      'x-keygate-plan': ['enterprise', 'unlimited'],
      'x-keygate-role': 'admin',
      'x-keygate-shadow-denial': 'none',
      'x-keygate-owner-extra': 'x',
    };
    const out = allowed(await check(withKey(secret, { headers: spoofed }), w.deps));
    const set = new Map(out.upstreamHeaders);
    for (const name of Object.keys(spoofed)) {
      expect(set.has(name) || out.removeHeaders.includes(name), name).toBe(true);
    }
    // the identity values are the key's own; a header we set is not also removed (that would drop it)
    expect(set.get('x-keygate-owner')).toBe('acme');
    expect(set.get('x-keygate-key-id')).toBe(key.id);
    for (const name of set.keys()) expect(out.removeHeaders, name).not.toContain(name);
    // and the Envoy response overwrites rather than appends
    for (const h of toCheckResponse(out).ok_response?.headers ?? []) expect(h.append_action).toBe('OVERWRITE_IF_EXISTS_OR_ADD');
  });

  it('headers that only look like the prefix are left alone', async () => {
    const { secret } = await issue();
    const out = allowed(await check(withKey(secret, { headers: { 'x-keygateway': '1', 'x-keygate': '1', accept: 'application/json' } }), w.deps));
    expect(out.removeHeaders).toEqual(['x-api-key']);
  });

  it('removes the header that carried the key', async () => {
    const { secret } = await issue();
    expect(allowed(await check(withKey(secret), w.deps)).removeHeaders).toEqual(['x-api-key']);
    expect(allowed(await check(req({ headers: { authorization: `Bearer ${secret}` } }), w.deps)).removeHeaders).toEqual(['authorization']);
    expect(allowed(await check(req({ headers: { authorization: `ApiKey ${secret}`, 'x-api-key': secret } }), w.deps)).removeHeaders.sort()).toEqual([
      'authorization',
      'x-api-key',
    ]);
  });

  it('a key in the URL is taken only when KEYGATE_QUERY_PARAM is set, and then removed', async () => {
    const { secret } = await issue();
    denied(await check(req({ path: `/orders?api_key=${secret}` }), w.deps), 'missing_api_key');

    w = makeWorld({ KEYGATE_QUERY_PARAM: 'api_key' });
    await setPlan('basic', []);
    const k = await issue();
    const viaQuery = allowed(await check(req({ path: `/orders?page=2&api_key=${encodeURIComponent(k.secret)}` }), w.deps));
    expect(viaQuery.removeQueryParams).toEqual(['api_key']);
    expect(viaQuery.removeHeaders).toEqual([]);
    const viaHeader = allowed(await check(withKey(k.secret, { path: '/orders?page=2' }), w.deps));
    expect(viaHeader.removeQueryParams).toEqual([]);
    const viaBoth = allowed(await check(withKey(k.secret, { path: `/orders?api_key=${k.secret}` }), w.deps));
    expect(viaBoth.removeQueryParams).toEqual(['api_key']);
    expect(viaBoth.removeHeaders).toEqual(['x-api-key']);
  });

  it('sends rate-limit headers to the client', async () => {
    const { secret } = await issue();
    const out = allowed(await check(withKey(secret), w.deps));
    const h = Object.fromEntries(out.responseHeaders);
    expect(h['ratelimit-policy']).toBe('"10/s";q=10;w=1, "1000/month";q=1000;w=2678400');
    expect(h['ratelimit']).toMatch(/^"10\/s";r=9;t=1, "1000\/month";r=999;t=\d+$/);
    expect(h['x-ratelimit-limit']).toBe('10');
    expect(h['x-ratelimit-remaining']).toBe('9');
    expect(h['x-ratelimit-reset']).toBe('1');
  });

  it('a plan without limits sends no rate-limit headers and never limits', async () => {
    await setPlan('basic', []);
    const { secret } = await issue();
    for (let i = 0; i < 50; i++) expect(allowed(await check(withKey(secret), w.deps)).responseHeaders).toEqual([]);
  });

  it('with KEYGATE_KEY_PEPPER, keys are found by their HMAC digest only', async () => {
    w = makeWorld({ KEYGATE_KEY_PEPPER: 'pepper-0123456789abcdef' });
    await setPlan('basic', []);
    const peppered = await issue();
    allowed(await check(withKey(peppered.secret), w.deps));
    const plainSecret = generateKey();
    await w.store.createKey({ ...peppered.key, id: 'key_plain' }, { digest: makeDigester()(plainSecret) });
    denied(await check(withKey(plainSecret), w.deps), 'invalid_api_key');
  });

  it('a rotated key: old and new secrets work during the grace, only the new one after', async () => {
    const { secret: oldSecret, key } = await issue();
    const newSecret = generateKey();
    await w.store.rotateKey(key.id, { digest: w.deps.digest(newSecret) }, T0 + 60_000);
    allowed(await check(withKey(oldSecret), w.deps));
    allowed(await check(withKey(newSecret), w.deps));
    w.clock.advance(60_000 + 1000); // grace over, and past the cache TTL
    denied(await check(withKey(oldSecret), w.deps), 'invalid_api_key');
    allowed(await check(withKey(newSecret), w.deps));
  });
});

describe('check: failures', () => {
  it('a store failure is thrown (the adapter answers UNAVAILABLE), never turned into an allow', async () => {
    const { secret } = await issue();
    w.deps = { ...w.deps, keys: { lookup: () => Promise.reject(new Error('ECONNREFUSED')), plan: () => Promise.reject(new Error('ECONNREFUSED')) } };
    await expect(check(withKey(secret), w.deps)).rejects.toThrow('ECONNREFUSED');
  });

  it('a limiter failure is thrown, never turned into an allow', async () => {
    const { secret } = await issue();
    w.deps = { ...w.deps, limiter: { charge: () => Promise.reject(new Error('NOSCRIPT')), close: async () => {} } };
    await expect(check(withKey(secret), w.deps)).rejects.toThrow('NOSCRIPT');
  });
});

describe('check: every deny reason', () => {
  it('each reason of the table can be produced, and every 401 carries WWW-Authenticate', async () => {
    const seen = new Map<DenyReason, Denied>();
    const note = (out: CheckOutcome) => {
      if (out.decision === 'deny') seen.set(out.reason, out);
    };
    await setPlan('tiny', [{ count: 1, window: 's' }]);
    await setPlan('quota', [{ count: 1, window: 'd' }]);
    note(await check(req(), w.deps));
    note(await check(withKey('kg_bad'), w.deps));
    note(await check(withKey((await issue({ expiresAt: T0 })).secret), w.deps));
    note(await check(withKey((await issue({ status: 'disabled' })).secret), w.deps));
    note(await check(withKey((await issue({ cidrs: ['10.0.0.0/8'] })).secret), w.deps));
    note(await check(withKey((await issue()).secret, { ext: { 'keygate.scope': 'admin' } }), w.deps));
    note(await check(withKey((await issue({ plan: 'ghost' })).secret), w.deps));
    note(await check(withKey('kg_bad', { ext: { 'keygate.cost': 'x' } }), w.deps));
    const tiny = await issue({ plan: 'tiny' });
    await check(withKey(tiny.secret), w.deps);
    note(await check(withKey(tiny.secret), w.deps));
    const quota = await issue({ plan: 'quota' });
    await check(withKey(quota.secret), w.deps);
    note(await check(withKey(quota.secret), w.deps));
    expect([...seen.keys()].sort()).toEqual([...ALL_DENY_REASONS].sort());
    for (const [reason, out] of seen) {
      const wants401 = DENY_REASONS[reason].http === 401;
      expect(header(out.responseHeaders, 'www-authenticate') !== undefined, reason).toBe(wants401);
      if (DENY_REASONS[reason].http === 429) expect(Number(header(out.responseHeaders, 'retry-after')), reason).toBeGreaterThanOrEqual(1);
    }
  });
});
