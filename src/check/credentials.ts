// Where the API key is: the configured headers (x-api-key; Authorization with the Bearer or
// ApiKey scheme, any case) and, when enabled, one query parameter. Two different keys in one
// request are a conflict, never a choice. Pure and I/O-free.
import type { CheckInput } from './request';

export type CredentialResult =
  | { kind: 'missing' }
  | { kind: 'conflict' }
  | {
      kind: 'found';
      secret: string;
      /** header names that carried the key (to remove before the request goes upstream) */
      headers: string[];
      /** true when the key came in the query string (the parameter is removed upstream) */
      inQuery: boolean;
    };

const AUTH_SCHEME_RE = /^\s*(bearer|apikey)\s+(\S+)\s*$/i;

/**
 * The candidate keys in one header value; a comma-merged value may carry several. In
 * Authorization, parts with another scheme (`Basic …`) are not ours; but once a part is ours,
 * a bare token beside it (`Bearer K1, K2`) is a second key, not something to ignore.
 */
function keysInHeader(name: string, value: string): string[] {
  const out: string[] = [];
  const parts = value.split(',');
  if (name !== 'authorization') {
    for (const part of parts) {
      const t = part.trim();
      if (t !== '') out.push(t);
    }
    return out;
  }
  const bare: string[] = [];
  for (const part of parts) {
    const m = AUTH_SCHEME_RE.exec(part);
    if (m) out.push(m[2]);
    else if (/^\s*\S+\s*$/.test(part)) bare.push(part.trim());
  }
  return out.length > 0 ? out.concat(bare) : out;
}

/** The values of query parameter `param` in a request path, percent-decoded. */
export function queryValues(path: string | undefined, param: string): string[] {
  if (!path) return [];
  const hash = path.indexOf('#');
  const q = path.indexOf('?');
  if (q < 0 || (hash >= 0 && hash < q)) return [];
  const query = path.slice(q + 1, hash < 0 ? undefined : hash);
  const out: string[] = [];
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    const rawName = eq < 0 ? pair : pair.slice(0, eq);
    if (safeDecode(rawName) !== param) continue;
    const value = safeDecode(eq < 0 ? '' : pair.slice(eq + 1));
    // An undecodable value is passed on as-is: it will be classified malformed, not ignored.
    out.push(value ?? pair.slice(eq + 1));
  }
  return out;
}

function safeDecode(text: string): string | null {
  try {
    return decodeURIComponent(text.replace(/\+/g, '%20'));
  } catch {
    return null;
  }
}

export function findCredential(input: CheckInput, keyHeaders: readonly string[], queryParam?: string): CredentialResult {
  const found = new Set<string>();
  const fromHeaders: string[] = [];
  for (const name of keyHeaders) {
    const values = input.headers.get(name);
    if (!values) continue;
    let carried = false;
    for (const v of values) {
      for (const k of keysInHeader(name, v)) {
        found.add(k);
        carried = true;
      }
    }
    if (carried) fromHeaders.push(name);
  }
  let inQuery = false;
  if (queryParam) {
    for (const v of queryValues(input.path, queryParam)) {
      if (v !== '') {
        found.add(v);
        inQuery = true;
      }
    }
  }
  if (found.size === 0) return { kind: 'missing' };
  if (found.size > 1) return { kind: 'conflict' };
  const [secret] = found;
  return { kind: 'found', secret, headers: fromHeaders, inQuery };
}
