// How keygate-admin shows keys and plans: one JSON shape for scripts (`--json`) and one text layout
// for people. Times are ISO-8601 UTC. A view never holds a secret or a digest: records have none,
// and the CLI's output sink also masks anything shaped like a digest (see cli.ts).
import type { KeyRecord } from '../keys/types';
import { formatLimit } from '../limits/plans';
import type { Plan } from '../limits/types';
import { iso } from './time';

/** A key as `--json` prints it; field names follow the seed file (`expires`, limits as text). */
export interface KeyView {
  id: string;
  owner: string;
  plan: string;
  name?: string;
  scopes: string[];
  status: string;
  created: string;
  expires?: string;
  /** present (true) when `expires` has passed */
  expired?: true;
  cidrs: string[];
  metadata: Record<string, string>;
  /** per-key limits that replace the plan's */
  limits?: string[];
  /** true: the key carries a credit balance (requests spend credits; none left → quota_exceeded) */
  credits?: boolean;
  /** The remaining credits, when the key carries credits and the caller read them (key show, key create). */
  creditBalance?: number;
}

export function keyView(r: KeyRecord, now: number): KeyView {
  const view: KeyView = {
    id: r.id,
    owner: r.owner,
    plan: r.plan,
    ...(r.name !== undefined && { name: r.name }),
    scopes: [...r.scopes],
    status: r.status,
    created: iso(r.createdAt),
    ...(r.expiresAt !== undefined && { expires: iso(r.expiresAt) }),
    ...(r.expiresAt !== undefined && r.expiresAt <= now && { expired: true as const }),
    cidrs: [...r.cidrs],
    metadata: { ...r.metadata },
    ...(r.limits && r.limits.length > 0 && { limits: r.limits.map(formatLimit) }),
    ...(r.credits !== undefined && { credits: r.credits }),
  };
  return view;
}

/** `label:   value` lines, labels padded to one column. */
export function labelled(rows: readonly [string, string][]): string {
  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  return rows.map(([label, value]) => `${`${label}:`.padEnd(width)}${value}`).join('\n') + '\n';
}

export function keyRows(v: KeyView): [string, string][] {
  const meta = Object.entries(v.metadata);
  return [
    ['id', v.id],
    ['owner', v.owner],
    ['plan', v.plan],
    ['name', v.name ?? '-'],
    ['status', v.status],
    ['scopes', v.scopes.length > 0 ? v.scopes.join(', ') : '-'],
    ['created', v.created],
    ['expires', v.expires === undefined ? 'never' : `${v.expires}${v.expired ? ' (passed: the key is refused as expired)' : ''}`],
    ['cidrs', v.cidrs.length > 0 ? v.cidrs.join(', ') : 'any address'],
    ['limits', v.limits ? `${v.limits.join(', ')} (instead of the plan's)` : "the plan's"],
    ['metadata', meta.length > 0 ? meta.map(([k, val]) => `${k}=${val}`).join(', ') : '-'],
    ...(v.credits ? ([['credits', creditText(v.creditBalance)]] as [string, string][]) : []),
  ];
}

function creditText(balance: number | undefined): string {
  if (balance === undefined) return 'yes: requests also spend credits';
  const left = balance === 0 ? 'none left: requests are denied quota_exceeded until credits are added' : 'requests spend them; they never reset';
  return `${balance} remaining (${left})`;
}

/** A key view with its credit balance, for keys that carry credits. */
export function withCreditBalance(view: KeyView, balance: number | undefined): KeyView {
  return view.credits && balance !== undefined ? { ...view, creditBalance: balance } : view;
}

/** A plan as `--json` prints it: limits as `COUNT/WINDOW` text, as `plan set` and seed files take them. */
export interface PlanView {
  name: string;
  limits: string[];
  description?: string;
  shadow?: boolean;
}

export function planView(p: Plan): PlanView {
  return {
    name: p.name,
    limits: p.limits.map(formatLimit),
    ...(p.description !== undefined && { description: p.description }),
    ...(p.shadow !== undefined && { shadow: p.shadow }),
  };
}

export function planRows(v: PlanView): [string, string][] {
  return [
    ['name', v.name],
    ['limits', v.limits.length > 0 ? v.limits.join(', ') : 'none (unlimited)'],
    ['description', v.description ?? '-'],
    ['shadow', v.shadow ? 'yes: limits are reported, not enforced' : 'no'],
  ];
}

/**
 * A plain text table: a header row and aligned columns (the last column is not padded unless it
 * is right-aligned). `rightAligned` lists the columns (by index) whose cells are right-aligned, numbers.
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[], rightAligned: readonly number[] = []): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, c) => (rightAligned.includes(c) ? cell.padStart(widths[c]) : c === cells.length - 1 ? cell : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
