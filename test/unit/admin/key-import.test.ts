// Bulk key import on the memory store: CSV (header, quoting, lists, metadata), JSON lines and
// streamed JSON arrays, line numbers in every problem, nothing written for a bad file, idempotence.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { derivedKeyId } from '../../../src/admin/key-entry';
import { importKeys, type KeyImportOptions } from '../../../src/admin/key-import';
import { SeedError } from '../../../src/admin/seed';
import { ManualClock } from '../../../src/clock';
import { makeDigester } from '../../../src/keys/digest';
import { generateKey } from '../../../src/keys/format';
import { MemoryKeyStore } from '../../../src/keys/memory-store';

const T0 = Date.UTC(2026, 0, 1);
const sha256 = makeDigester();
const dir = mkdtempSync(join(tmpdir(), 'keygate-import-'));
let counter = 0;
let store: MemoryKeyStore;

afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(async () => {
  store = new MemoryKeyStore(new ManualClock(T0));
  await store.putPlan({ name: 'pro', limits: [{ count: 10, window: 's' }] });
});

function write(text: string, ext = '.csv'): string {
  const path = join(dir, `f${counter++}${ext}`);
  writeFileSync(path, text);
  return path;
}

const run = (file: string, over: Partial<KeyImportOptions> = {}) => importKeys({ store, file, digester: sha256, now: T0, ...over });

async function problems(file: string, over: Partial<KeyImportOptions> = {}): Promise<string[]> {
  const err = await run(file, over).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(SeedError);
  return (err as SeedError).problems;
}

describe('CSV', () => {
  it('reads columns in any order, quoted cells, lists, metadata, comments and blank lines', async () => {
    const secret = generateKey();
    const file = write(
      [
        '# exported from the old gateway',
        'id,plan,owner,key,name,scopes,cidrs,limits,metadata,status,expires',
        '',
        `key_a,pro,acme,${secret},"Acme ""prod"", EU",read;write admin,10.0.0.0/8;::1,5/s;100/d,team=x;env=prod,disabled,2027-01-31`,
        `,pro,globex,sk-legacy-0123456789abcdef,"two`,
        `lines",,,,,,`,
      ].join('\r\n'),
    );
    expect(await run(file)).toEqual({ keys: 2, created: 2, updated: 0, unchanged: 0, dryRun: false });
    expect(await store.lookup(sha256(secret))).toEqual({
      id: 'key_a',
      owner: 'acme',
      plan: 'pro',
      name: 'Acme "prod", EU',
      scopes: ['read', 'write', 'admin'],
      status: 'disabled',
      createdAt: T0,
      expiresAt: Date.UTC(2027, 0, 31),
      cidrs: ['10.0.0.0/8', '::1'],
      metadata: { env: 'prod', team: 'x' },
      limits: [
        { count: 5, window: 's' },
        { count: 100, window: 'd' },
      ],
    });
    const legacyDigest = sha256('sk-legacy-0123456789abcdef');
    expect(await store.lookup(legacyDigest)).toMatchObject({ id: derivedKeyId(legacyDigest), name: 'two\nlines' });
  });

  it('refuses a header without the needed columns, or with unknown ones', async () => {
    expect(await problems(write('owner,plan,colour\nacme,pro,red\n'))).toEqual([
      'line 1: header row: unknown column "colour" (known: id, owner, plan, name, scopes, status, expires, cidrs, metadata, limits, key, digest); no "key" or "digest" column',
    ]);
  });

  it('reports every bad line by number; nothing is written', async () => {
    const file = write(
      [
        'owner,plan,key',
        `acme,pro,${generateKey()}`,
        'acme,pro',
        `acme,pro,"${generateKey()}"x`,
        `acme,pro,"${generateKey()}`,
      ].join('\n'),
    );
    expect(await problems(file)).toEqual([
      'line 3: 2 fields, but the header row has 3',
      'line 4: a quoted field must be followed by a comma or the end of the line',
      'line 5: a quoted field is never closed',
    ]);
    expect(await store.listKeys()).toEqual([]);
  });

  it('finds a secret that already belongs to another stored key, and duplicate ids in the file', async () => {
    const taken = generateKey();
    await store.createKey(
      { id: 'key_old', owner: 'x', plan: 'pro', scopes: [], status: 'active', createdAt: T0, cidrs: [], metadata: {} },
      { digest: sha256(taken) },
    );
    const file = write(['owner,plan,key,id', `acme,pro,${taken},key_new`, `acme,pro,${generateKey()},key_dup`, `acme,pro,${generateKey()},key_dup`].join('\n'));
    expect(await problems(file)).toEqual(['line 2: this secret already belongs to key key_old', 'line 4: id "key_dup" is already used by line 3']);
    expect((await store.listKeys()).map((k) => k.id)).toEqual(['key_old']);
  });
});

