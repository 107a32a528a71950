// The seed file: plans and keys in one JSON document, loaded by keygate at start-up into the
// embedded store (KEYGATE_SEED_FILE) and into Redis by `keygate-admin import FILE`.
//
//   {
//     "_comment": "fields starting with _ are ignored, at every level",
//     "plans": [ { "name": "pro", "limits": ["10/s", "50000/month"], "description": "..." } ],
//     "keys":  [ { "owner": "acme", "plan": "pro", "key": "kg_..." },
//                { "id": "key_legacy", "owner": "globex", "plan": "pro", "digest": "<64 hex>",
//                  "name": "...", "scopes": ["read"], "status": "active", "expires": "2027-01-01",
//                  "cidrs": ["10.0.0.0/8"], "metadata": {"team": "x"}, "limits": ["5/s"] } ]
//   }
//
// parseSeed checks the whole file and throws one SeedError listing every problem with its JSON
// path; applySeed then checks it against the store (plans referenced, secrets owned by other keys)
// and only when all is well writes plans, then keys. Re-applying the same file changes nothing.
import { readFile } from 'node:fs/promises';
import type { KeyStore } from '../keys/types';
import { PlanError, validateLimits, validatePlan } from '../limits/plans';
import type { Plan } from '../limits/types';
import { chunk, describeJsonError, mapInBatches } from './batches';
import {
  checkKeysAgainstStore,
  parseKeyEntry,
  seedLocation,
  writeKeys,
  type EntryKey,
  type EntryOptions,
  type StoreCheck,
  type WriteOutcome,
} from './key-entry';

export type { EntryKey } from './key-entry';
export { derivedKeyId } from './key-entry';

/** A key of a seed file, with its JSON path (`keys[3]`) for messages. */
export interface SeedKey extends EntryKey {
  path: string;
}

export interface Seed {
  plans: Plan[];
  keys: SeedKey[];
}

export interface SeedCounts {
  plansCreated: number;
  plansUpdated: number;
  keysCreated: number;
  keysUpdated: number;
  /** plans and keys already stored exactly as the file says */
  unchanged: number;
}

export type SeedOptions = EntryOptions;

export interface ApplyOptions {
  /** Check against the store and count what would change, but write nothing. */
  dryRun?: boolean;
  /** Concurrent store calls per batch. */
  batchSize?: number;
}

