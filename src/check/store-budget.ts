// The time one Check may spend waiting for the store, and what the Check path does when the store
// fails: the types of the fallbacks (stale key record, stale plan, quota unchecked, usage not
// recorded) that the failure policy allows, so that metrics and logs can count and name them.
//
// Why a budget inside check() and not only the gRPC deadline: the fallbacks must be decided
// BEFORE the RPC deadline fires, or the deadline would end the RPC with UNAVAILABLE even where
// the policy allows an answer. So every store call of one Check draws on one StoreBudget that
// ends a reserve (storeReserveMs) before KEYGATE_CHECK_TIMEOUT_MS: a call still pending when the
// budget runs out is abandoned (StoreDeadlineError), the Check falls back or fails at once, and
// the RPC deadline in src/grpc/server.ts stays what it was, a backstop that should never fire.
//
// The budget uses real time (the global performance.now and a timer), not the injected Clock: the
// Clock is business time (TTLs, windows, expiry) and tests pin it; the budget bounds waiting.

/** A store call of the Check path did not answer within the Check's store budget. */
export class StoreDeadlineError extends Error {
  constructor(budgetMs: number) {
    super(`store did not answer within the Check's store budget (${budgetMs} ms)`);
    this.name = 'StoreDeadlineError';
  }
}

/**
 * A StoreDeadlineError without a stack trace: the log only names its class and message, and
 * under overload many fire per second (capturing a stack is most of an Error's cost).
 */
function deadlineError(budgetMs: number): StoreDeadlineError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new StoreDeadlineError(budgetMs);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** Most time reserved, out of KEYGATE_CHECK_TIMEOUT_MS, for answering after the store budget ends. */
const MAX_RESERVE_MS = 25;

/**
 * The reserve between the store budget and the RPC deadline: a fifth of the deadline, at most
 * 25 ms (150 ms → 25 ms reserve, 125 ms budget; 20 ms → 4 ms; 1 ms → 0). What runs in it is
 * synchronous (building the answer from a stale record, or the unchecked allow; later store calls
 * of the Check are not even started), and it runs in the microtasks of the budget's timer, which
 * Node fires before the later RPC deadline timer even when the event loop is late: the reserve
 * only has to absorb timer granularity.
 */
export function storeReserveMs(checkTimeoutMs: number): number {
  return Math.min(MAX_RESERVE_MS, Math.floor(checkTimeoutMs / 5));
}

/** How long the store work of one Check may take, all calls together, for a given RPC deadline. */
export function storeBudgetMs(checkTimeoutMs: number): number {
  return Math.max(1, checkTimeoutMs - storeReserveMs(checkTimeoutMs));
}

/**
 * One Check's store time. `run` starts a store call only while time is left and abandons it when
 * the budget ends first. One timer per Check, started by the first call and shared by the
 * others; dispose() clears it when the Check is answered.
 */
export class StoreBudget {
  private readonly endsAt: number;
  private timer: NodeJS.Timeout | undefined;
  private ended: Promise<never> | undefined;
  /** the timer fired (it may fire a little before endsAt: libuv times from its cached loop time) */
  private over = false;

  /**
   * `ms` undefined: no bound (the store's own timeouts apply). `endsAt` (performance.now() ms)
   * overrides the end when given: the gRPC adapter measures the budget from when it took the
   * call, and ends it before the caller's own deadline.
   */
  constructor(
    readonly ms: number | undefined,
    endsAt?: number,
  ) {
    this.endsAt = ms === undefined ? Infinity : (endsAt ?? performance.now() + ms);
  }

  /** Milliseconds left (Infinity without a bound, never negative). */
  remaining(): number {
    return Math.max(0, this.endsAt - performance.now());
  }

  /**
   * Settles as `call()` does, or rejects with StoreDeadlineError when the budget ends first (at
   * once, without calling the store, when it has already ended). The abandoned call keeps
   * running; its late result is ignored here (the key cache may still keep it).
   */
  run<T>(call: () => Promise<T>): Promise<T> {
    const left = this.remaining();
    // Over: never start a call that is abandoned at once (an abandoned charge may still count).
    if (left <= 0 || this.over) return Promise.reject(deadlineError(this.ms ?? 0));
    let pending: Promise<T>;
    try {
      pending = call();
    } catch (err) {
      return Promise.reject(err);
    }
    if (left === Infinity) return pending;
    if (!this.ended) {
      this.ended = new Promise<never>((_, reject) => {
        this.timer = setTimeout(() => {
          // From now on no store call starts. The pending one is abandoned after this loop
          // iteration's I/O: when keygate itself is late (a busy event loop runs timers before
          // it reads sockets), an answer the store already sent still counts, instead of a
          // charged quota with an UNAVAILABLE answer. On a quiet loop that is microseconds.
          this.over = true;
          setImmediate(() => reject(deadlineError(this.ms ?? 0)));
        }, Math.ceil(left));
      });
      this.ended.catch(() => {}); // nobody may be waiting any more when it fires
    }
    // A failure that arrives after the budget ended (a command timeout firing in the same timer
    // phase as the budget when the event loop ran late) is the budget running out, not a store
    // fault: it counts as a deadline, like the abandoned call it is.
    const settled = pending.catch((err: unknown) => {
      throw this.over || this.remaining() <= 0 ? deadlineError(this.ms ?? 0) : err;
    });
    return Promise.race([settled, this.ended]);
  }

  /** The Check is answered: stop the timer. */
  dispose(): void {
    clearTimeout(this.timer);
  }
}

/**
 * What the failure policy let a Check do when a store call failed (threw or ran out of budget):
 * - stale_key        a key record past its cache TTL, within KEYGATE_CACHE_STALE_MS, was used
 * - stale_plan       the same for the key's plan
 * - quota_unchecked  the quota charge failed and KEYGATE_QUOTA_ON_STORE_ERROR=allow let the
 *                    request through uncharged
 * - usage_unrecorded a denial's usage counter could not be written; the denial stands
 * The `kind` label of keygate_store_fallbacks_total.
 */
export const STORE_FALLBACK_KINDS = ['stale_key', 'stale_plan', 'quota_unchecked', 'usage_unrecorded'] as const;
export type StoreFallbackKind = (typeof STORE_FALLBACK_KINDS)[number];

export interface StoreFallback {
  kind: StoreFallbackKind;
  /** stale_key / stale_plan: how long past its TTL the cached value was, ms */
  staleMs?: number;
  /** the store failure, for the log line (never sent to Envoy) */
  cause: unknown;
}

/** A cached value kept past its TTL, offered when the store fails. */
export interface StaleValue<T> {
  value: T;
  /** how long past its TTL, ms (0 when another lookup refreshed it meanwhile) */
  staleMs: number;
}
