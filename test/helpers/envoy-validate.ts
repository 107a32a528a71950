// A strict, offline validator for Envoy v3 configuration (bootstrap YAML/JSON), driven by
// Envoy's own .proto files. There is no Envoy binary in CI, so this is how the example
// config in envoy/ is proven loadable.
//
// What it checks, in the order Envoy itself would complain:
//
// 1. Proto structure (what `envoy --mode validate` reports as "Unable to parse JSON as
//    proto" or "has unknown fields"):
//    - every key is a field of its message, by proto name (snake_case) or JSON name
//      (lowerCamelCase); the same field twice under both spellings is an error;
//    - scalars have the right JSON type: strings are strings, bools are bools, integers
//      are integral and in range (numbers or decimal strings, as proto3 JSON allows),
//      floats are numbers or numeric strings, bytes are base64, enums are a value name
//      (case-insensitively: Envoy parses with case_insensitive_enum_parsing) or a number;
//    - maps and messages are objects; repeated fields are lists (a single value is only a
//      warning: Envoy's JSON parser reads it as a one-item list, and Envoy's own examples do
//      that);
//    - well-known types use their JSON forms: Duration "0.25s", Timestamp RFC 3339,
//      wrappers (BoolValue, UInt32Value, ...) the bare scalar (or {value: x}), Struct /
//      Value / ListValue free-form, FieldMask a string, Empty {};
//    - google.protobuf.Any ("typed_config" and friends) carries "@type":
//      "type.googleapis.com/<full message name>", the name resolves to a loaded message and
//      the rest of the object is validated as that message; xds/udpa TypedStruct is
//      unpacked the same way through its type_url;
//    - at most one member of each oneof is set.
// 2. protoc-gen-validate rules that Envoy enforces when it loads a config (the
//    "Proto constraint validation failed" errors): required messages and oneofs, string
//    lengths / patterns / allowed values, numeric and duration bounds, repeated/map sizes,
//    bool const, enum defined_only / not_in. Scalar rules apply to the proto3 default when a
//    field is absent, exactly as PGV does (e.g. a cluster without a name fails).
// 3. Deprecation: deprecated fields and enum values are warnings (Envoy logs them);
//    those marked disallowed_by_default are errors.
// 4. Semantic rules Envoy applies after parsing (option `semantic`, on by default):
//    - every HTTP, network and listener filter has a typed_config with an "@type" (or a
//      config_discovery): since Envoy 1.22 extensions are looked up by type URL only, so
//      an empty `typed_config: {}` fails with "Didn't find a registered implementation
//      for '<name>' with type URL: ''";
//    - the router is the last HTTP filter of an HttpConnectionManager;
//    - clusters named by routes, weighted clusters, mirror policies, envoy_grpc services
//      and http_uri exist among the static clusters (unless CDS is configured);
//    - cluster and listener names are unique; no two static listeners (or a listener and
//      admin) bind the same address and port.
//
// Every problem is reported with its path, e.g.
//   static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[1]:
//   unknown field "typed_confg" in envoy.extensions...HttpFilter (did you mean "typed_config"?)
//
// Protos come from @grpc/grpc-js-xds/deps (envoy-api, xds, googleapis, protoc-gen-validate);
// every v3 .proto under envoy/ whose imports are all available is loaded, so any extension
// that can appear in an Any is known. protobufjs supplies google/protobuf/*.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import { parseDocument } from 'yaml';

export interface Issue {
  path: string;
  message: string;
}

export interface EnvoyValidationResult {
  errors: Issue[];
  warnings: Issue[];
}

export interface EnvoyValidateOptions {
  /** Full name of the top-level message. Default: envoy.config.bootstrap.v3.Bootstrap. */
  rootType?: string;
  /** Apply the semantic rules (filters need typed_config, router last, cluster refs...). Default true. */
  semantic?: boolean;
}

const BOOTSTRAP = 'envoy.config.bootstrap.v3.Bootstrap';
const TYPE_URL_PREFIX = 'type.googleapis.com/';
const ROUTER = 'envoy.extensions.filters.http.router.v3.Router';
const TYPED_STRUCTS = new Set(['xds.type.v3.TypedStruct', 'udpa.type.v1.TypedStruct']);

// ───────────────────────────── schema loading ─────────────────────────────

const DEPS = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const INCLUDE_DIRS = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) =>
  path.join(DEPS, d),
);
const PROTOBUFJS_DIR = path.dirname(require.resolve('protobufjs/package.json'));

export interface EnvoySchema {
  root: protobuf.Root;
  /** v3 .proto files (relative to envoy-api) skipped because an import is not vendored. */
  skippedFiles: string[];
  /** Message full names declared in skipped files (so "unknown" can say why). */
  unavailableTypes: Set<string>;
  allMessageNames: string[];
}

let cachedSchema: EnvoySchema | undefined;

function walkProtos(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return walkProtos(p);
    return e.name.endsWith('.proto') ? [p] : [];
  });
}

function findImport(target: string): string | null {
  for (const dir of INCLUDE_DIRS) {
    const p = path.join(dir, target);
    if (fs.existsSync(p)) return p;
  }
  if (target.startsWith('google/protobuf/')) {
    const p = path.join(PROTOBUFJS_DIR, target);
    // protobufjs knows the common google/protobuf types without a file.
    return fs.existsSync(p) ? p : 'builtin:' + target;
  }
  return null;
}

const IMPORT_RE = /^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;/gm;

