// CachedKeyLookup: hits and misses, TTLs on the manual clock, negative caching, invalidation
// through the store's feed, the LRU bound, one store call for concurrent misses, and no stale
// fill from a lookup that was in flight during an invalidation.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/clock';
import { CachedKeyLookup, type CacheEvents, type KeyCacheOptions } from '../../../src/keys/cache';
import { makeDigester } from '../../../src/keys/digest';
import { MemoryKeyStore } from '../../../src/keys/memory-store';
import type { KeyRecord } from '../../../src/keys/types';
import type { Plan } from '../../../src/limits/types';

const T0 = Date.UTC(2026, 0, 1);
const digestOf = makeDigester();

function record(id: string, extra: Partial<KeyRecord> = {}): KeyRecord {
  return { id, owner: 'acme', plan: 'basic', scopes: [], status: 'active', createdAt: T0, cidrs: [], metadata: {}, ...extra };
}

/**
 * The memory store seen through a counting, optionally gated lookup. The store reads its data when
 * called (as a Redis round trip would); with the gate closed, the answer arrives only on release().
 */
class ObservedStore {
  lookups = 0;
  planReads = 0;
  gated = false;
  failNext: Error | null = null;
  private waiting: (() => void)[] = [];
  readonly store: MemoryKeyStore;

