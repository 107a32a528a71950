// Shared pieces of the fuzz suite: a world of stored keys (every status, CIDR, credits, a tiny
// plan), fast-check generators of hostile CheckRequests in Envoy's official shape, and the
// checker every answer must pass:
//   - a valid CheckResponse: status set; exactly one of ok_response / denied_response;
//   - a denial has an HTTP status, content-type application/json and the JSON body
//     {"error":{"code":REASON,"message":TEXT}}, with the status codes the reason table gives;
//   - an allow names an ACTIVE stored key whose secret was really in the request, sets the
//     identity headers and removes every client-sent header under the identity prefix.
import * as fc from 'fast-check';
import { ALL_DENY_REASONS, DENY_REASONS, type DenyReason } from '../../src/check/reasons';
import type { Clock } from '../../src/clock';
import { generateKey } from '../../src/keys/format';
import type { KeyRecord, KeyStore } from '../../src/keys/types';
import { officialType, type PlainMessage } from '../helpers/official-protos';

export const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
export const PREFIX = 'x-keygate-';
export const QUERY_PARAM = 'api_key';

/** Settings of the fuzzed keygate: every place a key can travel is switched on. */
export const FUZZ_ENV: Record<string, string> = {
  KEYGATE_KEY_HEADERS: 'x-api-key,authorization,x-other-key',
  KEYGATE_QUERY_PARAM: QUERY_PARAM,
};

export interface StoredKey {
  secret: string;
  record: KeyRecord;
  /** active, not expired: the only keys that may ever be allowed */
  usable: boolean;
}

/** Keys with fixed secrets, generated once per run (their shape, not their value, matters). */
export function makeKeys(now: number): StoredKey[] {
  const base = { owner: 'acme', plan: 'open', scopes: ['read'], status: 'active' as const, createdAt: now - 1000, cidrs: [] as string[], metadata: {} };
  const defs: [Partial<KeyRecord>, boolean, string?][] = [
    [{ id: 'key_open' }, true],
    [{ id: 'key_open2', owner: 'globex' }, true],
    [{ id: 'key_foreign' }, true, 'legacy-system-key-0123456789'],
    [{ id: 'key_tiny', plan: 'tiny' }, true],
    [{ id: 'key_credits', credits: true }, true],
    [{ id: 'key_cidr', cidrs: ['10.0.0.0/8', '2001:db8::/32'] }, true],
    [{ id: 'key_admin', scopes: ['*'] }, true],
    [{ id: 'key_noplan', plan: 'deleted' }, true],
    [{ id: 'key_revoked', status: 'revoked' }, false],
    [{ id: 'key_disabled', status: 'disabled' }, false],
    [{ id: 'key_expired', expiresAt: now - 1 }, false],
  ];
  return defs.map(([extra, usable, secret]) => ({ secret: secret ?? generateKey(), record: { ...base, ...extra } as KeyRecord, usable }));
}

export async function seedStore(store: KeyStore, keys: StoredKey[], digest: (s: string) => string): Promise<void> {
  await store.putPlan({ name: 'open', limits: [] });
  await store.putPlan({ name: 'tiny', limits: [{ count: 1, window: 'm' }] });
  for (const k of keys) await store.createKey(k.record, { digest: digest(k.secret) });
}

export interface CreditSetter {
  setCredits(keyId: string, credits: number): Promise<void>;
}

export const fixedClock = (ms: number): Clock => ({ now: () => ms });

// ---------------------------------------------------------------------------------------
// generators

const bigString = (minLen: number, maxLen: number): fc.Arbitrary<string> =>
  fc.tuple(fc.string({ minLength: 1, maxLength: 8, unit: 'binary' }), fc.integer({ min: minLen, max: maxLen })).map(([s, n]) => s.repeat(Math.ceil(n / s.length)).slice(0, n));

const anyText = fc.oneof(
  { weight: 6, arbitrary: fc.string({ maxLength: 40, unit: 'binary' }) },
  { weight: 2, arbitrary: fc.string({ maxLength: 40, unit: 'binary-ascii' }) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '\0', 'a\0b', '\r\n', '%', '%zz', '%E0%A4%A', '\uFFFD', '\u{10FFFF}', 'null', 'undefined', '__proto__', 'constructor', '-1', '1e309') },
  { weight: 1, arbitrary: bigString(300, 3000) },
);