/** Loads (once) every usable Envoy v3 proto. Throws when the vendored protos are missing. */
export function loadEnvoySchema(): EnvoySchema {
  if (cachedSchema) return cachedSchema;
  const envoyDir = path.join(INCLUDE_DIRS[0]!, 'envoy');
  if (!fs.existsSync(envoyDir)) {
    throw new Error(
      `Envoy protos not found at ${envoyDir}: the validator needs @grpc/grpc-js-xds (a devDependency) installed.`,
    );
  }
  const candidates = [
    ...walkProtos(envoyDir).filter((f) => f.includes(`${path.sep}v3${path.sep}`)),
    ...walkProtos(path.join(INCLUDE_DIRS[1]!, 'xds', 'type')),
    ...walkProtos(path.join(INCLUDE_DIRS[1]!, 'udpa', 'type')),
  ];

  // A file is usable when all its imports (transitively) exist. The vendored tree lacks a
  // few third-party protos (opencensus, opentelemetry): files needing them are skipped.
  const usable = new Map<string, boolean>();
  const isUsable = (file: string, stack: Set<string>): boolean => {
    if (file.startsWith('builtin:')) return true;
    const known = usable.get(file);
    if (known !== undefined) return known;
    if (stack.has(file)) return true;
    stack.add(file);
    let ok = true;
    for (const m of fs.readFileSync(file, 'utf8').matchAll(IMPORT_RE)) {
      const dep = findImport(m[1]!);
      if (dep === null || !isUsable(dep, stack)) {
        ok = false;
        break;
      }
    }
    stack.delete(file);
    usable.set(file, ok);
    return ok;
  };
  const files = candidates.filter((f) => isUsable(f, new Set()));
  const skipped = candidates.filter((f) => !isUsable(f, new Set()));

  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string | null => {
    if (path.isAbsolute(target)) return target;
    const found = findImport(target);
    if (found === null) return null;
    return found.startsWith('builtin:') ? target : found;
  };
  root.loadSync(files, { keepCase: true });
  root.resolveAll();
  restoreEmptyDurationBounds(root);

  const unavailableTypes = new Set<string>();
  for (const f of skipped) {
    const src = fs.readFileSync(f, 'utf8');
    const pkg = /^\s*package\s+([\w.]+)\s*;/m.exec(src)?.[1] ?? '';
    for (const m of src.matchAll(/^\s*message\s+(\w+)/gm)) unavailableTypes.add(`${pkg}.${m[1]}`);
  }

  const allMessageNames: string[] = [];
  const collect = (ns: protobuf.NamespaceBase): void => {
    for (const o of ns.nestedArray) {
      if (o instanceof protobuf.Type) allMessageNames.push(fullName(o));
      if (o instanceof protobuf.Namespace || o instanceof protobuf.Type) collect(o);
    }
  };
  collect(root);

  cachedSchema = {
    root,
    skippedFiles: skipped.map((f) => path.relative(INCLUDE_DIRS[0]!, f)),
    unavailableTypes,
    allMessageNames,
  };
  return cachedSchema;
}

/**
 * protobufjs drops empty aggregate option values, so `[(validate.rules).duration = {gt {}}]`
 * ("must be > 0", e.g. HealthCheck.interval, Cluster.connect_timeout) loses its bound.
 * Re-read those bounds from the .proto text and put them back as `{}` (= 0s).
 */
function restoreEmptyDurationBounds(root: protobuf.Root): void {
  const byKey = new Map<string, protobuf.Field>();
  const files = new Set<string>();
  const collect = (ns: protobuf.NamespaceBase): void => {
    for (const o of ns.nestedArray) {
      if (o instanceof protobuf.Type) {
        for (const f of o.fieldsArray) {
          if (f.filename) {
            byKey.set(`${f.filename}|${f.name}|${f.id}`, f);
            files.add(f.filename);
          }
        }
      }
      if (o instanceof protobuf.Namespace || o instanceof protobuf.Type) collect(o);
    }
  };
  collect(root);
  const decl = /(\w+)\s*=\s*(\d+)\s*\[([^;]*?)\]\s*;/g;
  const rule = /\(validate\.rules\)\.duration\s*=\s*\{((?:[^{}]|\{[^{}]*\})*)\}/;
  for (const file of files) {
    if (!fs.existsSync(file)) continue;
    const text = fs.readFileSync(file, 'utf8').replace(/\/\/[^\n]*/g, '');
    for (const m of text.matchAll(decl)) {
      const r = rule.exec(m[3]!);
      if (!r) continue;
      const field = byKey.get(`${file}|${m[1]}|${m[2]}`);
      if (!field) continue;
      for (const b of r[1]!.matchAll(/\b(gt|gte|lt|lte)\s*:?\s*\{\s*\}/g)) {
        const key = `(validate.rules).duration.${b[1]}`;
        const opts = (field.options ??= {});
        if (!Object.keys(opts).some((k) => k.startsWith(key))) opts[key] = {};
      }
    }
  }
}

function fullName(t: protobuf.ReflectionObject): string {
  return t.fullName.replace(/^\./, '');
}

function lookupMessage(schema: EnvoySchema, name: string): protobuf.Type | null {
  try {
    const found = schema.root.lookup(name);
    return found instanceof protobuf.Type ? found : null;
  } catch {
    return null;
  }
}

// ───────────────────────────── helpers ─────────────────────────────

function lowerCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}

function joinPath(base: string, key: string): string {
  const seg = /^[A-Za-z_@][\w@-]*$/.test(key) ? key : JSON.stringify(key);
  if (!base) return /^[A-Za-z_@][\w@-]*$/.test(key) ? key : `[${seg}]`;
  return /^[A-Za-z_@][\w@-]*$/.test(key) ? `${base}.${key}` : `${base}[${seg}]`;
}

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_v, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

function closest(word: string, options: Iterable<string>, maxDistance: number): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const o of options) {
    const d = levenshtein(word.toLowerCase(), o.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = o;
    }
  }
  return bestD <= maxDistance ? best : undefined;
}

const INT_RANGES: Record<string, [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};

const WRAPPERS: Record<string, string> = {
  'google.protobuf.DoubleValue': 'double',
  'google.protobuf.FloatValue': 'float',
  'google.protobuf.Int64Value': 'int64',
  'google.protobuf.UInt64Value': 'uint64',
  'google.protobuf.Int32Value': 'int32',
  'google.protobuf.UInt32Value': 'uint32',
  'google.protobuf.BoolValue': 'bool',
  'google.protobuf.StringValue': 'string',
  'google.protobuf.BytesValue': 'bytes',
};

/** Well-known types whose JSON form is not an object of their fields. */
const SPECIAL_JSON = new Set([
  ...Object.keys(WRAPPERS),
  'google.protobuf.Duration',
  'google.protobuf.Timestamp',
  'google.protobuf.Struct',
  'google.protobuf.Value',
  'google.protobuf.ListValue',
  'google.protobuf.FieldMask',
]);

const DURATION_RE = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;
const TIMESTAMP_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

