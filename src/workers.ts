// KEYGATE_WORKERS=N: N processes serve one gRPC port (node:cluster shares the listening socket).
// The primary forks the workers and restarts one that dies, serves the HTTP endpoints for all of
// them — /metrics aggregated across workers (prom-client's AggregatorRegistry: counters and
// histograms summed), /readyz ready only when every worker is — and on SIGTERM drains them all.
// Each worker runs startKeygate without an HTTP server of its own and reports its readiness.
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Config } from './config';
import type { HealthState } from './health';
import { createHttpServer, listenHttp, type ReadinessView } from './http/server';
import type { Logger } from './log';

interface HealthMessage {
  type: 'keygate:health';
  problem: string | null;
}

const isHealthMessage = (m: unknown): m is HealthMessage =>
  typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'keygate:health';

const RESTART_DELAY_MS = 1000;

/** In a worker: answer the primary's metric requests and tell it every readiness change. */
export function reportToPrimary(health: HealthState, registry: Registry): void {
  // Constructing an AggregatorRegistry in a worker installs prom-client's answer to the
  // primary's metric requests; setRegistries says which registry to answer from.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([registry]);
  const send = () => process.send?.({ type: 'keygate:health', problem: health.problem } satisfies HealthMessage);
  health.onChange(send);
  send();
}

export async function runPrimary(config: Readonly<Config>, logger: Logger): Promise<void> {
  const aggregator = new AggregatorRegistry();
  /** worker id → its readiness problem (null = ready) */
  const problems = new Map<number, string | null>();
  let draining = false;
  const readiness: ReadinessView = {
    get problem() {
      if (draining) return 'shutting down';
      if (problems.size < config.workers) return 'starting';
      for (const p of problems.values()) if (p !== null) return `a worker is not ready: ${p}`;
      return null;
    },
  };

  const fork = (): Worker => {
    const worker = cluster.fork();
    problems.set(worker.id, 'starting');
    worker.on('message', (m: unknown) => {
      if (isHealthMessage(m)) problems.set(worker.id, m.problem);
    });
    worker.on('exit', (code, signal) => {
      problems.delete(worker.id);
      if (draining) return;
      logger.error({ worker: worker.id, code, signal }, 'worker died: starting another');
      setTimeout(() => {
        if (!draining) fork();
      }, RESTART_DELAY_MS).unref();
    });
    return worker;
  };
  for (let i = 0; i < config.workers; i++) fork();

  const http = createHttpServer({
    host: config.httpHost,
    port: config.httpPort,
    health: readiness,
    registry: { contentType: aggregator.contentType, metrics: () => aggregator.clusterMetrics() },
  });
  const httpPort = await listenHttp(http, config.httpHost, config.httpPort);
  logger.info({ workers: config.workers, http: `${config.httpHost}:${httpPort}` }, 'keygate primary: workers started');

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    draining = true;
    logger.info({ signal }, 'shutting down workers');
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    for (const w of workers) w.process.kill('SIGTERM');
    const force = setTimeout(() => {
      for (const w of workers) if (!w.isDead()) w.process.kill('SIGKILL');
    }, config.shutdownTimeoutMs + 2000);
    Promise.all(workers.map((w) => (w.isDead() ? undefined : new Promise((r) => w.once('exit', r))))).then(() => {
      clearTimeout(force);
      http.close();
      http.closeAllConnections?.();
      logger.info('stopped');
      // Exit once the log lines are written out, or after a second if that does not happen.
      const fallback = setTimeout(() => process.exit(0), 1000);
      logger.flush(() => {
        clearTimeout(fallback);
        process.exit(0);
      });
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