/** Text where a key might be: stored secrets, near misses, over-long, garbage. */
function keyTextArb(keys: StoredKey[], unknown: string[]): fc.Arbitrary<string> {
  const secrets = keys.map((k) => k.secret);
  const stored = fc.constantFrom(...secrets);
  const mutated = fc.tuple(stored, fc.nat(), fc.constantFrom('flip', 'cut', 'grow', 'case', 'pad', 'nul', 'space')).map(([s, i, how]) => {
    const at = i % s.length;
    switch (how) {
      case 'flip':
        return s.slice(0, at) + (s[at] === 'a' ? 'b' : 'a') + s.slice(at + 1);
      case 'cut':
        return s.slice(0, at);
      case 'grow':
        return s + 'x'.repeat(1 + (i % 400));
      case 'case':
        return s.toUpperCase();
      case 'pad':
        return s + 'A'.repeat(300);
      case 'nul':
        return s.slice(0, at) + '\0' + s.slice(at);
      default:
        return s.slice(0, at) + ' ' + s.slice(at);
    }
  });
  return fc.oneof(
    { weight: 5, arbitrary: stored },
    { weight: 3, arbitrary: mutated },
    { weight: 1, arbitrary: fc.constantFrom(...unknown) },
    { weight: 1, arbitrary: fc.string({ minLength: 16, maxLength: 260, unit: fc.constantFrom(...'abcXYZ019_-.~!') }) },
    { weight: 1, arbitrary: anyText },
    { weight: 1, arbitrary: bigString(257, 2000) },
  );
}

type Pair = [string, string | Uint8Array];

/** Headers that carry keys, in every way Envoy could pass them on. */
function keyHeadersArb(keyText: fc.Arbitrary<string>): fc.Arbitrary<Pair[]> {
  const one: fc.Arbitrary<Pair> = fc.oneof(
    keyText.map((k): Pair => ['x-api-key', k]),
    fc.tuple(fc.constantFrom('Bearer', 'bearer', 'ApiKey', 'APIKEY', 'Basic', 'Token', ''), fc.constantFrom(' ', '  ', '\t'), keyText).map(([s, sp, k]): Pair => ['authorization', `${s}${sp}${k}`]),
    keyText.map((k): Pair => ['x-other-key', k]),
    fc.tuple(keyText, keyText).map(([a, b]): Pair => ['x-api-key', `${a}, ${b}`]),
    keyText.map((k): Pair => ['X-Api-Key', k]),
    // raw bytes: the key with a NUL or a byte that is not UTF-8
    fc.tuple(keyText, fc.constantFrom(0x00, 0xff, 0xc3, 0x80)).map(([k, b]): Pair => ['x-api-key', Buffer.concat([Buffer.from(k, 'utf8'), Buffer.from([b])])]),
    keyText.map((k): Pair => ['x-api-key', Buffer.from(k, 'utf8')]),
  );
  return fc.array(one, { maxLength: 3 });
}

/** Headers that try to pose as the identity keygate sets upstream. */
const spoofHeadersArb: fc.Arbitrary<Pair[]> = fc.array(
  fc.tuple(fc.constantFrom('x-keygate-owner', 'X-Keygate-Key-Id', 'x-keygate-plan', 'x-keygate-shadow-denial', 'x-keygate-anything', 'X-KEYGATE-ROLE'), anyText).map(([n, v]): Pair => [n, v]),
  { maxLength: 3 },
);

const randomHeadersArb: fc.Arbitrary<Pair[]> = fc.array(
  fc.tuple(
    fc.oneof({ weight: 8, arbitrary: fc.string({ maxLength: 30, unit: 'binary' }) }, { weight: 1, arbitrary: fc.constantFrom('', ':path', ':authority', 'x-envoy-external-address', 'x-request-id', '\0', 'cookie') }),
    fc.oneof({ weight: 4, arbitrary: anyText }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) }),
  ).map(([n, v]): Pair => [n, v]),
  { maxLength: 12 },
);

