// Property-based fuzzing of the whole Check pipeline in-process, exactly as a gRPC call runs it
// minus the socket: official-proto bytes → keygate's own deserializer → toCheckInput → check()
// (memory store behind the key cache, memory limiter) → toCheckResponse → keygate's serializer →
// official decode. 12,000 seeded requests per run with random and huge header names and values,
// NUL and non-UTF-8 raw header values, missing attributes, absurd paths and query strings,
// thousands of headers and huge context_extensions: nothing throws, every answer is a valid
// CheckResponse, and nothing is allowed without an active key that was really in the request.
// A counting digester proves that no text longer than MAX_KEY_LENGTH is ever hashed.
import * as fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { check, type CheckDeps } from '../../src/check/check';
import { ManualClock } from '../../src/clock';
import { loadConfig } from '../../src/config';
import { loadKeygateProtos } from '../../src/grpc/protos';
import { toCheckInput } from '../../src/grpc/request';
import { toCheckResponse } from '../../src/grpc/response';
import { CachedKeyLookup } from '../../src/keys/cache';
import { makeDigester } from '../../src/keys/digest';
import { MAX_KEY_LENGTH, generateKey } from '../../src/keys/format';
import { MemoryKeyStore } from '../../src/keys/memory-store';
import { MemoryLimiter } from '../../src/limits/memory-limiter';
import { checkRequest } from '../helpers/keygate';
import { decodeOfficialCheckResponse, encodeOfficialCheckRequest, type PlainMessage } from '../helpers/official-protos';
import { FUZZ_ENV, FUZZ_SEED, T0, checkRequestArb, expectValidResponse, makeKeys, seedStore, type StoredKey } from './support';

const RUNS = Number(process.env.KEYGATE_FUZZ_RUNS ?? 12_000);

interface World {
  deps: CheckDeps;
  keys: StoredKey[];
  clock: ManualClock;
  digests: { calls: number; longest: number; inputs: string[] };
}

const real = makeDigester();

async function makeWorld(env: Record<string, string>): Promise<World> {
  const config = loadConfig({ ...FUZZ_ENV, ...env });
  const clock = new ManualClock(T0);
  const store = new MemoryKeyStore(clock);
  const limiter = new MemoryLimiter();
  const keys = makeKeys(T0);
  await seedStore(store, keys, real);
  await limiter.setCredits('key_credits', 1_000_000);
  const digests = { calls: 0, longest: 0, inputs: [] as string[] };
  const digest = (secret: string) => {
    digests.calls++;
    digests.longest = Math.max(digests.longest, secret.length);
    if (digests.inputs.length < 100) digests.inputs.push(secret);
    return real(secret);
  };
  const cache = new CachedKeyLookup(store, clock, { ttlMs: config.cacheTtlMs, negativeTtlMs: config.negativeCacheTtlMs, maxKeys: config.cacheMaxKeys });
  return { deps: { config, clock, keys: cache, limiter, usage: limiter, digest }, keys, clock, digests };
}

const method = () => loadKeygateProtos().authorizationService.Check;

/** One Check through keygate's in-process pipeline, from official request bytes to an official response object. */
async function pipeline(w: World, request: PlainMessage): Promise<PlainMessage> {
  const bytes = encodeOfficialCheckRequest(request);
  const decoded = method().requestDeserialize(bytes) as Parameters<typeof toCheckInput>[0];
  const outcome = await check(toCheckInput(decoded), w.deps);
  const out = method().responseSerialize(toCheckResponse(outcome));
  return decodeOfficialCheckResponse(out);
}

describe(`fuzzed CheckRequests through the in-process pipeline (${RUNS} runs, seed ${FUZZ_SEED})`, () => {
  let plain: World;
  let external: World;
  const unknown = Array.from({ length: 8 }, () => generateKey());
  const seen = new Map<string, number>();

  beforeAll(async () => {
    plain = await makeWorld({});
    external = await makeWorld({ KEYGATE_TRUST_EXTERNAL_ADDRESS: 'true' });
  });

  it('never throws, always answers a valid CheckResponse, never allows without an active key from the request', async () => {
    const arb = fc.tuple(checkRequestArb(plain.keys, unknown), fc.boolean(), fc.nat(120_000));
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(arb, async ([c, trustExternal, advance]) => {
        runs++;
        const w = trustExternal ? external : plain;
        w.clock.advance(advance); // limits refill, caches expire, now and then
        const res = await pipeline(w, c.request);
        const verdict = expectValidResponse(res, c, w.keys);
        seen.set(verdict, (seen.get(verdict) ?? 0) + 1);
      }),
      { numRuns: RUNS, seed: FUZZ_SEED, endOnFailure: true },
    );
    expect(runs).toBeGreaterThanOrEqual(10_000);
    console.log(`fuzz verdicts over ${runs} requests: ${[...seen].sort((a, b) => b[1] - a[1]).map(([v, n]) => `${v} ${n}`).join(', ')}`);
    // the generators reach every branch that matters
    for (const v of ['allow', 'missing_api_key', 'invalid_api_key', 'disabled_api_key', 'expired_api_key', 'insufficient_scope', 'ip_not_allowed', 'rate_limited', 'plan_not_found', 'invalid_route_config']) {
      expect(seen.get(v) ?? 0, `verdict ${v} reached`).toBeGreaterThan(0);
    }
    // no text longer than MAX_KEY_LENGTH was ever hashed
    for (const w of [plain, external]) {
      expect(w.digests.calls).toBeGreaterThan(0);
      expect(w.digests.longest).toBeLessThanOrEqual(MAX_KEY_LENGTH);
    }
  }, 180_000);
});

