// The contract between keygate-admin's runner (cli.ts) and its verbs (commands/*.ts): what a verb
// gets (CliContext), how it refuses (CliError), and how a module of verbs plugs into the tree.
import type { Command } from 'commander';
import type { Clock } from '../clock';
import type { Digester } from '../keys/digest';
import type { KeyStore } from '../keys/types';
import type { CreditStore, UsageStore } from '../limits/types';

/** Where the CLI writes; process.stdout and process.stderr fit, and so does a test buffer. */
export interface OutputStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

/** What keygate-admin reads from the environment (the same variables and rules as keygate). */
export interface AdminSettings {
  redisUrl?: string;
  /** KEYGATE_REDIS_TLS_CA: PEM file of the CA for the TLS forms of REDIS_URL */
  redisTlsCa?: string;
  keyPepper?: string;
  keyPrefix: string;
}

/** Credit balances and usage history: the limiter's side of the store (RedisLimiter on the same client). */
export type Counters = CreditStore & UsageStore;

export interface StoreHandle {
  store: KeyStore;
  /** Credits and usage of the keys in `store`; a handle without it refuses the verbs that need them. */
  counters?: Counters;
  close(): Promise<void>;
}

export interface CliIo {
  stdout: OutputStream;
  stderr: OutputStream;
  env: Record<string, string | undefined>;
  /**
   * Opens the store the verbs act on; default: Redis at REDIS_URL (keys, plans, and a RedisLimiter
   * on the same client for credits and usage). Opened only when a verb needs it.
   */
  openStore?: (settings: AdminSettings, clock: Clock) => Promise<StoreHandle>;
  clock?: Clock;
}

/** A refusal with a one-line reason (exit 1), optionally followed by detail lines (e.g. bad lines of a file). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly details: readonly string[] = [],
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Ends a verb with an exit code and nothing on stderr (the verb printed its outcome: `check` denied → 1). */
export class CliExit extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
    this.name = 'CliExit';
  }
}

/** What every verb gets: settings, time, the store, and output that never shows a digest. */
export interface CliContext {
  settings(): AdminSettings;
  digester(): Digester;
  now(): number;
  clock: Clock;
  store(): Promise<KeyStore>;
  /** Credit balances and usage history, from the same store (opened with it). */
  counters(): Promise<Counters>;
  /** The environment the CLI runs with (e.g. KEYGATE_GRPC_PORT for `check`). */
  env: Readonly<Record<string, string | undefined>>;
  /** Writes text to stdout as is (after masking anything shaped like a digest). */
  print(text: string): void;
  /** Writes a value as JSON (one document, pretty-printed) to stdout. */
  printJson(value: unknown): void;
  /** A `keygate-admin: ...` line on stderr (warnings, progress). */
  note(text: string): void;
  stderrIsTTY: boolean;
}

/** The groups verbs hang under. `root` takes top-level verbs (`import`, `usage`, `check`). */
export interface CommandTree {
  root: Command;
  plan: Command;
  key: Command;
}

/** A set of verbs. Register adds them to the tree; actions use ctx and throw CliError to refuse. */
export interface CliModule {
  register(tree: CommandTree, ctx: CliContext): void;
}

/** Collects a repeatable option (`--scope a --scope b`) into a list. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
