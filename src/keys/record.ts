// Validation of key records and plan names coming from the CLI, seed and import files.
import { parseCidr } from './cidr';
import type { KeyRecord, KeyStatus } from './types';

export const KEY_STATUSES: readonly KeyStatus[] = ['active', 'disabled', 'revoked'];
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
const SCOPE_RE = /^[A-Za-z0-9][A-Za-z0-9._:/*-]{0,127}$/;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** Owner, plan and key-id names: 1-128 of letters, digits and . _ : @ - */
export function isValidName(text: string): boolean {
  return NAME_RE.test(text);
}

export function isValidScope(text: string): boolean {
  return SCOPE_RE.test(text);
}

export function isValidKeyId(text: string): boolean {
  return ID_RE.test(text);
}

/** Every problem with a record, as human-readable strings; empty when it is valid. */
export function recordProblems(r: Partial<KeyRecord>): string[] {
  const problems: string[] = [];
  if (typeof r.id !== 'string' || !isValidKeyId(r.id)) problems.push(`id "${r.id ?? ''}" is not a valid key id`);
  if (typeof r.owner !== 'string' || !isValidName(r.owner)) problems.push(`owner "${r.owner ?? ''}" is not a valid name`);
  if (typeof r.plan !== 'string' || !isValidName(r.plan)) problems.push(`plan "${r.plan ?? ''}" is not a valid name`);
  if (r.name !== undefined && (typeof r.name !== 'string' || r.name.length > 200)) problems.push('name must be text of at most 200 characters');
  if (!Array.isArray(r.scopes)) problems.push('scopes must be a list');
  else for (const s of r.scopes) if (typeof s !== 'string' || !isValidScope(s)) problems.push(`scope "${String(s)}" is not valid`);
  if (!KEY_STATUSES.includes(r.status as KeyStatus)) problems.push(`status "${r.status ?? ''}" must be one of ${KEY_STATUSES.join(', ')}`);
  if (typeof r.createdAt !== 'number' || !Number.isFinite(r.createdAt)) problems.push('createdAt must be a time');
  if (r.expiresAt !== undefined && (typeof r.expiresAt !== 'number' || !Number.isFinite(r.expiresAt))) problems.push('expiresAt must be a time');
  if (!Array.isArray(r.cidrs)) problems.push('cidrs must be a list');
  else for (const c of r.cidrs) if (typeof c !== 'string' || !parseCidr(c)) problems.push(`CIDR "${String(c)}" is not valid`);
  if (r.metadata === null || typeof r.metadata !== 'object' || Array.isArray(r.metadata)) problems.push('metadata must be an object');
  else for (const [k, v] of Object.entries(r.metadata)) if (typeof v !== 'string') problems.push(`metadata "${k}" must be text`);
  return problems;
}
