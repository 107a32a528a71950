// In-process cache in front of a KeyStore for the Check path: key records by digest (bounded
// LRU, TTL), unknown digests remembered for a shorter TTL, plans by name. Every admin change
// arrives through the store's invalidation feed (Redis pub/sub) and drops the entry at once;
// the TTL is the backstop that bounds staleness if a message is lost. Concurrent misses for the
// same digest (or plan name) share one store call. cachedKey / cachedPlan answer a fresh entry
// synchronously, so that the Check path skips a promise (and the store budget) on a hit.
//
// Expired entries stay until the LRU evicts them, so that when the store fails the Check path
// may use a key record or plan up to `staleMs` past its TTL (KEYGATE_CACHE_STALE_MS;
// staleKey / stalePlan). Remembered unknown keys and missing plans are never offered stale, and
// an entry an invalidation dropped is gone: a revocation that reached keygate is never undone
// by an outage.
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock';
import type { StaleValue } from '../check/store-budget';
import type { Plan } from '../limits/types';
import type { KeyRecord, KeyStore } from './types';

export interface KeyCacheOptions {
  ttlMs: number;
  negativeTtlMs: number;
  maxKeys: number;
  /** how long past its TTL a key record or plan may be offered when the store fails; default 0 (never) */
  staleMs?: number;
}

export interface CacheEvents {
  hit(): void;
  miss(): void;
  invalidation(): void;
}

const noEvents: CacheEvents = { hit() {}, miss() {}, invalidation() {} };

interface Entry<T> {
  value: T;
  expiresAt: number;
}

