// Helpers for the lifecycle tests (revocation bound, drain): keygate-admin in-process against a
// Redis URL, an official-proto gRPC client per keygate process, verdicts, metric values, and
// bounded polling.
import * as grpc from '@grpc/grpc-js';
import { loadKeygateProtos } from '../../src/grpc/protos';
import { runAdmin } from '../helpers/admin-cli';
import { checkRequest, type RequestParts } from '../helpers/keygate';
import { httpGet } from '../helpers/keygate-process';
import { OfficialAuthorizationClient, type PlainMessage } from '../helpers/official-protos';

export type AnyClient = grpc.Client & Record<string, any>;

export interface CliRun {
  args: string[];
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs keygate-admin in-process (runAdmin); every run is kept in `log` (for canary checks). */
export function adminCli(redisUrl: () => string, log: CliRun[] = []) {
  const run = async (...args: string[]): Promise<CliRun> => {
    const result = { args, ...(await runAdmin(args, { env: { REDIS_URL: redisUrl() } })) };
    log.push(result);
    return result;
  };
  /** Runs and requires exit code 0. */
  const ok = async (...args: string[]): Promise<CliRun> => {
    const result = await run(...args);
    if (result.code !== 0) throw new Error(`keygate-admin ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
    return result;
  };
  return { run, ok, log };
}

export function authClient(port: number): AnyClient {
  const Client = OfficialAuthorizationClient();
  return new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as AnyClient;
}

export function healthClient(port: number): AnyClient {
  const { HealthClient } = loadKeygateProtos();
  return new HealthClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as AnyClient;
}

export function sendCheck(client: AnyClient, request: PlainMessage, deadlineMs = 5000): Promise<PlainMessage> {
  return new Promise((resolve, reject) => {
    client.Check(request, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: PlainMessage) => (err ? reject(err) : resolve(res)));
  });
}

export function healthCheck(client: AnyClient, service = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    client.Check({ service }, { deadline: Date.now() + 3000 }, (err: grpc.ServiceError | null, res: { status: string }) => (err ? reject(err) : resolve(res.status)));
  });
}

/** 'allow' or the deny reason of a decoded CheckResponse. */
export function verdictOf(res: PlainMessage): string {
  if (res.http_response === 'ok_response') return 'allow';
  return (JSON.parse((res.denied_response as { body: string }).body) as { error: { code: string } }).error.code;
}

/** The response header (to the client) named `name`, on an allow or a denial. */
export function responseHeader(res: PlainMessage, name: string): string | undefined {
  const ok = res.ok_response as { response_headers_to_add?: { header?: { key?: string; value?: string } }[] } | undefined;
  const denied = res.denied_response as { headers?: { header?: { key?: string; value?: string } }[] } | undefined;
  const list = ok?.response_headers_to_add ?? denied?.headers ?? [];
  return list.find((h) => h.header?.key === name)?.header?.value;
}

export async function check(client: AnyClient, parts: RequestParts): Promise<PlainMessage> {
  return sendCheck(client, checkRequest(parts));
}

/** The value of an unlabelled metric on a keygate's /metrics. */
export async function metric(httpPort: number, name: string): Promise<number> {
  const { body } = await httpGet(httpPort, '/metrics');
  const m = new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(body);
  if (!m) throw new Error(`no ${name} on /metrics`);
  return Number(m[1]);
}

/** Polls `probe` until it returns a value other than undefined; throws after `timeoutMs`. */
export async function pollUntil<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 10): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
