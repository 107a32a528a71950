// keygate-admin: the admin CLI. runCli(argv, io) parses the command line with commander, runs one
// verb against the store (Redis at REDIS_URL unless io supplies a store) and returns the exit code,
// so tests run it in-process; bin/keygate-admin.js calls it and exits with that code.
//
// Exit codes: 0 success; 1 the command was refused (unknown key or plan, invalid input, a file
// with bad lines); 2 usage error (unknown verb or option, missing argument); 3 the store failed
// (Redis unreachable) or another unexpected error. `check` maps its verdict onto them: 0 allowed,
// 1 denied, 3 keygate unreachable or answering with a gRPC error. Errors are one line on stderr:
// `keygate-admin: <reason>` (files with bad lines list them on the lines after it).
//
// The command tree is assembled from modules (CLI_MODULES below): a later verb (`usage`, `check`,
// `key credits`) is a new file in src/admin/commands/ exporting a CliModule, plus one line here.
import { Command, CommanderError } from 'commander';
import type { Clock } from '../clock';
import { systemClock } from '../clock';
import { ConfigError, loadConfig } from '../config';
import { makeDigester, type Digester } from '../keys/digest';
import { RedisKeyStore } from '../keys/redis-store';
import { StoreConflictError } from '../keys/types';
import { PlanError } from '../limits/plans';
import { RedisLimiter } from '../limits/redis-limiter';
import { createRedisClient, describeRedisUrl } from '../redis';
import { checkCommands } from './commands/check';
import { creditCommands } from './commands/credits';
import { importCommands } from './commands/import';
import { keyCommands } from './commands/key';
import { planCommands } from './commands/plan';
import { usageCommands } from './commands/usage';
import { ImportFileError } from './key-import';
import { CliError, CliExit, type AdminSettings, type CliContext, type CliIo, type CliModule, type CommandTree, type Counters, type StoreHandle } from './context';
import { SeedError } from './seed';

export {
  CliError,
  CliExit,
  type AdminSettings,
  type CliContext,
  type CliIo,
  type CliModule,
  type CommandTree,
  type Counters,
  type OutputStream,
  type StoreHandle,
} from './context';

export const PROGRAM_NAME = 'keygate-admin';

/**
 * The verbs of keygate-admin, in help order. To add verbs, add a module here, e.g.
 *   - `key credits ID ...` → a module registering under `tree.key`;
 *   - `usage ID [--days N]` and `check --key K ...` → modules registering under `tree.root`.
 */
const CLI_MODULES: readonly CliModule[] = [planCommands, keyCommands, creditCommands, importCommands, usageCommands, checkCommands];

/** Hex runs of digest length are masked on output: a digest must never be printed. */
const DIGEST_SHAPE = /(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])/gi;
const maskDigests = (text: string) => text.replace(DIGEST_SHAPE, '[digest hidden]');

/** Reads the admin settings with keygate's own validation rules, limited to the variables the CLI uses. */
export function readAdminSettings(env: Record<string, string | undefined>): AdminSettings {
  try {
    const config = loadConfig({
      REDIS_URL: env.REDIS_URL,
      KEYGATE_KEY_PEPPER: env.KEYGATE_KEY_PEPPER,
      KEYGATE_KEY_PREFIX: env.KEYGATE_KEY_PREFIX,
      KEYGATE_REDIS_TLS_CA: env.KEYGATE_REDIS_TLS_CA,
    });
    return { redisUrl: config.redisUrl, redisTlsCa: config.redisTlsCa, keyPepper: config.keyPepper, keyPrefix: config.keyPrefix };
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.problems.join('; '));
    throw err;
  }
}

/** Where a Redis URL points (host:port, sentinels or cluster nodes), for messages (the URL itself may carry a password). */
function redisAddress(url: string | undefined): string {
  return describeRedisUrl(url);
}

async function openRedisStore(settings: AdminSettings, clock: Clock): Promise<StoreHandle> {
  if (!settings.redisUrl) {
    throw new CliError('REDIS_URL is not set: keygate-admin manages the keys and plans of a keygate that uses Redis');
  }
  const client = createRedisClient(settings.redisUrl, { failFast: false, commandTimeoutMs: 15_000, tlsCaFile: settings.redisTlsCa });
  const store = new RedisKeyStore(client, clock);
  // Credits and usage live next to the keys, under the same client (reads and admin writes only:
  // the usage retention given to the limiter matters only for charges, which the CLI never makes).
  const counters = new RedisLimiter(client);
  return {
    store,
    counters,
    close: async () => {
      await counters.close();
      await store.close();
      client.disconnect();
    },
  };
}

