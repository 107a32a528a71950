// keygate-admin check --key K [--path P] [--method M] [--header NAME=VALUE]... [--target HOST:PORT]
// [--tls-ca FILE [--tls-cert FILE --tls-key FILE] [--tls-server-name NAME]]:
// the operator's "why was this denied?". Sends ONE Check to a running keygate over gRPC, built as
// Envoy would build it (keygate's own ext_authz protos), and prints keygate's verdict: ALLOW or
// DENY with the HTTP status and reason, the headers Envoy would set upstream, the headers and query
// parameters it would strip, the response headers for the client, the dynamic metadata and the
// JSON body of a denial.
//
// Exit code: 0 allowed, 1 denied (so scripts can branch on it), 3 no verdict (keygate unreachable,
// UNAVAILABLE because its store is down, deadline exceeded, any other gRPC error).
//
// It is a real Check: an allowed one is charged like any request (limits, credits, usage).
// The key is a secret the operator typed: nothing printed contains it (every value that carried a
// key is masked on output); the key is named by the id keygate answers with.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError } from 'commander';
import {
  fromStruct,
  loadKeygateProtos,
  type CheckRequestObject,
  type CheckResponseObject,
  type HeaderValueOptionObject,
  type JsonValue,
} from '../../grpc/protos';
import { CliError, CliExit, collect, type CliContext, type CliModule } from '../context';

export const DEFAULT_GRPC_PORT = 9191;
export const DEFAULT_CHECK_TIMEOUT_MS = 5000;
const KEY_MASK = '[key hidden]';
/** Values shorter than this are not masked (they would blank out unrelated text); keys are longer. */
const MIN_MASKED_LENGTH = 6;

export interface CheckOptions {
  key?: string;
  path: string;
  method: string;
  header?: string[];
  scope?: string;
  cost?: string;
  source: string;
  target?: string;
  timeout: number;
  json?: boolean;
  tls?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsServerName?: string;
}

/** How `check` reaches keygate: plaintext, or TLS (the listener's KEYGATE_GRPC_TLS_* settings). */
export interface CheckTransport {
  credentials: grpc.ChannelCredentials;
  /** gRPC channel options (the server name to verify, when not the target's host) */
  channelOptions: grpc.ChannelOptions;
  /** 'plaintext', 'tls' or 'mtls', for error hints */
  kind: 'plaintext' | 'tls' | 'mtls';
}

/**
 * The transport the TLS options ask for. Any --tls-* option means TLS; --tls alone trusts the
 * system CAs. A client certificate needs its key and the other way round. Every problem is named
 * at once, and no file's content is ever printed.
 */
