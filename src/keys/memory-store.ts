// In-process KeyStore: the embedded single-instance store (no REDIS_URL) and the twin of the
// Redis store. It passes the same shared test suite, so the two cannot drift.
import type { Clock } from '../clock';
import { systemClock } from '../clock';
import type { Plan } from '../limits/types';
import {
  StoreConflictError,
  type DigestEntry,
  type InvalidationListener,
  type KeyFilter,
  type KeyRecord,
  type KeyStore,
} from './types';

const clone = <T>(v: T): T => structuredClone(v);

export class MemoryKeyStore implements KeyStore {
  private readonly keys = new Map<string, KeyRecord>();
  /** digest → key id and optional end of validity */
  private readonly digests = new Map<string, { id: string; expiresAt?: number }>();
  private readonly plans = new Map<string, Plan>();
  private readonly listeners = new Set<InvalidationListener>();

  constructor(private readonly clock: Clock = systemClock) {}

  async lookup(digest: string): Promise<KeyRecord | null> {
    const entry = this.digests.get(digest);
    if (!entry) return null;
    if (entry.expiresAt !== undefined && entry.expiresAt <= this.clock.now()) {
      this.digests.delete(digest);
      return null;
    }
    const rec = this.keys.get(entry.id);
    return rec ? clone(rec) : null;
  }

  async getKey(id: string): Promise<KeyRecord | null> {
    const rec = this.keys.get(id);
    return rec ? clone(rec) : null;
  }

  async listKeys(filter: KeyFilter = {}): Promise<KeyRecord[]> {
    return [...this.keys.values()]
      .filter((r) => filter.owner === undefined || r.owner === filter.owner)
      .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))
      .map(clone);
  }

  async createKey(record: KeyRecord, digest: DigestEntry): Promise<void> {
    if (this.keys.has(record.id)) throw new StoreConflictError(`key ${record.id} already exists`);
    this.assertDigestFree(digest.digest, record.id);
    this.keys.set(record.id, clone(record));
    this.setDigest(digest, record.id);
    this.emit('key', record.id);
  }

  async upsertKey(record: KeyRecord, digest: DigestEntry): Promise<'created' | 'updated' | 'unchanged'> {
    this.assertDigestFree(digest.digest, record.id);
    const before = this.keys.get(record.id);
    const digestBefore = this.digests.get(digest.digest);
    const same =
      before !== undefined &&
      JSON.stringify(before) === JSON.stringify(record) &&
      digestBefore?.id === record.id &&
      digestBefore.expiresAt === digest.expiresAt;
    if (same) return 'unchanged';
    this.keys.set(record.id, clone(record));
    this.setDigest(digest, record.id);
    this.emit('key', record.id);
    return before ? 'updated' : 'created';
  }

  async updateKey(record: KeyRecord): Promise<void> {
    if (!this.keys.has(record.id)) throw new StoreConflictError(`no key ${record.id}`);
    this.keys.set(record.id, clone(record));
    this.emit('key', record.id);
  }

  async rotateKey(id: string, digest: DigestEntry, graceUntil: number): Promise<void> {
    if (!this.keys.has(id)) throw new StoreConflictError(`no key ${id}`);
    this.assertDigestFree(digest.digest, id);
    for (const entry of this.digests.values()) {
      if (entry.id === id && (entry.expiresAt === undefined || entry.expiresAt > graceUntil)) entry.expiresAt = graceUntil;
    }
    this.setDigest(digest, id);
    this.emit('key', id);
  }

  async getPlan(name: string): Promise<Plan | null> {
    const p = this.plans.get(name);
    return p ? clone(p) : null;
  }

  async listPlans(): Promise<Plan[]> {
    return [...this.plans.values()].sort((a, b) => a.name.localeCompare(b.name)).map(clone);
  }

  async putPlan(plan: Plan): Promise<'created' | 'updated' | 'unchanged'> {
    const before = this.plans.get(plan.name);
    if (before && JSON.stringify(before) === JSON.stringify(plan)) return 'unchanged';
    this.plans.set(plan.name, clone(plan));
    this.emit('plan', plan.name);
    return before ? 'updated' : 'created';
  }

  async deletePlan(name: string): Promise<boolean> {
    const had = this.plans.delete(name);
    if (had) this.emit('plan', name);
    return had;
  }

  async ping(): Promise<void> {}

  onInvalidate(listener: InvalidationListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async invalidationsLive(): Promise<void> {}

  async close(): Promise<void> {
    this.listeners.clear();
  }

  private assertDigestFree(digest: string, id: string): void {
    const owner = this.digests.get(digest);
    const live = owner && (owner.expiresAt === undefined || owner.expiresAt > this.clock.now());
    if (live && owner.id !== id) throw new StoreConflictError('this secret already belongs to another key');
  }

  private setDigest(digest: DigestEntry, id: string): void {
    this.digests.set(digest.digest, digest.expiresAt === undefined ? { id } : { id, expiresAt: digest.expiresAt });
  }

  private emit(kind: 'key' | 'plan', id: string): void {
    for (const l of this.listeners) l({ kind, id });
  }
}
