// One key as the seed file and `keygate-admin key import` describe it (an "entry"), checked field
// by field into a KeyRecord plus the digest that finds it; and the rules for writing such a key
// over what the store already holds (keep createdAt, never un-revoke, keep fields the file
// cannot express). The plaintext secret of an entry is turned into its digest here and dropped:
// it is never kept, returned or echoed in a message.
import * as crypto from 'node:crypto';
import { parseCidr } from '../keys/cidr';
import type { Digester } from '../keys/digest';
import { normalizeDigest } from '../keys/digest';
import { classifyKey, DEFAULT_KEY_PREFIX } from '../keys/format';
import { isValidKeyId, isValidName, isValidScope, KEY_STATUSES, recordProblems } from '../keys/record';
import type { KeyRecord, KeyStatus, KeyStore } from '../keys/types';
import { PlanError, validateLimits } from '../limits/plans';
import { bulkOf } from './bulk';
import { parseInstant } from './time';

/** A key ready to be written: its record and the digest of its secret. */
export interface EntryKey {
  /** canonical (canonicalRecord), as parseKeyEntry returns it */
  record: KeyRecord;
  digest: string;
}

export interface EntryOptions {
  digester: Digester;
  /** createdAt of keys that are not in the store yet */
  now: number;
  /**
   * Prefixes whose keys must carry a valid checksum (the configured KEYGATE_KEY_PREFIX): an
   * entry's `key` with such a prefix and a bad checksum could never pass a Check, so it is refused.
   */
  nativePrefixes?: readonly string[];
}

/** Where an entry sits in its file, for messages: `keys[3].owner` or `line 12 (owner)`. */
export interface EntryLocation {
  /** the entry as a whole: `keys[3]`, `line 12` */
  whole: string;
  field(name: string): string;
}

export const seedLocation = (index: number): EntryLocation => ({
  whole: `keys[${index}]`,
  field: (name) => `keys[${index}].${name}`,
});

export const lineLocation = (line: number): EntryLocation => ({
  whole: `line ${line}`,
  field: (name) => `line ${line} (${name})`,
});

export const ENTRY_FIELDS = [
  'id',
  'owner',
  'plan',
  'name',
  'scopes',
  'status',
  'expires',
  'cidrs',
  'metadata',
  'limits',
  'key',
  'digest',
] as const;

const NAME_RULE = '1-128 letters, digits, ".", "_", ":", "@" or "-", starting with a letter or digit';
const NAME_TEXT_RULE = 'text of at most 200 characters';
const STATUS_RULE = `one of ${KEY_STATUSES.join(', ')}`;
const isValidKeyName = (s: string) => s.length <= 200;
const isKeyStatus = (s: string) => (KEY_STATUSES as readonly string[]).includes(s);
const isCidr = (s: string) => parseCidr(s) !== null;
const ID_RULE = '1-128 letters, digits, ".", "_", ":" or "-", starting with a letter or digit';
const MAX_METADATA_ENTRIES = 64;

/** SHA-256 of a text as hex: the one-shot crypto.hash (Node ≥ 20.12, several times faster for short texts) when there is one. */
const sha256Hex: (text: string) => string =
  typeof crypto.hash === 'function' ? (text) => crypto.hash('sha256', text, 'hex') : (text) => crypto.createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * The stable id of a key given without one: `key_` + the first 16 hex characters of
 * SHA-256("id:" + digest). Re-importing the same secret yields the same id, so imports are
 * idempotent. The id is a hash of the digest (itself a one-way hash, keyed when a pepper is set):
 * it cannot be turned back into the secret or the digest. Keys with little entropy (short
 * foreign keys) should still get an explicit id, or a pepper, so the public id is no guessing aid.
 */
export function derivedKeyId(digest: string): string {
  return `key_${sha256Hex(`id:${digest}`).slice(0, 16)}`;
}

