// The key record and the KeyStore interface implemented by the Redis store and its in-memory twin.
import type { Limit, Plan } from '../limits/types';

export type KeyStatus = 'active' | 'disabled' | 'revoked';

/** What keygate knows about an API key. Never holds the secret or its digest. */
export interface KeyRecord {
  id: string;
  owner: string;
  plan: string;
  name?: string;
  scopes: string[];
  status: KeyStatus;
  /** ms since epoch */
  createdAt: number;
  /** ms since epoch; absent = never expires */
  expiresAt?: number;
  /** CIDR allowlist (IPv4 and IPv6); empty = any address */
  cidrs: string[];
  metadata: Record<string, string>;
  /** Per-key limits that replace the plan's limits. */
  limits?: Limit[];
  /** The key carries a balance of credits (see the limiter). */
  credits?: boolean;
}

/** A digest that identifies a key, with an optional end (rotation grace). */
export interface DigestEntry {
  digest: string;
  /** ms since epoch after which this digest no longer finds the key */
  expiresAt?: number;
}

export interface KeyFilter {
  owner?: string;
}

/** Raised for expected admin-side refusals (duplicate id, unknown key, ...). */
export class StoreConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreConflictError';
  }
}

/**
 * Called with the id of a key (or name of a plan) whose stored state changed, or with kind
 * 'all' when changes may have been missed (the feed reconnected): forget everything.
 */
export type InvalidationEvent = { kind: 'key' | 'plan'; id: string } | { kind: 'all' };
export type InvalidationListener = (event: InvalidationEvent) => void;

/**
 * Storage of keys and plans. The Check path only calls `lookup` and `getPlan`;
 * the rest serves the admin CLI and the seed loader. Only infrastructure
 * failures throw, plus StoreConflictError for refused admin writes.
 */
export interface KeyStore {
  /** The record a digest identifies, or null (unknown digest, or its grace has ended). */
  lookup(digest: string): Promise<KeyRecord | null>;
  getKey(id: string): Promise<KeyRecord | null>;
  listKeys(filter?: KeyFilter): Promise<KeyRecord[]>;
  /** Creates a key; refuses an existing id or a digest that already belongs to another key. */
  createKey(record: KeyRecord, digest: DigestEntry): Promise<void>;
  /**
   * Writes a key and its digest whether or not it exists (idempotent import).
   * Refuses a digest that belongs to a different key id.
   */
  upsertKey(record: KeyRecord, digest: DigestEntry): Promise<'created' | 'updated' | 'unchanged'>;
  /** Replaces a stored record (same id); refuses an unknown id. */
  updateKey(record: KeyRecord): Promise<void>;

  // Batch forms for bulk admin work (`keygate-admin key import`, seed files): each costs a few
  // round trips per call on Redis, whatever the number of entries. Optional so that decorators
  // (the metrics wrapper of the Check path) need not forward them; callers fall back to the
  // one-key methods (src/admin/bulk.ts). Both stores implement them.

  /** getKey for many ids: the records in the order of `ids`, null where unknown. */
  getKeys?(ids: readonly string[]): Promise<(KeyRecord | null)[]>;
  /**
   * The id of the key each digest finds, in order; null for an unknown digest or one whose
   * grace has ended. Unlike lookup, the key's record is not read (nor required to exist).
   */
  digestOwners?(digests: readonly string[]): Promise<(string | null)[]>;
  /**
   * upsertKey for many keys, with the outcomes a sequence of upsertKey calls would give (an id or
   * digest may appear more than once). Every entry is checked before anything is written: when
   * any digest belongs to a different live key, throws StoreConflictError and writes nothing.
   * Announces each updated key to the invalidation listeners (on Redis: one message per call,
   * see INVALIDATION_CHANNEL), but not created ones: no cache holds a record for an id that did
   * not exist, and an unknown digest remembered by a cache ends with its short TTL.
   */
  upsertKeys?(entries: readonly { record: KeyRecord; digest: DigestEntry }[]): Promise<('created' | 'updated' | 'unchanged')[]>;
  /**
   * updateKey for many records: writes those whose id exists, announces them (one message per
   * call on Redis), then throws StoreConflictError naming the unknown ids, if any.
   */
  updateKeys?(records: readonly KeyRecord[]): Promise<void>;

  /** Adds `digest` to the key and ends every other digest of it at `graceUntil` (or now). */
  rotateKey(id: string, digest: DigestEntry, graceUntil: number): Promise<void>;
  getPlan(name: string): Promise<Plan | null>;
  listPlans(): Promise<Plan[]>;
  putPlan(plan: Plan): Promise<'created' | 'updated' | 'unchanged'>;
  /** false when no such plan */
  deletePlan(name: string): Promise<boolean>;
  /** Throws when the store cannot be reached. */
  ping(): Promise<void>;
  /** Subscribes to changes made by any writer (pub/sub for Redis). Returns an unsubscribe. */
  onInvalidate(listener: InvalidationListener): () => void;
  /** Resolves once invalidations from other writers are being received. */
  invalidationsLive(): Promise<void>;
  close(): Promise<void>;
}