export class CachedKeyLookup {
  private readonly byDigest: LRUCache<string, Entry<KeyRecord | null>>;
  /** key id → digests cached for it, so an invalidation by id finds them */
  private readonly digestsById = new Map<string, Set<string>>();
  private readonly plans = new Map<string, Entry<Plan | null>>();
  private readonly inflight = new Map<string, Promise<KeyRecord | null>>();
  private readonly inflightPlans = new Map<string, Promise<Plan | null>>();
  /** bumped on every invalidation: a lookup that started before one must not fill the cache */
  private generation = 0;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: KeyStore,
    private readonly clock: Clock,
    private readonly opts: KeyCacheOptions,
    private readonly events: CacheEvents = noEvents,
  ) {
    this.byDigest = new LRUCache({
      max: Math.max(1, opts.maxKeys),
      dispose: (entry, digest) => {
        if (entry.value) this.forgetDigest(entry.value.id, digest);
      },
    });
    this.unsubscribe = store.onInvalidate((e) => {
      if (e.kind === 'key') this.invalidateKey(e.id);
      else if (e.kind === 'plan') this.invalidatePlan(e.id);
      else this.clear();
    });
  }

  /**
   * The fresh cached answer for a digest without waiting: the record, null for a remembered
   * unknown key, undefined when the cache has no fresh entry (then call lookup, which counts
   * the miss). A hit counts as lookup's does.
   */
  cachedKey(digest: string): KeyRecord | null | undefined {
    const cached = this.byDigest.get(digest);
    if (cached === undefined || cached.expiresAt <= this.clock.now()) return undefined;
    this.events.hit();
    return cached.value;
  }

  /** The same for a plan: the plan, null for a remembered missing plan, undefined when not fresh. */
  cachedPlan(name: string): Plan | null | undefined {
    const cached = this.plans.get(name);
    if (cached === undefined || cached.expiresAt <= this.clock.now()) return undefined;
    return cached.value;
  }

  /** The record for a digest, or null when unknown. Throws when the store fails. */
  async lookup(digest: string): Promise<KeyRecord | null> {
    const now = this.clock.now();
    const cached = this.byDigest.get(digest);
    if (cached && cached.expiresAt > now) {
      this.events.hit();
      return cached.value;
    }
    this.events.miss();
    const pending = this.inflight.get(digest);
    if (pending) return pending;
    const generation = this.generation;
    const p: Promise<KeyRecord | null> = this.store.lookup(digest).then(
      (record) => {
        if (this.inflight.get(digest) === p) this.inflight.delete(digest);
        if (generation === this.generation) this.remember(digest, record);
        return record;
      },
      (err: unknown) => {
        if (this.inflight.get(digest) === p) this.inflight.delete(digest);
        throw err;
      },
    );
    this.inflight.set(digest, p);
    return p;
  }

  /**
   * For when the store fails: the cached record of a digest when it expired at most `staleMs`
   * ago (or is fresh again: another lookup refilled it); undefined otherwise, always with
   * `staleMs` 0, and always for a remembered unknown key.
   */
  staleKey(digest: string): StaleValue<KeyRecord> | undefined {
    return this.stale(this.byDigest.get(digest));
  }

  /** The same for a plan; never a remembered missing plan. */
  stalePlan(name: string): StaleValue<Plan> | undefined {
    return this.stale(this.plans.get(name));
  }

  /** The plan, or null when there is none. Concurrent misses share one store call. Throws when the store fails. */
  async plan(name: string): Promise<Plan | null> {
    const now = this.clock.now();
    const cached = this.plans.get(name);
    if (cached && cached.expiresAt > now) return cached.value;
    const pending = this.inflightPlans.get(name);
    if (pending) return pending;
    const generation = this.generation;
    const p: Promise<Plan | null> = this.store.getPlan(name).then(
      (plan) => {
        if (this.inflightPlans.get(name) === p) this.inflightPlans.delete(name);
        if (generation === this.generation && this.opts.ttlMs > 0) this.plans.set(name, { value: plan, expiresAt: now + this.opts.ttlMs });
        return plan;
      },
      (err: unknown) => {
        if (this.inflightPlans.get(name) === p) this.inflightPlans.delete(name);
        throw err;
      },
    );
    this.inflightPlans.set(name, p);
    return p;
  }

  invalidateKey(id: string): void {
    this.generation++;
    // Lookups already on their way may carry the old record: later lookups must not join them.
    this.inflight.clear();
    this.events.invalidation();
    const digests = this.digestsById.get(id);
    if (!digests) return;
    for (const d of [...digests]) this.byDigest.delete(d);
    this.digestsById.delete(id);
  }

  invalidatePlan(name: string): void {
    this.generation++;
    // A read already on its way may carry the old plan: later reads must not join it.
    this.inflightPlans.clear();
    this.events.invalidation();
    this.plans.delete(name);
  }

  /** Drops everything (e.g. after the store reconnects and messages may have been missed). */
  clear(): void {
    this.generation++;
    this.inflight.clear();
    this.inflightPlans.clear();
    this.byDigest.clear();
    this.digestsById.clear();
    this.plans.clear();
  }

  get size(): number {
    return this.byDigest.size;
  }

  close(): void {
    this.unsubscribe();
  }

  private stale<T>(entry: Entry<T | null> | undefined): StaleValue<T> | undefined {
    const staleMs = this.opts.staleMs ?? 0;
    if (!entry || entry.value === null || staleMs <= 0) return undefined;
    const past = Math.max(0, this.clock.now() - entry.expiresAt);
    return past <= staleMs ? { value: entry.value, staleMs: past } : undefined;
  }

  private remember(digest: string, record: KeyRecord | null): void {
    const ttl = record ? this.opts.ttlMs : this.opts.negativeTtlMs;
    if (ttl <= 0) return;
    this.byDigest.set(digest, { value: record, expiresAt: this.clock.now() + ttl });
    if (record) {
      let set = this.digestsById.get(record.id);
      if (!set) this.digestsById.set(record.id, (set = new Set()));
      set.add(digest);
    }
  }

  private forgetDigest(id: string, digest: string): void {
    const set = this.digestsById.get(id);
    if (!set) return;
    set.delete(digest);
    if (set.size === 0) this.digestsById.delete(id);
  }
}
