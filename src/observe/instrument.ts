// Decorators that time the store calls keygate makes while answering Checks and probing
// readiness — KeyStore.lookup / getPlan / ping, Limiter.charge, UsageStore.recordUsage — into
// keygate_redis_duration_seconds{operation} and keygate_redis_errors_total{operation}.
//
// Measured at this interface rather than inside ioredis: one observation is one call of the
// Check path as the Check path sees it (a lookup may be a couple of pipelined commands, a charge
// is an EVALSHA plus an EVAL after NOSCRIPT), and the operation label is a fixed word, never a
// command argument (Redis keys hold digests and key ids). Every other method is passed through
// untimed (admin writes, listings, usage reads). Results and errors are returned unchanged.
import type { DigestEntry, InvalidationListener, KeyFilter, KeyRecord, KeyStore } from '../keys/types';
import type { ChargeRequest, ChargeResult, Limiter, Plan, UsageDay, UsageStore } from '../limits/types';
import type { StoreMetrics, StoreOperationMetrics } from './metrics';

/** Waits for `call`, recording its duration and, when it rejects, one error. */
// performance.now() (a double) rather than process.hrtime.bigint(): no BigInt allocated per call.
function timed<T>(m: StoreOperationMetrics, started: number, call: Promise<T>): Promise<T> {
  return call.then(
    (value) => {
      m.observe((performance.now() - started) / 1e3);
      return value;
    },
    (err: unknown) => {
      m.observe((performance.now() - started) / 1e3);
      m.error();
      throw err;
    },
  );
}

/** Runs `call` timed; a synchronous throw counts (and propagates) like a rejection. */
function measure<T>(m: StoreOperationMetrics, call: () => Promise<T>): Promise<T> {
  const started = performance.now();
  let p: Promise<T>;
  try {
    p = call();
  } catch (err) {
    p = Promise.reject(err);
  }
  return timed(m, started, p);
}

class InstrumentedKeyStore implements KeyStore {
  constructor(
    private readonly inner: KeyStore,
    private readonly m: StoreMetrics,
  ) {}

  lookup(digest: string): Promise<KeyRecord | null> {
    const started = performance.now();
    let p: Promise<KeyRecord | null>;
    try {
      p = this.inner.lookup(digest);
    } catch (err) {
      p = Promise.reject(err);
    }
    return timed(this.m.lookup, started, p);
  }
  getPlan(name: string): Promise<Plan | null> {
    return measure(this.m.plan, () => this.inner.getPlan(name));
  }
  ping(): Promise<void> {
    return measure(this.m.ping, () => this.inner.ping());
  }

  getKey(id: string): Promise<KeyRecord | null> {
    return this.inner.getKey(id);
  }
  listKeys(filter?: KeyFilter): Promise<KeyRecord[]> {
    return this.inner.listKeys(filter);
  }
  createKey(record: KeyRecord, digest: DigestEntry): Promise<void> {
    return this.inner.createKey(record, digest);
  }
  upsertKey(record: KeyRecord, digest: DigestEntry): Promise<'created' | 'updated' | 'unchanged'> {
    return this.inner.upsertKey(record, digest);
  }
  updateKey(record: KeyRecord): Promise<void> {
    return this.inner.updateKey(record);
  }
  rotateKey(id: string, digest: DigestEntry, graceUntil: number): Promise<void> {
    return this.inner.rotateKey(id, digest, graceUntil);
  }
  listPlans(): Promise<Plan[]> {
    return this.inner.listPlans();
  }
  putPlan(plan: Plan): Promise<'created' | 'updated' | 'unchanged'> {
    return this.inner.putPlan(plan);
  }
  deletePlan(name: string): Promise<boolean> {
    return this.inner.deletePlan(name);
  }
  onInvalidate(listener: InvalidationListener): () => void {
    return this.inner.onInvalidate(listener);
  }
  invalidationsLive(): Promise<void> {
    return this.inner.invalidationsLive();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

class InstrumentedLimiter implements Limiter, UsageStore {
  constructor(
    private readonly inner: Limiter & UsageStore,
    private readonly m: StoreMetrics,
  ) {}

  charge(req: ChargeRequest): Promise<ChargeResult> {
    const started = performance.now();
    let p: Promise<ChargeResult>;
    try {
      p = this.inner.charge(req);
    } catch (err) {
      p = Promise.reject(err);
    }
    return timed(this.m.charge, started, p);
  }
  recordUsage(keyId: string, outcome: string, now: number): Promise<void> {
    return measure(this.m.usage, () => this.inner.recordUsage(keyId, outcome, now));
  }
  readUsage(keyId: string, fromDay: string, days: number): Promise<UsageDay[]> {
    return this.inner.readUsage(keyId, fromDay, days);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** The same KeyStore, with lookup / getPlan / ping timed and their failures counted. */
export function instrumentKeyStore(store: KeyStore, metrics: StoreMetrics): KeyStore {
  return new InstrumentedKeyStore(store, metrics);
}

/** The same limiter, with charge and recordUsage timed and their failures counted. */
export function instrumentLimiter(limiter: Limiter & UsageStore, metrics: StoreMetrics): Limiter & UsageStore {
  return new InstrumentedLimiter(limiter, metrics);
}