/** Thousands of headers (Envoy's own default limit is 100). */
const manyHeadersArb: fc.Arbitrary<Pair[]> = fc
  .tuple(fc.integer({ min: 1000, max: 10_000 }), fc.boolean(), fc.constantFrom('x-h', 'x-keygate-h', 'x-api-key'))
  .map(([n, distinct, name]) => Array.from({ length: n }, (_, i): Pair => [distinct ? `${name}${i}` : name, distinct ? `v${i}` : '']));

/** One huge thing per request, now and then: the sizes Envoy would refuse long before keygate. */
type Huge = { kind: 'header-name' | 'header-value' | 'raw-value' | 'path' | 'query' | 'context-value' | 'context-entries' | 'headers'; size: number; many?: Pair[] };
const hugeArb: fc.Arbitrary<Huge | undefined> = fc.oneof(
  { weight: 40, arbitrary: fc.constant(undefined) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constantFrom('header-name', 'header-value', 'raw-value', 'path', 'query', 'context-value', 'context-entries'),
      size: fc.integer({ min: 10_000, max: 120_000 }),
    }) as fc.Arbitrary<Huge>,
  },
  { weight: 1, arbitrary: manyHeadersArb.map((many): Huge => ({ kind: 'headers', size: many.length, many })) },
);

/** encodeURIComponent, or the text itself when it holds a lone surrogate (bigString may cut a pair). */
function encodeQuery(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return text;
  }
}

function pathArb(keyText: fc.Arbitrary<string>): fc.Arbitrary<string | undefined> {
  const query = fc.array(
    fc.oneof(
      keyText.map((k) => `${QUERY_PARAM}=${encodeQuery(k)}`),
      keyText.map((k) => `${QUERY_PARAM}=${k}`),
      fc.tuple(anyText, anyText).map(([a, b]) => `${a}=${b}`),
      fc.constantFrom('&&&', '=', `${QUERY_PARAM}`, `${QUERY_PARAM}=`, `api%5Fkey=x`, '%', '#frag', '?'),
    ),
    { maxLength: 4 },
  );
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 4, arbitrary: fc.tuple(fc.constantFrom('/orders', '/', '', '//a/../b', '*', 'http://evil/x'), query).map(([p, q]) => (q.length ? `${p}?${q.join('&')}` : p)) },
    { weight: 1, arbitrary: anyText },
  );
}

const contextArb: fc.Arbitrary<Record<string, string> | undefined> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(undefined) },
  {
    weight: 6,
    arbitrary: fc.record(
      {
        'keygate.cost': fc.oneof(fc.constantFrom('1', '2', '999999999', '0', '-1', '1.5', ' 1', '1e3', '0x10', '', '99999999999999999999'), anyText),
        'keygate.scope': fc.oneof(fc.constantFrom('read', 'write', 'orders:*', '*', '', ' read', 'a'.repeat(200)), anyText),
        other: anyText,
      },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 20, unit: 'binary' }), anyText, { maxKeys: 20 }) },
);

const addressArb: fc.Arbitrary<PlainMessage | undefined> = fc.oneof(
  { weight: 1, arbitrary: fc.constant(undefined) },
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.oneof(fc.ipV4(), fc.ipV6(), fc.constantFrom('10.1.2.3', '2001:db8::1', '::ffff:10.0.0.1', 'fe80::1%eth0', '10.0.0.0/8', '999.1.1.1', '', 'localhost'), anyText),
        fc.option(fc.integer({ min: 0, max: 0xffffffff }), { nil: undefined }),
      )
      .map(([address, port]) => ({ address: { socket_address: port === undefined ? { address } : { address, port_value: port } } })),
  },
  { weight: 1, arbitrary: anyText.map((path) => ({ address: { pipe: { path } } })) },
  { weight: 1, arbitrary: anyText.map((principal) => ({ principal, certificate: principal })) },
);

export interface FuzzCase {
  request: PlainMessage;
  /** every text a key could have been read from (header values as latin1, path raw and decoded) */
  haystack: string;
  /** lower-case names of the headers sent */
  headerNames: string[];
}