function createContext(io: CliIo): CliContext & { closeStore(): Promise<void> } {
  const clock = io.clock ?? systemClock;
  let settings: AdminSettings | undefined;
  let digester: Digester | undefined;
  let handle: Promise<StoreHandle> | undefined;
  const ctx = {
    clock,
    stderrIsTTY: io.stderr.isTTY === true,
    settings() {
      settings ??= readAdminSettings(io.env);
      return settings;
    },
    digester() {
      digester ??= makeDigester(ctx.settings().keyPepper);
      return digester;
    },
    now: () => clock.now(),
    env: io.env,
    async store() {
      handle ??= (io.openStore ?? openRedisStore)(ctx.settings(), clock);
      return (await handle).store;
    },
    async counters(): Promise<Counters> {
      handle ??= (io.openStore ?? openRedisStore)(ctx.settings(), clock);
      const { counters } = await handle;
      if (!counters) throw new CliError('this store keeps no credit balances or usage counters', [], 3);
      return counters;
    },
    print(text: string) {
      io.stdout.write(maskDigests(text));
    },
    printJson(value: unknown) {
      io.stdout.write(maskDigests(`${JSON.stringify(value, null, 2)}\n`));
    },
    note(text: string) {
      io.stderr.write(maskDigests(`${PROGRAM_NAME}: ${text}\n`));
    },
    async closeStore() {
      if (!handle) return;
      const opened = await handle.catch(() => null);
      await opened?.close();
    },
  };
  return ctx;
}

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, ' ').trim();

function buildProgram(ctx: CliContext, io: CliIo): Command {
  const root = new Command(PROGRAM_NAME)
    .description('Manage the plans and API keys of keygate (an Envoy ext_authz server) in Redis.')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: (text, write) => write(`${PROGRAM_NAME}: ${oneLine(text.replace(/^error: /, ''))}\n`),
    })
    .showSuggestionAfterError(true)
    .addHelpText(
      'after',
      [
        '',
        'Environment:',
        '  REDIS_URL            the Redis keygate uses: redis://, rediss:// (TLS), redis+sentinel://h1:26379,h2:26379/<master>,',
        '                       redis+cluster://h1:7000,h2:7001 (rediss+sentinel://, rediss+cluster:// for TLS)',
        '  KEYGATE_REDIS_TLS_CA PEM file of the CA that signed Redis\'s certificate (TLS forms; default: system CAs)',
        '  KEYGATE_KEY_PEPPER   the same pepper keygate runs with, if any (digests are HMAC-SHA-256 then)',
        '  KEYGATE_KEY_PREFIX   prefix of new keys (default kg)',
        '',
        'Exit codes: 0 ok, 1 refused (reason on stderr), 2 usage error, 3 store failure.',
        '`check` exits 0 when keygate allows, 1 when it denies, 3 when keygate cannot be reached.',
      ].join('\n'),
    );
  const plan = root.command('plan').description('rate-limit and quota plans: set, list, show, delete');
  const key = root.command('key').description('API keys: create, list, show, update, disable, enable, revoke, rotate, credits, import');
  const tree: CommandTree = { root, plan, key };
  for (const module of CLI_MODULES) module.register(tree, ctx);
  return root;
}

/** The code and the stderr lines for an error thrown by a verb. */
function describeFailure(err: unknown, ctx: CliContext): { code: number; lines: string[] } {
  if (err instanceof CliError) return { code: err.exitCode, lines: [err.message, ...err.details.map((d) => `  - ${d}`)] };
  if (err instanceof SeedError) {
    const [headline] = err.message.split('\n');
    return { code: 1, lines: [headline.replace(/:$/, ''), ...err.problems.map((p) => `  - ${p}`)] };
  }
  if (err instanceof StoreConflictError || err instanceof ImportFileError) return { code: 1, lines: [err.message] };
  if (err instanceof PlanError) return { code: 1, lines: [err.problems.join('; ')] };
  const message = err instanceof Error ? err.message : String(err);
  const unreachable =
    err instanceof Error &&
    (err.name === 'MaxRetriesPerRequestError' || /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|Connection is closed|Command timed out/.test(message));
  if (unreachable) {
    let address = 'REDIS_URL';
    try {
      address = redisAddress(ctx.settings().redisUrl);
    } catch {
      // settings were fine when the store was opened; keep the generic name
    }
    const why = err.name === 'MaxRetriesPerRequestError' ? 'no connection after several attempts' : oneLine(message);
    return { code: 3, lines: [`cannot reach Redis at ${address}: ${why}`] };
  }
  return { code: 3, lines: [oneLine(message)] };
}

/** Runs keygate-admin with `argv` (without node and script path); resolves to the exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const ctx = createContext(io);
  const program = buildProgram(ctx, io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      return 2;
    }
    if (err instanceof CliExit) return err.exitCode;
    const { code, lines } = describeFailure(err, ctx);
    const [headline, ...details] = lines;
    io.stderr.write(maskDigests(`${PROGRAM_NAME}: ${headline}\n${details.map((d) => `${d}\n`).join('')}`));
    return code;
  } finally {
    await ctx.closeStore().catch(() => {});
  }
}
