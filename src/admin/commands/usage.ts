// keygate-admin usage ID | --owner OWNER [--days N] [--json]: per UTC day, the requests a key (or
// all of an owner's keys) made — allowed, denied by reason, and (shadow mode) would-be denials —
// as a table and a bar chart, from the usage counters keygate keeps in the store. The last day is
// today (UTC, from the CLI's clock); days past the store's retention read as zeros.
import { InvalidArgumentError } from 'commander';
import type { KeyRecord } from '../../keys/types';
import type { UsageDay } from '../../limits/types';
import { MAX_USAGE_DAYS, usageFromDay } from '../../limits/usage';
import { CliError, type CliContext, type CliModule, type Counters } from '../context';
import { usageChart } from '../usage-chart';
import { chartDays, countOf, sumByDay, usageTable, usageTotal, type UsageTotal } from '../usage-report';
import { table } from '../views';

export const DEFAULT_USAGE_DAYS = 7;
/** Keys whose usage is read at once for --owner. */
const OWNER_READ_CONCURRENCY = 8;

function dayCount(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > MAX_USAGE_DAYS) {
    throw new InvalidArgumentError(`expected a whole number of days from 1 to ${MAX_USAGE_DAYS}`);
  }
  return n;
}

/** What `usage ID --json` prints. */
export interface KeyUsageView {
  id: string;
  owner: string;
  plan: string;
  status: string;
  name?: string;
  /** first and last day (YYYY-MM-DD, UTC), both included */
  from: string;
  to: string;
  days: UsageDay[];
  total: UsageTotal;
}

/** What `usage --owner O --json` prints: per-day sums over the owner's keys, and each key's total. */
export interface OwnerUsageView {
  owner: string;
  from: string;
  to: string;
  days: UsageDay[];
  total: UsageTotal;
  keys: { id: string; name?: string; plan: string; status: string; total: UsageTotal }[];
}

async function readAll(counters: Counters, ids: readonly string[], from: string, days: number): Promise<UsageDay[][]> {
  const out: UsageDay[][] = new Array<UsageDay[]>(ids.length);
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const i = next++;
      out[i] = await counters.readUsage(ids[i], from, days);
    }
  };
  await Promise.all(Array.from({ length: Math.min(OWNER_READ_CONCURRENCY, ids.length) }, worker));
  return out;
}

const span = (from: string, to: string, days: number) => (days === 1 ? `1 day, ${to} (UTC)` : `${days} days, ${from} to ${to} (UTC)`);

function keyUsage(record: KeyRecord, from: string, days: UsageDay[]): KeyUsageView {
  return {
    id: record.id,
    owner: record.owner,
    plan: record.plan,
    status: record.status,
    ...(record.name !== undefined && { name: record.name }),
    from,
    to: days[days.length - 1].day,
    days,
    total: usageTotal(days),
  };
}

function printKeyUsage(ctx: CliContext, v: KeyUsageView): void {
  const status = v.status === 'active' ? '' : `, ${v.status}`;
  ctx.print(
    `key ${v.id} (owner ${v.owner}, plan ${v.plan}${status}): ${span(v.from, v.to, v.days.length)}\n\n` +
      `${usageTable(v.days, v.total)}\n${usageChart(chartDays(v.days))}`,
  );
}

function printOwnerUsage(ctx: CliContext, v: OwnerUsageView): void {
  const keys = v.keys.length === 1 ? '1 key' : `${v.keys.length} keys`;
  const perKey = table(
    ['KEY', 'NAME', 'STATUS', 'ALLOWED', 'DENIED', 'WOULD DENY'],
    v.keys.map((k) => [k.id, k.name ?? '-', k.status, String(k.total.allowed), String(countOf(k.total.denied)), String(countOf(k.total.wouldDeny))]),
    [3, 4, 5],
  );
  ctx.print(
    `owner ${v.owner}, ${keys}: ${span(v.from, v.to, v.days.length)}\n\n` +
      `${usageTable(v.days, v.total)}\n${usageChart(chartDays(v.days))}\nper key:\n${perKey}`,
  );
}

const requests = (t: UsageTotal) => t.allowed + countOf(t.denied);

export const usageCommands: CliModule = {
  register({ root }, ctx) {
    root
      .command('usage')
      .description("a key's (or an owner's) requests per UTC day: allowed, denied by reason, shadow would-deny; table and chart")
      .argument('[id]', 'the key id (or give --owner)')
      .option('--owner <owner>', 'sum all keys of this owner per day, and list each key\'s totals')
      .option('--days <n>', `how many days, ending today (UTC); 1 to ${MAX_USAGE_DAYS}`, dayCount, DEFAULT_USAGE_DAYS)
      .option('--json', 'print JSON: {"from","to","days":[{"day","allowed","denied","wouldDeny"}],"total",...}')
      .addHelpText(
        'after',
        [
          '',
          'Requests are counted, not units of cost. ALLOWED includes, in shadow mode, the requests that',
          'WOULD DENY counts (let through, but over a limit). Days older than the store keeps usage',
          '(KEYGATE_USAGE_RETENTION_DAYS, default 90) read as zeros. Revoked keys keep their history.',
          '',
          'Examples:',
          '  keygate-admin usage key_4Jx9 --days 30',
          '  keygate-admin usage --owner acme --json',
        ].join('\n'),
      )
      .action(async (id: string | undefined, opts: { owner?: string; days: number; json?: boolean }) => {
        if ((id === undefined) === (opts.owner === undefined)) throw new CliError('give a key id or --owner OWNER (one of them)', [], 2);
        const from = usageFromDay(ctx.now(), opts.days);
        const store = await ctx.store();
        const counters = await ctx.counters();
        if (id !== undefined) {
          const record = await store.getKey(id);
          if (!record) throw new CliError(`no key ${id}`);
          const view = keyUsage(record, from, await counters.readUsage(id, from, opts.days));
          return opts.json ? ctx.printJson(view) : printKeyUsage(ctx, view);
        }
        const owner = opts.owner as string;
        const records = await store.listKeys({ owner });
        if (records.length === 0) throw new CliError(`owner ${owner} has no keys`);
        const perKey = await readAll(
          counters,
          records.map((r) => r.id),
          from,
          opts.days,
        );
        const dayNames = perKey[0].map((d) => d.day);
        const days = sumByDay(perKey, dayNames);
        const keys = records
          .map((r, i) => ({ id: r.id, ...(r.name !== undefined && { name: r.name }), plan: r.plan, status: r.status, total: usageTotal(perKey[i]) }))
          .sort((a, b) => requests(b.total) - requests(a.total) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        const view: OwnerUsageView = { owner, from, to: dayNames[dayNames.length - 1], days, total: usageTotal(days), keys };
        return opts.json ? ctx.printJson(view) : printOwnerUsage(ctx, view);
      });
  },
};
