// One warn line per Check that was answered despite a store failure (a stale key record or plan,
// an unchecked quota, a denial whose usage count was lost), next to the Check's usual log line,
// so that an operator sees which answers the failure policy produced and why the store failed.
// Same rules as every Check log line: key id, owner and plan, never the key, its digest, a header
// value or the request path.
import type { CheckEvent, CheckObserver } from '../grpc/server';
import type { Logger } from '../log';

export function storeFallbackLogger(logger: Logger): CheckObserver {
  return {
    checked(e: CheckEvent) {
      const o = e.outcome;
      const fallbacks = o?.storeFallbacks;
      if (!o || !fallbacks || fallbacks.length === 0) return;
      const line: Record<string, unknown> = {
        request_id: e.input.requestId,
        decision: o.decision,
        reason: o.decision === 'allow' ? 'ok' : o.reason,
        latency_ms: Math.round(e.seconds * 1e6) / 1e3,
        store_fallbacks: fallbacks.map((f) => (f.staleMs === undefined ? f.kind : `${f.kind}(${f.staleMs}ms)`)),
        error: describe(fallbacks[0].cause),
      };
      if (o.key) {
        line.key_id = o.key.id;
        line.owner = o.key.owner;
        line.plan = o.key.plan;
      }
      logger.warn(line, 'check answered despite a store failure');
    },
  };
}

/** The error's class and first line only: no stack, no command arguments. */
function describe(err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined;
  return `${err.name}: ${err.message.split('\n')[0].slice(0, 200)}`;
}
