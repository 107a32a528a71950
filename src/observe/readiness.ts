// The readiness probe behind /readyz, grpc.health.v1 and keygate_ready: keygate is ready when
// its store answers a PING and, with Redis, the quota script is loaded in Redis's script cache
// (loaded again after a Redis restart or SCRIPT FLUSH, so the first Check after it runs EVALSHA
// instead of paying for a NOSCRIPT round trip). app.ts runs the probe at start-up and then on an
// interval; each run sets HealthState's store problem (null when ready) and logs transitions.
import type Redis from 'ioredis';
import type { HealthState } from '../health';
import type { KeyStore } from '../keys/types';
import type { Logger } from '../log';

/** One condition of readiness: `run` throws when it does not hold; `problem` is the reason shown. */
export interface ReadinessCondition {
  problem: string;
  run(): Promise<void>;
}

/** The store answers (KeyStore.ping). */
export function storeReachable(store: KeyStore): ReadinessCondition {
  return { problem: 'store unreachable', run: () => store.ping() };
}

/** Redis holds the script (SCRIPT EXISTS; SCRIPT LOAD when it does not). */
export function scriptLoaded(redis: Redis, name: string, script: { source: string; sha1: string }): ReadinessCondition {
  return {
    problem: `${name} script not loaded`,
    async run() {
      const [exists] = (await redis.script('EXISTS', script.sha1)) as number[];
      if (exists === 1) return;
      const sha = (await redis.script('LOAD', script.source)) as string;
      if (sha !== script.sha1) throw new Error(`SCRIPT LOAD returned ${sha}, expected ${script.sha1}`);
    },
  };
}

/**
 * A probe function: runs the conditions in order, stops at the first that fails and reports
 * it as the store problem (`not ready: <problem>` on /readyz). Never rejects.
 */
export function readinessProbe(health: HealthState, logger: Logger, conditions: readonly ReadinessCondition[]): () => Promise<void> {
  let running: Promise<void> | undefined;
  const once = async () => {
    for (const c of conditions) {
      try {
        await c.run();
      } catch (err) {
        if (health.problem !== c.problem && health.problem !== 'shutting down') {
          logger.error({ problem: c.problem, error: (err as Error)?.message?.split('\n')[0].slice(0, 200) }, `${c.problem}: not ready`);
        }
        health.setStoreProblem(c.problem);
        return;
      }
    }
    if (health.problem !== null && health.problem !== 'shutting down') logger.info({ was: health.problem }, 'store reachable: ready');
    health.setStoreProblem(null);
  };
  // A slow store must not pile up probes: a run that finds one in progress joins it.
  return () => (running ??= once().finally(() => (running = undefined)));
}
