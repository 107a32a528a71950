// keygate-admin key create | list | show | update | disable | enable | revoke | rotate | import.
// Only `create` and `rotate` print a secret: the new one, once. Nothing prints a digest.
// `key credits` lives in credits.ts; `key create --credits N` and `key show` use its balance here.
import { InvalidArgumentError, Option } from 'commander';
import { parseCidr } from '../../keys/cidr';
import { generateKey, generateKeyId, isValidPrefix } from '../../keys/format';
import { isValidKeyId, isValidName, isValidScope, recordProblems } from '../../keys/record';
import type { KeyRecord, KeyStatus } from '../../keys/types';
import { PlanError, validateLimits } from '../../limits/plans';
import { CliError, collect, type CliContext, type CliModule } from '../context';
import { importKeys, type ImportFormat } from '../key-import';
import { canonicalRecord } from '../key-entry';
import { iso, parseDuration, parseExpiry } from '../time';
import { keyRows, keyView, labelled, table, withCreditBalance, type KeyView } from '../views';
import { creditAmount } from './credits';

const SECRET_WARNING = 'the key above is shown only this once; keygate stores only a digest of it, so store it safely now';

function positiveInteger(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

async function requireKey(ctx: CliContext, id: string): Promise<KeyRecord> {
  const found = await (await ctx.store()).getKey(id);
  if (!found) throw new CliError(`no key ${id}`);
  return found;
}

async function requirePlan(ctx: CliContext, name: string): Promise<void> {
  if (!isValidName(name)) throw new CliError(`"${name}" is not a valid plan name`);
  if (!(await (await ctx.store()).getPlan(name))) {
    throw new CliError(`no plan ${name}; create it first: keygate-admin plan set ${name} --limit COUNT/WINDOW`);
  }
}

function keyPrefix(ctx: CliContext, given: string | undefined): string {
  const prefix = given ?? ctx.settings().keyPrefix;
  if (!isValidPrefix(prefix)) throw new CliError(`--prefix "${prefix}": 1-16 lowercase letters or digits, starting with a letter`);
  return prefix;
}

/** An --expires value as ms; it must lie after `now`. */
function futureExpiry(text: string, now: number): number {
  let expiresAt: number;
  try {
    expiresAt = parseExpiry(text, now);
  } catch (err) {
    throw new CliError(`--expires ${(err as Error).message}`);
  }
  if (expiresAt <= now) throw new CliError(`--expires ${text}: that time has already passed (${iso(expiresAt)})`);
  return expiresAt;
}

function parseMetadata(pairs: readonly string[]): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new CliError(`--metadata "${pair}": expected NAME=VALUE`);
    const name = pair.slice(0, eq);
    if (name in metadata) throw new CliError(`--metadata ${name} is given twice`);
    metadata[name] = pair.slice(eq + 1);
  }
  return metadata;
}

function parseKeyLimits(texts: readonly string[]): KeyRecord['limits'] {
  if (texts.length === 0) return undefined;
  try {
    return validateLimits(texts, '--limit');
  } catch (err) {
    if (err instanceof PlanError) throw new CliError(err.problems.join('; '));
    throw err;
  }
}

/** Prints a new secret: `--json` as {"id","key",...}, else labelled lines; the warning goes to stderr. */
function printNewSecret(
  ctx: CliContext,
  record: KeyRecord,
  secret: string,
  json: boolean | undefined,
  oldKeyValidUntil?: string,
  creditBalance?: number,
): void {
  const view = withCreditBalance(keyView(record, ctx.now()), creditBalance);
  if (json) {
    const { id, ...rest } = view;
    ctx.printJson({ id, key: secret, ...(oldKeyValidUntil !== undefined && { oldKeyValidUntil }), ...rest });
  } else {
    const [idRow, ...rest] = keyRows(view);
    const oldRow: [string, string][] = oldKeyValidUntil === undefined ? [] : [['old key until', oldKeyValidUntil]];
    ctx.print(labelled([idRow, ['key', secret], ...oldRow, ...rest]));
  }
  ctx.note(SECRET_WARNING);
}

