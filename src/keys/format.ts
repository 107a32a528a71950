// The API key format: `<prefix>_<32 random base62><6 base62 CRC32 checksum>`, e.g.
// `kg_4Jx...Q2a9Zk`. 32 base62 characters carry 190 bits from crypto.randomBytes; the
// checksum lets keygate refuse a mistyped or made-up key without asking the store, and the
// fixed shape lets secret scanners find leaked keys. Keys of other formats (imported from
// another system) are "foreign": they have no checksum and are looked up by digest only.
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const DEFAULT_KEY_PREFIX = 'kg';
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_CHARS = 32;
const CHECKSUM_CHARS = 6;
/** Longest key text keygate will hash; anything longer is malformed. */
export const MAX_KEY_LENGTH = 256;
/** Shortest foreign key keygate accepts; shorter texts are malformed. */
export const MIN_FOREIGN_KEY_LENGTH = 16;

const PREFIX_RE = /^[a-z][a-z0-9]{0,15}$/;
const NATIVE_RE = /^([a-z][a-z0-9]{0,15})_([0-9A-Za-z]{38})$/;
const VISIBLE_ASCII_RE = /^[\x21-\x7e]+$/;

export function isValidPrefix(prefix: string): boolean {
  return PREFIX_RE.test(prefix);
}

function base62(bytesNeeded: number): string {
  // Rejection sampling keeps every character uniform: bytes >= 248 (4 * 62) are dropped.
  let out = '';
  while (out.length < bytesNeeded) {
    for (const b of randomBytes(bytesNeeded * 2)) {
      if (b < 248) out += ALPHABET[b % 62];
      if (out.length === bytesNeeded) break;
    }
  }
  return out;
}

function checksum(text: string): string {
  let n = crc32(text);
  let out = '';
  for (let i = 0; i < CHECKSUM_CHARS; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** A new secret key with the given readable prefix. */
export function generateKey(prefix: string = DEFAULT_KEY_PREFIX): string {
  if (!isValidPrefix(prefix)) {
    throw new Error(`key prefix "${prefix}" must be 1-16 lowercase letters or digits, starting with a letter`);
  }
  const head = `${prefix}_${base62(RANDOM_CHARS)}`;
  return head + checksum(head);
}

/** Random public identifier of a key record (not a secret). */
export function generateKeyId(): string {
  return `key_${base62(16)}`;
}

export type KeyShape = 'native' | 'foreign' | 'malformed';

/**
 * Classifies presented key text without any I/O. `native` keys passed their checksum;
 * `malformed` ones can never match a stored key and are refused without a store lookup.
 * `nativePrefixes` are the prefixes whose keys must be native (the configured default):
 * a text that starts with one of them but fails the checksum is malformed, not foreign.
 */
export function classifyKey(text: string, nativePrefixes: readonly string[] = [DEFAULT_KEY_PREFIX]): KeyShape {
  if (text.length > MAX_KEY_LENGTH || !VISIBLE_ASCII_RE.test(text)) return 'malformed';
  const m = NATIVE_RE.exec(text);
  if (m) {
    const head = text.slice(0, text.length - CHECKSUM_CHARS);
    return checksum(head) === text.slice(-CHECKSUM_CHARS) ? 'native' : 'malformed';
  }
  for (const p of nativePrefixes) {
    if (text.startsWith(`${p}_`)) return 'malformed';
    if (looksLikeMistypedPrefix(text, p)) return 'malformed';
  }
  return text.length >= MIN_FOREIGN_KEY_LENGTH ? 'foreign' : 'malformed';
}

const BASE62_BODY_RE = /^[0-9A-Za-z]{38}$/;

/** A keygate key whose prefix or separator has one character wrong (`kh_…`, `kg-…`). */
function looksLikeMistypedPrefix(text: string, prefix: string): boolean {
  const head = `${prefix}_`;
  if (text.length !== head.length + RANDOM_CHARS + CHECKSUM_CHARS) return false;
  if (!BASE62_BODY_RE.test(text.slice(head.length))) return false;
  let differences = 0;
  for (let i = 0; i < head.length; i++) if (text[i] !== head[i]) differences++;
  return differences <= 1;
}