/** The request as JSON, long strings and arrays cut, for failure reports. */
function summarize(request: PlainMessage): string {
  const text = JSON.stringify(request, (_k, v: unknown) => {
    if (typeof v === 'string' && v.length > 200) return `${v.slice(0, 200)}…(${v.length} chars)`;
    if (Array.isArray(v) && v.length > 20) return [...v.slice(0, 20), `…(${v.length} items)`];
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') {
      const data = (v as { data: number[] }).data;
      return `<${data.length} bytes: ${Buffer.from(data.slice(0, 64)).toString('hex')}>`;
    }
    return v;
  });
  return text.length > 4000 ? `${text.slice(0, 4000)}…` : text;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, '%20'));
  } catch {
    return text;
  }
}

/** The generated parts of one request, before they become a CheckRequest. */
interface Generated {
  form: 'map' | 'header_map' | 'header_map_values' | 'none';
  headers: Pair[];
  path?: string;
  method?: string;
  host?: string;
  id?: string;
  query?: string;
  body?: string;
  rawBody?: Uint8Array;
  size?: string;
  source?: PlainMessage;
  destination?: PlainMessage;
  context?: Record<string, string>;
  shape: 'full' | 'no-attributes' | 'no-request' | 'no-http' | 'empty-http';
  huge?: Huge;
}

