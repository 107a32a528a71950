// Runs once before the suite: fails early, with a clear message, when redis-server is missing,
// and makes sure dist/ (used by tests that spawn keygate or keygate-admin as real processes)
// is built from the current sources.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { redisServerPath } from './helpers/redis';

const REPO = resolve(__dirname, '..');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

export default function setup(): void {
  redisServerPath();
  const built = join(REPO, 'dist', 'src', 'main.js');
  if (!existsSync(built) || statSync(built).mtimeMs < newestMtime(join(REPO, 'src'))) {
    execFileSync(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(REPO, 'tsconfig.json')], { stdio: 'inherit' });
  }
}
