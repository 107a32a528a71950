// `npm run demo`: keygate on the embedded store, seeded with the public demo plans and keys of
// examples/demo-seed.json, printing those keys and commands that send a Check to it.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { startKeygate } from './app';
import { ConfigError, loadConfig } from './config';
import { createLogger } from './log';

interface DemoKey {
  owner?: string;
  plan?: string;
  key?: string;
  name?: string;
  status?: string;
  scopes?: string[];
  cidrs?: string[];
}

export const DEMO_SEED_FILE = resolve(__dirname, '..', '..', 'examples', 'demo-seed.json');

async function demo(): Promise<void> {
  const env: Record<string, string | undefined> = { ...process.env, KEYGATE_SEED_FILE: process.env.KEYGATE_SEED_FILE ?? DEMO_SEED_FILE };
  delete env.REDIS_URL;
  let config;
  try {
    config = loadConfig(env);
  } catch (err) {
    process.stderr.write(`keygate demo: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const logger = createLogger(config.logLevel);
  const app = await startKeygate({ config, logger });
  const seed = JSON.parse(readFileSync(config.seedFile!, 'utf8')) as { keys?: DemoKey[] };
  const keys = (seed.keys ?? []).filter((k) => typeof k.key === 'string');
  const target = `127.0.0.1:${app.grpcPort}`;
  const lines = [
    '',
    '=== keygate demo ===',
    `ext_authz gRPC on ${target}, metrics on http://127.0.0.1:${app.httpPort}/metrics`,
    'Embedded store (nothing is persisted). Public demo keys — never use them for anything real:',
    '',
    ...keys.map((k) => {
      const notes = [k.status && k.status !== 'active' ? k.status : '', k.scopes?.length ? `scopes ${k.scopes.join(',')}` : '', k.cidrs?.length ? `only from ${k.cidrs.join(',')}` : '']
        .filter(Boolean)
        .join('; ');
      return `  ${String(k.owner).padEnd(8)} ${String(k.plan).padEnd(8)} ${k.key}${notes ? `   (${notes})` : ''}`;
    }),
    '',
    'Send a Check (in another terminal):',
    `  npx keygate-admin check --target ${target} --key ${keys[0]?.key ?? 'KEY'} --path /orders`,
    `  npx keygate-admin check --target ${target} --key kg_not_a_real_key --path /orders`,
    'Press Ctrl-C to stop.',
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
  const shutdown = () => void app.stop({ timeoutMs: 2000 }).then(() => process.exit(0));
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

demo().catch((err: unknown) => {
  process.stderr.write(`keygate demo: ${err instanceof ConfigError ? err.message : err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
