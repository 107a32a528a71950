// keygate-admin import FILE: loads a seed file (plans and keys in one JSON document, the format
// keygate's embedded store reads from KEYGATE_SEED_FILE) into the store. See ../seed.ts.
import { readFile } from 'node:fs/promises';
import { CliError, type CliModule } from '../context';
import { applySeed, describeCounts, parseSeed, SeedError } from '../seed';

export const importCommands: CliModule = {
  register({ root }, ctx) {
    root
      .command('import')
      .description('load a seed file (plans and keys in one JSON document) into the store; idempotent')
      .argument('<file>')
      .option('--dry-run', 'check the file against the store and report what would change; write nothing')
      .option('--json', 'print the counts as JSON')
      .addHelpText(
        'after',
        [
          '',
          'The seed file: {"plans": [{"name", "limits": ["10/s", "50000/month"], "description"?}],',
          '                "keys": [{"owner", "plan", "key": "<secret>" | "digest": "<64 hex>", "id"?, "name"?,',
          '                          "scopes"?, "status"?, "expires"?, "cidrs"?, "metadata"?, "limits"?}]}',
          'Fields starting with "_" are comments. Every problem is reported with its JSON path, and nothing',
          'is written unless the whole file is valid. For many keys, use key import (streams large files).',
          '',
          'Example:',
          '  keygate-admin import examples/demo-seed.json',
        ].join('\n'),
      )
      .action(async (file: string, opts: { dryRun?: boolean; json?: boolean }) => {
        let text: string;
        try {
          text = await readFile(file, 'utf8');
        } catch (err) {
          throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
        let counts;
        try {
          const seed = parseSeed(text, { digester: ctx.digester(), now: ctx.now(), nativePrefixes: [ctx.settings().keyPrefix] });
          counts = await applySeed(await ctx.store(), seed, { dryRun: opts.dryRun });
        } catch (err) {
          if (!(err instanceof SeedError)) throw err;
          const n = err.problems.length;
          throw new CliError(`${file}: ${n} problem${n === 1 ? '' : 's'}, nothing written`, err.problems);
        }
        if (opts.json) return ctx.printJson({ file, dryRun: opts.dryRun === true, ...counts });
        ctx.print(`import ${file}${opts.dryRun ? ' (dry run, nothing written)' : ''}: ${describeCounts(counts)}\n`);
      });
  },
};