/** Duration string → seconds as a number (null when malformed). */
function parseDuration(v: string): number | null {
  const m = DURATION_RE.exec(v);
  if (!m) return null;
  const secs = Number(m[2]) + (m[3] ? Number(`0.${m[3]}`) : 0);
  if (Number(m[2]) > 315_576_000_000) return null;
  return m[1] ? -secs : secs;
}

/** PGV bound on a Duration: {seconds, nanos} (an object or flattened option keys). */
function durationBound(opts: Record<string, unknown>, key: string): number | undefined {
  const direct = opts[key];
  if (isPlainObject(direct)) {
    return Number(direct['seconds'] ?? 0) + Number(direct['nanos'] ?? 0) / 1e9;
  }
  const s = opts[`${key}.seconds`];
  const n = opts[`${key}.nanos`];
  if (s === undefined && n === undefined) return undefined;
  return Number(s ?? 0) + Number(n ?? 0) / 1e9;
}

/** Numeric view of an integer/float JSON value that already passed the type check. */
function numericValue(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    if (v === 'NaN') return NaN;
    if (v === 'Infinity') return Infinity;
    if (v === '-Infinity') return -Infinity;
    return Number(v);
  }
  return NaN;
}

// ───────────────────────────── the walker ─────────────────────────────

interface ClusterRef {
  name: string;
  path: string;
  what: string;
}

class Walker {
  readonly errors: Issue[] = [];
  readonly warnings: Issue[] = [];
  readonly clusterDefs = new Map<string, string>();
  readonly clusterRefs: ClusterRef[] = [];
  readonly listeners: { name: string | undefined; bind: string | undefined; path: string }[] = [];
  private readonly fieldMaps = new Map<protobuf.Type, Map<string, protobuf.Field>>();
  private skipClusterRefs = 0;

  constructor(
    private readonly schema: EnvoySchema,
    private readonly semantic: boolean,
  ) {}

  error(p: string, message: string): void {
    this.errors.push({ path: p || '(root)', message });
  }

  warn(p: string, message: string): void {
    this.warnings.push({ path: p || '(root)', message });
  }

  private fieldsOf(type: protobuf.Type): Map<string, protobuf.Field> {
    let map = this.fieldMaps.get(type);
    if (!map) {
      map = new Map();
      for (const f of type.fieldsArray) {
        map.set(f.name, f);
        const json = (f.options?.['json_name'] as string | undefined) ?? lowerCamel(f.name);
        map.set(json, f);
      }
      this.fieldMaps.set(type, map);
    }
    return map;
  }

  // ── messages ──

  message(value: unknown, type: protobuf.Type, p: string): void {
    const name = fullName(type);
    if (SPECIAL_JSON.has(name)) {
      this.wellKnown(value, name, p);
      return;
    }
    if (!isPlainObject(value)) {
      this.error(p, `expected an object (${name}), got ${describe(value)}`);
      return;
    }
    if (name === 'google.protobuf.Any') {
      this.any(value, p);
      return;
    }
    if (name === 'google.protobuf.Empty') {
      for (const k of Object.keys(value)) this.error(joinPath(p, k), `unknown field "${k}" in google.protobuf.Empty (write {})`);
      return;
    }

    const fields = this.fieldsOf(type);
    const seen = new Map<protobuf.Field, string>();
    // A route table with validate_clusters: false may name clusters Envoy does not know yet.
    const vc = value['validate_clusters'] ?? value['validateClusters'];
    const enteredNoRefCheck =
      name === 'envoy.config.route.v3.RouteConfiguration' && (vc === false || (isPlainObject(vc) && vc['value'] === false));
    if (enteredNoRefCheck) this.skipClusterRefs++;

    for (const [key, v] of Object.entries(value)) {
      const kp = joinPath(p, key);
      const field = fields.get(key);
      if (!field) {
        const hint = closest(key, fields.keys(), Math.max(2, Math.floor(key.length / 4)));
        this.error(kp, `unknown field "${key}" in ${name}${hint ? ` (did you mean "${hint}"?)` : ''}`);
        continue;
      }
      const earlier = seen.get(field);
      if (earlier !== undefined) {
        this.error(kp, `field "${field.name}" is set twice (as "${earlier}" and "${key}")`);
        continue;
      }
      seen.set(field, key);
      this.deprecation(field, kp);
      if (v === null && !this.acceptsNull(field)) continue; // JSON null = field left unset
      this.field(v, field, kp);
    }

    // oneofs: at most one member; (validate.required) demands exactly one.
    for (const oneof of type.oneofsArray) {
      const set = oneof.fieldsArray.filter((f) => seen.has(f) && value[seen.get(f)!] !== null);
      const synthetic = oneof.name.startsWith('_') && oneof.fieldsArray.length === 1;
      if (set.length > 1) {
        this.error(
          p,
          `only one of ${set.map((f) => `"${seen.get(f)}"`).join(', ')} may be set (they are members of oneof "${oneof.name}" in ${name})`,
        );
      }
      if (!synthetic && set.length === 0 && oneof.options?.['(validate.required)'] === true) {
        this.error(
          p,
          `one of ${oneof.fieldsArray.map((f) => `"${f.name}"`).join(', ')} is required (oneof "${oneof.name}" in ${name})`,
        );
      }
    }

    // PGV rules on fields that are absent (or null): presence and proto3 defaults.
    for (const f of type.fieldsArray) {
      const key = seen.get(f);
      if (key !== undefined && value[key] !== null) continue;
      this.absentField(f, p, name);
    }

    // TypedStruct carries a config as a Struct: Envoy converts it, so its content must parse.
    if (TYPED_STRUCTS.has(name)) this.typedStruct(value, p);
    if (this.semantic) this.semanticMessage(name, value, p);
    if (enteredNoRefCheck) this.skipClusterRefs--;
  }

  private acceptsNull(field: protobuf.Field): boolean {
    const t = field.resolvedType;
    return !field.repeated && !(field instanceof protobuf.MapField) && t instanceof protobuf.Type && fullName(t) === 'google.protobuf.Value';
  }

