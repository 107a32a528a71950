// Behaviour every KeyStore must have; run against the memory store and the Redis store.
import { beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock';
import type { DigestEntry, KeyRecord, KeyStore } from '../../src/keys/types';
import { StoreConflictError } from '../../src/keys/types';

export interface KeyStoreFixture {
  store: KeyStore;
  clock: ManualClock;
  /** A second store on the same backing data (another keygate process), when the backend has one. */
  peer?: KeyStore;
}

export function record(over: Partial<KeyRecord> = {}): KeyRecord {
  return {
    id: 'key_a',
    owner: 'acme',
    plan: 'free',
    scopes: ['read'],
    status: 'active',
    createdAt: Date.UTC(2026, 0, 1),
    cidrs: [],
    metadata: {},
    ...over,
  };
}

const D1 = 'a'.repeat(64);
const D2 = 'b'.repeat(64);
const D3 = 'c'.repeat(64);
const D4 = 'd'.repeat(64);

export function keyStoreSuite(name: string, make: () => Promise<KeyStoreFixture>): void {
  describe(`KeyStore contract: ${name}`, () => {
    let f: KeyStoreFixture;
    beforeEach(async () => {
      f = await make();
    });

    it('finds a created key by digest and by id, and nothing for an unknown digest', async () => {
      await f.store.createKey(record(), { digest: D1 });
      expect((await f.store.lookup(D1))?.id).toBe('key_a');
      expect((await f.store.getKey('key_a'))?.owner).toBe('acme');
      expect(await f.store.lookup(D2)).toBeNull();
      expect(await f.store.getKey('key_zz')).toBeNull();
    });

    it('refuses a duplicate id and a secret that belongs to another key', async () => {
      await f.store.createKey(record(), { digest: D1 });
      await expect(f.store.createKey(record(), { digest: D2 })).rejects.toBeInstanceOf(StoreConflictError);
      await expect(f.store.createKey(record({ id: 'key_b' }), { digest: D1 })).rejects.toBeInstanceOf(StoreConflictError);
      expect(await f.store.getKey('key_b')).toBeNull();
    });

    it('lists keys in creation order, filtered by owner', async () => {
      await f.store.createKey(record({ id: 'key_2', createdAt: 2 }), { digest: D2 });
      await f.store.createKey(record({ id: 'key_1', createdAt: 1, owner: 'other' }), { digest: D1 });
      expect((await f.store.listKeys()).map((r) => r.id)).toEqual(['key_1', 'key_2']);
      expect((await f.store.listKeys({ owner: 'acme' })).map((r) => r.id)).toEqual(['key_2']);
    });

    it('updates a record in place and refuses to update an unknown one', async () => {
      await f.store.createKey(record(), { digest: D1 });
      await f.store.updateKey(record({ status: 'disabled' }));
      expect((await f.store.lookup(D1))?.status).toBe('disabled');
      await expect(f.store.updateKey(record({ id: 'key_nope' }))).rejects.toBeInstanceOf(StoreConflictError);
    });

    it('rotation keeps the old secret until the grace ends, then only the new one works', async () => {
      await f.store.createKey(record(), { digest: D1 });
      const graceEnd = f.clock.now() + 3600_000;
      await f.store.rotateKey('key_a', { digest: D2 }, graceEnd);
      expect((await f.store.lookup(D1))?.id).toBe('key_a');
      expect((await f.store.lookup(D2))?.id).toBe('key_a');
      f.clock.set(graceEnd - 1);
      expect((await f.store.lookup(D1))?.id).toBe('key_a');
      f.clock.set(graceEnd);
      expect(await f.store.lookup(D1)).toBeNull();
      expect((await f.store.lookup(D2))?.id).toBe('key_a');
    });

    it('a rotation without grace ends the old secret at once', async () => {
      await f.store.createKey(record(), { digest: D1 });
      await f.store.rotateKey('key_a', { digest: D2 }, f.clock.now());
      expect(await f.store.lookup(D1)).toBeNull();
      expect((await f.store.lookup(D2))?.id).toBe('key_a');
    });

    it('upsert is idempotent: created, then unchanged, then updated', async () => {
      expect(await f.store.upsertKey(record(), { digest: D1 })).toBe('created');
      expect(await f.store.upsertKey(record(), { digest: D1 })).toBe('unchanged');
      expect(await f.store.upsertKey(record({ owner: 'new' }), { digest: D1 })).toBe('updated');
      expect((await f.store.lookup(D1))?.owner).toBe('new');
      await expect(f.store.upsertKey(record({ id: 'key_b' }), { digest: D1 })).rejects.toBeInstanceOf(StoreConflictError);
    });

    describe('batch methods', () => {
      const upsertKeys = (entries: { record: KeyRecord; digest: DigestEntry }[]) => f.store.upsertKeys!(entries);

      it('upsertKeys gives the outcomes of consecutive upsertKey calls, and the keys are found and listed', async () => {
        await f.store.createKey(record({ id: 'key_old' }), { digest: D3 });
        expect(
          await upsertKeys([
            { record: record({ id: 'key_1' }), digest: { digest: D1 } },
            { record: record({ id: 'key_old' }), digest: { digest: D3 } }, // same record and digest
            { record: record({ id: 'key_2' }), digest: { digest: D2 } },
            { record: record({ id: 'key_2', owner: 'new' }), digest: { digest: D2 } }, // again, changed
          ]),
        ).toEqual(['created', 'unchanged', 'created', 'updated']);
        expect((await f.store.lookup(D1))?.id).toBe('key_1');
        expect((await f.store.lookup(D2))?.owner).toBe('new');
        expect((await f.store.listKeys()).map((r) => r.id).sort()).toEqual(['key_1', 'key_2', 'key_old']);
        expect(await upsertKeys([{ record: record({ id: 'key_1' }), digest: { digest: D1 } }])).toEqual(['unchanged']);
        expect(await upsertKeys([])).toEqual([]);
      });

      it('upsertKeys writes nothing of a batch when one secret belongs to another key (stored, or earlier in the batch)', async () => {
        await f.store.createKey(record({ id: 'key_old' }), { digest: D3 });
        await expect(
          upsertKeys([
            { record: record({ id: 'key_1' }), digest: { digest: D1 } },
            { record: record({ id: 'key_2' }), digest: { digest: D3 } },
          ]),
        ).rejects.toBeInstanceOf(StoreConflictError);
        await expect(
          upsertKeys([
            { record: record({ id: 'key_1' }), digest: { digest: D1 } },
            { record: record({ id: 'key_2' }), digest: { digest: D1 } },
          ]),
        ).rejects.toBeInstanceOf(StoreConflictError);
        expect(await f.store.getKey('key_1')).toBeNull();
        expect(await f.store.lookup(D1)).toBeNull();
        expect((await f.store.listKeys()).map((r) => r.id)).toEqual(['key_old']);
      });

      it('upsertKeys may take a secret whose grace has ended, and writes digests with their end', async () => {
        await f.store.createKey(record({ id: 'key_old' }), { digest: D1 });
        await f.store.rotateKey('key_old', { digest: D2 }, f.clock.now() + 1000);
        const graceEnd = f.clock.now() + 5000;
        expect(await upsertKeys([{ record: record({ id: 'key_3' }), digest: { digest: D3, expiresAt: graceEnd } }])).toEqual(['created']);
        await expect(upsertKeys([{ record: record({ id: 'key_new' }), digest: { digest: D1 } }])).rejects.toBeInstanceOf(StoreConflictError);
        f.clock.set(f.clock.now() + 1000);
        expect(await upsertKeys([{ record: record({ id: 'key_new' }), digest: { digest: D1 } }])).toEqual(['created']);
        expect((await f.store.lookup(D1))?.id).toBe('key_new');
        expect((await f.store.lookup(D3))?.id).toBe('key_3');
        f.clock.set(graceEnd);
        expect(await f.store.lookup(D3)).toBeNull();
      });

      it('getKeys and digestOwners answer in order, null where unknown or past its grace', async () => {
        await f.store.createKey(record({ id: 'key_1' }), { digest: D1 });
        await f.store.createKey(record({ id: 'key_2', owner: 'two' }), { digest: D2 });
        await f.store.rotateKey('key_2', { digest: D3 }, f.clock.now() + 1000);
        expect((await f.store.getKeys!(['key_2', 'key_nope', 'key_1'])).map((r) => r?.owner ?? null)).toEqual(['two', null, 'acme']);
        expect(await f.store.digestOwners!([D3, D4, D2, D1])).toEqual(['key_2', null, 'key_2', 'key_1']);
        f.clock.set(f.clock.now() + 1000);
        expect(await f.store.digestOwners!([D2, D3])).toEqual([null, 'key_2']);
        expect(await f.store.getKeys!([])).toEqual([]);
      });

      it('updateKeys replaces known records, then refuses the unknown ids', async () => {
        await f.store.createKey(record({ id: 'key_1' }), { digest: D1 });
        await f.store.createKey(record({ id: 'key_2' }), { digest: D2 });
        await f.store.updateKeys!([record({ id: 'key_1', status: 'disabled' }), record({ id: 'key_2', owner: 'b' })]);
        expect((await f.store.lookup(D1))?.status).toBe('disabled');
        expect((await f.store.lookup(D2))?.owner).toBe('b');
        await expect(f.store.updateKeys!([record({ id: 'key_nope' }), record({ id: 'key_1', owner: 'c' })])).rejects.toThrow(
          new StoreConflictError('no key key_nope'),
        );
        expect((await f.store.getKey('key_1'))?.owner).toBe('c');
        expect(await f.store.getKey('key_nope')).toBeNull();
      });

      it('tells listeners (also on another instance) about every updated key, not about created ones', async () => {
        await f.store.createKey(record({ id: 'key_1' }), { digest: D1 });
        const watcher = f.peer ?? f.store;
        const events: string[] = [];
        const ready = waitFor(() => events.includes('plan:marker'), () => events);
        watcher.onInvalidate((e) => events.push(e.kind === 'all' ? 'all' : `${e.kind}:${e.id}`));
        await watcher.invalidationsLive();
        await upsertKeys([
          { record: record({ id: 'key_1', owner: 'changed' }), digest: { digest: D1 } },
          { record: record({ id: 'key_2' }), digest: { digest: D2 } },
        ]);
        await upsertKeys([{ record: record({ id: 'key_2' }), digest: { digest: D2 } }]); // unchanged: no message
        await f.store.updateKeys!([record({ id: 'key_2', owner: 'x' }), record({ id: 'key_1', owner: 'y' })]);
        await f.store.putPlan({ name: 'marker', limits: [] });
        await ready;
        expect(events).toEqual(['key:key_1', 'key:key_2', 'key:key_1', 'plan:marker']);
      });
    });

    it('stores, lists, replaces and deletes plans', async () => {
      expect(await f.store.putPlan({ name: 'pro', limits: [{ count: 10, window: 's' }] })).toBe('created');
      expect(await f.store.putPlan({ name: 'free', limits: [{ count: 1, window: 'm' }] })).toBe('created');
      expect(await f.store.putPlan({ name: 'free', limits: [{ count: 1, window: 'm' }] })).toBe('unchanged');
      expect(await f.store.putPlan({ name: 'free', limits: [{ count: 2, window: 'm' }] })).toBe('updated');
      expect((await f.store.listPlans()).map((p) => p.name)).toEqual(['free', 'pro']);
      expect((await f.store.getPlan('free'))?.limits).toEqual([{ count: 2, window: 'm' }]);
      expect(await f.store.deletePlan('free')).toBe(true);
      expect(await f.store.deletePlan('free')).toBe(false);
      expect(await f.store.getPlan('free')).toBeNull();
    });

    it('tells listeners (also on another instance) which key or plan changed', async () => {
      const watcher = f.peer ?? f.store;
      const events: string[] = [];
      const ready = waitFor(() => events.length >= 2, () => events);
      watcher.onInvalidate((e) => events.push(e.kind === 'all' ? 'all' : `${e.kind}:${e.id}`));
      await watcher.invalidationsLive();
      await f.store.createKey(record(), { digest: D1 });
      await f.store.putPlan({ name: 'pro', limits: [] });
      await ready;
      expect(events).toEqual(['key:key_a', 'plan:pro']);
    });

    it('returns copies: changing a returned record does not change the store', async () => {
      await f.store.createKey(record(), { digest: D1 });
      const r = await f.store.getKey('key_a');
      r!.scopes.push('admin');
      expect((await f.store.getKey('key_a'))?.scopes).toEqual(['read']);
    });
  });
}

/** Resolves when `done()` holds; polls the event loop (no fixed sleeps), fails after 5 s. */
export async function waitFor<T>(done: () => boolean, value: () => T, timeoutMs = 5000): Promise<T> {
  const start = Date.now();
  while (!done()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not reached in time');
    await new Promise((r) => setImmediate(r));
  }
  return value();
}

