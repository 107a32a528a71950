// The building blocks of the bulk import: the fingerprint tables that find duplicate secrets and
// ids in millions of lines, the line splitter that reads a file in pieces as readline would, and
// the window that keeps several batch calls in flight but reports them in order.
import { describe, expect, it } from 'vitest';
import { InOrderWindow } from '../../../src/admin/batches';
import { DuplicateFinder, FingerprintTable } from '../../../src/admin/fingerprints';
import { LineSplitter } from '../../../src/admin/key-import';
import { makeDigester } from '../../../src/keys/digest';

describe('FingerprintTable', () => {
  it('remembers the first line of every fingerprint across growth; new ones return 0', () => {
    const table = new FingerprintTable();
    const n = 50_000;
    const fp = (i: number): [number, number, number] => [Math.imul(i, 0x9e3779b1) >>> 0, i, i ^ 0x5555];
    for (let i = 0; i < n; i++) expect(table.firstLine(...fp(i), i + 1)).toBe(0);
    expect(table.size).toBe(n);
    for (let i = 0; i < n; i += 997) expect(table.firstLine(...fp(i), 999_999)).toBe(i + 1);
    expect(table.size).toBe(n);
    // At most half full: 50,000 entries need 2^17 slots of 16 bytes.
    expect(table.bytes).toBe(2 ** 17 * 16);
  });

  it('tells fingerprints apart that share their first word', () => {
    const table = new FingerprintTable();
    expect(table.firstLine(7, 1, 1, 10)).toBe(0);
    expect(table.firstLine(7, 1, 2, 11)).toBe(0);
    expect(table.firstLine(7, 2, 1, 12)).toBe(0);
    expect([table.firstLine(7, 1, 1, 20), table.firstLine(7, 1, 2, 20), table.firstLine(7, 2, 1, 20)]).toEqual([10, 11, 12]);
  });
});

describe('DuplicateFinder', () => {
  it('finds a repeated digest and a repeated id, with the line first seen', () => {
    const digest = makeDigester();
    const finder = new DuplicateFinder();
    expect(finder.secret(digest('one'), 2)).toBe(0);
    expect(finder.secret(digest('two'), 3)).toBe(0);
    expect(finder.secret(digest('one'), 4)).toBe(2);
    expect(finder.id('key_a', 2)).toBe(0);
    expect(finder.id('key_b', 3)).toBe(0);
    expect(finder.id('key_A', 4)).toBe(0); // ids are case-sensitive
    expect(finder.id('key_a', 5)).toBe(2);
  });

  it('keeps 100,000 distinct similar ids apart', () => {
    const finder = new DuplicateFinder();
    for (let i = 0; i < 100_000; i++) expect(finder.id(`key_${i}`, i + 1)).toBe(0);
    expect(finder.id('key_99999', 1)).toBe(100_000);
  });
});

describe('LineSplitter', () => {
  const split = (...pieces: string[]) => {
    const s = new LineSplitter();
    return [...pieces.flatMap((p) => s.push(p)), ...s.end()];
  };

  it('splits at \\n, \\r\\n and a lone \\r, keeping empty lines, with or without a final break', () => {
    expect(split('a\nb\r\nc\rd\n\ne')).toEqual(['a', 'b', 'c', 'd', '', 'e']);
    expect(split('a\nb\n')).toEqual(['a', 'b']);
    expect(split('')).toEqual([]);
  });

  it('joins lines and \\r\\n pairs cut between pieces', () => {
    expect(split('ab', 'c\r', '\nd', 'e\r', 'f\r')).toEqual(['abc', 'de', 'f']);
    expect(split('a\r', '\r', '\n', 'b')).toEqual(['a', '', 'b']);
    const text = 'owner,plan,key\r\nacme,pro,k1\r\n"multi\r\nline",pro,k2\nlast';
    for (let cut = 0; cut <= text.length; cut++) expect(split(text.slice(0, cut), text.slice(cut)), `cut at ${cut}`).toEqual(split(text));
  });
});

describe('InOrderWindow', () => {
  const later = <T>(value: T, ms: number) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));

  it('keeps up to depth calls in flight and hands results over in the order they started', async () => {
    const seen: number[] = [];
    const window = new InOrderWindow<number>(3, (n) => seen.push(n));
    await window.push(later(1, 30));
    await window.push(later(2, 5));
    expect(seen).toEqual([]); // two in flight, below the depth
    await window.push(later(3, 1)); // third: waits for the first
    expect(seen).toEqual([1]);
    await window.drain();
    expect(seen).toEqual([1, 2, 3]);
  });

  it('throws the first failure in order; later failures are not left unhandled', async () => {
    const window = new InOrderWindow<number>(2, () => {});
    await window.push(Promise.reject(new Error('first')));
    await expect(window.push(Promise.reject(new Error('second')))).rejects.toThrow('first');
    await expect(window.drain()).rejects.toThrow('second');
  });
});