  private deprecation(field: protobuf.Field, p: string): void {
    const o = field.options ?? {};
    if (o['(envoy.annotations.disallowed_by_default)'] === true) {
      this.error(p, `field "${field.name}" is deprecated and disallowed by default (Envoy refuses it)`);
    } else if (o['deprecated'] === true) {
      const since = o['(envoy.annotations.deprecated_at_minor_version)'];
      this.warn(p, `field "${field.name}" is deprecated${since ? ` (since API ${String(since)})` : ''}`);
    }
  }

  private absentField(f: protobuf.Field, p: string, owner: string): void {
    const o = f.options ?? {};
    // Oneof members (and proto3 `optional` fields): PGV validates them only when set.
    if (f.partOf !== null) return;
    const fp = joinPath(p, f.name);
    if (
      o['(validate.rules).message.required'] === true ||
      o['(validate.rules).duration.required'] === true ||
      o['(validate.rules).timestamp.required'] === true ||
      o['(validate.rules).any.required'] === true
    ) {
      this.error(fp, `required field "${f.name}" of ${owner} is missing`);
      return;
    }
    if (f instanceof protobuf.MapField) {
      const min = o['(validate.rules).map.min_pairs'];
      if (typeof min === 'number' && min > 0) this.error(fp, `field "${f.name}" needs at least ${min} entries (missing)`);
      return;
    }
    if (f.repeated) {
      const min = o['(validate.rules).repeated.min_items'];
      if (typeof min === 'number' && min > 0 && o['(validate.rules).repeated.ignore_empty'] !== true) {
        this.error(fp, `field "${f.name}" needs at least ${min} item${min === 1 ? '' : 's'} (missing)`);
      }
      return;
    }
    // Scalars without presence: PGV checks the proto3 default value.
    if (f.resolvedType instanceof protobuf.Type) return;
    if (f.resolvedType instanceof protobuf.Enum) {
      this.enumRules(0, f.resolvedType, o, '(validate.rules).enum', fp, f.name);
      return;
    }
    const def = f.type === 'string' || f.type === 'bytes' ? '' : f.type === 'bool' ? false : 0;
    this.scalarRules(def, f.type, o, '(validate.rules)', fp, f.name, true);
  }

  // ── fields ──

  private field(v: unknown, field: protobuf.Field, p: string): void {
    const o = field.options ?? {};
    if (field instanceof protobuf.MapField) {
      if (!isPlainObject(v)) {
        this.error(p, `expected an object (map<${field.keyType}, ${field.type}>), got ${describe(v)}`);
        return;
      }
      const entries = Object.entries(v);
      const minPairs = o['(validate.rules).map.min_pairs'];
      if (typeof minPairs === 'number' && entries.length < minPairs) this.error(p, `needs at least ${minPairs} entries`);
      for (const [k, item] of entries) {
        const ip = joinPath(p, k);
        this.mapKey(k, field.keyType, ip);
        this.scalarRules(k, 'string', o, '(validate.rules).map.keys', ip, 'map key', false);
        if (item === null && !(field.resolvedType instanceof protobuf.Type && fullName(field.resolvedType) === 'google.protobuf.Value')) {
          this.error(ip, 'null is not allowed as a map value');
          continue;
        }
        this.singular(item, field, ip, '(validate.rules).map.values');
      }
      return;
    }
    if (field.repeated) {
      if (!Array.isArray(v)) {
        // Envoy's JSON parser (protobuf's, kept lenient for legacy configs) reads a single
        // value as a one-item list; Envoy's own examples rely on it. Accept, but say so.
        this.warn(p, `repeated field "${field.name}" is given a single value, not a list (Envoy reads it as a one-item list; write a list)`);
        v = [v];
      }
      if (!Array.isArray(v)) return;
      const min = o['(validate.rules).repeated.min_items'];
      const max = o['(validate.rules).repeated.max_items'];
      if (typeof min === 'number' && v.length < min && !(v.length === 0 && o['(validate.rules).repeated.ignore_empty'] === true)) {
        this.error(p, `field "${field.name}" needs at least ${min} item${min === 1 ? '' : 's'}, got ${v.length}`);
      }
      if (typeof max === 'number' && v.length > max) this.error(p, `field "${field.name}" allows at most ${max} items, got ${v.length}`);
      if (o['(validate.rules).repeated.unique'] === true) {
        const keys = v.map((x) => JSON.stringify(x));
        if (new Set(keys).size !== keys.length) this.error(p, `items of "${field.name}" must be unique`);
      }
      v.forEach((item, i) => {
        const ip = `${p}[${i}]`;
        if (item === null) {
          this.error(ip, 'null is not allowed in a list');
          return;
        }
        this.singular(item, field, ip, '(validate.rules).repeated.items');
      });
      return;
    }
    this.singular(v, field, p, '(validate.rules)');
  }

  private mapKey(k: string, keyType: string, p: string): void {
    if (keyType === 'string') return;
    if (keyType === 'bool') {
      if (k !== 'true' && k !== 'false') this.error(p, `map key ${JSON.stringify(k)} is not a bool`);
      return;
    }
    const range = INT_RANGES[keyType];
    if (range && (!/^-?\d+$/.test(k) || BigInt(k) < range[0] || BigInt(k) > range[1])) {
      this.error(p, `map key ${JSON.stringify(k)} is not a valid ${keyType}`);
    }
  }

  /** One value of a field (the field itself, a list item or a map value). */
  private singular(v: unknown, field: protobuf.Field, p: string, rulePrefix: string): void {
    const o = field.options ?? {};
    const t = field.resolvedType;
    if (t instanceof protobuf.Type) {
      const tn = fullName(t);
      this.message(v, t, p);
      // PGV rules on well-known message types.
      if (tn === 'google.protobuf.Duration' && typeof v === 'string') {
        const secs = parseDuration(v);
        if (secs !== null) this.durationRules(secs, o, `${rulePrefix}.duration`, p, field.name);
      } else if (WRAPPERS[tn] !== undefined && v !== null) {
        const inner = isPlainObject(v) ? v['value'] : v;
        const scalar = WRAPPERS[tn]!;
        this.scalarRules(inner, scalar, o, rulePrefix, p, field.name, false);
      }
      return;
    }
    if (t instanceof protobuf.Enum) {
      const n = this.enumValue(v, t, p);
      if (n !== null) this.enumRules(n, t, o, `${rulePrefix}.enum`, p, field.name);
      return;
    }
    if (this.scalar(v, field.type, p)) this.scalarRules(v, field.type, o, rulePrefix, p, field.name, false);
  }

