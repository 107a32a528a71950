// keygate's process entry point: config → logger → startKeygate(); SIGTERM/SIGINT drain and exit.
// A bad configuration prints every problem and exits 2 before anything listens.
//
// The drain (app.ts stop()): NOT_SERVING at once (/readyz 503, grpc.health.v1 NOT_SERVING), then
// a grace of drainGraceMs(KEYGATE_SHUTDOWN_TIMEOUT_MS) (half of it, at most 5 s) in which Checks
// and new connections are still served so that Envoy's health check takes keygate out of the
// pool, then the listener closes, in-flight Checks finish, and the process exits 0 — all within
// KEYGATE_SHUTDOWN_TIMEOUT_MS (Checks still running then are cancelled). A second signal exits
// at once (status 1).
//
// KEYGATE_WORKERS > 1: this process becomes the primary of a node:cluster (src/workers.ts) and
// each worker runs the code below without an HTTP server of its own.
import cluster from 'node:cluster';
import { drainGraceMs, startKeygate } from './app';
import { ConfigError, loadConfig } from './config';
import { createLogger } from './log';
import { reportToPrimary, runPrimary } from './workers';

/** How much longer than KEYGATE_SHUTDOWN_TIMEOUT_MS the process may take to close down. */
const EXIT_SLACK_MS = 2000;

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`keygate: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  if (!config.redisUrl && cluster.isPrimary) {
    process.stderr.write(
      '\n  *** keygate: REDIS_URL is not set — EMBEDDED IN-MEMORY STORE ***\n' +
        '  *** one process only, nothing is persisted: for trying and testing, not for production ***\n\n',
    );
  }
  if (config.workers > 1 && cluster.isPrimary) {
    await runPrimary(config, logger);
    return;
  }
  const worker = cluster.isWorker;
  const app = await startKeygate({ config, logger, drainGraceMs: drainGraceMs(config.shutdownTimeoutMs), serveHttp: !worker });
  if (worker) reportToPrimary(app.health, app.metrics.registry);
  let signalled = false;
  const exit = (code: number) => {
    // Exit once the log lines are written out, or after a second if that does not happen.
    const fallback = setTimeout(() => process.exit(code), 1000);
    logger.flush(() => {
      clearTimeout(fallback);
      process.exit(code);
    });
  };
  const shutdown = (signal: string) => {
    if (signalled) {
      logger.warn({ signal }, 'second signal: exiting without waiting for the drain');
      exit(1);
      return;
    }
    signalled = true;
    logger.info({ signal }, 'shutting down');
    // Closing Redis connections cannot hang, but should anything else: never outlive the
    // shutdown timeout by more than a little.
    setTimeout(() => {
      logger.error('shutdown did not finish in time: exiting');
      exit(1);
    }, config.shutdownTimeoutMs + EXIT_SLACK_MS).unref();
    app.stop().then(
      () => exit(0),
      (err: unknown) => {
        logger.error({ error: String(err) }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`keygate: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
