// The seed file: every problem reported with its JSON path (and never a secret), idempotent
// application on the memory store, and nothing written when the file or the store check fails.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/clock';
import { applySeed, derivedKeyId, parseSeed, SeedError, type Seed } from '../../../src/admin/seed';
import { makeDigester } from '../../../src/keys/digest';
import { generateKey } from '../../../src/keys/format';
import { MemoryKeyStore } from '../../../src/keys/memory-store';

const T0 = Date.UTC(2026, 0, 1);
const sha256 = makeDigester();
const options = { digester: sha256, now: T0 };
const DEMO = join(__dirname, '../../../examples/demo-seed.json');
const FIXTURES = join(__dirname, '../../fixtures/seed');

function problemsOf(text: string): string[] {
  try {
    parseSeed(text, options);
  } catch (err) {
    if (err instanceof SeedError) return err.problems;
    throw err;
  }
  throw new Error('expected a SeedError');
}

function seedText(doc: unknown): string {
  return JSON.stringify(doc);
}

describe('parseSeed', () => {
  it('reads the demo seed: plans with parsed limits, keys as digests with their ids', () => {
    const text = readFileSync(DEMO, 'utf8');
    const seed = parseSeed(text, options);
    expect(seed.plans.map((p) => p.name)).toEqual(['free', 'pro', 'metered']);
    expect(seed.plans[0].limits).toEqual([
      { count: 5, window: 'm' },
      { count: 100, window: 'd' },
    ]);
    expect(seed.plans[1].limits).toEqual([
      { count: 10, window: 's' },
      { count: 50000, window: 'month' },
    ]);
    const demo = JSON.parse(text) as { keys: { id: string; key: string }[] };
    expect(seed.keys.map((k) => k.record.id)).toEqual(demo.keys.map((k) => k.id));
    expect(seed.keys.map((k) => k.digest)).toEqual(demo.keys.map((k) => sha256(k.key)));
    expect(seed.keys.map((k) => k.record.status)).toContain('disabled');
    expect(seed.keys.some((k) => k.record.scopes.includes('admin'))).toBe(true);
    expect(seed.keys.some((k) => k.record.cidrs.length > 0)).toBe(true);
    expect(JSON.stringify(seed)).not.toContain(demo.keys[0].key);
  });

  it('builds complete records: defaults, expiry as ms, metadata, per-key limits, createdAt = now', () => {
    const secret = generateKey();
    const seed = parseSeed(
      seedText({
        keys: [
          {
            owner: 'acme',
            plan: 'pro',
            key: secret,
            name: 'CI',
            scopes: ['read', 'read', 'write'],
            expires: '2027-01-31T12:00:00Z',
            cidrs: ['10.0.0.0/8', '2001:db8::/32'],
            metadata: { b: '2', a: '1' },
            limits: ['5/s', '100/d'],
          },
          { owner: 'globex', plan: 'pro', digest: 'A'.repeat(64) },
        ],
      }),
      options,
    );
    expect(seed.keys[0].record).toEqual({
      id: derivedKeyId(sha256(secret)),
      owner: 'acme',
      plan: 'pro',
      name: 'CI',
      scopes: ['read', 'write'],
      status: 'active',
      createdAt: T0,
      expiresAt: Date.UTC(2027, 0, 31, 12),
      cidrs: ['10.0.0.0/8', '2001:db8::/32'],
      metadata: { a: '1', b: '2' },
      limits: [
        { count: 5, window: 's' },
        { count: 100, window: 'd' },
      ],
    });
    expect(seed.keys[1].digest).toBe('a'.repeat(64));
    expect(seed.keys[1].record).toMatchObject({ scopes: [], cidrs: [], metadata: {}, status: 'active' });
  });

  it('derives a stable id from the digest: key_ + 16 hex of sha256("id:" + digest)', () => {
    const digest = 'c'.repeat(64);
    const expected = `key_${createHash('sha256').update(`id:${digest}`).digest('hex').slice(0, 16)}`;
    expect(derivedKeyId(digest)).toBe(expected);
    const twice = [0, 1].map(() => parseSeed(seedText({ keys: [{ owner: 'a', plan: 'p', digest }] }), options).keys[0].record.id);
    expect(twice).toEqual([expected, expected]);
  });

  it('uses the pepper: with one, the digest is HMAC-SHA-256 and the derived id differs', () => {
    const secret = generateKey();
    const doc = seedText({ keys: [{ owner: 'a', plan: 'p', key: secret }] });
    const plain = parseSeed(doc, options).keys[0];
    const peppered = parseSeed(doc, { ...options, digester: makeDigester('a-pepper-of-16-chars') }).keys[0];
    expect(peppered.digest).toBe(makeDigester('a-pepper-of-16-chars')(secret));
    expect(peppered.digest).not.toBe(plain.digest);
    expect(peppered.record.id).not.toBe(plain.record.id);
  });

  it('ignores fields starting with "_" at every level', () => {
    const seed = parseSeed(
      seedText({
        _comment: 'demo',
        plans: [{ _note: 'x', name: 'pro', limits: ['1/s'] }],
        keys: [{ _comment: 'y', owner: 'a', plan: 'pro', digest: 'd'.repeat(64) }],
      }),
      options,
    );
    expect(seed.plans).toHaveLength(1);
    expect(seed.keys).toHaveLength(1);
  });

  it('reports every problem of a bad file, each with its JSON path', () => {
    const secret = generateKey();
    const other = generateKey();
    const problems = problemsOf(readFileSync(join(FIXTURES, 'every-problem.json'), 'utf8').replaceAll('SECRET_1', secret).replaceAll('SECRET_2', other));
    const expected = [
      /^colour: unknown field/,
      /^plans\[0\]\.name: /,
      /^plans\[0\]\.colour: unknown field/,
      /^plans\[1\]\.limits\[0\]: invalid limit "10\/x"/,
      /^plans\[3\]\.limits: required/,
      /^plans\[3\]\.description: must be text/,
      /^plans\[4\]\.name: "pro" is already defined by plans\[2\]/,
      /^keys\[1\]\.owner: required/,
      /^keys\[2\]\.plan: "no spaces allowed" is not valid/,
      /^keys\[3\]: needs key \(the secret\) or digest/,
      /^keys\[4\]: give either key or digest, not both/,
      /^keys\[5\]\.key: not a usable API key \(value not shown\)/,
      /^keys\[6\]\.digest: expected 64 hex characters/,
      /^keys\[7\]\.scopes\[1\]: "bad scope" is not a valid scope/,
      /^keys\[8\]\.cidrs\[0\]: "10\.0\.0\.0\/33" is not a valid CIDR/,
      /^keys\[9\]\.expires: "next tuesday" is not an ISO-8601 time/,
      /^keys\[10\]\.status: "paused" is not valid/,
      /^keys\[11\]\.metadata\.team: must be text/,
      /^keys\[12\]\.limits\[0\]: invalid limit "0\/s"/,
      /^keys\[13\]\.id: "-bad-id" is not valid/,
      /^keys\[14\]: the same secret as keys\[0\]/,
      /^keys\[15\]\.id: "key_twice" is already used by keys\[0\]/,
      /^keys\[16\]\.colour: unknown field/,
      /^keys\[17\]: expected an object/,
      /^keys\[18\]\.scopes: expected a list of scopes/,
    ];
    for (const pattern of expected) expect(problems.some((p) => pattern.test(p)), `${pattern} in\n${problems.join('\n')}`).toBe(true);
    expect(problems).toHaveLength(expected.length);
    const text = problems.join('\n');
    expect(text).not.toContain(secret);
    expect(text).not.toContain(other);
  });

  it('reports bad JSON by place, without quoting the text', () => {
    const secret = generateKey();
    const problems = problemsOf(`{"keys": [\n  {"owner": "a", "plan": "p", "key": "${secret}" x}\n]}`);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^not valid JSON/);
    expect(problems[0]).not.toContain(secret);
    expect(problemsOf('[]')).toEqual(['expected a JSON object with "plans" and "keys"']);
  });

  it('refuses a key in keygate format with a wrong checksum, and accepts foreign keys', () => {
    const good = generateKey('acme');
    const mistyped = `${good.slice(0, -1)}${good.endsWith('A') ? 'B' : 'A'}`;
    const problems = problemsOf(seedText({ keys: [{ owner: 'a', plan: 'p', key: mistyped }] }));
    expect(problems[0]).toMatch(/^keys\[0\]\.key: not a usable API key/);
    const foreign = parseSeed(seedText({ keys: [{ owner: 'a', plan: 'p', key: 'sk-legacy-0123456789abcdef' }] }), options);
    expect(foreign.keys[0].digest).toBe(sha256('sk-legacy-0123456789abcdef'));
  });
});