/** A CheckRequest as Envoy might send it — and a good deal Envoy never would. */
export function checkRequestArb(keys: StoredKey[], unknown: string[], opts: { huge?: boolean } = {}): fc.Arbitrary<FuzzCase> {
  const keyText = keyTextArb(keys, unknown);
  const headers = fc
    .tuple(
      keyHeadersArb(keyText),
      spoofHeadersArb,
      randomHeadersArb,
      fc.option(fc.oneof(fc.ipV4(), anyText), { nil: undefined }),
    )
    .chain(([k, s, r, external]) => fc.shuffledSubarray([...k, ...s, ...r, ...(external === undefined ? [] : [['x-envoy-external-address', external] as Pair])], { minLength: 0 }).map((sub) => sub));
  // Requests that should pass (one stored key, once, sane route settings) — with the same spoofed
  // identity headers, random headers and huge parts around it.
  const usable = keys.filter((k) => k.usable).map((k) => k.secret);
  const cleanKey: fc.Arbitrary<Pair[]> = fc
    .tuple(fc.constantFrom(...usable), fc.constantFrom('x-api-key', 'bearer', 'apikey', 'x-other-key', 'raw'))
    .map(([k, how]): Pair[] => [
      how === 'bearer' ? ['authorization', `Bearer ${k}`] : how === 'apikey' ? ['authorization', `ApiKey ${k}`] : how === 'raw' ? ['x-api-key', Buffer.from(k)] : [how, k],
    ]);
  const cleanHeaders = fc.tuple(cleanKey, spoofHeadersArb, randomHeadersArb).chain(([k, s, r]) => fc.shuffledSubarray([...s, ...r]).map((rest) => [...k, ...rest]));
  const clean = fc.record(
    {
      form: fc.constantFrom('map', 'header_map', 'header_map_values'),
      headers: cleanHeaders,
      path: fc.option(fc.oneof(fc.constantFrom('/orders', '/', '/a?b=c'), anyText), { nil: undefined }),
      source: fc.oneof(fc.constant(undefined), fc.constantFrom('10.0.0.7', '2001:db8::5', '192.0.2.1').map((address) => ({ address: { socket_address: { address } } }))),
      destination: addressArb,
      context: fc.option(fc.record({ 'keygate.cost': fc.constantFrom('1', '3'), 'keygate.scope': fc.constantFrom('read', 'write') }, { requiredKeys: [] }), { nil: undefined }),
      shape: fc.constant('full' as const),
      huge: opts.huge === false ? fc.constant(undefined) : hugeArb,
    },
    { requiredKeys: ['form', 'headers', 'shape', 'source', 'destination', 'context', 'path'] },
  );
  const hostile = fc
    .record(
      {
        form: fc.constantFrom('map', 'header_map', 'header_map_values', 'none'),
        headers,
        path: pathArb(keyText),
        method: fc.option(fc.oneof(fc.constantFrom('GET', 'POST', 'CONNECT'), anyText), { nil: undefined }),
        host: fc.option(anyText, { nil: undefined }),
        id: fc.option(anyText, { nil: undefined }),
        query: fc.option(anyText, { nil: undefined }),
        body: fc.option(anyText, { nil: undefined }),
        rawBody: fc.option(fc.uint8Array({ maxLength: 256 }), { nil: undefined }),
        size: fc.option(fc.constantFrom('-1', '0', '9223372036854775807', '-9223372036854775808'), { nil: undefined }),
        source: addressArb,
        destination: addressArb,
        context: contextArb,
        shape: fc.constantFrom('full', 'full', 'full', 'full', 'no-attributes', 'no-request', 'no-http', 'empty-http'),
        huge: opts.huge === false ? fc.constant(undefined) : hugeArb,
      },
      { requiredKeys: ['form', 'headers', 'shape', 'source', 'destination', 'context', 'path'] },
    );
  return fc
    .oneof({ weight: 2, arbitrary: hostile as unknown as fc.Arbitrary<Generated> }, { weight: 1, arbitrary: clean as unknown as fc.Arbitrary<Generated> })
    .map((g: Generated): FuzzCase => {
      const h = g.huge;
      if (h) {
        const big = 'x'.repeat(h.size);
        if (h.kind === 'headers') g.headers = [...g.headers, ...h.many!];
        else if (h.kind === 'header-name') g.headers = [...g.headers, [big, 'v']];
        else if (h.kind === 'header-value') g.headers = [...g.headers, ['x-big', big]];
        else if (h.kind === 'raw-value') g.headers = [...g.headers, ['x-big', Buffer.alloc(h.size, 0xff)]];
        else if (h.kind === 'path') g.path = `/${big}`;
        else if (h.kind === 'query') g.path = `/q?${'a=b&'.repeat(h.size / 4)}${QUERY_PARAM}=x`;
        else if (h.kind === 'context-value') g.context = { ...g.context, 'keygate.scope': 'read', huge: big };
        else g.context = { ...g.context, ...Object.fromEntries(Array.from({ length: h.size / 100 }, (_, i) => [`ext.${i}`, 'v'.repeat(i % 50)])) };
      }
      const http: PlainMessage = {};
      const names: string[] = [];
      const values: string[] = [];
      if (g.form === 'map') {
        const map: Record<string, string> = {};
        for (const [n, v] of g.headers) map[n] = typeof v === 'string' ? v : Buffer.from(v).toString('utf8');
        http.headers = map;
        for (const [n, v] of Object.entries(map)) {
          names.push(n.toLowerCase());
          values.push(v);
        }
      } else if (g.form !== 'none') {
        http.header_map = {
          headers: g.headers.map(([key, v]) => {
            names.push(key.toLowerCase());
            const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v);
            values.push(bytes.toString('latin1'), bytes.toString('utf8'));
            return g.form === 'header_map' ? { key, raw_value: bytes } : { key, value: typeof v === 'string' ? v : bytes.toString('utf8') };
          }),
        };
      }
      if (g.path !== undefined) http.path = g.path;
      for (const f of ['method', 'host', 'id', 'query', 'body', 'size'] as const) if (g[f] !== undefined) http[f] = g[f];
      if (g.rawBody !== undefined) http.raw_body = Buffer.from(g.rawBody);
      const attributes: PlainMessage = {};
      if (g.source) attributes.source = g.source;
      if (g.destination) attributes.destination = g.destination;
      if (g.context) attributes.context_extensions = g.context;
      if (g.shape === 'full') attributes.request = { http };
      else if (g.shape === 'no-http') attributes.request = {};
      else if (g.shape === 'empty-http') attributes.request = { http: {} };
      const request: PlainMessage = g.shape === 'no-attributes' ? {} : { attributes };
      const path = g.shape === 'full' ? g.path ?? '' : '';
      const pathHeaders = g.shape === 'full' ? values : [];
      const fuzzCase: FuzzCase = { request, haystack: [...pathHeaders, path, safeDecode(path)].join('\n'), headerNames: g.shape === 'full' ? names : [] };
      // a failing case is reported short: huge requests would flood the output
      return Object.assign(fuzzCase, { [fc.toStringMethod]: () => summarize(request) });
    });
}

