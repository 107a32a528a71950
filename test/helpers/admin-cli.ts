// keygate-admin in-process for tests: runCli with captured stdout/stderr, and the two
// assertions most CLI tests need (a command that must succeed; one that must be refused with
// exactly one `keygate-admin: …` line).
import { expect } from 'vitest';
import { runCli } from '../../src/admin/cli';
import type { Clock } from '../../src/clock';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runAdmin(args: readonly string[], opts: { env: Record<string, string | undefined>; clock?: Clock }): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env: opts.env,
    clock: opts.clock,
  });
  return { code, stdout, stderr };
}

/** ok(...args) → stdout of a command that must exit 0; refused(args, code) → its one error line. */
export function cliAssertions(run: (args: string[]) => Promise<CliRun>) {
  return {
    async ok(...args: string[]): Promise<string> {
      const result = await run(args);
      expect(result, `keygate-admin ${args.join(' ')}`).toMatchObject({ code: 0 });
      return result.stdout;
    },
    async refused(args: string[], code = 1): Promise<string> {
      const result = await run(args);
      expect(result.code, result.stderr).toBe(code);
      expect(result.stderr).toMatch(/^keygate-admin: [^\n]+\n$/);
      return result.stderr.trim();
    },
  };
}