  /** Type check of a scalar JSON value; returns true when it is well-typed. */
  private scalar(v: unknown, type: string, p: string): boolean {
    switch (type) {
      case 'string':
        if (typeof v !== 'string') {
          this.error(p, `expected a string, got ${describe(v)}${typeof v === 'number' || typeof v === 'boolean' ? ' (quote it)' : ''}`);
          return false;
        }
        return true;
      case 'bytes':
        if (typeof v !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(v)) {
          this.error(p, `expected base64-encoded bytes, got ${describe(v)}`);
          return false;
        }
        return true;
      case 'bool':
        if (typeof v !== 'boolean') {
          this.error(p, `expected true or false, got ${describe(v)}`);
          return false;
        }
        return true;
      case 'double':
      case 'float': {
        const ok =
          (typeof v === 'number' && !Number.isNaN(v)) ||
          (typeof v === 'string' && (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v) || ['NaN', 'Infinity', '-Infinity'].includes(v)));
        if (!ok) {
          this.error(p, `expected a number, got ${describe(v)}`);
          return false;
        }
        if (type === 'float' && Math.abs(numericValue(v)) > 3.4028234663852886e38 && Number.isFinite(numericValue(v))) {
          this.error(p, `${String(v)} is out of range for float`);
          return false;
        }
        return true;
      }
      default: {
        const range = INT_RANGES[type];
        if (!range) {
          this.error(p, `internal: unsupported scalar type ${type}`);
          return false;
        }
        let big: bigint | null = null;
        if (typeof v === 'number' && Number.isInteger(v)) big = BigInt(v);
        else if (typeof v === 'string' && /^-?\d+$/.test(v)) big = BigInt(v);
        if (big === null) {
          this.error(p, `expected an integer (${type}), got ${describe(v)}`);
          return false;
        }
        if (big < range[0] || big > range[1]) {
          this.error(p, `${big.toString()} is out of range for ${type}`);
          return false;
        }
        return true;
      }
    }
  }

  /** protoc-gen-validate rules for a scalar (or a wrapper's inner scalar). */
  private scalarRules(
    v: unknown,
    type: string,
    o: Record<string, unknown>,
    prefix: string,
    p: string,
    fieldName: string,
    isDefault: boolean,
  ): void {
    const kind = type === 'sint32' || type === 'sfixed32' ? 'int32' : type === 'sint64' || type === 'sfixed64' ? 'int64' : type === 'fixed32' ? 'uint32' : type === 'fixed64' ? 'uint64' : type;
    const r = (rule: string): unknown => o[`${prefix}.${kind}.${rule}`];
    const what = isDefault ? `field "${fieldName}" (absent, so ${JSON.stringify(v)})` : `field "${fieldName}"`;
    if (kind === 'string' && typeof v === 'string') {
      if (r('ignore_empty') === true && v === '') return;
      const chars = [...v].length;
      const bytes = Buffer.byteLength(v, 'utf8');
      const minLen = r('min_len');
      const maxLen = r('max_len');
      const minBytes = r('min_bytes');
      const maxBytes = r('max_bytes');
      if (typeof minLen === 'number' && chars < minLen) this.error(p, `${what} must be at least ${minLen} character${minLen === 1 ? '' : 's'} long`);
      if (typeof maxLen === 'number' && chars > maxLen) this.error(p, `${what} must be at most ${maxLen} characters long`);
      if (typeof minBytes === 'number' && bytes < minBytes) this.error(p, `${what} must be at least ${minBytes} bytes long`);
      if (typeof maxBytes === 'number' && bytes > maxBytes) this.error(p, `${what} must be at most ${maxBytes} bytes long`);
      const pattern = r('pattern');
      if (typeof pattern === 'string') {
        let re: RegExp | null = null;
        try {
          re = new RegExp(pattern, 'u');
        } catch {
          re = null; // RE2-only syntax: not checkable here.
        }
        if (re && !re.test(v)) this.error(p, `${what} must match ${pattern}`);
      }
      const inList = r('in');
      if (inList !== undefined) {
        const allowed = Array.isArray(inList) ? inList : [inList];
        if (!allowed.includes(v)) this.error(p, `${what} must be one of ${allowed.map((x) => JSON.stringify(x)).join(', ')}`);
      }
      const prefixRule = r('prefix');
      if (typeof prefixRule === 'string' && !v.startsWith(prefixRule)) this.error(p, `${what} must start with ${JSON.stringify(prefixRule)}`);
      const wkr = r('well_known_regex');
      if ((wkr === 'HTTP_HEADER_NAME' || wkr === 'HTTP_HEADER_VALUE') && /[\0\r\n]/.test(v)) {
        this.error(p, `${what} must not contain NUL, CR or LF`);
      }
      return;
    }
    if (kind === 'bool' && typeof v === 'boolean') {
      const c = r('const');
      if (typeof c === 'boolean' && v !== c) this.error(p, `${what} must be ${String(c)}${isDefault ? '' : ` (got ${String(v)})`}`);
      return;
    }
    if (INT_RANGES[kind] !== undefined || kind === 'double' || kind === 'float') {
      if (typeof v !== 'number' && typeof v !== 'string') return;
      const n = numericValue(v);
      const num = (x: unknown): number | undefined => (x === undefined ? undefined : Number(x));
      const gt = num(r('gt'));
      const gte = num(r('gte'));
      const lt = num(r('lt'));
      const lte = num(r('lte'));
      const c = num(r('const'));
      if (gt !== undefined && !(n > gt)) this.error(p, `${what} must be greater than ${gt}${isDefault ? '' : ` (got ${String(v)})`}`);
      if (gte !== undefined && !(n >= gte)) this.error(p, `${what} must be at least ${gte}${isDefault ? '' : ` (got ${String(v)})`}`);
      if (lt !== undefined && !(n < lt)) this.error(p, `${what} must be less than ${lt}${isDefault ? '' : ` (got ${String(v)})`}`);
      if (lte !== undefined && !(n <= lte)) this.error(p, `${what} must be at most ${lte}${isDefault ? '' : ` (got ${String(v)})`}`);
      if (c !== undefined && n !== c) this.error(p, `${what} must be ${c}`);
      const inList = r('in');
      if (inList !== undefined) {
        const allowed = (Array.isArray(inList) ? inList : [inList]).map(Number);
        if (!allowed.includes(n)) this.error(p, `${what} must be one of ${allowed.join(', ')}`);
      }
      const notIn = r('not_in');
      if (notIn !== undefined) {
        const banned = (Array.isArray(notIn) ? notIn : [notIn]).map(Number);
        if (banned.includes(n)) this.error(p, `${what} must not be ${n}`);
      }
    }
  }

  private durationRules(secs: number, o: Record<string, unknown>, prefix: string, p: string, fieldName: string): void {
    const gt = durationBound(o, `${prefix}.gt`);
    const gte = durationBound(o, `${prefix}.gte`);
    const lt = durationBound(o, `${prefix}.lt`);
    const lte = durationBound(o, `${prefix}.lte`);
    if (gt !== undefined && !(secs > gt)) this.error(p, `field "${fieldName}" must be longer than ${gt}s`);
    if (gte !== undefined && !(secs >= gte)) this.error(p, `field "${fieldName}" must be at least ${gte}s`);
    if (lt !== undefined && !(secs < lt)) this.error(p, `field "${fieldName}" must be shorter than ${lt}s`);
    if (lte !== undefined && !(secs <= lte)) this.error(p, `field "${fieldName}" must be at most ${lte}s`);
  }

  /** Enum JSON value → its number (null when invalid). Names match case-insensitively, as in Envoy. */
  private enumValue(v: unknown, e: protobuf.Enum, p: string): number | null {
    const en = fullName(e);
    if (typeof v === 'number') {
      if (!Number.isInteger(v) || v < -(2 ** 31) || v > 2 ** 31 - 1) {
        this.error(p, `expected a ${en} value, got ${describe(v)}`);
        return null;
      }
      this.enumValueDeprecation(e, Object.keys(e.values).find((k) => e.values[k] === v), p);
      return v;
    }
    if (typeof v !== 'string') {
      this.error(p, `expected a ${en} value name, got ${describe(v)}`);
      return null;
    }
    const name = Object.keys(e.values).find((k) => k === v) ?? Object.keys(e.values).find((k) => k.toLowerCase() === v.toLowerCase());
    if (name === undefined) {
      const hint = closest(v, Object.keys(e.values), 3);
      const names = Object.keys(e.values);
      const list = names.length <= 12 ? `one of ${names.join(', ')}` : `${names.length} names, e.g. ${names.slice(0, 6).join(', ')}`;
      this.error(p, `unknown ${en} value ${JSON.stringify(v)} (${list})${hint ? `; did you mean "${hint}"?` : ''}`);
      return null;
    }
    this.enumValueDeprecation(e, name, p);
    return e.values[name]!;
  }

  private enumValueDeprecation(e: protobuf.Enum, name: string | undefined, p: string): void {
    if (name === undefined) return;
    const vo = e.valuesOptions?.[name] ?? {};
    if (vo['(envoy.annotations.disallowed_by_default_enum)'] === true) {
      this.error(p, `enum value ${name} of ${fullName(e)} is deprecated and disallowed by default`);
    } else if (vo['deprecated'] === true) {
      this.warn(p, `enum value ${name} of ${fullName(e)} is deprecated`);
    }
  }

  private enumRules(n: number, e: protobuf.Enum, o: Record<string, unknown>, prefix: string, p: string, fieldName: string): void {
    if (o[`${prefix}.defined_only`] === true && !Object.values(e.values).includes(n)) {
      this.error(p, `field "${fieldName}": ${n} is not a defined ${fullName(e)} value`);
    }
    const notIn = o[`${prefix}.not_in`];
    if (notIn !== undefined && (Array.isArray(notIn) ? notIn : [notIn]).map(Number).includes(n)) {
      const nm = Object.keys(e.values).find((k) => e.values[k] === n) ?? String(n);
      this.error(p, `field "${fieldName}" must not be ${nm}${n === 0 ? ' (the default: set it explicitly)' : ''}`);
    }
    const inList = o[`${prefix}.in`];
    if (inList !== undefined && !(Array.isArray(inList) ? inList : [inList]).map(Number).includes(n)) {
      this.error(p, `field "${fieldName}" has a value that is not allowed here`);
    }
  }

  // ── well-known types ──

  private wellKnown(v: unknown, name: string, p: string): void {
    const wrapped = WRAPPERS[name];
    if (wrapped !== undefined) {
      // proto3 JSON writes a wrapper as the bare scalar; Envoy's parser also takes {value: x}.
      if (isPlainObject(v)) {
        const keys = Object.keys(v);
        for (const k of keys) if (k !== 'value') this.error(joinPath(p, k), `unknown field "${k}" in ${name} (write the bare value)`);
        if ('value' in v && v['value'] !== null) this.scalar(v['value'], wrapped, joinPath(p, 'value'));
        return;
      }
      this.scalar(v, wrapped, p);
      return;
    }
    switch (name) {
      case 'google.protobuf.Duration':
        if (typeof v !== 'string' || parseDuration(v) === null) {
          this.error(p, `expected a duration string such as "0.25s" or "5s" (google.protobuf.Duration), got ${describe(v)}`);
        }
        return;
      case 'google.protobuf.Timestamp':
        if (typeof v !== 'string' || !TIMESTAMP_RE.test(v)) this.error(p, `expected an RFC 3339 timestamp string, got ${describe(v)}`);
        return;
      case 'google.protobuf.FieldMask':
        if (typeof v !== 'string') this.error(p, `expected a field mask string, got ${describe(v)}`);
        return;
      case 'google.protobuf.Struct':
        if (!isPlainObject(v)) this.error(p, `expected an object (google.protobuf.Struct), got ${describe(v)}`);
        return;
      case 'google.protobuf.ListValue':
        if (!Array.isArray(v)) this.error(p, `expected a list (google.protobuf.ListValue), got ${describe(v)}`);
        return;
      case 'google.protobuf.Value':
        return; // any JSON value
      default:
        this.error(p, `internal: no JSON rule for ${name}`);
    }
  }

  private any(value: Record<string, unknown>, p: string): void {
    const typeUrl = value['@type'];
    if (typeUrl === undefined) {
      const others = Object.keys(value);
      if (others.length > 0) this.error(p, `google.protobuf.Any has fields (${others.join(', ')}) but no "@type"`);
      return; // `{}` is a valid, empty Any; the semantic rules decide if it may be empty.
    }
    const tp = joinPath(p, '@type');
    if (typeof typeUrl !== 'string') {
      this.error(tp, `"@type" must be a string, got ${describe(typeUrl)}`);
      return;
    }
    const type = this.resolveTypeUrl(typeUrl, tp, true);
    if (!type) return;
    const tn = fullName(type);
    const body = Object.fromEntries(Object.entries(value).filter(([k]) => k !== '@type'));
    if (SPECIAL_JSON.has(tn)) {
      for (const k of Object.keys(body)) if (k !== 'value') this.error(joinPath(p, k), `unknown field "${k}" (an Any of ${tn} holds its JSON in "value")`);
      if (!('value' in body)) this.error(p, `an Any of ${tn} needs "value"`);
      else this.wellKnown(body['value'], tn, joinPath(p, 'value'));
      return;
    }
    this.message(body, type, p);
  }

  /** Resolves a type URL to a loaded message, reporting why not. */
  resolveTypeUrl(typeUrl: string, p: string, requireGooglePrefix: boolean): protobuf.Type | null {
    if (requireGooglePrefix && !typeUrl.startsWith(TYPE_URL_PREFIX)) {
      this.error(p, `type URL ${JSON.stringify(typeUrl)} must have the form "type.googleapis.com/<full message name>"`);
      return null;
    }
    const slash = typeUrl.lastIndexOf('/');
    const name = typeUrl.slice(slash + 1);
    if (!name) {
      this.error(p, `type URL ${JSON.stringify(typeUrl)} names no message`);
      return null;
    }
    const type = lookupMessage(this.schema, name);
    if (type) return type;
    if (this.schema.unavailableTypes.has(name)) {
      this.error(p, `${name} is an Envoy type whose proto dependencies are not vendored here; it cannot be validated`);
      return null;
    }
    const hint = closest(name, this.schema.allMessageNames, Math.max(3, Math.floor(name.length / 8)));
    const why = hint
      ? ` (did you mean "${hint}"?)`
      : name.startsWith('envoy.')
        ? ' (not in the vendored Envoy API protos; contrib extensions such as kafka, mysql or golang are not vendored)'
        : '';
    this.error(p, `unknown type ${JSON.stringify(name)} in "@type"${why}`);
    return null;
  }

  // ── semantic rules ──

  private semanticMessage(name: string, value: Record<string, unknown>, p: string): void {
    switch (name) {
      case 'envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter':
        this.needsTypedConfig(value, p, 'HTTP filter');
        break;
      case 'envoy.config.listener.v3.Filter':
        this.needsTypedConfig(value, p, 'network filter');
        break;
      case 'envoy.config.listener.v3.ListenerFilter':
        this.needsTypedConfig(value, p, 'listener filter');
        break;
      case 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager':
        this.routerLast(value, p);
        break;
      case 'envoy.config.cluster.v3.Cluster': {
        const n = value['name'];
        if (typeof n === 'string') {
          const prev = this.clusterDefs.get(n);
          if (prev !== undefined) this.error(p, `duplicate cluster name "${n}" (also at ${prev})`);
          else this.clusterDefs.set(n, p);
        }
        break;
      }
      case 'envoy.config.listener.v3.Listener': {
        const sa = isPlainObject(value['address']) ? value['address']['socket_address'] ?? value['address']['socketAddress'] : undefined;
        let bind: string | undefined;
        if (isPlainObject(sa)) {
          const port = sa['port_value'] ?? sa['portValue'];
          const proto = String(sa['protocol'] ?? 'TCP').toUpperCase();
          if (port !== undefined) bind = `${proto} ${String(sa['address'])}:${String(port)}`;
        }
        this.listeners.push({ name: typeof value['name'] === 'string' ? value['name'] : undefined, bind, path: p });
        break;
      }
      case 'envoy.config.route.v3.RouteAction':
        this.clusterRef(value['cluster'], joinPath(p, 'cluster'), 'route');
        this.mirrorRefs(value, p);
        break;
      case 'envoy.config.route.v3.WeightedCluster.ClusterWeight':
        this.clusterRef(value['name'], joinPath(p, 'name'), 'weighted cluster');
        break;
      case 'envoy.config.core.v3.GrpcService.EnvoyGrpc':
        this.clusterRef(value['cluster_name'] ?? value['clusterName'], joinPath(p, 'cluster_name'), 'envoy_grpc service');
        break;
      case 'envoy.config.core.v3.HttpUri':
        this.clusterRef(value['cluster'], joinPath(p, 'cluster'), 'http_uri');
        break;
      default:
        break;
    }
  }

  private mirrorRefs(value: Record<string, unknown>, p: string): void {
    const mirrors = value['request_mirror_policies'] ?? value['requestMirrorPolicies'];
    if (!Array.isArray(mirrors)) return;
    mirrors.forEach((m, i) => {
      if (isPlainObject(m)) this.clusterRef(m['cluster'], `${joinPath(p, 'request_mirror_policies')}[${i}].cluster`, 'request mirror');
    });
  }

  private clusterRef(name: unknown, p: string, what: string): void {
    if (typeof name === 'string' && name !== '' && this.skipClusterRefs === 0) this.clusterRefs.push({ name, path: p, what });
  }

  /** TypedStruct carries a config as a Struct plus a type URL: validate it as that message. */
  private typedStruct(value: Record<string, unknown>, p: string): void {
    const url = value['type_url'] ?? value['typeUrl'];
    if (typeof url !== 'string' || url === '') {
      this.error(joinPath(p, 'type_url'), 'TypedStruct needs a type_url');
      return;
    }
    const type = this.resolveTypeUrl(url, joinPath(p, 'type_url'), false);
    if (!type) return;
    const inner = value['value'];
    this.message(inner === undefined || inner === null ? {} : inner, type, joinPath(p, 'value'));
  }

  /** The type a filter's typed_config selects (unwrapping TypedStruct); '' when none. */
  private configType(filter: Record<string, unknown>): string {
    const tc = filter['typed_config'] ?? filter['typedConfig'];
    if (!isPlainObject(tc) || typeof tc['@type'] !== 'string') return '';
    const t = tc['@type'].slice(tc['@type'].lastIndexOf('/') + 1);
    if (TYPED_STRUCTS.has(t)) {
      const inner = tc['type_url'] ?? tc['typeUrl'];
      return typeof inner === 'string' ? inner.slice(inner.lastIndexOf('/') + 1) : '';
    }
    return t;
  }

  private needsTypedConfig(filter: Record<string, unknown>, p: string, what: string): void {
    if ((filter['config_discovery'] ?? filter['configDiscovery']) != null) return;
    if (this.configType(filter) !== '') return;
    const name = typeof filter['name'] === 'string' ? filter['name'] : '?';
    const hasEmpty = (filter['typed_config'] ?? filter['typedConfig']) != null;
    this.error(
      p,
      `${what} "${name}" has ${hasEmpty ? 'a typed_config without "@type"' : 'no typed_config'}: since Envoy 1.22 ` +
        `extensions are found by the type URL of typed_config only, so Envoy fails with "Didn't find a registered ` +
        `implementation for '${name}' with type URL: ''". Set typed_config with an "@type" (or use config_discovery).`,
    );
  }

  private routerLast(hcm: Record<string, unknown>, p: string): void {
    const filters = hcm['http_filters'] ?? hcm['httpFilters'];
    if (!Array.isArray(filters) || filters.length === 0) return; // Envoy adds a router itself.
    const fp = joinPath(p, 'http_filters');
    filters.forEach((f, i) => {
      if (!isPlainObject(f)) return;
      const isRouter = this.configType(f) === ROUTER;
      const last = i === filters.length - 1;
      const discovered = (f['config_discovery'] ?? f['configDiscovery']) != null;
      if (isRouter && !last) this.error(`${fp}[${i}]`, 'the router filter is terminal and must be the last HTTP filter');
      if (last && !isRouter && !discovered && this.configType(f) !== '') {
        this.error(`${fp}[${i}]`, `the last HTTP filter must be the router (${ROUTER}); got ${this.configType(f)}`);
      }
    });
  }

  /** Checks that need the whole document (cluster references, duplicate binds). */
  finish(doc: Record<string, unknown>, rootType: string): void {
    if (!this.semantic) return;
    const seenNames = new Map<string, string>();
    const seenBinds = new Map<string, string>();
    for (const l of this.listeners) {
      if (l.name !== undefined) {
        const prev = seenNames.get(l.name);
        if (prev !== undefined) this.error(l.path, `duplicate listener name "${l.name}" (also at ${prev})`);
        else seenNames.set(l.name, l.path);
      }
      if (l.bind !== undefined) {
        const prev = seenBinds.get(l.bind);
        if (prev !== undefined) this.error(l.path, `listener binds ${l.bind}, already bound at ${prev}`);
        else seenBinds.set(l.bind, l.path);
      }
    }
    if (rootType !== BOOTSTRAP) return;
    const admin = isPlainObject(doc['admin']) ? doc['admin'] : undefined;
    const adminAddr = admin && isPlainObject(admin['address']) ? admin['address'] : undefined;
    const adminSa = adminAddr ? adminAddr['socket_address'] ?? adminAddr['socketAddress'] : undefined;
    if (isPlainObject(adminSa)) {
      const port = adminSa['port_value'] ?? adminSa['portValue'];
      const bind = `TCP ${String(adminSa['address'])}:${String(port)}`;
      const clash = seenBinds.get(bind);
      if (clash !== undefined) this.error('admin.address', `admin binds ${bind}, already bound by the listener at ${clash}`);
    }
    const dyn = isPlainObject(doc['dynamic_resources']) ? doc['dynamic_resources'] : isPlainObject(doc['dynamicResources']) ? doc['dynamicResources'] : undefined;
    const cds = dyn && (dyn['cds_config'] ?? dyn['cdsConfig'] ?? dyn['cds_resources_locator'] ?? dyn['cdsResourcesLocator']);
    if (cds != null) return; // clusters may arrive over CDS.
    for (const ref of this.clusterRefs) {
      if (!this.clusterDefs.has(ref.name)) {
        const hint = closest(ref.name, this.clusterDefs.keys(), 3);
        this.error(ref.path, `${ref.what} names cluster "${ref.name}", which is not a static cluster${hint ? ` (did you mean "${hint}"?)` : ''}`);
      }
    }
  }
}