/** A seed or import file that cannot be loaded; `problems` names every problem, each with its place. */
export class SeedError extends Error {
  constructor(
    readonly problems: string[],
    what = 'seed file',
  ) {
    super(`${what}: ${problems.length} problem${problems.length === 1 ? '' : 's'}, nothing written:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'SeedError';
  }
}

const TOP_FIELDS = ['plans', 'keys'];
const PLAN_FIELDS = ['name', 'limits', 'description', 'shadow'];
const DEFAULT_BATCH = 200;

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function unknownFields(obj: Record<string, unknown>, known: readonly string[], path: (field: string) => string): string[] {
  return Object.keys(obj)
    .filter((f) => !f.startsWith('_') && !known.includes(f))
    .map((f) => `${path(f)}: unknown field (known: ${known.join(', ')})`);
}

function parsePlan(raw: unknown, index: number): { plan: Plan | null; problems: string[] } {
  const at = `plans[${index}]`;
  if (!isPlainObject(raw)) return { plan: null, problems: [`${at}: expected an object with name and limits`] };
  const problems = unknownFields(raw, PLAN_FIELDS, (f) => `${at}.${f}`);
  if (raw.name === undefined) problems.push(`${at}.name: required`);
  else {
    try {
      validatePlan({ name: raw.name, limits: [] });
    } catch (err) {
      if (!(err instanceof PlanError)) throw err;
      problems.push(...err.problems.map((p) => `${at}.name: ${p}`));
    }
  }
  if (raw.limits === undefined) problems.push(`${at}.limits: required (a list like ["10/s", "50000/month"]; [] for no limits)`);
  else {
    try {
      validateLimits(raw.limits, `${at}.limits`);
    } catch (err) {
      if (!(err instanceof PlanError)) throw err;
      problems.push(...err.problems);
    }
  }
  if (raw.description !== undefined && typeof raw.description !== 'string') problems.push(`${at}.description: must be text`);
  if (raw.shadow !== undefined && typeof raw.shadow !== 'boolean') problems.push(`${at}.shadow: must be true or false`);
  if (problems.length > 0) return { plan: null, problems };
  const { name, limits, description, shadow } = raw;
  try {
    return { plan: validatePlan({ name, limits, description, shadow }), problems: [] };
  } catch (err) {
    if (!(err instanceof PlanError)) throw err;
    return { plan: null, problems: err.problems.map((p) => `${at}: ${p}`) };
  }
}

/**
 * Parses and checks a seed file's text. Plaintext keys are replaced by their digests here.
 * Throws SeedError listing every problem; a returned Seed is valid on its own (applySeed still
 * checks it against the store).
 */
export function parseSeed(text: string, opts: SeedOptions): Seed {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new SeedError([describeJsonError(err, text)]);
  }
  if (!isPlainObject(doc)) throw new SeedError(['expected a JSON object with "plans" and "keys"']);
  const problems = unknownFields(doc, TOP_FIELDS, (f) => f);

  const plans: Plan[] = [];
  const planIndex = new Map<string, number>();
  if (doc.plans !== undefined && !Array.isArray(doc.plans)) problems.push('plans: expected a list');
  else
    (doc.plans ?? []).forEach((raw: unknown, i: number) => {
      const { plan, problems: planProblems } = parsePlan(raw, i);
      problems.push(...planProblems);
      if (!plan) return;
      const first = planIndex.get(plan.name);
      if (first !== undefined) problems.push(`plans[${i}].name: "${plan.name}" is already defined by plans[${first}]`);
      else planIndex.set(plan.name, i);
      plans.push(plan);
    });

  const keys: SeedKey[] = [];
  const idIndex = new Map<string, number>();
  const digestIndex = new Map<string, number>();
  if (doc.keys !== undefined && !Array.isArray(doc.keys)) problems.push('keys: expected a list');
  else
    (doc.keys ?? []).forEach((raw: unknown, i: number) => {
      const at = seedLocation(i);
      const parsed = parseKeyEntry(raw, at, opts);
      if (!parsed.key) {
        problems.push(...parsed.problems);
        return;
      }
      const { record, digest } = parsed.key;
      const sameSecret = digestIndex.get(digest);
      const sameId = idIndex.get(record.id);
      if (sameSecret !== undefined) problems.push(`${at.whole}: the same secret as keys[${sameSecret}]`);
      else if (sameId !== undefined) problems.push(`${at.field('id')}: "${record.id}" is already used by keys[${sameId}]`);
      digestIndex.set(digest, i);
      idIndex.set(record.id, i);
      keys.push({ ...parsed.key, path: at.whole });
    });

  if (problems.length > 0) throw new SeedError(problems);
  return { plans, keys };
}

/**
 * Checks a parsed seed against the store (every key's plan is in the seed or the store; no key's
 * secret belongs to another stored key; a stored key is still opened by the file's secret), then
 * writes plans and keys. Throws SeedError before any write when a check fails. Idempotent: stored
 * keys keep their createdAt and their secrets, a revoked key stays revoked, and a second run
 * counts everything as unchanged.
 */
export async function applySeed(store: KeyStore, seed: Seed, opts: ApplyOptions = {}): Promise<SeedCounts> {
  const batchSize = opts.batchSize ?? DEFAULT_BATCH;
  const problems: string[] = [];

  const inFile = new Set(seed.plans.map((p) => p.name));
  const fromStore = [...new Set(seed.keys.map((k) => k.record.plan))].filter((name) => !inFile.has(name));
  const missing = new Set<string>();
  await mapInBatches(fromStore, batchSize, async (name) => {
    if ((await store.getPlan(name)) === null) missing.add(name);
  });
  for (const key of seed.keys) {
    if (missing.has(key.record.plan)) problems.push(`${key.path}.plan: "${key.record.plan}" is neither in this file's plans nor in the store`);
  }

  const checks: StoreCheck[] = [];
  for (const keys of chunk(seed.keys, batchSize)) checks.push(...(await checkKeysAgainstStore(store, keys)));
  checks.forEach((check, i) => {
    if (check.conflict) problems.push(`${seed.keys[i].path}: ${check.conflict}`);
  });
  if (problems.length > 0) throw new SeedError(problems);

  const counts: SeedCounts = { plansCreated: 0, plansUpdated: 0, keysCreated: 0, keysUpdated: 0, unchanged: 0 };
  const countPlan = (outcome: WriteOutcome) => {
    if (outcome === 'created') counts.plansCreated++;
    else if (outcome === 'updated') counts.plansUpdated++;
    else counts.unchanged++;
  };
  const countKey = (outcome: WriteOutcome) => {
    if (outcome === 'created') counts.keysCreated++;
    else if (outcome === 'updated') counts.keysUpdated++;
    else counts.unchanged++;
  };

  if (opts.dryRun) {
    for (const plan of seed.plans) {
      const stored = await store.getPlan(plan.name);
      countPlan(stored === null ? 'created' : JSON.stringify(stored) === JSON.stringify(plan) ? 'unchanged' : 'updated');
    }
    for (const check of checks) countKey(check.outcome);
    return counts;
  }

  for (const plan of seed.plans) countPlan(await store.putPlan(plan));
  for (const keys of chunk(seed.keys, batchSize)) for (const outcome of await writeKeys(store, keys)) countKey(outcome);
  return counts;
}

/**
 * Reads, checks and applies a seed file: what keygate does at start-up with KEYGATE_SEED_FILE.
 * Throws SeedError (bad content, nothing written) or an Error naming the unreadable file.
 */
export async function seedStoreFromFile(store: KeyStore, path: string, opts: SeedOptions & ApplyOptions): Promise<SeedCounts> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read seed file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return applySeed(store, parseSeed(text, opts), opts);
}

/** One line such as `plans: 2 created, 0 updated; keys: 4 created, 1 updated; 3 unchanged`. */
export function describeCounts(c: SeedCounts): string {
  return `plans: ${c.plansCreated} created, ${c.plansUpdated} updated; keys: ${c.keysCreated} created, ${c.keysUpdated} updated; ${c.unchanged} unchanged`;
}
