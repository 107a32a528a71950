// Starts a whole keygate in-process on loopback (gRPC and HTTP on free ports), with its log lines
// captured for assertions, and a client that sends Checks encoded with Envoy's OFFICIAL protos.
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { startKeygate, type RunningKeygate } from '../../src/app';
import type { Clock } from '../../src/clock';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/log';
import { OfficialAuthorizationClient, type PlainMessage } from './official-protos';

export interface TestKeygate extends RunningKeygate {
  /** every log line written so far, as text */
  logs: string[];
  client: grpc.Client & Record<string, unknown>;
  /** Sends one Check; resolves with the decoded (official) CheckResponse or rejects with the gRPC error. */
  check(request: PlainMessage): Promise<PlainMessage>;
  close(): Promise<void>;
}

export async function startTestKeygate(
  env: Record<string, string | undefined> = {},
  clock?: Clock,
  opts: { readinessIntervalMs?: number } = {},
): Promise<TestKeygate> {
  const config = loadConfig({
    KEYGATE_GRPC_HOST: '127.0.0.1',
    KEYGATE_GRPC_PORT: '0',
    KEYGATE_HTTP_HOST: '127.0.0.1',
    KEYGATE_HTTP_PORT: '0',
    KEYGATE_LOG_LEVEL: 'debug',
    KEYGATE_LOG_ALLOWED: 'true',
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  const logger = createLogger(config.logLevel, sink);
  const app = await startKeygate({ config, logger, clock, ...opts });
  const Client = OfficialAuthorizationClient();
  const client = new Client(`127.0.0.1:${app.grpcPort}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, unknown>;
  return {
    ...app,
    logs,
    client,
    check(request) {
      return new Promise((resolve, reject) => {
        const fn = client.Check as (req: PlainMessage, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: PlainMessage) => void) => void;
        fn.call(client, request, { deadline: Date.now() + 5000 }, (err, res) => (err ? reject(err) : resolve(res)));
      });
    },
    async close() {
      client.close();
      await app.stop({ timeoutMs: 1000 });
    },
  };
}

export interface RequestParts {
  headers?: Record<string, string>;
  /** header_map form: [name, raw bytes or text] pairs, names may repeat */
  rawHeaders?: [string, string | Buffer][];
  path?: string;
  method?: string;
  source?: string;
  contextExtensions?: Record<string, string>;
}

/** An official-proto CheckRequest object (keepCase) as Envoy would send it. */
export function checkRequest(parts: RequestParts = {}): PlainMessage {
  const path = parts.path ?? '/orders';
  const method = parts.method ?? 'GET';
  const http: PlainMessage = { id: '1234567890', method, path, host: 'api.example.com', scheme: 'http', protocol: 'HTTP/1.1' };
  if (parts.rawHeaders) {
    http.header_map = {
      headers: [
        [':authority', 'api.example.com'],
        [':method', method],
        [':path', path],
        ...parts.rawHeaders,
      ].map(([key, v]) => ({ key, raw_value: Buffer.isBuffer(v) ? v : Buffer.from(v as string, 'utf8') })),
    };
  } else {
    http.headers = { ':authority': 'api.example.com', ':method': method, ':path': path, 'x-request-id': 'req-1', ...parts.headers };
  }
  return {
    attributes: {
      source: { address: { socket_address: { address: parts.source ?? '203.0.113.7', port_value: 50123 } } },
      destination: { address: { socket_address: { address: '10.0.0.2', port_value: 8080 } } },
      request: { http },
      context_extensions: parts.contextExtensions ?? {},
    },
  };
}

type HeaderOption = { header?: { key?: string; value?: string } };

/** Header name → value from a list of HeaderValueOption objects. */
export function headerMap(options: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const o of (options as HeaderOption[] | undefined) ?? []) if (o.header?.key) out[o.header.key] = o.header.value ?? '';
  return out;
}