describe('JSON', () => {
  it('reads JSON lines', async () => {
    const file = write(`${JSON.stringify({ owner: 'a', plan: 'pro', key: generateKey() })}\n\n${JSON.stringify({ owner: 'b', plan: 'pro', digest: 'f'.repeat(64) })}\n`, '.jsonl');
    expect((await run(file)).created).toBe(2);
  });

  it('streams a pretty-printed JSON array, with strings holding brackets and commas', async () => {
    const entries = [
      { owner: 'a', plan: 'pro', key: generateKey(), name: 'has ] and , and "quotes" and {braces}' },
      { owner: 'b', plan: 'pro', key: generateKey(), metadata: { nested: '[1,2]' } },
    ];
    const file = write(JSON.stringify(entries, null, 2), '.data');
    expect((await run(file)).created).toBe(2);
    expect((await store.lookup(sha256(entries[0].key)))?.name).toBe(entries[0].name);
  });

  it('gives the line each bad element starts on', async () => {
    const file = write(
      ['[', `  {"owner": "a", "plan": "pro", "key": "${generateKey()}"},`, '  {"owner": "b",', '   "plan": "gold", "digest": "' + 'e'.repeat(64) + '"},', '  {"owner": "c" "plan": "pro"}', ']'].join('\n'),
      '.json',
    );
    expect(await problems(file)).toEqual(['line 3: plan "gold" does not exist; create it first with keygate-admin plan set', 'line 5: not valid JSON (column 17)']);
  });

  it('refuses an unclosed array, empty elements and text after the array', async () => {
    expect(await problems(write('[{"owner":"a","plan":"pro","digest":"' + 'a'.repeat(64) + '"}', '.json'))).toEqual(['line 1: the JSON array is not closed with ]']);
    expect(await problems(write('[\n,\n]', '.json'))).toEqual([
      'line 2: an empty element in the JSON array',
      'line 3: a comma before the closing ]',
    ]);
    expect(await problems(write('[]\n[]', '.json'))).toEqual(['line 2: text after the end of the JSON array']);
    expect(await run(write('[]', '.json'))).toEqual({ keys: 0, created: 0, updated: 0, unchanged: 0, dryRun: false });
  });
});

describe('import runs', () => {
  it('are idempotent and keep createdAt; a changed line is an update', async () => {
    const secret = generateKey();
    const file = write(`owner,plan,key,name\nacme,pro,${secret},one\n`);
    await run(file);
    expect(await run(file, { now: T0 + 1000 })).toEqual({ keys: 1, created: 0, updated: 0, unchanged: 1, dryRun: false });
    expect(await run(write(`owner,plan,key,name\nacme,pro,${secret},two\n`), { now: T0 + 2000 })).toMatchObject({ updated: 1 });
    expect(await store.lookup(sha256(secret))).toMatchObject({ name: 'two', createdAt: T0 });
  });

  it('dry run: counts, writes nothing', async () => {
    const file = write(`owner,plan,key\nacme,pro,${generateKey()}\nacme,pro,${generateKey()}\n`);
    expect(await run(file, { dryRun: true })).toEqual({ keys: 2, created: 2, updated: 0, unchanged: 0, dryRun: true });
    expect(await store.listKeys()).toEqual([]);
  });

  it('report progress every N entries and keys', async () => {
    const file = write(['owner,plan,key', ...Array.from({ length: 5 }, () => `acme,pro,${generateKey()}`)].join('\n'));
    const messages: string[] = [];
    await run(file, { progressEvery: 2, batchSize: 2, onProgress: (m) => messages.push(m) });
    expect(messages).toEqual([
      'checked 2 entries, up to line 3',
      'checked 4 entries, up to line 5',
      'wrote 2 of 5 keys',
      'wrote 4 of 5 keys',
    ]);
  });

  it('reads files larger than one read (64 KiB): CRLF, quoted line breaks and JSON elements across the cuts', async () => {
    const secrets = Array.from({ length: 3000 }, () => generateKey());
    const csvRows = secrets.map((s, i) => (i % 100 === 7 ? `acme,pro,${s},"two\r\nlines ${i}"` : `acme,pro,${s},n${i}`));
    const csv = write(['owner,plan,key,name', ...csvRows].join('\r\n') + '\r\n');
    expect(await run(csv, { batchSize: 128 })).toMatchObject({ keys: 3000, created: 3000 });
    expect(await store.lookup(sha256(secrets[2907]))).toMatchObject({ name: 'two\nlines 2907' });
    expect(await store.lookup(sha256(secrets[2999]))).toMatchObject({ name: 'n2999' });

    store = new MemoryKeyStore(new ManualClock(T0));
    await store.putPlan({ name: 'pro', limits: [] });
    const entries = secrets.map((key, i) => ({ owner: 'acme', plan: 'pro', key, name: `n${i}`, metadata: { i: String(i) } }));
    const json = write(JSON.stringify(entries, null, 2), '.json');
    expect(await run(json)).toMatchObject({ keys: 3000, created: 3000 });
    expect(await store.lookup(sha256(secrets[1500]))).toMatchObject({ name: 'n1500', metadata: { i: '1500' } });
    // A bad element far into the file is reported with the line it starts on.
    const bad = JSON.stringify([...entries.slice(0, 2000), { owner: 'acme', plan: 'pro' }], null, 2);
    const badLine = bad.split('\n').length - 4; // the element's opening brace
    expect(await problems(write(bad, '.json'))).toEqual([`line ${badLine}: needs key (the secret) or digest (its 64-hex SHA-256/HMAC)`]);
  });

  it('lists at most 200 problems and counts the rest', async () => {
    const file = write(['owner,plan,key', ...Array.from({ length: 250 }, () => 'acme,pro,short')].join('\n'));
    const listed = await problems(file);
    expect(listed).toHaveLength(201);
    expect(listed[200]).toBe('... and 50 more problems');
  });
});
