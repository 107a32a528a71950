// `npm run demo` for a newcomer: the demo process prints the public demo keys and a command that
// sends a Check; running that command against it gives ALLOW.
import { spawn, spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { freePort } from '../helpers/redis';

const REPO = resolve(__dirname, '..', '..');
let demo: ReturnType<typeof spawn> | undefined;

afterAll(() => {
  demo?.kill('SIGKILL');
});

it('prints the demo keys and a check command that works', async () => {
  const grpcPort = await freePort();
  const httpPort = await freePort();
  demo = spawn(process.execPath, [join(REPO, 'dist', 'src', 'demo.js')], {
    env: { PATH: process.env.PATH ?? '', KEYGATE_GRPC_HOST: '127.0.0.1', KEYGATE_GRPC_PORT: String(grpcPort), KEYGATE_HTTP_HOST: '127.0.0.1', KEYGATE_HTTP_PORT: String(httpPort), KEYGATE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  await new Promise<void>((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`demo did not print its banner in 15 s:\n${out}`)), 15_000);
    demo!.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('Press Ctrl-C')) {
        clearTimeout(timer);
        done();
      }
    });
    demo!.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    demo!.once('exit', (code) => fail(new Error(`demo exited ${code}:\n${out}`)));
  });
  expect(out).toContain('EMBEDDED');
  expect(out).toMatch(/acme\s+pro\s+kg_[0-9A-Za-z]{38}/);
  const commands = out.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('npx keygate-admin check'));
  expect(commands.length).toBeGreaterThanOrEqual(2);
  const run = (command: string) => {
    const args = command.replace(/^npx keygate-admin /, '').split(/\s+/);
    return spawnSync(process.execPath, [join(REPO, 'bin', 'keygate-admin.js'), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  };
  const allowed = run(commands[0]);
  expect(allowed.status, allowed.stderr).toBe(0);
  expect(allowed.stdout).toMatch(/^ALLOW/);
  expect(allowed.stdout).toContain('x-keygate-owner: acme');
  const denied = run(commands[1]);
  expect(denied.status).toBe(1);
  expect(denied.stdout).toContain('invalid_api_key');
});