/** Quotes a value for a message, unless it looks like an API key (it might be one, misplaced). */
export function shown(value: unknown, nativePrefixes: readonly string[] = [DEFAULT_KEY_PREFIX]): string {
  if (typeof value === 'string') {
    if (classifyKey(value, nativePrefixes) === 'native' || value.length > 64) return '(value not shown)';
    return JSON.stringify(value);
  }
  const text = JSON.stringify(value);
  return text === undefined || text.length > 64 ? `(a ${Array.isArray(value) ? 'list' : typeof value})` : text;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Checks one entry. Returns the key, or every problem found (each starting with its location).
 * Fields whose names start with "_" are comments and ignored.
 */
export function parseKeyEntry(
  raw: unknown,
  at: EntryLocation,
  opts: EntryOptions,
): { key: EntryKey; problems: [] } | { key: null; problems: string[] } {
  const problems: string[] = [];
  const prefixes = opts.nativePrefixes ?? [DEFAULT_KEY_PREFIX];
  const show = (v: unknown) => shown(v, prefixes);
  if (!isPlainObject(raw)) return { key: null, problems: [`${at.whole}: expected an object with owner, plan and key or digest`] };

  for (const field of Object.keys(raw)) {
    if (field.startsWith('_')) continue;
    if (!(ENTRY_FIELDS as readonly string[]).includes(field)) {
      problems.push(`${at.field(field)}: unknown field (known: ${ENTRY_FIELDS.join(', ')})`);
    }
  }

  const text = (field: string, required: boolean, valid: (s: string) => boolean, rule: string): string | undefined => {
    const v = raw[field];
    if (v === undefined || v === null || v === '') {
      if (required) problems.push(`${at.field(field)}: required`);
      return undefined;
    }
    if (typeof v !== 'string' || !valid(v)) {
      problems.push(`${at.field(field)}: ${show(v)} is not valid (${rule})`);
      return undefined;
    }
    return v;
  };

  const owner = text('owner', true, isValidName, NAME_RULE);
  const plan = text('plan', true, isValidName, NAME_RULE);
  const explicitId = text('id', false, isValidKeyId, ID_RULE);
  const name = text('name', false, isValidKeyName, NAME_TEXT_RULE);
  const statusText = text('status', false, isKeyStatus, STATUS_RULE);

  const list = (field: string, valid: (s: string) => boolean, what: string): string[] => {
    const v = raw[field];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      problems.push(`${at.field(field)}: expected a list of ${what}`);
      return [];
    }
    const out: string[] = [];
    v.forEach((item, i) => {
      if (typeof item !== 'string' || !valid(item)) problems.push(`${at.field(`${field}[${i}]`)}: ${show(item)} is not a valid ${what.replace(/s$/, '')}`);
      else if (!out.includes(item)) out.push(item);
    });
    return out;
  };
  const scopes = list('scopes', isValidScope, 'scopes');
  const cidrs = list('cidrs', isCidr, 'CIDRs');

  let expiresAt: number | undefined;
  if (raw.expires !== undefined && raw.expires !== null && raw.expires !== '') {
    const ms = typeof raw.expires === 'string' ? parseInstant(raw.expires) : null;
    if (ms === null) problems.push(`${at.field('expires')}: ${show(raw.expires)} is not an ISO-8601 time (e.g. 2027-01-31 or 2027-01-31T12:00:00Z)`);
    else expiresAt = ms;
  }

  const metadata: Record<string, string> = {};
  if (raw.metadata !== undefined && raw.metadata !== null) {
    if (!isPlainObject(raw.metadata)) problems.push(`${at.field('metadata')}: expected an object of text values`);
    else {
      const entries = Object.entries(raw.metadata);
      if (entries.length > MAX_METADATA_ENTRIES) problems.push(`${at.field('metadata')}: at most ${MAX_METADATA_ENTRIES} entries`);
      for (const [k, v] of entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        if (k === '' || k.length > 128) problems.push(`${at.field('metadata')}: names must be 1-128 characters`);
        else if (typeof v !== 'string' || v.length > 1024) problems.push(`${at.field(`metadata.${k}`)}: must be text of at most 1024 characters`);
        else metadata[k] = v;
      }
    }
  }

  let limits: KeyRecord['limits'];
  if (raw.limits !== undefined && raw.limits !== null) {
    try {
      const checked = validateLimits(raw.limits, at.field('limits'));
      if (checked.length > 0) limits = checked;
    } catch (err) {
      if (!(err instanceof PlanError)) throw err;
      problems.push(...err.problems);
    }
  }

  let digest: string | undefined;
  const hasKey = raw.key !== undefined && raw.key !== null && raw.key !== '';
  const hasDigest = raw.digest !== undefined && raw.digest !== null && raw.digest !== '';
  if (hasKey && hasDigest) problems.push(`${at.whole}: give either key or digest, not both`);
  else if (!hasKey && !hasDigest) problems.push(`${at.whole}: needs key (the secret) or digest (its 64-hex SHA-256/HMAC)`);
  else if (hasKey) {
    // The secret is never echoed, whatever is wrong with it.
    if (typeof raw.key !== 'string' || classifyKey(raw.key, prefixes) === 'malformed') {
      problems.push(
        `${at.field('key')}: not a usable API key (value not shown): a ${prefixes.map((p) => `"${p}_"`).join('/')} key with a wrong checksum, ` +
          'or not 16-256 visible ASCII characters',
      );
    } else digest = opts.digester(raw.key);
  } else {
    const normal = typeof raw.digest === 'string' ? normalizeDigest(raw.digest.trim()) : null;
    if (normal === null) problems.push(`${at.field('digest')}: expected 64 hex characters, the SHA-256 (or HMAC-SHA-256 with the pepper) of the key (value not shown)`);
    else digest = normal;
  }

  if (problems.length > 0 || owner === undefined || plan === undefined || digest === undefined) {
    return { key: null, problems: problems.length > 0 ? problems : [`${at.whole}: incomplete`] };
  }
  const record = canonicalRecord({
    id: explicitId ?? derivedKeyId(digest),
    owner,
    plan,
    name,
    scopes,
    status: (statusText as KeyStatus | undefined) ?? 'active',
    createdAt: opts.now,
    expiresAt,
    cidrs,
    metadata,
    limits,
  });
  // A safety net: the record rules of the store must agree with the checks above.
  const left = recordProblems(record);
  if (left.length > 0) return { key: null, problems: left.map((p) => `${at.whole}: ${p}`) };
  return { key: { record, digest }, problems: [] };
}