async function setStatus(ctx: CliContext, id: string, status: KeyStatus, json: boolean | undefined): Promise<void> {
  const record = await requireKey(ctx, id);
  if (record.status === 'revoked' && status !== 'revoked') {
    throw new CliError(`key ${id} is revoked; revocation is permanent (create a new key instead)`);
  }
  const changed = record.status !== status;
  const updated = canonicalRecord({ ...record, status });
  if (changed) await (await ctx.store()).updateKey(updated);
  if (json) ctx.printJson(keyView(updated, ctx.now()));
  else ctx.print(changed ? `key ${id} ${status}\n` : `key ${id} is already ${status}\n`);
}

export const keyCommands: CliModule = {
  register({ key }, ctx) {
    key
      .command('create')
      .description('create a key and print its secret, once')
      .requiredOption('--owner <owner>', 'who the key belongs to (sent upstream as x-keygate-owner)')
      .requiredOption('--plan <plan>', 'an existing plan')
      .option('--name <text>', 'a label for people')
      .option('--scope <scope>', 'a scope the key holds (routes may require one); repeatable', collect)
      .option('--expires <time>', 'ISO-8601 time (2027-01-31T00:00:00Z) or duration from now (30d, 12h, 1h30m)')
      .option('--cidr <cidr>', 'only requests from this IPv4/IPv6 range are allowed; repeatable', collect)
      .option('--prefix <prefix>', 'readable prefix of the key (default: KEYGATE_KEY_PREFIX or kg)')
      .option('--limit <COUNT/WINDOW>', "the key's own limits, replacing the plan's; repeatable", collect)
      .option('--credits <n>', 'the key carries a balance of N credits: each request spends its cost, none left → 429 quota_exceeded', creditAmount(0))
      .option('--metadata <name=value>', 'free-form metadata; repeatable', collect)
      .option('--id <id>', 'the key id (default: random key_...)')
      .option('--json', 'print {"id","key",...} as JSON')
      .addHelpText(
        'after',
        [
          '',
          'Examples:',
          '  keygate-admin key create --owner acme --plan pro --scope read --expires 90d --json',
          '  keygate-admin key create --owner trial-user --plan free --credits 1000',
        ].join('\n'),
      )
      .action(
        async (opts: {
          owner: string;
          plan: string;
          name?: string;
          scope?: string[];
          expires?: string;
          cidr?: string[];
          prefix?: string;
          limit?: string[];
          metadata?: string[];
          credits?: number;
          id?: string;
          json?: boolean;
        }) => {
          if (!isValidName(opts.owner)) throw new CliError(`--owner "${opts.owner}": 1-128 letters, digits, ".", "_", ":", "@" or "-"`);
          for (const s of opts.scope ?? []) if (!isValidScope(s)) throw new CliError(`--scope "${s}" is not a valid scope`);
          for (const c of opts.cidr ?? []) if (!parseCidr(c)) throw new CliError(`--cidr "${c}" is not an IPv4 or IPv6 address or range`);
          if (opts.id !== undefined && !isValidKeyId(opts.id)) throw new CliError(`--id "${opts.id}" is not a valid key id`);
          const prefix = keyPrefix(ctx, opts.prefix);
          const now = ctx.now();
          const record = canonicalRecord({
            id: opts.id ?? generateKeyId(),
            owner: opts.owner,
            plan: opts.plan,
            name: opts.name,
            scopes: [...new Set(opts.scope ?? [])],
            status: 'active',
            createdAt: now,
            expiresAt: opts.expires === undefined ? undefined : futureExpiry(opts.expires, now),
            cidrs: [...new Set(opts.cidr ?? [])],
            metadata: parseMetadata(opts.metadata ?? []),
            limits: parseKeyLimits(opts.limit ?? []),
            ...(opts.credits !== undefined && { credits: true }),
          });
          const problems = recordProblems(record);
          if (problems.length > 0) throw new CliError(problems.join('; '));
          await requirePlan(ctx, opts.plan);
          // Open the counters before the key exists, so that a store without them refuses up front.
          const counters = opts.credits === undefined ? undefined : await ctx.counters();
          const secret = generateKey(prefix);
          await (await ctx.store()).createKey(record, { digest: ctx.digester()(secret) });
          if (counters === undefined || opts.credits === undefined) return printNewSecret(ctx, record, secret, opts.json);
          // The key exists from here on: whatever happens next, its secret must be printed. Until the
          // balance is written the key has 0 credits, so it is denied (quota_exceeded), never let through.
          let failure: unknown;
          try {
            await counters.setCredits(record.id, opts.credits);
          } catch (err) {
            failure = err;
          }
          printNewSecret(ctx, record, secret, opts.json, undefined, failure === undefined ? opts.credits : 0);
          if (failure !== undefined) {
            const why = failure instanceof Error ? failure.message : String(failure);
            throw new CliError(
              `key ${record.id} was created, but its credit balance could not be set (${why.replace(/\s+/g, ' ')}); ` +
                `it has 0 credits until: keygate-admin key credits ${record.id} --set ${opts.credits}`,
              [],
              3,
            );
          }
        },
      );

    key
      .command('list')
      .description('list keys (never their secrets)')
      .option('--owner <owner>', 'only keys of this owner')
      .option('--plan <plan>', 'only keys on this plan')
      .option('--json', 'print a JSON array')
      .action(async (opts: { owner?: string; plan?: string; json?: boolean }) => {
        const records = await (await ctx.store()).listKeys(opts.owner === undefined ? {} : { owner: opts.owner });
        const views = records.filter((r) => opts.plan === undefined || r.plan === opts.plan).map((r) => keyView(r, ctx.now()));
        if (opts.json) return ctx.printJson(views);
        if (views.length === 0) return ctx.print('no keys\n');
        ctx.print(
          table(
            ['ID', 'OWNER', 'PLAN', 'STATUS', 'CREATED', 'EXPIRES', 'NAME'],
            views.map((v) => [v.id, v.owner, v.plan, v.status, v.created, v.expires ? `${v.expires}${v.expired ? ' (passed)' : ''}` : 'never', v.name ?? '']),
          ),
        );
      });

    key
      .command('show')
      .description('show one key (and its credit balance, when it carries credits)')
      .argument('<id>')
      .option('--json', 'print JSON')
      .action(async (id: string, opts: { json?: boolean }) => {
        const record = await requireKey(ctx, id);
        let view: KeyView = keyView(record, ctx.now());
        if (record.credits) view = withCreditBalance(view, await (await ctx.counters()).getCredits(id));
        if (opts.json) ctx.printJson(view);
        else ctx.print(labelled(keyRows(view)));
      });

    key
      .command('update')
      .description("change a key's plan, name or expiry (its secret stays the same)")
      .argument('<id>')
      .option('--plan <plan>', 'move the key to this existing plan')
      .option('--name <text>', 'new label ("" clears it)')
      .option('--expires <time>', 'ISO-8601 time or duration from now (30d), or "never"')
      .option('--json', 'print the key as JSON')
      .action(async (id: string, opts: { plan?: string; name?: string; expires?: string; json?: boolean }) => {
        if (opts.plan === undefined && opts.name === undefined && opts.expires === undefined) {
          throw new CliError('nothing to change: give --plan, --name or --expires');
        }
        const record = await requireKey(ctx, id);
        if (opts.plan !== undefined) await requirePlan(ctx, opts.plan);
        const updated = canonicalRecord({
          ...record,
          ...(opts.plan !== undefined && { plan: opts.plan }),
          ...(opts.name !== undefined && { name: opts.name === '' ? undefined : opts.name }),
          ...(opts.expires !== undefined && { expiresAt: opts.expires === 'never' ? undefined : futureExpiry(opts.expires, ctx.now()) }),
        });
        const problems = recordProblems(updated);
        if (problems.length > 0) throw new CliError(problems.join('; '));
        await (await ctx.store()).updateKey(updated);
        if (opts.json) ctx.printJson(keyView(updated, ctx.now()));
        else ctx.print(`key ${id} updated\n`);
      });

    for (const [verb, status, what] of [
      ['disable', 'disabled', 'deny the key (401 disabled_api_key) until it is enabled again'],
      ['enable', 'active', 'let a disabled key through again (a revoked key stays revoked)'],
      ['revoke', 'revoked', 'deny the key for good (401 invalid_api_key); cannot be undone'],
    ] as const) {
      key
        .command(verb)
        .description(what)
        .argument('<id>')
        .option('--json', 'print the key as JSON')
        .action((id: string, opts: { json?: boolean }) => setStatus(ctx, id, status, opts.json));
    }

    key
      .command('rotate')
      .description('give a key a new secret (printed once); the old one works until the grace period ends')
      .argument('<id>')
      .option('--grace <duration>', 'how long the old secret keeps working: 0 (default), 15m, 1h, 7d', '0')
      .option('--prefix <prefix>', 'readable prefix of the new key (default: KEYGATE_KEY_PREFIX or kg)')
      .option('--json', 'print {"id","key","oldKeyValidUntil",...} as JSON')
      .addHelpText('after', '\nExample:\n  keygate-admin key rotate key_4Jx9 --grace 1h --json')
      .action(async (id: string, opts: { grace: string; prefix?: string; json?: boolean }) => {
        const grace = parseDuration(opts.grace);
        if (grace === null) throw new CliError(`--grace "${opts.grace}": expected a duration such as 0, 15m, 1h or 7d`);
        const prefix = keyPrefix(ctx, opts.prefix);
        const record = await requireKey(ctx, id);
        if (record.status === 'revoked') throw new CliError(`key ${id} is revoked; revocation is permanent (create a new key instead)`);
        const secret = generateKey(prefix);
        const graceUntil = ctx.now() + grace;
        await (await ctx.store()).rotateKey(id, { digest: ctx.digester()(secret) }, graceUntil);
        const until = iso(graceUntil);
        printNewSecret(ctx, record, secret, opts.json, until);
        if (!opts.json) ctx.note(grace === 0 ? 'the old secret no longer works' : `the old secret works until ${until}`);
      });

    key
      .command('import')
      .description('create or update many keys from a JSON, JSON-lines or CSV file (idempotent)')
      .argument('<file>')
      .option('--dry-run', 'check the whole file against the store and report what would change; write nothing')
      .addOption(new Option('--format <format>', 'file format (default: from the extension, else the first character)').choices(['json', 'csv']))
      .option('--progress', 'report progress on stderr (on by default when stderr is a terminal)')
      .option('--progress-every <lines>', 'progress every this many lines or keys (default 10000; implies --progress)', positiveInteger)
      .option('--batch-size <n>', 'keys checked or written per batch (default 500)', positiveInteger)
      .option('--json', 'print the counts as JSON')
      .addHelpText(
        'after',
        [
          '',
          'Fields (JSON) or header columns (CSV): owner, plan, key | digest, and optionally name, scopes,',
          'expires, cidrs, id, status, limits, metadata. CSV list cells separate items with ";" or spaces;',
          'metadata cells are name=value;name=value. A key without id gets a stable id derived from its',
          'digest, so importing the same file again changes nothing. The whole file is checked first: if',
          'any line is bad, every bad line is reported with its number and nothing is written.',
          '',
          'Example:',
          '  keygate-admin key import keys.csv --dry-run',
        ].join('\n'),
      )
      .action(
        async (
          file: string,
          opts: { dryRun?: boolean; format?: ImportFormat; progress?: boolean; progressEvery?: number; batchSize?: number; json?: boolean },
        ) => {
          const showProgress = ctx.stderrIsTTY || opts.progress === true || opts.progressEvery !== undefined;
          const settings = ctx.settings();
          const result = await importKeys({
            store: await ctx.store(),
            file,
            format: opts.format,
            dryRun: opts.dryRun,
            batchSize: opts.batchSize,
            progressEvery: opts.progressEvery,
            onProgress: showProgress ? (message) => ctx.note(`key import: ${message}`) : undefined,
            digester: ctx.digester(),
            now: ctx.now(),
            nativePrefixes: [settings.keyPrefix],
          });
          if (opts.json) return ctx.printJson({ file, ...result });
          ctx.print(
            result.dryRun
              ? `key import ${file}: dry run, nothing written: ${result.keys} keys valid; ` +
                  `would create ${result.created}, update ${result.updated}, leave ${result.unchanged} unchanged\n`
              : `key import ${file}: ${result.keys} keys: ${result.created} created, ${result.updated} updated, ${result.unchanged} unchanged\n`,
          );
        },
      );
  },
};
