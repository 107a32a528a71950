// The structured JSON logger (pino). Check log lines name keys by id only; nothing here ever
// receives a secret, a digest or a raw header value.
import pino, { type Logger } from 'pino';
import type { LogLevel } from './config';

export type { Logger };

export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'keygate' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    // minLength 1 still writes every line at once, but makes logger.flush(cb) wait until the
    // writes in flight are done (with 0 it calls back at once): keygate exits right after that
    // callback, and on a loaded machine the last line, `stopped`, was lost (test/lifecycle/drain).
    destination ?? pino.destination({ sync: false, minLength: 1 }),
  );
}