// ───────────────────────────── public API ─────────────────────────────

/** Validates an already-parsed config object (YAML/JSON → plain JS). */
export function validateEnvoyConfig(doc: unknown, options: EnvoyValidateOptions = {}): EnvoyValidationResult {
  const schema = loadEnvoySchema();
  const rootType = options.rootType ?? BOOTSTRAP;
  const type = lookupMessage(schema, rootType);
  if (!type) throw new Error(`unknown root type ${rootType}`);
  const w = new Walker(schema, options.semantic ?? true);
  w.message(doc, type, '');
  if (isPlainObject(doc)) w.finish(doc, rootType);
  return { errors: w.errors, warnings: w.warnings };
}

/** Parses YAML (or JSON, which is YAML) the way Envoy would read a bootstrap file, then validates it. */
export function validateEnvoyYaml(text: string, options: EnvoyValidateOptions = {}): EnvoyValidationResult {
  // YAML 1.2 core schema, duplicate keys rejected, anchors/aliases allowed, no `<<` merge keys.
  const doc = parseDocument(text, { uniqueKeys: true, merge: false, prettyErrors: true });
  if (doc.errors.length > 0) {
    return {
      errors: doc.errors.map((e) => ({
        path: e.linePos ? `(yaml line ${e.linePos[0].line}, column ${e.linePos[0].col})` : '(yaml)',
        message: e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''),
      })),
      warnings: [],
    };
  }
  return validateEnvoyConfig(doc.toJS({ maxAliasCount: 1000 }), options);
}

export function validateEnvoyFile(file: string, options: EnvoyValidateOptions = {}): EnvoyValidationResult {
  return validateEnvoyYaml(fs.readFileSync(file, 'utf8'), options);
}

export function formatIssues(issues: Issue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join('\n');
}