describe('applySeed on the memory store', () => {
  let clock: ManualClock;
  let store: MemoryKeyStore;
  const secrets = { acme: generateKey(), globex: generateKey() };
  const doc = () => ({
    plans: [
      { name: 'free', limits: ['5/m', '100/d'] },
      { name: 'pro', limits: ['10/s', '50000/month'], description: 'Pro' },
    ],
    keys: [
      { owner: 'acme', plan: 'pro', key: secrets.acme, scopes: ['admin'] },
      { id: 'key_globex', owner: 'globex', plan: 'free', key: secrets.globex },
    ],
  });
  const parse = (d: unknown, now = clock.now()): Seed => parseSeed(seedText(d), { digester: sha256, now });

  beforeEach(() => {
    clock = new ManualClock(T0);
    store = new MemoryKeyStore(clock);
  });

  it('writes plans and keys; the keys are found by the digest of their secret', async () => {
    expect(await applySeed(store, parse(doc()))).toEqual({ plansCreated: 2, plansUpdated: 0, keysCreated: 2, keysUpdated: 0, unchanged: 0 });
    expect((await store.getPlan('pro'))?.limits).toEqual([
      { count: 10, window: 's' },
      { count: 50000, window: 'month' },
    ]);
    expect((await store.lookup(sha256(secrets.acme)))?.owner).toBe('acme');
    expect((await store.lookup(sha256(secrets.globex)))?.id).toBe('key_globex');
  });

  it('is idempotent: a second run changes nothing, even later, and keeps createdAt', async () => {
    await applySeed(store, parse(doc()));
    clock.advance(3_600_000);
    expect(await applySeed(store, parse(doc()))).toEqual({ plansCreated: 0, plansUpdated: 0, keysCreated: 0, keysUpdated: 0, unchanged: 4 });
    expect(await store.listKeys()).toHaveLength(2);
    expect((await store.getKey('key_globex'))?.createdAt).toBe(T0);
  });

  it('counts what a changed file updates', async () => {
    await applySeed(store, parse(doc()));
    const changed = doc();
    changed.plans[1].limits = ['20/s'];
    changed.keys[1].scopes = ['read'];
    expect(await applySeed(store, parse(changed))).toEqual({ plansCreated: 0, plansUpdated: 1, keysCreated: 0, keysUpdated: 1, unchanged: 2 });
    expect((await store.getKey('key_globex'))?.scopes).toEqual(['read']);
  });

  it('never un-revokes a key and keeps fields the file cannot express', async () => {
    await applySeed(store, parse(doc()));
    const globex = (await store.getKey('key_globex'))!;
    await store.updateKey({ ...globex, status: 'revoked', credits: true });
    await applySeed(store, parse(doc()));
    expect(await store.getKey('key_globex')).toMatchObject({ status: 'revoked', credits: true });
  });

  it('never changes which secrets open a stored key: a rotated-out secret is refused, a grace is not extended', async () => {
    await applySeed(store, parse(doc()));
    const globexDigest = sha256(secrets.globex);
    await store.rotateKey('key_globex', { digest: sha256(generateKey()) }, clock.now() + 3_600_000);
    expect((await applySeed(store, parse(doc()))).unchanged).toBe(4);
    clock.advance(2 * 3_600_000);
    expect(await store.lookup(globexDigest)).toBeNull();
    const err = await applySeed(store, parse(doc())).catch((e: unknown) => e);
    expect((err as SeedError).problems).toEqual([
      "keys[1]: key key_globex exists with another secret (rotated?); import never changes a key's secret (use keygate-admin key rotate key_globex)",
    ]);
    expect(await store.lookup(globexDigest)).toBeNull();
  });

  it('accepts keys whose plan is only in the store', async () => {
    await store.putPlan({ name: 'gold', limits: [{ count: 1, window: 's' }] });
    const counts = await applySeed(store, parse({ keys: [{ owner: 'a', plan: 'gold', digest: 'e'.repeat(64) }] }));
    expect(counts.keysCreated).toBe(1);
  });

  it('writes nothing when a key names a plan in neither the file nor the store', async () => {
    const bad = doc();
    bad.keys.push({ owner: 'initech', plan: 'gold', key: generateKey(), scopes: [] });
    await expect(applySeed(store, parse(bad))).rejects.toThrow(SeedError);
    await applySeed(store, parse(bad)).catch((err: SeedError) => {
      expect(err.problems).toEqual(['keys[2].plan: "gold" is neither in this file\'s plans nor in the store']);
    });
    expect(await store.listPlans()).toEqual([]);
    expect(await store.listKeys()).toEqual([]);
  });

  it('writes nothing when a secret already belongs to another stored key', async () => {
    await store.createKey(
      { id: 'key_other', owner: 'x', plan: 'free', scopes: [], status: 'active', createdAt: T0, cidrs: [], metadata: {} },
      { digest: sha256(secrets.globex) },
    );
    const err = await applySeed(store, parse(doc())).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SeedError);
    expect((err as SeedError).problems).toEqual(['keys[1]: this secret already belongs to key key_other']);
    expect(await store.listPlans()).toEqual([]);
    expect((await store.listKeys()).map((k) => k.id)).toEqual(['key_other']);
  });

  it('dry run: counts what would change and writes nothing', async () => {
    expect(await applySeed(store, parse(doc()), { dryRun: true })).toEqual({
      plansCreated: 2,
      plansUpdated: 0,
      keysCreated: 2,
      keysUpdated: 0,
      unchanged: 0,
    });
    expect(await store.listPlans()).toEqual([]);
    expect(await store.listKeys()).toEqual([]);
    await applySeed(store, parse(doc()));
    expect((await applySeed(store, parse(doc()), { dryRun: true })).unchanged).toBe(4);
  });
});
