// A tiny in-process key-value store with Redis semantics for the commands the limiter uses
// (strings, hashes, relative expiry). Time is whatever `now` the caller passes, so the memory
// limiter expires keys exactly as Redis does relative to the injected clock.

interface StoredString {
  kind: 'string';
  value: number;
  expiresAt?: number;
}

interface StoredHash {
  kind: 'hash';
  fields: Map<string, string>;
  expiresAt?: number;
}

type Stored = StoredString | StoredHash;

/** Sweep expired keys after this many writes, so memory stays bounded by live keys. */
const SWEEP_EVERY_WRITES = 10_000;

export class MemoryKv {
  private readonly data = new Map<string, Stored>();
  private writesSinceSweep = 0;
  /** The latest `now` any command was given: reads that carry no time use it. */
  private latestNow = -Infinity;
  /** The time of the current command batch. */
  private now = -Infinity;

  /** Sets the time of the following commands (a charge runs at one `now`). */
  at(now: number): this {
    if (now > this.latestNow) this.latestNow = now;
    this.now = now;
    return this;
  }

  private live(key: string, now = this.now): Stored | undefined {
    const entry = this.data.get(key);
    if (entry && entry.expiresAt !== undefined && entry.expiresAt <= now) {
      this.data.delete(key);
      return undefined;
    }
    return entry;
  }

  /** Reads with the latest time seen rather than a charge's time (admin reads carry no `now`). */
  atLatest(): this {
    this.now = this.latestNow;
    return this;
  }

  /** Like TYPE: 'string', 'hash' or 'none'. */
  type(key: string): 'string' | 'hash' | 'none' {
    return this.live(key)?.kind ?? 'none';
  }

  get(key: string): number | null {
    const entry = this.live(key);
    if (!entry) return null;
    if (entry.kind !== 'string') throw new Error(`WRONGTYPE ${key} holds a hash`);
    return entry.value;
  }

  set(key: string, value: number): void {
    this.data.set(key, { kind: 'string', value });
    this.wrote();
  }

  incrby(key: string, by: number): number {
    const entry = this.live(key);
    if (entry && entry.kind !== 'string') throw new Error(`WRONGTYPE ${key} holds a hash`);
    const value = (entry?.value ?? 0) + by;
    if (entry) entry.value = value;
    else this.data.set(key, { kind: 'string', value });
    this.wrote();
    return value;
  }

  hgetall(key: string): Array<[string, string]> {
    const entry = this.live(key);
    if (!entry) return [];
    if (entry.kind !== 'hash') throw new Error(`WRONGTYPE ${key} holds a string`);
    return [...entry.fields];
  }

  hset(key: string, field: string, value: string): void {
    this.hash(key).fields.set(field, value);
    this.wrote();
  }

  hincrby(key: string, field: string, by: number): number {
    const fields = this.hash(key).fields;
    const value = Number(fields.get(field) ?? 0) + by;
    fields.set(field, String(value));
    this.wrote();
    return value;
  }

  private hash(key: string): StoredHash {
    const entry = this.live(key);
    if (entry && entry.kind !== 'hash') throw new Error(`WRONGTYPE ${key} holds a string`);
    if (entry) return entry;
    const created: StoredHash = { kind: 'hash', fields: new Map() };
    this.data.set(key, created);
    return created;
  }

  hdel(key: string, fields: readonly string[]): void {
    const entry = this.live(key);
    if (!entry || entry.kind !== 'hash') return;
    for (const field of fields) entry.fields.delete(field);
    if (entry.fields.size === 0) this.data.delete(key);
  }

  /** Like PEXPIRE: a TTL ≤ 0 deletes the key at once. */
  pexpire(key: string, ttlMs: number): void {
    const entry = this.live(key);
    if (!entry) return;
    if (ttlMs <= 0) this.data.delete(key);
    else entry.expiresAt = this.now + ttlMs;
  }

  /** Remaining TTL in ms like PTTL: -2 missing, -1 no expiry. */
  pttl(key: string): number {
    const entry = this.live(key);
    if (!entry) return -2;
    return entry.expiresAt === undefined ? -1 : entry.expiresAt - this.now;
  }

  /** Live key names (for tests that compare the layout with Redis). */
  keys(): string[] {
    return [...this.data.keys()].filter((key) => this.live(key) !== undefined);
  }

  clear(): void {
    this.data.clear();
  }

  private wrote(): void {
    this.writesSinceSweep += 1;
    if (this.writesSinceSweep < SWEEP_EVERY_WRITES) return;
    this.writesSinceSweep = 0;
    for (const key of [...this.data.keys()]) this.live(key, this.latestNow);
  }
}
