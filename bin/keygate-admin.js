#!/usr/bin/env node
// keygate-admin: the admin CLI of keygate (see src/admin/cli.ts). Runs the compiled CLI from
// dist/ (built by `npm run build`, which `npm ci` runs via the prepare script) and exits with
// its exit code.
'use strict';

let cli;
try {
  cli = require('../dist/src/admin/cli.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/src/admin/cli.js')) {
    process.stderr.write('keygate-admin: not built yet; run `npm run build` in the keygate directory first\n');
    process.exit(3);
  }
  throw err;
}

// `keygate-admin key list | head` closes stdout early: that is not an error.
process.stdout.on('error', (err) => {
  if (err && err.code === 'EPIPE') process.exit(0);
  throw err;
});

cli
  .runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env })
  .then((code) => process.exit(code))
  .catch((err) => {
    process.stderr.write(`keygate-admin: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(3);
  });