describe('keys longer than MAX_KEY_LENGTH are refused before hashing', () => {
  let w: World;
  beforeAll(async () => {
    w = await makeWorld({});
  });

  const verdictOf = (res: PlainMessage) =>
    res.ok_response !== undefined ? 'allow' : (JSON.parse((res.denied_response as { body: string }).body) as { error: { code: string } }).error.code;

  it('in every place a key travels, at every length: invalid_api_key and not one digest computed', async () => {
    const stored = w.keys[0].secret;
    const longOnes = [
      stored + 'x', // one past a valid key
      stored.padEnd(MAX_KEY_LENGTH + 1, 'A'),
      'f'.repeat(MAX_KEY_LENGTH + 1), // a foreign-looking key, one too long
      'k'.repeat(10_000),
      stored.repeat(30_000), // ~1.2 MB
    ];
    for (const key of longOnes) {
      const places: PlainMessage[] = [
        checkRequest({ headers: { 'x-api-key': key } }),
        checkRequest({ headers: { authorization: `Bearer ${key}` } }),
        checkRequest({ headers: { 'x-other-key': key } }),
        checkRequest({ path: `/orders?api_key=${encodeURIComponent(key)}` }),
        checkRequest({ rawHeaders: [['x-api-key', Buffer.from(key)]] }),
      ];
      for (const request of places) {
        const before = w.digests.calls;
        const started = process.hrtime.bigint();
        const res = await pipeline(w, request);
        expect(verdictOf(res)).toBe('invalid_api_key');
        expect(w.digests.calls - before, `digests computed for a ${key.length}-character key`).toBe(0);
        expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(2000);
      }
    }
  });

  it('at exactly MAX_KEY_LENGTH a foreign key is still looked up (one digest): the bound is where it says', async () => {
    const before = w.digests.calls;
    const res = await pipeline(w, checkRequest({ headers: { 'x-api-key': 'f'.repeat(MAX_KEY_LENGTH) } }));
    expect(verdictOf(res)).toBe('invalid_api_key'); // unknown
    expect(w.digests.calls - before).toBe(1);
  });
});

describe('what the fuzz found: headers past a count were ignored', () => {
  // Cause: toCheckInput ignored header names past the 1000th. Effect: a client-sent x-keygate-…
  // header past that point was not removed before the request went upstream, and a second key
  // there escaped the two-keys conflict check. Fix: every header is read (the 1 MiB receive limit
  // bounds the work). These two cases fail with the old limit.
  let w: World;
  beforeAll(async () => {
    w = await makeWorld({});
  });
  const filler = Array.from({ length: 10_000 }, (_, i): [string, string] => [`x-filler-${i}`, 'v']);

  it('a client header under the identity prefix after 10,000 others is removed', async () => {
    const key = w.keys[0];
    const res = await pipeline(w, checkRequest({ rawHeaders: [['x-api-key', key.secret], ...filler, ['x-keygate-role', 'admin'], ['X-Keygate-Owner', 'evil']] }));
    expect(res.ok_response).toBeDefined();
    const removed = (res.ok_response as { headers_to_remove?: string[] }).headers_to_remove ?? [];
    expect(removed).toContain('x-keygate-role');
    expect(removed).not.toContain('x-keygate-owner'); // overwritten instead: keygate sets it
  });

  it('a second, different key after 10,000 headers is a conflict, not ignored', async () => {
    const [a, b] = w.keys;
    const res = await pipeline(w, checkRequest({ rawHeaders: [['x-api-key', a.secret], ...filler, ['authorization', `Bearer ${b.secret}`]] }));
    expect(res.denied_response).toBeDefined();
    expect(JSON.parse((res.denied_response as { body: string }).body).error.code).toBe('invalid_api_key');
  });
});
