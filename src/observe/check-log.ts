// One JSON log line per denied or failed Check (and per allowed one when KEYGATE_LOG_ALLOWED is
// on, or when shadow mode let through a request a limit would have refused), with Envoy's request
// id, key id, owner, plan, decision, reason (the same string as the metric label: `ok`, a deny
// reason, or deadline/store/overload/internal) and latency. Never the key, its digest, a header value or
// the request path (the key may be in its query string).
import type { CheckEvent, CheckObserver } from '../grpc/server';
import type { Logger } from '../log';

/** At most one log line per this many ms for Checks shed by the in-flight bound (error/overload). */
const OVERLOAD_LOG_INTERVAL_MS = 1000;

export function checkLogger(logger: Logger, logAllowed: boolean): CheckObserver {
  // Shed Checks come by the thousand when keygate is overloaded: one summary line per interval
  // (the metric keygate_checks_total{decision="error",reason="overload"} counts each).
  let shedSince = 0;
  let shedLoggedAt = -Infinity;
  return {
    checked(e: CheckEvent) {
      if (e.error === 'overload') {
        shedSince++;
        const now = performance.now();
        if (now - shedLoggedAt < OVERLOAD_LOG_INTERVAL_MS) return;
        logger.warn({ decision: 'error', reason: 'overload', shed: shedSince, error: describeError(e.cause) }, 'checks shed: too many in flight');
        shedLoggedAt = now;
        shedSince = 0;
        return;
      }
      const o = e.outcome;
      if (o?.decision === 'allow' && !logAllowed && !o.shadowDenial) return;
      const line: Record<string, unknown> = {
        request_id: e.input.requestId,
        decision: o ? o.decision : 'error',
        latency_ms: Math.round(e.seconds * 1e6) / 1e3,
      };
      if (o) {
        const key = o.key;
        if (key) {
          line.key_id = key.id;
          line.owner = key.owner;
          line.plan = key.plan;
        }
        if (o.decision === 'deny') {
          line.reason = o.reason;
          if (o.detail) line.detail = o.detail;
        } else {
          line.reason = 'ok';
          if (o.shadowDenial) line.shadow_denial = o.shadowDenial;
        }
        logger.info(line, o.decision === 'allow' ? 'check allowed' : 'check denied');
      } else {
        line.reason = e.error;
        line.error = describeError(e.cause);
        logger.warn(line, 'check failed');
      }
    },
  };
}

/** The error's class and message only: no stack, no command arguments. */
function describeError(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  return `${err.name}: ${err.message.split('\n')[0].slice(0, 200)}`;
}
