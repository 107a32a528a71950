// The in-process limiter for the embedded single-instance mode: the twin of RedisLimiter. It
// builds the same KEYS/ARGV, runs charge.lua's TypeScript mirror against an in-memory store with
// Redis expiry semantics, and reads the reply the same way, so both pass one shared suite.
import type { ChargeRequest, ChargeResult, CreditStore, Limiter, UsageDay, UsageStore } from './types';
import {
  DEFAULT_USAGE_RETENTION_DAYS,
  checkCreditAmount,
  checkRetentionDays,
  creditsKey,
  decodeChargeReply,
  encodeCharge,
  usageField,
  usageKey,
  usageTtlMs,
} from './charge-call';
import { runChargeScript } from './charge-script';
import { MemoryKv } from './memory-kv';
import { usageDayFromFields, usageDayStarts } from './usage';

export interface MemoryLimiterOptions {
  /** Days a day's usage counters are kept after the day ends. Default 90. */
  usageRetentionDays?: number;
}

export class MemoryLimiter implements Limiter, CreditStore, UsageStore {
  /** The counters, under the same key names as in Redis (tests and diagnostics read it). */
  readonly store = new MemoryKv();
  private readonly usageRetentionDays: number;

  constructor(options: MemoryLimiterOptions = {}) {
    this.usageRetentionDays = checkRetentionDays(options.usageRetentionDays ?? DEFAULT_USAGE_RETENTION_DAYS);
  }

  async charge(req: ChargeRequest): Promise<ChargeResult> {
    const reply = runChargeScript(this.store, encodeCharge(req, this.usageRetentionDays));
    return decodeChargeReply(reply, req);
  }

  async setCredits(keyId: string, credits: number): Promise<void> {
    checkCreditAmount(credits, 'credits', 0);
    this.store.atLatest().set(creditsKey(keyId), credits);
  }

  async addCredits(keyId: string, credits: number): Promise<number> {
    checkCreditAmount(credits, 'credits to add', 1);
    return this.store.atLatest().incrby(creditsKey(keyId), credits);
  }

  async getCredits(keyId: string): Promise<number> {
    return this.store.atLatest().get(creditsKey(keyId)) ?? 0;
  }

  async recordUsage(keyId: string, outcome: string, now: number): Promise<void> {
    const key = usageKey(keyId, now);
    const field = usageField(outcome);
    this.store.at(now).hincrby(key, field, 1);
    this.store.pexpire(key, usageTtlMs(now, this.usageRetentionDays));
  }

  /** Days whose retention has ended (relative to the latest time the limiter saw) read as zeros. */
  async readUsage(keyId: string, fromDay: string, days: number): Promise<UsageDay[]> {
    const kv = this.store.atLatest();
    return usageDayStarts(fromDay, days).map((start) => usageDayFromFields(start, kv.hgetall(usageKey(keyId, start))));
  }

  async close(): Promise<void> {
    this.store.clear();
  }
}
