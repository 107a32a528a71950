// keygate-admin plan set | list | show | delete: the rate limits and quotas keys are charged against.
import type { KeyRecord } from '../../keys/types';
import { PlanError, validatePlan } from '../../limits/plans';
import { CliError, collect, type CliContext, type CliModule } from '../context';
import { labelled, planRows, planView, table } from '../views';

/** Keys that still pass Checks on a plan (revoked keys never do, so they do not count). */
async function keysOnPlan(ctx: CliContext, name: string): Promise<KeyRecord[]> {
  const keys = await (await ctx.store()).listKeys();
  return keys.filter((k) => k.plan === name && k.status !== 'revoked');
}

export const planCommands: CliModule = {
  register({ plan }, ctx) {
    plan
      .command('set')
      .description("create a plan, or replace an existing plan's limits")
      .argument('<name>', 'plan name: letters, digits, ".", "_", ":", "-"')
      .option('--limit <COUNT/WINDOW>', 'a limit; WINDOW is s, m, h (sliding) or d, month (UTC calendar quotas); repeatable', collect)
      .option('--unlimited', 'a plan without limits (instead of --limit)')
      .option('--description <text>', 'free text shown by plan show ("" clears it); kept when not given')
      .option('--shadow', 'shadow mode: limits are computed and reported, never enforced')
      .option('--no-shadow', 'enforce the limits (the default); without either flag the current setting is kept')
      .option('--json', 'print the plan as JSON')
      .addHelpText('after', '\nExample:\n  keygate-admin plan set pro --limit 10/s --limit 50000/month --description "Pro tier"')
      .action(async (name: string, opts: { limit?: string[]; unlimited?: boolean; description?: string; shadow?: boolean; json?: boolean }) => {
        const limits = opts.limit ?? [];
        if (limits.length > 0 && opts.unlimited) throw new CliError('give --limit or --unlimited, not both');
        if (limits.length === 0 && !opts.unlimited) throw new CliError('give at least one --limit COUNT/WINDOW (e.g. --limit 10/s), or --unlimited');
        const store = await ctx.store();
        const stored = await store.getPlan(name);
        const description = opts.description ?? stored?.description;
        let wanted;
        try {
          wanted = validatePlan({
            name,
            limits,
            ...(description !== undefined && description !== '' && { description }),
            ...((opts.shadow ?? stored?.shadow) !== undefined && { shadow: opts.shadow ?? stored?.shadow }),
          });
        } catch (err) {
          if (err instanceof PlanError) throw new CliError(err.problems.join('; '));
          throw err;
        }
        const result = await store.putPlan(wanted);
        const view = planView(wanted);
        if (opts.json) ctx.printJson({ ...view, result });
        else ctx.print(`plan ${name} ${result}: ${view.limits.length > 0 ? view.limits.join(', ') : 'no limits'}${view.shadow ? ' (shadow mode)' : ''}\n`);
      });

    plan
      .command('list')
      .description('list all plans')
      .option('--json', 'print a JSON array')
      .action(async (opts: { json?: boolean }) => {
        const plans = (await (await ctx.store()).listPlans()).map(planView);
        if (opts.json) return ctx.printJson(plans);
        if (plans.length === 0) return ctx.print('no plans yet; create one with: keygate-admin plan set NAME --limit 10/s\n');
        ctx.print(
          table(
            ['NAME', 'LIMITS', 'SHADOW', 'DESCRIPTION'],
            plans.map((p) => [p.name, p.limits.join(', ') || '-', p.shadow ? 'yes' : 'no', p.description ?? '']),
          ),
        );
      });

    plan
      .command('show')
      .description('show one plan and how many keys use it')
      .argument('<name>')
      .option('--json', 'print JSON')
      .action(async (name: string, opts: { json?: boolean }) => {
        const found = await (await ctx.store()).getPlan(name);
        if (!found) throw new CliError(`no plan ${name}`);
        const keys = (await keysOnPlan(ctx, name)).length;
        const view = planView(found);
        if (opts.json) ctx.printJson({ ...view, keys });
        else ctx.print(labelled([...planRows(view), ['keys', `${keys} (not counting revoked keys)`]]));
      });

    plan
      .command('delete')
      .description('delete a plan; refused while keys that are not revoked use it, unless --force')
      .argument('<name>')
      .option('--force', 'delete even though keys use it: their Checks are then denied (plan_not_found) until the plan exists again')
      .action(async (name: string, opts: { force?: boolean }) => {
        const store = await ctx.store();
        if (!(await store.getPlan(name))) throw new CliError(`no plan ${name}`);
        const users = await keysOnPlan(ctx, name);
        if (users.length > 0 && !opts.force) {
          const sample = users.slice(0, 3).map((k) => k.id).join(', ');
          throw new CliError(
            `plan ${name} is used by ${users.length} key${users.length === 1 ? '' : 's'} (${sample}${users.length > 3 ? ', ...' : ''}); ` +
              'move them to another plan (keygate-admin key update ID --plan OTHER) or revoke them first, or pass --force',
          );
        }
        await store.deletePlan(name);
        ctx.print(`plan ${name} deleted${users.length > 0 ? ` (${users.length} keys still name it and will be denied: plan_not_found)` : ''}\n`);
      });
  },
};
