// Proto → CheckInput: reads only what the Check path needs from a decoded CheckRequest, in
// either header form Envoy sends (the `headers` map, or `header_map` with raw byte values when
// encode_raw_headers is on). Never throws: missing parts become absent fields.
//
// Every header is kept, however many there are. Ignoring headers past some count (as an earlier
// version did past 1000 names) lets a request hide a header from the Check: a client-sent
// `x-keygate-…` header past the limit was not removed before the request went upstream, and a
// second key past it escaped the two-keys conflict check (found by test/fuzz). The work stays
// bounded by the gRPC receive limit (1 MiB per CheckRequest, see grpc/server.ts), which bounds
// the decoded message this map is built from.
import type { CheckInput } from '../check/request';
import type { CheckRequestObject } from './protos';

export function toCheckInput(req: CheckRequestObject | undefined | null): CheckInput {
  const attrs = req?.attributes;
  const http = attrs?.request?.http;
  const headers = new Map<string, string[]>();
  const add = (rawName: unknown, value: string) => {
    if (typeof rawName !== 'string') return;
    const name = rawName.toLowerCase();
    const list = headers.get(name);
    if (list) list.push(value);
    else headers.set(name, [value]);
  };
  const map = http?.header_map?.headers;
  if (Array.isArray(map) && map.length > 0) {
    for (const h of map) {
      if (!h) continue;
      // raw_value carries the bytes as sent; latin1 keeps every byte as one character, so a
      // non-UTF-8 value stays visible as such (and can never pass the key checks).
      const value = Buffer.isBuffer(h.raw_value) ? h.raw_value.toString('latin1') : typeof h.value === 'string' ? h.value : '';
      add(h.key, value);
    }
  } else if (http?.headers && typeof http.headers === 'object') {
    for (const [name, value] of Object.entries(http.headers)) add(name, typeof value === 'string' ? value : '');
  }
  const sock = attrs?.source?.address?.socket_address;
  const first = (name: string) => headers.get(name)?.[0];
  return {
    headers,
    path: str(http?.path) ?? first(':path'),
    method: str(http?.method) ?? first(':method'),
    host: str(http?.host) ?? first(':authority'),
    requestId: str(http?.id) ?? first('x-request-id'),
    sourceAddress: str(sock?.address),
    contextExtensions: plainStrings(attrs?.context_extensions),
  };
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function plainStrings(obj: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!obj || typeof obj !== 'object') return out;
  for (const [k, v] of Object.entries(obj)) if (typeof v === 'string') out[k] = v;
  return out;
}
