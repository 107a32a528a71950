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
    const outcome = this.upsertOne(record, digest);
    if (outcome !== 'unchanged') this.emit('key', record.id);
    return outcome;
  }

  /** upsertKey once its digest is known to be free, without telling listeners. */
  private upsertOne(record: KeyRecord, digest: DigestEntry): 'created' | 'updated' | 'unchanged' {
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
    return before ? 'updated' : 'created';
  }

  async getKeys(ids: readonly string[]): Promise<(KeyRecord | null)[]> {
    return ids.map((id) => {
      const rec = this.keys.get(id);
      return rec ? clone(rec) : null;
    });
  }

  async digestOwners(digests: readonly string[]): Promise<(string | null)[]> {
    const now = this.clock.now();
    return digests.map((digest) => {
      const entry = this.digests.get(digest);
      return entry && (entry.expiresAt === undefined || entry.expiresAt > now) ? entry.id : null;
    });
  }

  async upsertKeys(entries: readonly { record: KeyRecord; digest: DigestEntry }[]): Promise<('created' | 'updated' | 'unchanged')[]> {
    // Check every entry first, over what the entries before it would have written.
    const claimed = new Map<string, string>();
    let conflicts = 0;
    for (const { record, digest } of entries) {
      const owner = claimed.get(digest.digest);
      if (owner !== undefined ? owner !== record.id : this.digestTaken(digest.digest, record.id)) conflicts++;
      else claimed.set(digest.digest, record.id);
    }
    if (conflicts > 0) {
      const which = conflicts === 1 ? 'a secret of this batch already belongs' : `${conflicts} secrets of this batch already belong`;
      throw new StoreConflictError(`${which} to another key; nothing of the batch was written`);
    }
    const outcomes: ('created' | 'updated' | 'unchanged')[] = [];
    const updated = new Set<string>();
    for (const { record, digest } of entries) {
      const outcome = this.upsertOne(record, digest);
      outcomes.push(outcome);
      if (outcome === 'updated') updated.add(record.id);
    }
    for (const id of updated) this.emit('key', id);
    return outcomes;
  }

  async updateKeys(records: readonly KeyRecord[]): Promise<void> {
    const unknown = new Set<string>();
    const written = new Set<string>();
    for (const record of records) {
      if (!this.keys.has(record.id)) unknown.add(record.id);
      else {
        this.keys.set(record.id, clone(record));
        written.add(record.id);
      }
    }
    for (const id of written) this.emit('key', id);
    if (unknown.size > 0) {
      const listed = [...unknown].slice(0, 10).join(', ');
      throw new StoreConflictError(`no key ${listed}${unknown.size > 10 ? ` and ${unknown.size - 10} more` : ''}`);
    }
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
    if (this.digestTaken(digest, id)) throw new StoreConflictError('this secret already belongs to another key');
  }

  /** Whether a live digest of another key holds `digest`. */
  private digestTaken(digest: string, id: string): boolean {
    const owner = this.digests.get(digest);
    const live = owner && (owner.expiresAt === undefined || owner.expiresAt > this.clock.now());
    return Boolean(live && owner.id !== id);
  }

  private setDigest(digest: DigestEntry, id: string): void {
    this.digests.set(digest.digest, digest.expiresAt === undefined ? { id } : { id, expiresAt: digest.expiresAt });
  }

  private emit(kind: 'key' | 'plan', id: string): void {
    for (const l of this.listeners) l({ kind, id });
  }
}