const RECORD_ORDER = ['id', 'owner', 'plan', 'name', 'scopes', 'status', 'createdAt', 'expiresAt', 'cidrs', 'metadata', 'limits', 'credits'];
const RECORD_FIELDS = new Set(RECORD_ORDER);

/**
 * The record with its fields in one fixed order, metadata sorted and absent fields left out, so
 * that an unchanged key serialises to the same JSON and the store can answer "unchanged".
 */
export function canonicalRecord(r: KeyRecord): KeyRecord {
  const source = r as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const field of RECORD_ORDER) {
    const v = source[field];
    if (v === undefined) continue;
    if (field === 'metadata') {
      const meta = v as Record<string, string>;
      const names = Object.keys(meta);
      out.metadata = names.length === 0 ? {} : Object.fromEntries(names.sort().map((k) => [k, meta[k]]));
    } else out[field] = v;
  }
  let extra: string[] | undefined;
  for (const field of Object.keys(source)) if (!RECORD_FIELDS.has(field)) (extra ??= []).push(field);
  if (extra) {
    for (const field of extra.sort()) {
      const v = source[field];
      if (v !== undefined) out[field] = v;
    }
  }
  return out as unknown as KeyRecord;
}

/** Fields an entry sets; everything else on a stored record (e.g. `credits`) is kept on import. */
const ENTRY_RECORD_FIELDS = new Set(['id', 'owner', 'plan', 'name', 'scopes', 'status', 'expiresAt', 'cidrs', 'metadata', 'limits']);

/**
 * The record to store for an entry, given what the store holds under its id: the stored key keeps
 * its createdAt and the fields entries cannot express, and a revoked key stays revoked
 * (revocation is permanent, whatever the file says).
 */
