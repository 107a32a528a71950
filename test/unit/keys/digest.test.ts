// The stored form of a secret: SHA-256, or HMAC-SHA-256 with the pepper, against published vectors.
import { describe, expect, it } from 'vitest';
import { makeDigester, normalizeDigest } from '../../../src/keys/digest';

describe('makeDigester without a pepper: SHA-256 hex', () => {
  const digest = makeDigester();

  it('matches the FIPS 180-2 vector for "abc" and the empty string', () => {
    expect(digest('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(digest('')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('hashes the UTF-8 bytes of the text', () => {
    // sha256 of the bytes c3 a9 ("é" in UTF-8), as `printf 'é' | sha256sum` prints it
    expect(digest('é')).toBe('4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c');
  });

  it('is 64 lower-case hex characters, deterministic, and different for different keys', () => {
    const a = digest('kg_one');
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(digest('kg_one')).toBe(a);
    expect(digest('kg_onE')).not.toBe(a);
  });

  it('an empty pepper means no pepper', () => {
    expect(makeDigester('')('abc')).toBe(digest('abc'));
  });
});

describe('makeDigester with a pepper: HMAC-SHA-256(pepper, key)', () => {
  it('matches RFC 4231 test case 1 (20-byte key, "Hi There")', () => {
    const pepper = '\x0b'.repeat(20);
    expect(makeDigester(pepper)('Hi There')).toBe('b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7');
  });

  it('matches RFC 4231 test case 2 (key "Jefe")', () => {
    expect(makeDigester('Jefe')('what do ya want for nothing?')).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });

  it('differs from the plain digest and between peppers', () => {
    const secret = 'kg_secret_for_the_pepper_test';
    const plain = makeDigester()(secret);
    const a = makeDigester('pepper-number-one-0123')(secret);
    const b = makeDigester('pepper-number-two-0123')(secret);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(a).not.toBe(plain);
    expect(b).not.toBe(a);
    expect(makeDigester('pepper-number-one-0123')(secret)).toBe(a);
  });
});

describe('normalizeDigest', () => {
  const hex = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';

  it('accepts 64 hex characters and lower-cases them', () => {
    expect(normalizeDigest(hex)).toBe(hex);
    expect(normalizeDigest(hex.toUpperCase())).toBe(hex);
    expect(normalizeDigest('BA7816bf8F01CFEA414140de5dae2223b00361a396177a9cb410ff61f20015AD')).toBe(hex);
  });

  it.each([
    ['63 characters', hex.slice(1)],
    ['65 characters', `${hex}0`],
    ['a non-hex letter', `g${hex.slice(1)}`],
    ['a 0x prefix', `0x${hex.slice(2)}`],
    ['surrounding space', ` ${hex}`],
    ['a trailing newline', `${hex}\n`],
    ['empty', ''],
    ['base64 of a digest', 'ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0='],
    ['a key', 'kg_4JxQ2a9Zk'],
  ])('refuses %s', (_label, text) => {
    expect(normalizeDigest(text)).toBeNull();
  });
});