export function checkTransport(opts: Pick<CheckOptions, 'tls' | 'tlsCa' | 'tlsCert' | 'tlsKey' | 'tlsServerName'>): CheckTransport {
  const tls = opts.tls === true || [opts.tlsCa, opts.tlsCert, opts.tlsKey, opts.tlsServerName].some((v) => v !== undefined);
  if (!tls) return { credentials: grpc.credentials.createInsecure(), channelOptions: {}, kind: 'plaintext' };
  const problems: string[] = [];
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) problems.push('--tls-cert and --tls-key go together (a client certificate and its private key)');
  const read = (option: string, file: string | undefined): Buffer | null => {
    if (file === undefined) return null;
    try {
      return readFileSync(file);
    } catch (err) {
      problems.push(`${option} ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
      return null;
    }
  };
  const ca = read('--tls-ca', opts.tlsCa);
  const cert = read('--tls-cert', opts.tlsCert);
  const key = read('--tls-key', opts.tlsKey);
  if (problems.length > 0) throw new CliError('check: bad TLS options', problems, 2);
  let credentials: grpc.ChannelCredentials;
  try {
    credentials = grpc.credentials.createSsl(ca, key, cert);
  } catch (err) {
    throw new CliError(`check: bad TLS files: ${err instanceof Error ? err.message : String(err)}`, [], 2);
  }
  return {
    credentials,
    channelOptions: opts.tlsServerName !== undefined ? { 'grpc.ssl_target_name_override': opts.tlsServerName } : {},
    kind: cert ? 'mtls' : 'tls',
  };
}

/** What `check --json` prints (and the text output shows). */
export interface CheckView {
  target: string;
  /** x-request-id of the Check, to find keygate's log line */
  requestId: string;
  verdict: 'allow' | 'deny';
  grpcStatus: { code: number; name: string; message?: string };
  /** the status the client gets on a denial */
  httpStatus?: number;
  reason?: string;
  message?: string;
  keyId?: string;
  owner?: string;
  plan?: string;
  /** shadow mode: the reason a limit would have denied (the request was let through) */
  shadowDenial?: string;
  upstreamHeaders: Record<string, string>;
  removeHeaders: string[];
  removeQueryParams: string[];
  responseHeaders: Record<string, string>;
  dynamicMetadata: Record<string, JsonValue>;
  /** a denial's body: parsed when it is JSON */
  body?: JsonValue;
  elapsedMs: number;
}

function positiveInteger(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

/** HOST:PORT (IPv6 in brackets), validated; the default is 127.0.0.1 on KEYGATE_GRPC_PORT or 9191. */
export function checkTarget(given: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  if (given === undefined) {
    const port = env.KEYGATE_GRPC_PORT?.trim() || String(DEFAULT_GRPC_PORT);
    if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
      throw new CliError(`KEYGATE_GRPC_PORT "${port}" is not a port; give --target HOST:PORT`);
    }
    return `127.0.0.1:${port}`;
  }
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(given);
  if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) throw new CliError(`--target "${given}": expected HOST:PORT, e.g. 127.0.0.1:9191`);
  return given;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** --header NAME=VALUE pairs as Envoy passes them: lower-case names, repeated headers joined with ','. */
export function parseHeaders(pairs: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [i, pair] of pairs.entries()) {
    const eq = pair.indexOf('=');
    const name = eq > 0 ? pair.slice(0, eq).trim().toLowerCase() : '';
    // Never quote the text: a header given without its name may be a key.
    if (!HEADER_NAME.test(name)) throw new CliError(`--header number ${i + 1}: expected NAME=VALUE (e.g. "authorization=Bearer KEY")`);
    const value = pair.slice(eq + 1);
    headers[name] = name in headers ? `${headers[name]},${value}` : value;
  }
  return headers;
}

/** The header keygate reads keys from first (KEYGATE_KEY_HEADERS, default x-api-key). */
function keyHeaderNames(env: Readonly<Record<string, string | undefined>>): string[] {
  const names = (env.KEYGATE_KEY_HEADERS ?? 'x-api-key,authorization')
    .split(',')
    .map((n) => n.trim().toLowerCase())
    .filter((n) => n !== '');
  return names.length > 0 ? names : ['x-api-key'];
}

export interface BuiltCheck {
  request: CheckRequestObject;
  requestId: string;
  /** every value of the request that may be (or hold) a key: masked on output */
  secrets: string[];
  /** how the request is described on output (no query string: it may hold a key) */
  summary: string;
}

/** The CheckRequest Envoy would send for these options. Throws CliError on bad input. */
export function buildCheckRequest(opts: CheckOptions, env: Readonly<Record<string, string | undefined>>, now: number): BuiltCheck {
  const method = opts.method.toUpperCase();
  if (!/^[A-Z]{1,20}$/.test(method)) throw new CliError(`--method "${opts.method}" is not an HTTP method`);
  if (!opts.path.startsWith('/') || /[\s]/.test(opts.path)) throw new CliError('--path must start with "/" and contain no spaces (e.g. /orders?page=2)');
  if (isIP(opts.source) === 0) throw new CliError(`--source "${opts.source}" is not an IPv4 or IPv6 address`);
  const headers = parseHeaders(opts.header ?? []);
  const keyNames = keyHeaderNames(env);
  if (opts.key !== undefined) {
    if (opts.key === '') throw new CliError('--key is empty');
    const [first] = keyNames;
    if (first in headers) throw new CliError(`give the key with --key or with --header ${first}=..., not both`);
    headers[first] = first === 'authorization' ? `Bearer ${opts.key}` : opts.key;
  }
  const requestId = `keygate-admin-check-${randomBytes(6).toString('hex')}`;
  const host = headers.host ?? headers[':authority'] ?? 'localhost';
  const contextExtensions: Record<string, string> = {};
  if (opts.scope !== undefined) contextExtensions['keygate.scope'] = opts.scope;
  if (opts.cost !== undefined) contextExtensions['keygate.cost'] = opts.cost;

  // Anything that may carry a key: --key, the key headers (and the token after "Bearer"), query values.
  const secrets = new Set<string>();
  if (opts.key !== undefined) secrets.add(opts.key);
  for (const name of new Set([...keyNames, 'x-api-key', 'authorization'])) {
    const value = headers[name];
    if (value === undefined) continue;
    secrets.add(value);
    for (const part of value.split(/[\s,]+/)) secrets.add(part);
  }
  const queryAt = opts.path.indexOf('?');
  if (queryAt >= 0) {
    for (const param of opts.path.slice(queryAt + 1).split('&')) {
      const value = param.slice(param.indexOf('=') + 1);
      secrets.add(value);
      try {
        secrets.add(decodeURIComponent(value.replace(/\+/g, ' ')));
      } catch {
        // not percent-encoded text: the raw value is masked already
      }
    }
  }

  const request: CheckRequestObject = {
    attributes: {
      source: { address: { socket_address: { address: opts.source, port_value: 0 } } },
      request: {
        time: { seconds: String(Math.floor(now / 1000)), nanos: (now % 1000) * 1_000_000 },
        http: {
          id: requestId,
          method,
          path: opts.path,
          host,
          scheme: 'http',
          protocol: 'HTTP/1.1',
          headers: { ':authority': host, ':method': method, ':path': opts.path, ':scheme': 'http', 'x-request-id': requestId, ...headers },
        },
      },
      context_extensions: contextExtensions,
    },
  };
  const route = [
    opts.scope !== undefined && `scope ${opts.scope}`,
    opts.cost !== undefined && `cost ${opts.cost}`,
  ].filter((part): part is string => typeof part === 'string');
  const summary = `${method} ${queryAt >= 0 ? `${opts.path.slice(0, queryAt)}?…` : opts.path} from ${opts.source}${route.length > 0 ? ` (${route.join(', ')})` : ''}`;
  // ... and as they would appear inside a JSON string (--json)
  for (const secret of [...secrets]) secrets.add(JSON.stringify(secret).slice(1, -1));
  return { request, requestId, secrets: [...secrets].filter((s) => s.length >= MIN_MASKED_LENGTH), summary };
}

/** Replaces every secret (longest first) in `text`. */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(secret).join(KEY_MASK);
  return out;
}

let httpCodes: Map<string, number> | undefined;

/** envoy.type.v3.StatusCode name → number, from keygate's protos. */
function httpStatusNumber(code: number | string | undefined): number {
  if (code === undefined) return 403; // Envoy's default for a denial without a status
  if (typeof code === 'number') return code;
  if (!httpCodes) {
    httpCodes = new Map();
    const definition = loadKeygateProtos().packageDefinition['envoy.type.v3.StatusCode'] as { type?: { value?: { name: string; number: number }[] } };
    for (const v of definition.type?.value ?? []) httpCodes.set(v.name, v.number);
  }
  return httpCodes.get(code) ?? (/^\d+$/.test(code) ? Number(code) : 403);
}

const grpcName = (code: number) => (grpc.status as unknown as Record<number, string>)[code] ?? 'UNKNOWN';

function headerRecord(options: readonly HeaderValueOptionObject[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const o of options ?? []) {
    const name = o.header?.key;
    if (!name) continue;
    const value = o.header.value ?? (Buffer.isBuffer(o.header.raw_value) ? o.header.raw_value.toString('utf8') : '');
    out[name] = name in out ? `${out[name]}, ${value}` : value;
  }
  return out;
}

const text = (v: JsonValue | undefined) => (typeof v === 'string' ? v : undefined);

/** The CheckResponse as a CheckView (everything but target, requestId and elapsedMs). */
export function describeResponse(res: CheckResponseObject): Omit<CheckView, 'target' | 'requestId' | 'elapsedMs'> {
  const code = Number(res.status?.code ?? 0);
  const grpcStatus = { code, name: grpcName(code), ...(res.status?.message ? { message: res.status.message } : {}) };
  const dynamicMetadata = fromStruct(res.dynamic_metadata);
  const identity = {
    ...(text(dynamicMetadata.key_id) !== undefined && { keyId: text(dynamicMetadata.key_id) }),
    ...(text(dynamicMetadata.owner) !== undefined && { owner: text(dynamicMetadata.owner) }),
    ...(text(dynamicMetadata.plan) !== undefined && { plan: text(dynamicMetadata.plan) }),
  };
  if (code === 0) {
    const ok = res.ok_response ?? {};
    const upstreamHeaders = headerRecord(ok.headers);
    const shadow = Object.entries(upstreamHeaders).find(([name]) => name.endsWith('shadow-denial'));
    return {
      verdict: 'allow',
      grpcStatus,
      ...identity,
      ...(shadow && { shadowDenial: shadow[1] }),
      upstreamHeaders,
      removeHeaders: [...(ok.headers_to_remove ?? [])],
      removeQueryParams: [...(ok.query_parameters_to_remove ?? [])],
      responseHeaders: headerRecord(ok.response_headers_to_add),
      dynamicMetadata,
    };
  }
  const denied = res.denied_response ?? {};
  let body: JsonValue | undefined = denied.body;
  if (typeof denied.body === 'string' && denied.body !== '') {
    try {
      body = JSON.parse(denied.body) as JsonValue;
    } catch {
      // not JSON: shown as text
    }
  }
  const error = body !== null && typeof body === 'object' && !Array.isArray(body) ? body.error : undefined;
  const errorObject = error !== null && typeof error === 'object' && !Array.isArray(error) ? error : {};
  const reason = text(errorObject.code) ?? res.status?.message ?? text(dynamicMetadata.reason);
  const message = text(errorObject.message);
  return {
    verdict: 'deny',
    grpcStatus,
    httpStatus: httpStatusNumber(denied.status?.code),
    ...(reason !== undefined && { reason }),
    ...(message !== undefined && { message }),
    ...identity,
    upstreamHeaders: {},
    removeHeaders: [],
    removeQueryParams: [],
    responseHeaders: headerRecord(denied.headers),
    dynamicMetadata,
    ...(body !== undefined && { body }),
  };
}

const section = (title: string, lines: readonly string[]) => `${title}\n${(lines.length > 0 ? lines : ['(none)']).map((l) => `  ${l}`).join('\n')}\n`;
const headerLines = (h: Record<string, string>) => Object.entries(h).map(([name, value]) => `${name}: ${value}`);
const metadataLines = (m: Record<string, JsonValue>) => Object.entries(m).map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);

/** The text report of a verdict. */
export function formatCheck(v: CheckView, summary: string): string {
  const status = `gRPC status ${v.grpcStatus.code} ${v.grpcStatus.name}`;
  const key =
    v.keyId !== undefined
      ? `${v.keyId}${v.owner !== undefined ? ` (owner ${v.owner}${v.plan !== undefined ? `, plan ${v.plan}` : ''})` : ''}`
      : 'not identified (no key, or a malformed or unknown one)';
  const out: string[] = [];
  if (v.verdict === 'allow') {
    out.push(`ALLOW  the request goes upstream  (${status})\n`);
    out.push(`key:      ${key}\n`);
    if (v.shadowDenial !== undefined) out.push(`shadow:   a limit would have denied it (${v.shadowDenial}); shadow mode let it through\n`);
  } else {
    const reason = v.reason !== undefined ? ` ${v.reason}` : '';
    out.push(`DENY  ${v.httpStatus}${reason}${v.message !== undefined ? `: ${v.message}` : ''}  (${status})\n`);
    out.push(`key:      ${key}\n`);
  }
  out.push(`request:  ${summary} (x-request-id ${v.requestId})\n`);
  out.push(`keygate:  ${v.target}, answered in ${v.elapsedMs} ms\n`);
  if (v.verdict === 'allow') {
    out.push(section("upstream request headers (set, replacing the client's):", headerLines(v.upstreamHeaders)));
    out.push(
      section('removed before the request goes upstream:', [
        ...v.removeHeaders.map((h) => `header ${h}`),
        ...v.removeQueryParams.map((q) => `query parameter ${q}`),
      ]),
    );
  }
  out.push(section('response headers to the client:', headerLines(v.responseHeaders)));
  if (v.verdict === 'deny') out.push(section('body:', v.body === undefined ? [] : [typeof v.body === 'string' ? v.body : JSON.stringify(v.body)]));
  out.push(section('dynamic metadata (for the access log):', metadataLines(v.dynamicMetadata)));
  return out.join('');
}

function sendCheck(target: string, transport: CheckTransport, request: CheckRequestObject, timeoutMs: number): Promise<CheckResponseObject> {
  const { AuthorizationClient } = loadKeygateProtos();
  const client = new AuthorizationClient(target, transport.credentials, transport.channelOptions);
  const call = client.Check as unknown as (
    req: CheckRequestObject,
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, res?: CheckResponseObject) => void,
  ) => grpc.ClientUnaryCall;
  return new Promise<CheckResponseObject>((resolve, reject) => {
    call.call(client, request, { deadline: Date.now() + timeoutMs }, (err, res) => (err || !res ? reject(err ?? new Error('empty response')) : resolve(res)));
  }).finally(() => client.close());
}

function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as Partial<grpc.ServiceError>).code === 'number';
}

async function runCheck(ctx: CliContext, opts: CheckOptions): Promise<void> {
  const target = checkTarget(opts.target, ctx.env);
  const transport = checkTransport(opts);
  const built = buildCheckRequest(opts, ctx.env, ctx.now());
  const print = (t: string) => ctx.print(maskSecrets(t, built.secrets));
  const started = process.hrtime.bigint();
  let response: CheckResponseObject;
  try {
    response = await sendCheck(target, transport, built.request, opts.timeout);
  } catch (err) {
    const code = isServiceError(err) ? err.code : grpc.status.UNKNOWN;
    const details = maskSecrets((isServiceError(err) ? err.details : err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim(), built.secrets);
    const name = grpcName(code);
    if (opts.json) print(`${JSON.stringify({ target, requestId: built.requestId, verdict: 'error', grpcStatus: { code, name, message: details } }, null, 2)}\n`);
    const hint =
      code === grpc.status.DEADLINE_EXCEEDED
        ? ` (no answer within ${opts.timeout} ms)`
        : code !== grpc.status.UNAVAILABLE
          ? ''
          : details.startsWith('keygate:')
            ? " (keygate is up but its store failed or was too slow: Envoy's failure_mode_allow / status_on_error decide)"
            : transport.kind === 'plaintext'
              ? ' (is keygate running there? If its listener uses TLS, add --tls-ca FILE or --tls)'
              : ' (is keygate running there with TLS? Check --tls-ca and --tls-server-name, and --tls-cert/--tls-key if it requires client certificates)';
    throw new CliError(`no verdict from keygate at ${target}: gRPC status ${code} ${name}: ${details}${hint}`, [], 3);
  }
  const elapsedMs = Math.round(Number(process.hrtime.bigint() - started) / 1e6);
  const view: CheckView = { target, requestId: built.requestId, ...describeResponse(response), elapsedMs };
  if (opts.json) print(`${JSON.stringify(view, null, 2)}\n`);
  else print(formatCheck(view, built.summary));
  // A denial is a verdict, not an error: exit 1, and no `keygate-admin:` line on stderr.
  if (view.verdict === 'deny') throw new CliExit(1);
}

export const checkCommands: CliModule = {
  register({ root }, ctx) {
    root
      .command('check')
      .description('send one Check to a running keygate and show its verdict, headers and reason ("why was this denied?")')
      .option('--key <key>', 'the API key, sent in x-api-key (the first of KEYGATE_KEY_HEADERS); never printed')
      .option('--path <path>', 'request path, with query string if any', '/')
      .option('--method <method>', 'HTTP method', 'GET')
      .option('--header <name=value>', 'a request header, e.g. "authorization=Bearer KEY"; repeatable', collect)
      .option('--scope <scope>', "the route's keygate.scope (scope the key must hold)")
      .option('--cost <n>', "the route's keygate.cost (units charged; sent as given)")
      .option('--source <ip>', 'the client address (for CIDR allowlists)', '127.0.0.1')
      .option('--target <host:port>', `keygate's gRPC address (default 127.0.0.1:KEYGATE_GRPC_PORT, else 127.0.0.1:${DEFAULT_GRPC_PORT})`)
      .option('--timeout <ms>', 'deadline of the Check', positiveInteger, DEFAULT_CHECK_TIMEOUT_MS)
      .option('--tls', "connect with TLS, verifying keygate's certificate against the system CAs")
      .option('--tls-ca <file>', "PEM CA certificate(s) to verify keygate's certificate with (implies --tls)")
      .option('--tls-cert <file>', 'PEM client certificate, for a listener that requires one (KEYGATE_GRPC_TLS_CLIENT_CA; with --tls-key)')
      .option('--tls-key <file>', 'PEM private key of --tls-cert')
      .option('--tls-server-name <name>', "the name to verify in keygate's certificate, when --target names it otherwise (e.g. by IP address)")
      .option('--json', 'print the verdict as JSON')
      .addHelpText(
        'after',
        [
          '',
          'Exit codes: 0 allowed, 1 denied, 3 no verdict (keygate unreachable, UNAVAILABLE, deadline).',
          'This is a real Check: when allowed it is charged like any request (limits, credits, usage).',
          'The key is never printed: output names it by the key id keygate answers with.',
          '',
          'Examples:',
          '  keygate-admin check --key "$KEY" --path /orders --scope orders:read',
          '  keygate-admin check --header "authorization=Bearer $KEY" --target keygate:9191 --json',
          '  keygate-admin check --key "$KEY" --target keygate.internal:9191 --tls-ca ca.pem --tls-cert me.pem --tls-key me.key',
        ].join('\n'),
      )
      .action((opts: CheckOptions) => runCheck(ctx, opts));
  },
};