export function mergeWithStored(incoming: KeyRecord, stored: KeyRecord | null): KeyRecord {
  if (!stored) return canonicalRecord(incoming);
  const merged: Record<string, unknown> = {};
  for (const [field, v] of Object.entries(stored)) if (!ENTRY_RECORD_FIELDS.has(field)) merged[field] = v;
  Object.assign(merged, incoming, { createdAt: stored.createdAt });
  if (stored.status === 'revoked') merged.status = 'revoked';
  return canonicalRecord(merged as unknown as KeyRecord);
}

export type WriteOutcome = 'created' | 'updated' | 'unchanged';

/** What writing a key would do, or why it cannot be written. */
export interface StoreCheck {
  conflict?: string;
  outcome: WriteOutcome;
}

/**
 * Reads, never writes: whether each key can be written and what the write would change, in the
 * order of `keys` (two batch reads, whatever the number of keys). Import never changes which
 * secrets open a stored key (that is `key rotate`'s job): a secret that belongs to another key,
 * or a stored key that the given secret does not open (any more), is a conflict. So
 * re-importing an old seed cannot bring back a secret that was rotated out.
 */
export async function checkKeysAgainstStore(store: KeyStore, keys: readonly EntryKey[]): Promise<StoreCheck[]> {
  const bulk = bulkOf(store);
  const [holders, stored] = await Promise.all([bulk.digestOwners(keys.map((k) => k.digest)), bulk.getKeys(keys.map((k) => k.record.id))]);
  return keys.map((key, i) => judge(key, holders[i], stored[i]));
}

/** The check of one key, given the id its digest finds (null: none) and the record stored under its id. */
function judge(key: EntryKey, holder: string | null, stored: KeyRecord | null): StoreCheck {
  const { id } = key.record;
  if (holder !== null && holder !== id) return { conflict: `this secret already belongs to key ${holder}`, outcome: 'unchanged' };
  if (!stored) return { outcome: 'created' };
  if (holder === null) {
    return {
      conflict: `key ${id} exists with another secret (rotated?); import never changes a key's secret (use keygate-admin key rotate ${id})`,
      outcome: 'unchanged',
    };
  }
  return { outcome: sameAsStored(key.record, stored) ? 'unchanged' : 'updated' };
}

function sameAsStored(incoming: KeyRecord, stored: KeyRecord): boolean {
  return JSON.stringify(mergeWithStored(incoming, stored)) === JSON.stringify(canonicalRecord(stored));
}

/**
 * Writes checked keys, in a few batch calls: new keys with their digests (upsertKeys), stored
 * keys' records only (updateKeys: their secrets and grace periods stay as they are). Returns
 * each key's outcome in order. Idempotent; 'unchanged' writes nothing. The keys must have
 * distinct ids (the import and seed checks refuse repeated ids).
 */
export async function writeKeys(store: KeyStore, keys: readonly EntryKey[]): Promise<WriteOutcome[]> {
  const bulk = bulkOf(store);
  const stored = await bulk.getKeys(keys.map((k) => k.record.id));
  const outcomes: WriteOutcome[] = new Array<WriteOutcome>(keys.length).fill('unchanged');
  const creates: { record: KeyRecord; digest: { digest: string } }[] = [];
  const createdAt: number[] = [];
  const updates: KeyRecord[] = [];
  keys.forEach((key, i) => {
    const before = stored[i];
    if (!before) {
      creates.push({ record: key.record, digest: { digest: key.digest } });
      createdAt.push(i);
      return;
    }
    if (sameAsStored(key.record, before)) return;
    updates.push(mergeWithStored(key.record, before));
    outcomes[i] = 'updated';
  });
  const [created] = await Promise.all([
    creates.length > 0 ? bulk.upsertKeys(creates) : Promise.resolve([]),
    updates.length > 0 ? bulk.updateKeys(updates) : Promise.resolve(),
  ]);
  created.forEach((outcome, j) => (outcomes[createdAt[j]] = outcome));
  return outcomes;
}
