// The batch methods of a KeyStore (getKeys, digestOwners, upsertKeys, updateKeys) for the bulk
// admin paths, with a fallback to the one-key methods for a store that lacks them (they are
// optional in the interface so that decorators need not forward them). The Redis and memory
// stores implement them: on Redis one batch costs a few round trips whatever its size.
import type { DigestEntry, KeyRecord, KeyStore } from '../keys/types';
import { StoreConflictError } from '../keys/types';

export type UpsertOutcome = 'created' | 'updated' | 'unchanged';

export interface BulkKeyStore {
  getKeys(ids: readonly string[]): Promise<(KeyRecord | null)[]>;
  digestOwners(digests: readonly string[]): Promise<(string | null)[]>;
  upsertKeys(entries: readonly { record: KeyRecord; digest: DigestEntry }[]): Promise<UpsertOutcome[]>;
  updateKeys(records: readonly KeyRecord[]): Promise<void>;
}

/**
 * The store's own batch methods, or one-key calls in their place. The fallback is slower and
 * weaker: digestOwners goes through lookup (so a digest whose key record is missing counts as
 * unknown), and upsertKeys writes entry by entry, stopping at the first conflict.
 */
export function bulkOf(store: KeyStore): BulkKeyStore {
  return {
    getKeys: store.getKeys?.bind(store) ?? ((ids) => Promise.all(ids.map((id) => store.getKey(id)))),
    digestOwners:
      store.digestOwners?.bind(store) ?? (async (digests) => (await Promise.all(digests.map((d) => store.lookup(d)))).map((r) => r?.id ?? null)),
    upsertKeys:
      store.upsertKeys?.bind(store) ??
      (async (entries) => {
        const out: UpsertOutcome[] = [];
        for (const { record, digest } of entries) out.push(await store.upsertKey(record, digest));
        return out;
      }),
    updateKeys:
      store.updateKeys?.bind(store) ??
      (async (records) => {
        const unknown: string[] = [];
        for (const record of records) {
          try {
            await store.updateKey(record);
          } catch (err) {
            if (!(err instanceof StoreConflictError)) throw err;
            unknown.push(record.id);
          }
        }
        if (unknown.length > 0) throw new StoreConflictError(`no key ${unknown.join(', ')}`);
      }),
  };
}
