// The stored form of a secret: SHA-256, or HMAC-SHA-256 keyed with KEYGATE_KEY_PEPPER.
// Digests identify keys in the store; they are never logged, exported or printed.
import * as crypto from 'node:crypto';
import { createHash, createHmac } from 'node:crypto';

export type Digester = (secret: string) => string;

/** crypto.hash (Node >= 20.12): one call, no Hash object; about 3x cheaper for a key-sized input. */
const oneShotHash = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

export function makeDigester(pepper?: string): Digester {
  if (pepper) return (secret) => createHmac('sha256', pepper).update(secret, 'utf8').digest('hex');
  if (oneShotHash) return (secret) => oneShotHash('sha256', secret, 'hex');
  return (secret) => createHash('sha256').update(secret, 'utf8').digest('hex');
}

const HEX_DIGEST_RE = /^[0-9a-f]{64}$/;

/** A digest given in a seed or import file: 64 hex characters (case-insensitive). */
export function normalizeDigest(text: string): string | null {
  const lower = text.toLowerCase();
  return HEX_DIGEST_RE.test(lower) ? lower : null;
}
