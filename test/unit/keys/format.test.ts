// The key format: generated keys (prefix, entropy, checksum) and classifyKey, which refuses
// malformed text without any I/O.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_KEY_PREFIX,
  MAX_KEY_LENGTH,
  MIN_FOREIGN_KEY_LENGTH,
  classifyKey,
  generateKey,
  generateKeyId,
  isValidPrefix,
} from '../../../src/keys/format';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const NATIVE_SHAPE = /^kg_[0-9A-Za-z]{38}$/;

describe('generateKey', () => {
  it('yields kg_ followed by 38 base62 characters', () => {
    expect(DEFAULT_KEY_PREFIX).toBe('kg');
    for (let i = 0; i < 200; i++) {
      const key = generateKey();
      expect(key).toMatch(NATIVE_SHAPE);
      expect(key).toHaveLength(41);
    }
  });

  it('carries at least 160 bits of randomness (32 random base62 characters)', () => {
    // After `kg_` come the random characters and a 6-character checksum; each random base62
    // character carries log2(62) ≈ 5.95 bits, so 32 of them carry ≈ 190 bits.
    const keys = Array.from({ length: 500 }, () => generateKey());
    const randomChars = keys[0].length - 'kg_'.length - 6;
    expect(randomChars * Math.log2(62)).toBeGreaterThanOrEqual(160);
    // The random part really varies at every one of its positions.
    for (let pos = 3; pos < 3 + randomChars; pos++) {
      expect(new Set(keys.map((k) => k[pos])).size, `position ${pos}`).toBeGreaterThan(40);
    }
  });

  it('10,000 keys are all distinct, and so are their random parts', () => {
    const keys = Array.from({ length: 10_000 }, () => generateKey());
    expect(new Set(keys).size).toBe(10_000);
    expect(new Set(keys.map((k) => k.slice(3, 35))).size).toBe(10_000);
  });

  it('draws the random characters uniformly from the 62-letter alphabet (chi-square)', () => {
    const counts = new Map<string, number>(BASE62.split('').map((c) => [c, 0]));
    const n = 10_000;
    for (let i = 0; i < n; i++) {
      for (const c of generateKey().slice(3, 35)) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
    expect(counts.size).toBe(62); // no character outside the alphabet
    const total = n * 32;
    const expected = total / 62;
    let chi2 = 0;
    for (const observed of counts.values()) chi2 += (observed - expected) ** 2 / expected;
    // 61 degrees of freedom: mean 61, sd ≈ 11. 150 is far beyond p = 1e-9, and a plain `byte % 62`
    // (characters 0-7 drawn 25% more often) would score in the thousands.
    expect(chi2).toBeLessThan(150);
    for (const [c, observed] of counts) {
      expect(Math.abs(observed - expected) / expected, `character ${c}`).toBeLessThan(0.1);
    }
  });

  it('takes a custom prefix', () => {
    for (const prefix of ['acme', 'a', 'sk2', 'abcdefghijklmnop']) {
      const key = generateKey(prefix);
      expect(key.startsWith(`${prefix}_`)).toBe(true);
      expect(key.slice(prefix.length + 1)).toMatch(/^[0-9A-Za-z]{38}$/);
      expect(classifyKey(key, [prefix])).toBe('native');
    }
  });

  it.each(['', 'KG', 'Kg', '1kg', 'kg_', 'k-g', 'k g', 'abcdefghijklmnopq', 'clé'])('refuses the invalid prefix "%s"', (prefix) => {
    expect(isValidPrefix(prefix)).toBe(false);
    expect(() => generateKey(prefix)).toThrow(/prefix/);
  });

  it('generateKeyId gives distinct public ids that are not secrets in key format', () => {
    const ids = Array.from({ length: 1000 }, () => generateKeyId());
    expect(new Set(ids).size).toBe(1000);
    for (const id of ids) {
      expect(id).toMatch(/^key_[0-9A-Za-z]{16}$/);
      expect(classifyKey(id)).not.toBe('native');
    }
  });
});

describe('classifyKey', () => {
  it('generated keys are native', () => {
    for (let i = 0; i < 1000; i++) expect(classifyKey(generateKey())).toBe('native');
  });

  it('every single-character substitution in the random part and the checksum is malformed', () => {
    const key = generateKey();
    for (let pos = 3; pos < key.length; pos++) {
      for (const c of BASE62) {
        if (c === key[pos]) continue;
        const changed = key.slice(0, pos) + c + key.slice(pos + 1);
        expect(classifyKey(changed), `${pos}:${c}`).toBe('malformed');
      }
    }
  });

  it('every single-character substitution anywhere in a generated key is malformed (prefix and separator too)', () => {
    // A mistyped key must be refused without a store lookup, whichever character was mistyped.
    const key = generateKey();
    const replacements = `${BASE62}_-.~!#$%&*+/=?@^|`;
    // position → how many substitutions there were NOT classified malformed, and one example
    const notMalformed: Record<number, string> = {};
    for (let pos = 0; pos < key.length; pos++) {
      let count = 0;
      let example = '';
      for (const c of replacements) {
        if (c === key[pos]) continue;
        const changed = key.slice(0, pos) + c + key.slice(pos + 1);
        const shape = classifyKey(changed, ['kg']);
        if (shape !== 'malformed') {
          count++;
          example ||= `"${changed.slice(0, 4)}…" is ${shape}`;
        }
      }
      if (count > 0) notMalformed[pos] = `${count} substitutions, e.g. ${example}`;
    }
    expect(notMalformed).toEqual({});
  });

  it('swapping two adjacent different characters is malformed', () => {
    const key = generateKey();
    for (let pos = 3; pos < key.length - 1; pos++) {
      if (key[pos] === key[pos + 1]) continue;
      const swapped = key.slice(0, pos) + key[pos + 1] + key[pos] + key.slice(pos + 2);
      expect(classifyKey(swapped), String(pos)).toBe('malformed');
    }
  });

  it('a deleted or an added character is malformed', () => {
    const key = generateKey();
    expect(classifyKey(key.slice(0, -1))).toBe('malformed');
    expect(classifyKey(key.slice(0, 10) + key.slice(11))).toBe('malformed');
    expect(classifyKey(key + 'a')).toBe('malformed');
    expect(classifyKey(key.slice(0, 10) + 'Z' + key.slice(10))).toBe('malformed');
  });

  it('a key with another prefix than the configured ones, but a good checksum, is native', () => {
    expect(classifyKey(generateKey('acme'), ['kg'])).toBe('native');
  });

  it.each([
    ['kg_ alone', 'kg_'],
    ['too short', 'kg_abc123'],
    ['37 characters after the prefix', `kg_${'a'.repeat(37)}`],
    ['39 characters after the prefix', `kg_${'a'.repeat(39)}`],
    ['punctuation in the body', `kg_${'a'.repeat(20)}-${'a'.repeat(17)}`],
    ['a long foreign-looking tail', `kg_${'0123456789abcdef'.repeat(4)}`],
    ['double underscore', `kg__${'a'.repeat(37)}`],
  ])('kg_-prefixed text of the wrong shape is malformed: %s', (_label, text) => {
    expect(classifyKey(text)).toBe('malformed');
  });

  it('the configured prefix decides which texts must be native', () => {
    const text = `acme_${'0123456789abcdef'.repeat(2)}`;
    expect(classifyKey(text, ['acme'])).toBe('malformed');
    expect(classifyKey(text, ['kg'])).toBe('foreign');
  });

  it('a text longer than MAX_KEY_LENGTH (256) is malformed; 256 is still foreign', () => {
    expect(MAX_KEY_LENGTH).toBe(256);
    expect(classifyKey('a'.repeat(256))).toBe('foreign');
    expect(classifyKey('a'.repeat(257))).toBe('malformed');
    expect(classifyKey('a'.repeat(100_000))).toBe('malformed');
    expect(classifyKey(generateKey() + 'x'.repeat(300))).toBe('malformed');
  });

  it.each([
    ['a newline', '\n'],
    ['a tab', '\t'],
    ['a NUL', '\0'],
    ['DEL', '\x7f'],
    ['a space', ' '],
    ['a non-ASCII letter', 'é'],
    ['a latin1 byte', '\xff'],
    ['an emoji', '🔑'],
    ['a zero-width space', '\u200b'],
  ])('%s makes a key malformed, wherever it is', (_label, bad) => {
    const native = generateKey();
    const foreign = randomBytes(16).toString('hex');
    for (const key of [native, foreign]) {
      expect(classifyKey(bad + key)).toBe('malformed');
      expect(classifyKey(key + bad)).toBe('malformed');
      expect(classifyKey(key.slice(0, 8) + bad + key.slice(8))).toBe('malformed');
    }
  });

  it('a 32-character random hex token is foreign', () => {
    for (let i = 0; i < 100; i++) expect(classifyKey(randomBytes(16).toString('hex'))).toBe('foreign');
  });

  it('other common foreign formats are foreign', () => {
    expect(classifyKey(`sk_live_${'4eC39HqLyjWDarjtT1zdp7dc'}`)).toBe('foreign');
    expect(classifyKey(randomBytes(24).toString('base64url'))).toBe('foreign');
    expect(classifyKey('550e8400-e29b-41d4-a716-446655440000')).toBe('foreign');
  });

  it('a foreign key shorter than 16 characters is malformed; 16 is foreign', () => {
    expect(MIN_FOREIGN_KEY_LENGTH).toBe(16);
    expect(classifyKey('abcdef012345678')).toBe('malformed');
    expect(classifyKey('abcdef0123456789')).toBe('foreign');
    expect(classifyKey('x')).toBe('malformed');
    expect(classifyKey('')).toBe('malformed');
  });
});