// ---------------------------------------------------------------------------------------
// the checker

const statusNames = (): Map<string, number> => {
  const e = officialType('envoy.type.v3.HttpStatus').fields.code.resolvedType as unknown as { values: Record<string, number> };
  return new Map(Object.entries(e.values));
};
let httpCodes: Map<string, number> | undefined;

type Hdr = { header?: { key?: string; value?: string } };

/** Fails the property with `message` (cheaper than expect() in a loop of ten thousand runs). */
function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** Asserts that `res` (an official-decoded CheckResponse) is valid and allows only what it may. */
export function expectValidResponse(res: PlainMessage, c: FuzzCase, keys: StoredKey[]): 'allow' | DenyReason {
  httpCodes ??= statusNames();
  check(res.status !== undefined && res.status !== null, 'status is not set');
  const status = res.status as { code?: number; message?: string };
  const ok = res.ok_response as { headers?: Hdr[]; headers_to_remove?: string[] } | undefined;
  const denied = res.denied_response as { status?: { code?: string | number }; headers?: Hdr[]; body?: string } | undefined;
  check((ok === undefined) !== (denied === undefined), 'not exactly one of ok_response / denied_response');
  const meta = (res.dynamic_metadata as { fields?: Record<string, { stringValue?: string }> } | undefined)?.fields ?? {};
  if (ok) {
    check((status.code ?? 0) === 0, `allowed with status ${String(status.code)}`);
    const id = meta.key_id?.stringValue;
    const key = keys.find((k) => k.record.id === id);
    check(key, `allowed with key id ${String(id)}, not a stored key`);
    check(key.usable, `allowed with unusable key ${String(id)}`);
    check(c.haystack.includes(key.secret), `allowed ${String(id)} but its secret was not in the request`);
    const set = new Map((ok.headers ?? []).map((h) => [h.header?.key, h.header?.value]));
    check(set.get(`${PREFIX}key-id`) === id, 'key id header');
    check(set.get(`${PREFIX}owner`) === key.record.owner, 'owner header');
    check(set.get(`${PREFIX}plan`) === key.record.plan, 'plan header');
    const removed = new Set(ok.headers_to_remove ?? []);
    const kept = c.headerNames.filter((name) => name.startsWith(PREFIX) && !set.has(name) && !removed.has(name));
    check(kept.length === 0, `client-sent identity-prefix headers were not removed: ${kept.slice(0, 5).join(', ')}`);
    return 'allow';
  }
  check(typeof denied!.body === 'string', 'denied without a body');
  const body = JSON.parse(denied!.body!) as { error?: { code?: string; message?: string } };
  const reason = body.error?.code as DenyReason;
  check(ALL_DENY_REASONS.includes(reason), `unknown reason ${String(reason)}`);
  check(Object.keys(body).join() === 'error' && Object.keys(body.error!).join() === 'code,message', `body shape ${denied!.body!}`);
  const spec = DENY_REASONS[reason];
  check(body.error?.message === spec.message, 'message');
  check(status.code === spec.grpc, `gRPC code ${String(status.code)} for ${reason}`);
  const http = denied!.status?.code;
  check((typeof http === 'number' ? http : httpCodes.get(String(http))) === spec.http, `HTTP status ${String(http)} for ${reason}`);
  const headers = new Map((denied!.headers ?? []).map((h) => [h.header?.key, h.header?.value]));
  check(headers.get('content-type') === 'application/json', 'content-type');
  if (spec.http === 401) check(/^Bearer realm="keygate"/.test(headers.get('www-authenticate') ?? ''), 'www-authenticate');
  if (meta.key_id?.stringValue !== undefined) {
    // a denial that names a key names one that was really presented
    const key = keys.find((k) => k.record.id === meta.key_id?.stringValue);
    check(key && c.haystack.includes(key.secret), 'a denial names a key that was not presented');
  }
  return reason;
}

/** Seed of the fuzz runs: fixed, or KEYGATE_FUZZ_SEED to explore (failures print the seed and path to replay). */
export const FUZZ_SEED = Number(process.env.KEYGATE_FUZZ_SEED ?? 20260126);
