// Duplicate detection for `keygate-admin key import` over files of millions of lines: a set of
// 96-bit fingerprints, each with the line it was first seen on, in one flat Uint32Array (open
// addressing, linear probing; 4 words a slot: 3 of fingerprint, 1 of line, line 0 = empty).
//
// Memory: 16 bytes a slot, and the table doubles when half full, so 2^21 slots (32 MiB) hold up
// to 1,048,576 entries. The import keeps two tables (secrets, ids): 64 MiB per million lines
// (while a table doubles, its old half lives on for a moment). The two Maps of strings used before took ~300 MiB
// per million lines (measured: each 32-character slice kept its 64-character digest alive).
//
// Fingerprints: secrets by the first 96 bits of their digest (SHA-256 or HMAC-SHA-256, so
// already uniform); ids by three different 32-bit hashes of the id's text (far cheaper than a
// cryptographic hash, and ids are not secret). Two different secrets or ids share a fingerprint
// with odds of about n²/2^97 (10^-17 for a million lines): never, in practice; and the
// consequence would be a refused import naming both lines, never a wrong write.

const WORDS = 4;

/** MurmurHash3's finaliser: every input bit affects every output bit (the low bits pick the slot). */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
const INITIAL_SLOTS = 1 << 12;

export class FingerprintTable {
  private slots = new Uint32Array(INITIAL_SLOTS * WORDS);
  private mask = INITIAL_SLOTS - 1;
  private used = 0;

  get size(): number {
    return this.used;
  }

  /** Bytes held by the table. */
  get bytes(): number {
    return this.slots.byteLength;
  }

  /**
   * The line an earlier entry with this fingerprint was recorded on; or, when there is none,
   * records `line` (≥ 1) for it and returns 0.
   */
  firstLine(a: number, b: number, c: number, line: number): number {
    if ((this.used + 1) * 2 > this.mask + 1) this.grow();
    const slots = this.slots;
    for (let i = a & this.mask; ; i = (i + 1) & this.mask) {
      const at = i * WORDS;
      const seen = slots[at + 3];
      if (seen === 0) {
        slots[at] = a;
        slots[at + 1] = b;
        slots[at + 2] = c;
        slots[at + 3] = line;
        this.used++;
        return 0;
      }
      if (slots[at] === a && slots[at + 1] === b && slots[at + 2] === c) return seen;
    }
  }

  private grow(): void {
    const old = this.slots;
    const count = (this.mask + 1) * 2;
    this.slots = new Uint32Array(count * WORDS);
    this.mask = count - 1;
    for (let at = 0; at < old.length; at += WORDS) {
      if (old[at + 3] === 0) continue;
      let i = old[at] & this.mask;
      while (this.slots[i * WORDS + 3] !== 0) i = (i + 1) & this.mask;
      this.slots.set(old.subarray(at, at + WORDS), i * WORDS);
    }
  }
}

/** Duplicate secrets and duplicate ids, with the line each was first seen on. */
export class DuplicateFinder {
  private readonly secrets = new FingerprintTable();
  private readonly ids = new FingerprintTable();

  /** The earlier line with the same digest (64 hex), or 0 after recording this one. */
  secret(digest: string, line: number): number {
    return this.secrets.firstLine(parseInt(digest.slice(0, 8), 16), parseInt(digest.slice(8, 16), 16), parseInt(digest.slice(16, 24), 16), line);
  }

  /** The earlier line with the same key id, or 0 after recording this one. */
  id(id: string, line: number): number {
    let a = 0x811c9dc5;
    let b = 0x9747b28c ^ id.length;
    let c = 0x3c6ef372;
    for (let i = 0; i < id.length; i++) {
      const ch = id.charCodeAt(i);
      a = Math.imul(a ^ ch, 0x01000193);
      b = Math.imul(b ^ ch, 0x5bd1e995);
      b ^= b >>> 15;
      c = Math.imul(c + ch, 0x85ebca6b);
      c ^= c >>> 13;
    }
    return this.ids.firstLine(mix(a), mix(b), mix(c ^ id.length), line);
  }

  get bytes(): number {
    return this.secrets.bytes + this.ids.bytes;
  }
}
