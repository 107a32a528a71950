// keygate's own compiled modules (dist/, built by `npm run build`) and ioredis, loaded from the
// repository, for seeding Redis the way keygate's store reads it and for running keygate.
//
// snapshotKeygate() copies dist/src into the run's results directory and runs keygate from
// there: other people rebuilding dist/ during a long run then change nothing mid-run, and every
// scenario measures the same build.
import { createRequire } from 'node:module';
import { cpSync, existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { REPO_DIR } from './protos.mjs';

const require = createRequire(import.meta.url);
let root = process.env.KEYGATE_BENCH_ROOT || REPO_DIR;

export const distDir = () => resolve(root, 'dist', 'src');
export const mainJs = () => resolve(distDir(), 'main.js');
export const keygateRoot = () => root;

export function requireDist(rel) {
  const file = resolve(distDir(), rel);
  if (!existsSync(file)) throw new Error(`${file} not found: build keygate first (npm run build)`);
  return require(file);
}

/**
 * Copies the built keygate (dist/src, src/limits/lua, package.json; protos/ and node_modules/
 * linked) to dir, checks that it loads, and uses it from now on. Returns dir.
 */
export function snapshotKeygate(dir) {
  for (let attempt = 1; ; attempt++) {
    mkdirSync(resolve(dir, 'src', 'limits'), { recursive: true });
    cpSync(resolve(REPO_DIR, 'dist', 'src'), resolve(dir, 'dist', 'src'), { recursive: true, force: true });
    const lua = resolve(REPO_DIR, 'src', 'limits', 'lua');
    if (existsSync(lua)) cpSync(lua, resolve(dir, 'src', 'limits', 'lua'), { recursive: true, force: true });
    cpSync(resolve(REPO_DIR, 'package.json'), resolve(dir, 'package.json'));
    for (const link of ['protos', 'node_modules']) {
      if (!existsSync(resolve(dir, link))) symlinkSync(resolve(REPO_DIR, link), resolve(dir, link));
    }
    // Loading every module the server needs proves the copy is whole (not caught mid-build).
    const check = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(resolve(dir, 'dist', 'src', 'app.js'))})`], { encoding: 'utf8' });
    if (check.status === 0) break;
    if (attempt >= 3) throw new Error(`the keygate build in dist/ does not load: ${check.stderr.trim().split('\n').slice(0, 5).join(' | ')}`);
    spawnSync('sleep', ['2']);
  }
  root = dir;
  process.env.KEYGATE_BENCH_ROOT = dir; // for child scripts (load-keys.mjs)
  return dir;
}

export const Redis = require('ioredis');