  constructor(readonly inner: MemoryKeyStore) {
    this.store = new Proxy(inner, {
      get: (target, prop, receiver) => {
        if (prop === 'lookup') {
          return (digest: string) => {
            this.lookups++;
            if (this.failNext) {
              const err = this.failNext;
              this.failNext = null;
              return Promise.reject(err);
            }
            const answer = target.lookup(digest);
            if (!this.gated) return answer;
            return new Promise<KeyRecord | null>((resolve, reject) => this.waiting.push(() => answer.then(resolve, reject)));
          };
        }
        if (prop === 'getPlan') {
          return (name: string) => {
            this.planReads++;
            return target.getPlan(name);
          };
        }
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }

  /** Lets every gated answer through, oldest first. */
  release(): void {
    const all = this.waiting;
    this.waiting = [];
    for (const go of all) go();
  }

  get pending(): number {
    return this.waiting.length;
  }
}

class CountingEvents implements CacheEvents {
  hits = 0;
  misses = 0;
  invalidations = 0;
  hit(): void {
    this.hits++;
  }
  miss(): void {
    this.misses++;
  }
  invalidation(): void {
    this.invalidations++;
  }
}

let clock: ManualClock;
let memory: MemoryKeyStore;
let observed: ObservedStore;
let events: CountingEvents;
let cache: CachedKeyLookup;

function makeCache(opts: Partial<KeyCacheOptions> = {}): CachedKeyLookup {
  cache?.close();
  cache = new CachedKeyLookup(observed.store, clock, { ttlMs: 1000, negativeTtlMs: 500, maxKeys: 100, ...opts }, events);
  return cache;
}

async function addKey(id: string, secret: string, extra: Partial<KeyRecord> = {}): Promise<string> {
  const digest = digestOf(secret);
  await memory.createKey(record(id, extra), { digest });
  return digest;
}

beforeEach(() => {
  clock = new ManualClock(T0);
  memory = new MemoryKeyStore(clock);
  observed = new ObservedStore(memory);
  events = new CountingEvents();
  makeCache();
});

afterEach(() => cache.close());

describe('hits and misses', () => {
  it('the first lookup misses and asks the store; the second hits and does not', async () => {
    const d = await addKey('key_a', 'kg_secret_a');
    expect((await cache.lookup(d))?.id).toBe('key_a');
    expect([events.misses, events.hits, observed.lookups]).toEqual([1, 0, 1]);
    expect((await cache.lookup(d))?.id).toBe('key_a');
    expect([events.misses, events.hits, observed.lookups]).toEqual([1, 1, 1]);
    expect(cache.size).toBe(1);
  });

  it('different digests are cached apart', async () => {
    const a = await addKey('key_a', 'kg_secret_a');
    const b = await addKey('key_b', 'kg_secret_b');
    expect((await cache.lookup(a))?.id).toBe('key_a');
    expect((await cache.lookup(b))?.id).toBe('key_b');
    expect((await cache.lookup(a))?.id).toBe('key_a');
    expect([events.misses, events.hits, observed.lookups]).toEqual([2, 1, 2]);
  });
});

describe('TTL', () => {
  it('a record is served from the cache until ttlMs has passed, then read again', async () => {
    const d = await addKey('key_a', 'kg_secret_a');
    await cache.lookup(d);
    clock.advance(999);
    await cache.lookup(d);
    expect(observed.lookups).toBe(1);
    clock.advance(1);
    await cache.lookup(d);
    expect(observed.lookups).toBe(2);
    expect(events.misses).toBe(2);
  });

  it('the TTL bounds staleness when an invalidation is lost', async () => {
    const d = await addKey('key_a', 'kg_secret_a');
    await cache.lookup(d);
    cache.close(); // no more invalidations reach this cache: as if messages were lost
    await memory.updateKey(record('key_a', { status: 'revoked' }));
    expect((await cache.lookup(d))?.status).toBe('active');
    clock.advance(1000);
    expect((await cache.lookup(d))?.status).toBe('revoked');
  });

  it('ttlMs 0 turns record caching off', async () => {
    makeCache({ ttlMs: 0 });
    const d = await addKey('key_a', 'kg_secret_a');
    await cache.lookup(d);
    await cache.lookup(d);
    expect(observed.lookups).toBe(2);
    expect(cache.size).toBe(0);
  });
});

describe('negative caching', () => {
  it('an unknown digest is remembered as unknown for negativeTtlMs', async () => {
    const d = digestOf('kg_unknown');
    expect(await cache.lookup(d)).toBeNull();
    expect(await cache.lookup(d)).toBeNull();
    expect(observed.lookups).toBe(1);
    expect(events.hits).toBe(1);
    clock.advance(499);
    expect(await cache.lookup(d)).toBeNull();
    expect(observed.lookups).toBe(1);
    clock.advance(1);
    expect(await cache.lookup(d)).toBeNull();
    expect(observed.lookups).toBe(2);
  });

  it('uses its own TTL, not the record TTL', async () => {
    makeCache({ ttlMs: 60_000, negativeTtlMs: 100 });
    const known = await addKey('key_a', 'kg_secret_a');
    const unknown = digestOf('kg_unknown');
    await cache.lookup(known);
    await cache.lookup(unknown);
    clock.advance(100);
    await cache.lookup(known);
    await cache.lookup(unknown);
    expect(observed.lookups).toBe(3); // only the unknown digest was read again
  });

  it('negativeTtlMs 0 turns negative caching off', async () => {
    makeCache({ negativeTtlMs: 0 });
    const d = digestOf('kg_unknown');
    await cache.lookup(d);
    await cache.lookup(d);
    expect(observed.lookups).toBe(2);
  });

  it('a key created for a digest remembered as unknown is found once the negative TTL ends', async () => {
    const secret = 'imported-foreign-key-0123456789';
    expect(await cache.lookup(digestOf(secret))).toBeNull();
    await addKey('key_new', secret);
    clock.advance(500);
    expect((await cache.lookup(digestOf(secret)))?.id).toBe('key_new');
  });
});

describe('invalidation through the store feed', () => {
  it('a change to a key drops its cached record at once', async () => {
    const d = await addKey('key_a', 'kg_secret_a');
    expect((await cache.lookup(d))?.status).toBe('active');
    const before = events.invalidations;
    await memory.updateKey(record('key_a', { status: 'revoked' }));
    expect(events.invalidations).toBe(before + 1);
    expect((await cache.lookup(d))?.status).toBe('revoked');
    expect(observed.lookups).toBe(2);
  });

  it('drops only the changed key: others stay cached', async () => {
    const a = await addKey('key_a', 'kg_secret_a');
    const b = await addKey('key_b', 'kg_secret_b');
    await cache.lookup(a);
    await cache.lookup(b);
    await memory.updateKey(record('key_a', { status: 'disabled' }));
    await cache.lookup(b);
    expect(observed.lookups).toBe(2);
    expect((await cache.lookup(a))?.status).toBe('disabled');
    expect(observed.lookups).toBe(3);
  });

  it('drops every cached digest of the key (old and new secret during a rotation)', async () => {
    const oldDigest = await addKey('key_a', 'kg_secret_old');
    const newDigest = digestOf('kg_secret_new');
    await memory.rotateKey('key_a', { digest: newDigest }, T0 + 3_600_000);
    await cache.lookup(oldDigest);
    await cache.lookup(newDigest);
    expect(observed.lookups).toBe(2);
    await memory.updateKey(record('key_a', { status: 'revoked' }));
    expect((await cache.lookup(oldDigest))?.status).toBe('revoked');
    expect((await cache.lookup(newDigest))?.status).toBe('revoked');
    expect(observed.lookups).toBe(4);
  });

  it('invalidateKey for an id that is not cached changes nothing else', async () => {
    const d = await addKey('key_a', 'kg_secret_a');
    await cache.lookup(d);
    cache.invalidateKey('key_other');
    await cache.lookup(d);
    expect(observed.lookups).toBe(1);
  });

  it('after close() the cache no longer listens', async () => {
    const d = await addKey('key_a', 'kg_secret_a');
    await cache.lookup(d);
    cache.close();
    const before = events.invalidations;
    await memory.updateKey(record('key_a', { status: 'revoked' }));
    expect(events.invalidations).toBe(before);
    expect((await cache.lookup(d))?.status).toBe('active');
  });

  it('clear() drops every record and plan', async () => {
    const d = await addKey('key_a', 'kg_secret_a');
    await memory.putPlan({ name: 'basic', limits: [] });
    await cache.lookup(d);
    await cache.plan('basic');
    cache.clear();
    expect(cache.size).toBe(0);
    await cache.lookup(d);
    await cache.plan('basic');
    expect([observed.lookups, observed.planReads]).toEqual([2, 2]);
  });
});

describe('plans', () => {
  const basic: Plan = { name: 'basic', limits: [{ count: 10, window: 's' }] };

  it('are cached for ttlMs', async () => {
    await memory.putPlan(basic);
    expect(await cache.plan('basic')).toEqual(basic);
    expect(await cache.plan('basic')).toEqual(basic);
    expect(observed.planReads).toBe(1);
    clock.advance(1000);
    await cache.plan('basic');
    expect(observed.planReads).toBe(2);
  });

  it('a changed plan is read again at once', async () => {
    await memory.putPlan(basic);
    await cache.plan('basic');
    const bigger: Plan = { name: 'basic', limits: [{ count: 100, window: 's' }] };
    await memory.putPlan(bigger);
    expect(await cache.plan('basic')).toEqual(bigger);
  });

  it('a missing plan is null, and a plan created later is seen at once', async () => {
    expect(await cache.plan('basic')).toBeNull();
    await memory.putPlan(basic);
    expect(await cache.plan('basic')).toEqual(basic);
  });

  it('a deleted plan is gone at once', async () => {
    await memory.putPlan(basic);
    await cache.plan('basic');
    await memory.deletePlan('basic');
    expect(await cache.plan('basic')).toBeNull();
  });

  it('concurrent misses for one plan cause ONE store call (as for keys), and all get the plan', async () => {
    await memory.putPlan(basic);
    const all = await Promise.all(Array.from({ length: 50 }, () => cache.plan('basic')));
    expect(all.every((p) => p?.name === 'basic')).toBe(true);
    expect(observed.planReads).toBe(1);
    // after an invalidation a new read does not join the old one
    const before = cache.plan('basic');
    clock.advance(1000);
    const during = cache.plan('basic');
    await memory.putPlan({ name: 'basic', limits: [{ count: 100, window: 's' }] });
    expect((await cache.plan('basic'))?.limits[0].count).toBe(100);
    await Promise.all([before, during]);
  });

  it('cachedKey / cachedPlan answer fresh entries at once, and nothing for stale or absent ones', async () => {
    const d = await addKey('key_a', 'kg_secret_a');
    await memory.putPlan(basic);
    expect(cache.cachedKey(d)).toBeUndefined();
    expect(cache.cachedPlan('basic')).toBeUndefined();
    await cache.lookup(d);
    await cache.plan('basic');
    const hits = events.hits;
    expect(cache.cachedKey(d)?.id).toBe('key_a');
    expect(events.hits).toBe(hits + 1);
    expect(cache.cachedPlan('basic')).toEqual(basic);
    expect(await cache.lookup('0'.repeat(64))).toBeNull();
    expect(cache.cachedKey('0'.repeat(64))).toBeNull();
    clock.advance(1000);
    expect(cache.cachedKey(d)).toBeUndefined();
    expect(cache.cachedPlan('basic')).toBeUndefined();
  });
});

describe('LRU bound', () => {
  it('keeps at most maxKeys records, dropping the least recently used', async () => {
    makeCache({ maxKeys: 2 });
    const a = await addKey('key_a', 'kg_secret_a');
    const b = await addKey('key_b', 'kg_secret_b');
    const c = await addKey('key_c', 'kg_secret_c');
    await cache.lookup(a);
    await cache.lookup(b);
    await cache.lookup(a); // a is now more recent than b
    await cache.lookup(c); // evicts b
    expect(cache.size).toBe(2);
    expect(observed.lookups).toBe(3);
    await cache.lookup(a);
    await cache.lookup(c);
    expect(observed.lookups).toBe(3);
    await cache.lookup(b);
    expect(observed.lookups).toBe(4);
    expect(cache.size).toBe(2);
  });

  it('counts unknown digests against the bound too', async () => {
    makeCache({ maxKeys: 3 });
    for (let i = 0; i < 50; i++) await cache.lookup(digestOf(`kg_unknown_${i}`));
    expect(cache.size).toBe(3);
  });

  it('an evicted record that is invalidated later causes no error, and the key is read fresh', async () => {
    makeCache({ maxKeys: 1 });
    const a = await addKey('key_a', 'kg_secret_a');
    const b = await addKey('key_b', 'kg_secret_b');
    await cache.lookup(a);
    await cache.lookup(b); // evicts a
    await memory.updateKey(record('key_a', { status: 'revoked' }));
    expect((await cache.lookup(a))?.status).toBe('revoked');
  });
});

describe('concurrency', () => {
  it('concurrent misses for one digest cause ONE store call, and all get the record', async () => {
    const d = await addKey('key_a', 'kg_secret_a');
    observed.gated = true;
    const all = Promise.all([cache.lookup(d), cache.lookup(d), cache.lookup(d), cache.lookup(d)]);
    expect(observed.lookups).toBe(1);
    observed.release();
    const results = await all;
    expect(results.map((r) => r?.id)).toEqual(['key_a', 'key_a', 'key_a', 'key_a']);
    expect(observed.lookups).toBe(1);
    await cache.lookup(d);
    expect(observed.lookups).toBe(1);
  });

  it('concurrent misses for an unknown digest also share one call', async () => {
    observed.gated = true;
    const d = digestOf('kg_unknown');
    const all = Promise.all([cache.lookup(d), cache.lookup(d)]);
    observed.release();
    expect(await all).toEqual([null, null]);
    expect(observed.lookups).toBe(1);
  });

  it('a lookup in flight during an invalidation does not fill the cache with its stale answer', async () => {
    const d = await addKey('key_a', 'kg_secret_a');
    observed.gated = true;
    const inFlight = cache.lookup(d); // the store has read the active record; the answer is on its way
    await memory.updateKey(record('key_a', { status: 'revoked' })); // invalidation arrives meanwhile
    observed.release();
    expect((await inFlight)?.status).toBe('active'); // it started before the change
    observed.gated = false;
    expect((await cache.lookup(d))?.status).toBe('revoked');
    expect(observed.lookups).toBe(2);
  });

  it('a lookup that starts after an invalidation does not join one that started before it', async () => {
    // The older lookup read the store before the change; a Check that starts after the
    // invalidation arrived must not be handed that pre-change record.
    const d = await addKey('key_a', 'kg_secret_a');
    observed.gated = true;
    const before = cache.lookup(d);
    await memory.updateKey(record('key_a', { status: 'revoked' }));
    const after = cache.lookup(d);
    expect(observed.lookups).toBe(2);
    observed.release();
    expect((await before)?.status).toBe('active');
    expect((await after)?.status).toBe('revoked');
  });

  it('a store failure reaches every waiting caller, is not cached, and the next lookup retries', async () => {
    const d = await addKey('key_a', 'kg_secret_a');
    observed.failNext = new Error('connection refused');
    await expect(Promise.all([cache.lookup(d), cache.lookup(d)])).rejects.toThrow('connection refused');
    expect(observed.lookups).toBe(1);
    expect(cache.size).toBe(0);
    expect((await cache.lookup(d))?.id).toBe('key_a');
    expect(observed.lookups).toBe(2);
  });
});
