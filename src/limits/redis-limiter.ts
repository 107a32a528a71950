// The Redis limiter: one EVALSHA of lua/charge.lua per Check evaluates and charges all of the
// key's limits, its credits and the day's usage counter atomically; plus credit balances and
// usage history reads. Works unchanged on Redis Cluster (all keys of a key id share a slot).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
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
  type ChargeCall,
} from './charge-call';
import { usageDayFromFields, usageDayStarts } from './usage';

export interface RedisLimiterOptions {
  /** Days a day's usage counters are kept after the day ends. Default 90. */
  usageRetentionDays?: number;
}

/** A Lua script file shipped next to this module (or, when running from dist/, in src/). */
export interface LuaScript {
  source: string;
  sha1: string;
}

export function loadLuaScript(name: string): LuaScript {
  const candidates = [
    join(__dirname, 'lua', name),
    // tsc does not copy .lua files: compiled code in dist/src/limits reads them from src/limits.
    join(__dirname, '..', '..', '..', 'src', 'limits', 'lua', name),
  ];
  const path = candidates.find((candidate) => existsSync(candidate));
  if (!path) throw new Error(`Lua script ${name} not found (looked in ${candidates.join(', ')})`);
  const source = readFileSync(path, 'utf8');
  return { source, sha1: createHash('sha1').update(source).digest('hex') };
}

let chargeScript: LuaScript | undefined;

/** lua/charge.lua, read once. */
export function chargeLuaScript(): LuaScript {
  chargeScript ??= loadLuaScript('charge.lua');
  return chargeScript;
}

export class RedisLimiter implements Limiter, CreditStore, UsageStore {
  private readonly usageRetentionDays: number;
  private readonly script = chargeLuaScript();

  /** The client stays the caller's: close() does not disconnect it. */
  constructor(
    private readonly client: Redis | Cluster,
    options: RedisLimiterOptions = {},
  ) {
    this.usageRetentionDays = checkRetentionDays(options.usageRetentionDays ?? DEFAULT_USAGE_RETENTION_DAYS);
  }

  async charge(req: ChargeRequest): Promise<ChargeResult> {
    const reply = await this.runCharge(encodeCharge(req, this.usageRetentionDays));
    return decodeChargeReply(reply, req);
  }

  /** Runs charge.lua with prepared KEYS/ARGV: EVALSHA, and EVAL once when Redis lacks the script. */
  async runCharge({ keys, args }: ChargeCall): Promise<unknown> {
    try {
      return await this.client.evalsha(this.script.sha1, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.client.eval(this.script.source, keys.length, ...keys, ...args);
    }
  }

  async setCredits(keyId: string, credits: number): Promise<void> {
    checkCreditAmount(credits, 'credits', 0);
    await this.client.set(creditsKey(keyId), String(credits));
  }

  /** Adds a positive number of credits; returns the new balance. */
  async addCredits(keyId: string, credits: number): Promise<number> {
    checkCreditAmount(credits, 'credits to add', 1);
    return this.client.incrby(creditsKey(keyId), credits);
  }

  async getCredits(keyId: string): Promise<number> {
    const stored = await this.client.get(creditsKey(keyId));
    return stored === null ? 0 : Number(stored);
  }

  async recordUsage(keyId: string, outcome: string, now: number): Promise<void> {
    const key = usageKey(keyId, now);
    const results = await this.client
      .multi()
      .hincrby(key, usageField(outcome), 1)
      .pexpire(key, usageTtlMs(now, this.usageRetentionDays))
      .exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw failed?.[0] ?? new Error('recordUsage: transaction aborted');
  }

  async readUsage(keyId: string, fromDay: string, days: number): Promise<UsageDay[]> {
    const starts = usageDayStarts(fromDay, days);
    const pipeline = this.client.pipeline();
    for (const start of starts) pipeline.hgetall(usageKey(keyId, start));
    const results = (await pipeline.exec()) ?? [];
    return starts.map((start, i) => {
      const [err, fields] = results[i] ?? [new Error('readUsage: missing pipeline result'), null];
      if (err) throw err;
      return usageDayFromFields(start, Object.entries((fields ?? {}) as Record<string, string>));
    });
  }

  async close(): Promise<void> {}
}
