// keygate-admin key credits ID [--add N | --set N]: a key's credit balance — remaining uses that
// never reset by themselves. Each Check of a key that carries credits spends its cost (the route's
// keygate.cost, default 1) in the same atomic charge as its limits; with too few left it is denied
// 429 quota_exceeded (no Retry-After: waiting does not help, adding credits does).
//
// Giving credits (--add or --set) to a key that did not carry any turns it into a credits key
// (record.credits = true): from then on its requests spend credits. The balance is written first
// and the flag second, so the key is never a credits key without its balance.
import { InvalidArgumentError } from 'commander';
import type { KeyRecord } from '../../keys/types';
import { CliError, type CliContext, type CliModule } from '../context';
import { canonicalRecord } from '../key-entry';

/** A commander parser for a whole number of credits of at least `min`. */
export function creditAmount(min: number): (text: string) => number {
  return (text: string) => {
    const n = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`expected a whole number of at least ${min}`);
    }
    return n;
  };
}

/** What `key credits --json` prints. */
export interface CreditsView {
  id: string;
  /** the key carries credits (its requests spend them) */
  credits: boolean;
  /** remaining credits; null for a key that does not carry credits */
  balance: number | null;
  /** --add: the credits added */
  added?: number;
  /** --set: the balance before */
  previous?: number;
  /** present (true) when this command turned the key into a credits key */
  nowCarriesCredits?: true;
}

async function requireKey(ctx: CliContext, id: string): Promise<KeyRecord> {
  const found = await (await ctx.store()).getKey(id);
  if (!found) throw new CliError(`no key ${id}`);
  return found;
}

function describe(v: CreditsView): string {
  if (!v.credits) return `key ${v.id} does not carry credits: its requests spend none (give it some with --add N or --set N)\n`;
  const change = v.added !== undefined ? ` (added ${v.added})` : v.previous !== undefined ? ` (was ${v.previous})` : '';
  const none = v.balance === 0 ? '; requests are denied quota_exceeded until credits are added' : '';
  return `key ${v.id}: ${v.balance} credit${v.balance === 1 ? '' : 's'} remaining${change}${none}\n`;
}

export const creditCommands: CliModule = {
  register({ key }, ctx) {
    key
      .command('credits')
      .description("show or change a key's credit balance (remaining uses that never reset)")
      .argument('<id>')
      .option('--add <n>', 'add N credits (N ≥ 1) to the balance; atomic with Checks in flight', creditAmount(1))
      .option('--set <n>', 'set the balance to N (N ≥ 0), replacing whatever is left', creditAmount(0))
      .option('--json', 'print {"id","credits","balance",...} as JSON')
      .addHelpText(
        'after',
        [
          '',
          'Each Check of a key that carries credits spends its cost (the route\'s keygate.cost, default 1);',
          'a Check with too few left is denied 429 quota_exceeded and spends nothing. Credits never reset.',
          'Giving credits to a key that did not carry any turns it into a credits key: from then on its',
          'requests spend credits. A revoked key\'s balance can be read but not changed.',
          '',
          'Examples:',
          '  keygate-admin key credits key_4Jx9',
          '  keygate-admin key credits key_4Jx9 --add 5000 --json',
        ].join('\n'),
      )
      .action(async (id: string, opts: { add?: number; set?: number; json?: boolean }) => {
        if (opts.add !== undefined && opts.set !== undefined) throw new CliError('give --add or --set, not both', [], 2);
        const record = await requireKey(ctx, id);
        const counters = await ctx.counters();
        let view: CreditsView;
        if (opts.add === undefined && opts.set === undefined) {
          view = { id, credits: record.credits === true, balance: record.credits ? await counters.getCredits(id) : null };
        } else {
          if (record.status === 'revoked') throw new CliError(`key ${id} is revoked; its credits cannot change`);
          const converting = record.credits !== true;
          if (opts.add !== undefined) {
            // A key that never carried credits starts from 0, whatever an old balance says.
            if (converting) await counters.setCredits(id, 0);
            else if ((await counters.getCredits(id)) + opts.add > Number.MAX_SAFE_INTEGER) {
              throw new CliError(`--add ${opts.add}: the balance would exceed ${Number.MAX_SAFE_INTEGER}`);
            }
            const balance = await counters.addCredits(id, opts.add);
            view = { id, credits: true, balance, added: opts.add };
          } else {
            const previous = converting ? 0 : await counters.getCredits(id);
            await counters.setCredits(id, opts.set as number);
            view = { id, credits: true, balance: opts.set as number, previous };
          }
          if (converting) {
            await (await ctx.store()).updateKey(canonicalRecord({ ...record, credits: true }));
            view.nowCarriesCredits = true;
          }
        }
        if (opts.json) ctx.printJson(view);
        else ctx.print(describe(view));
        if (view.nowCarriesCredits) {
          ctx.note(`key ${id} now carries credits: each request spends its cost and is denied quota_exceeded when too few are left`);
        }
      });
  },
};
