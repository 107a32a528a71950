// Envoy's OFFICIAL ext_authz protos (the copies @grpc/grpc-js-xds ships under deps/), for
// tests that must speak to keygate exactly as Envoy does: a gRPC client built from the
// official definitions, official encode/decode of CheckRequest/CheckResponse, a strict
// proto3-JSON reader for CheckRequest fixtures, and the fixture files themselves.
//
// Loader options, for both the proto-loader package definition (the gRPC client) and the
// protobufjs Root (encode/decode/reflection):
// - keepCase: true  — snake_case field names, the same shape src/grpc/protos.ts produces, so
//                     an object can be handed to either side unchanged.
// - longs: String   — int64 fields (HttpRequest.size, Timestamp.seconds) decode to decimal
//                     strings, as proto3 JSON writes them.
// - enums: String   — enum fields decode to their names.
// - bytes: (unset)  — bytes decode to Buffers (raw_value with non-UTF-8 bytes compares
//                     byte-exactly); encoding accepts Buffer/Uint8Array or base64 strings.
// - defaults: false, oneofs: true — as keygate: absent stays absent, oneof names are present.
// The well-known google.protobuf types come from protobufjs's bundled copies on both sides
// (note: their google.protobuf.Value members are camelCase — stringValue — even with keepCase).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';

export const REPO_DIR = resolve(__dirname, '..', '..');
export const OFFICIAL_DEPS_DIR = join(REPO_DIR, 'node_modules', '@grpc', 'grpc-js-xds', 'deps');
export const OFFICIAL_INCLUDE_DIRS: readonly string[] = ['envoy-api', 'googleapis', 'xds', 'protoc-gen-validate'].map(
  (d) => join(OFFICIAL_DEPS_DIR, d),
);
export const OFFICIAL_ENTRY_FILES: readonly string[] = ['envoy/service/auth/v3/external_auth.proto'];

export const CHECK_REQUEST = 'envoy.service.auth.v3.CheckRequest';
export const CHECK_RESPONSE = 'envoy.service.auth.v3.CheckResponse';

/** Conversion options for Type.toObject, matching the loader options above. */
export const TO_OBJECT_OPTIONS: protobuf.IConversionOptions = Object.freeze({
  longs: String,
  enums: String,
  defaults: false,
  arrays: false,
  objects: false,
  oneofs: true,
});

/** A plain decoded/encodable message object (keepCase shape). */
export type PlainMessage = { [key: string]: unknown };

/**
 * Loads .proto files into a fresh protobufjs Root, resolving imports only from includeDirs
 * (plus protobufjs's bundled google/protobuf/* copies). A missing import throws instead of
 * warning, so a broken include path cannot pass unnoticed.
 */
export function loadProtobufRoot(files: readonly string[], includeDirs: readonly string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (origin: string, target: string): string => {
    if (isAbsolute(target)) return target;
    for (const dir of includeDirs) {
      const full = join(dir, target);
      if (existsSync(full)) return full;
    }
    throw new Error(`${target} (imported by ${origin || 'the entry list'}) not found in ${includeDirs.join(', ')}`);
  };
  root.loadSync([...files], { keepCase: true });
  root.resolveAll();
  return root;
}

export interface OfficialProtos {
  /** protobufjs Root of the official definitions (keepCase). */
  root: protobuf.Root;
  packageDefinition: protoLoader.PackageDefinition;
  grpcObject: grpc.GrpcObject;
  /** Client for envoy.service.auth.v3.Authorization built from the official definitions. */
  AuthorizationClient: grpc.ServiceClientConstructor;
}

let official: OfficialProtos | undefined;

/** Loads the official protos once per test file. */
export function officialProtos(): OfficialProtos {
  if (official) return official;
  const root = loadProtobufRoot(OFFICIAL_ENTRY_FILES, OFFICIAL_INCLUDE_DIRS);
  const packageDefinition = protoLoader.loadSync([...OFFICIAL_ENTRY_FILES], {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: false,
    arrays: false,
    objects: false,
    oneofs: true,
    includeDirs: [...OFFICIAL_INCLUDE_DIRS],
  });
  const grpcObject = grpc.loadPackageDefinition(packageDefinition);
  const auth = (grpcObject.envoy as grpc.GrpcObject | undefined)?.service as grpc.GrpcObject | undefined;
  const v3 = (auth?.auth as grpc.GrpcObject | undefined)?.v3 as grpc.GrpcObject | undefined;
  const AuthorizationClient = v3?.Authorization as grpc.ServiceClientConstructor | undefined;
  if (typeof AuthorizationClient !== 'function') throw new Error('official Authorization service not found');
  official = { root, packageDefinition, grpcObject, AuthorizationClient };
  return official;
}

/** The official Authorization client constructor: new (target, credentials). */
export function OfficialAuthorizationClient(): grpc.ServiceClientConstructor {
  return officialProtos().AuthorizationClient;
}

/** A message type of the official definitions, e.g. 'envoy.service.auth.v3.CheckRequest'. */
export function officialType(fullName: string): protobuf.Type {
  return officialProtos().root.lookupType(fullName);
}

function encodeWith(type: protobuf.Type, object: PlainMessage): Buffer {
  const message = type.fromObject(object);
  const problem = type.verify(message);
  if (problem) throw new Error(`${type.fullName}: ${problem}`);
  return Buffer.from(type.encode(message).finish());
}

function decodeWith(type: protobuf.Type, bytes: Uint8Array): PlainMessage {
  return type.toObject(type.decode(Buffer.from(bytes)), TO_OBJECT_OPTIONS) as PlainMessage;
}

export function encodeOfficialCheckRequest(object: PlainMessage): Buffer {
  return encodeWith(officialType(CHECK_REQUEST), object);
}

export function decodeOfficialCheckRequest(bytes: Uint8Array): PlainMessage {
  return decodeWith(officialType(CHECK_REQUEST), bytes);
}

export function encodeOfficialCheckResponse(object: PlainMessage): Buffer {
  return encodeWith(officialType(CHECK_RESPONSE), object);
}

export function decodeOfficialCheckResponse(bytes: Uint8Array): PlainMessage {
  return decodeWith(officialType(CHECK_RESPONSE), bytes);
}

// ---------------------------------------------------------------------------------------
// proto3 JSON → message object.
//
// A strict reader, like the one Envoy's own JSON parsing uses: field names in lowerCamelCase
// or as written in the .proto, unknown fields rejected, bytes in base64 (standard or URL-safe),
// 64-bit integers as strings or numbers, enums by name or number, and the JSON forms of the
// well-known types (Timestamp "…Z", Duration "1.5s", Struct/Value/ListValue as plain JSON,
// wrappers as bare values, Any with "@type"). It is written here rather than relying on
// protobufjs's fromObject, which silently drops unknown fields and knows neither Timestamp
// strings nor the Struct JSON form.

/** proto3 JSON name of a field: lowerCamelCase of the .proto name. */
export function jsonName(protoName: string): string {
  return protoName.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * Converts a proto3-JSON CheckRequest (e.g. a file under test/fixtures/check-requests) into an
 * official CheckRequest object (keepCase, bytes as Buffer, int64 as strings), checked with the
 * official definitions. Throws, naming the JSON path, on anything the official protos reject.
 */
export function checkRequestFromProto3Json(json: unknown): PlainMessage {
  return messageFromProto3Json(CHECK_REQUEST, json);
}

/** The same for any official message type. */
export function messageFromProto3Json(fullName: string, json: unknown): PlainMessage {
  const type = officialType(fullName);
  const object = readMessage(type, json, '$');
  // Round-trip through the official type: verifies and normalises (e.g. enum names).
  return decodeWith(type, encodeWith(type, object));
}

/** Official wire bytes of a proto3-JSON CheckRequest. */
export function checkRequestBytesFromProto3Json(json: unknown): Buffer {
  return encodeOfficialCheckRequest(checkRequestFromProto3Json(json));
}

const WRAPPERS: Record<string, string> = {
  '.google.protobuf.DoubleValue': 'double',
  '.google.protobuf.FloatValue': 'float',
  '.google.protobuf.Int64Value': 'int64',
  '.google.protobuf.UInt64Value': 'uint64',
  '.google.protobuf.Int32Value': 'int32',
  '.google.protobuf.UInt32Value': 'uint32',
  '.google.protobuf.BoolValue': 'bool',
  '.google.protobuf.StringValue': 'string',
  '.google.protobuf.BytesValue': 'bytes',
};

function fail(path: string, message: string): never {
  throw new Error(`proto3 JSON ${path}: ${message}`);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value);
}

function readMessage(type: protobuf.Type, json: unknown, path: string): PlainMessage {
  const special = readWellKnown(type, json, path);
  if (special !== undefined) return special;
  if (!isPlainObject(json)) fail(path, `${type.fullName.slice(1)} must be a JSON object`);
  const byName = new Map<string, protobuf.Field>();
  for (const field of type.fieldsArray) {
    byName.set(field.name, field);
    byName.set(jsonName(field.name), field);
  }
  const out: PlainMessage = {};
  const oneofSeen = new Map<string, string>();
  for (const [key, value] of Object.entries(json)) {
    const field = byName.get(key);
    if (!field) fail(`${path}.${key}`, `no field "${key}" in ${type.fullName.slice(1)}`);
    if (field.name in out) fail(`${path}.${key}`, `field ${field.name} given twice`);
    const fieldPath = `${path}.${key}`;
    if (value === null && field.resolvedType?.fullName !== '.google.protobuf.Value') continue;
    if (field.partOf) {
      const other = oneofSeen.get(field.partOf.name);
      if (other) fail(fieldPath, `oneof ${field.partOf.name} already set by ${other}`);
      oneofSeen.set(field.partOf.name, field.name);
    }
    out[field.name] = readField(field, value, fieldPath);
  }
  return out;
}

function readField(field: protobuf.Field, value: unknown, path: string): unknown {
  if (field instanceof protobuf.MapField) {
    if (!isPlainObject(value)) fail(path, 'a map must be a JSON object');
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      readScalar(field.keyType, k, `${path}[key ${JSON.stringify(k)}]`, true);
      out[k] = readSingle(field, v, `${path}.${k}`);
    }
    return out;
  }
  if (field.repeated) {
    if (!Array.isArray(value)) fail(path, 'a repeated field must be a JSON array');
    return value.map((v, i) => readSingle(field, v, `${path}[${i}]`));
  }
  return readSingle(field, value, path);
}

function readSingle(field: protobuf.Field, value: unknown, path: string): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return readMessage(resolved, value, path);
  if (resolved instanceof protobuf.Enum) return readEnum(resolved, value, path);
  return readScalar(field.type, value, path, false);
}

function readEnum(type: protobuf.Enum, value: unknown, path: string): string | number {
  if (typeof value === 'string') {
    if (!(value in type.values)) fail(path, `${JSON.stringify(value)} is not a value of ${type.fullName.slice(1)}`);
    return value;
  }
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  return fail(path, `enum ${type.fullName.slice(1)} needs a name or an integer`);
}

const INT32 = new Set(['int32', 'sint32', 'sfixed32', 'uint32', 'fixed32']);
const INT64 = new Set(['int64', 'sint64', 'sfixed64', 'uint64', 'fixed64']);

function readScalar(kind: string, value: unknown, path: string, isMapKey: boolean): unknown {
  if (kind === 'string') {
    if (typeof value !== 'string') fail(path, 'expected a string');
    return value;
  }
  if (kind === 'bool') {
    if (isMapKey && (value === 'true' || value === 'false')) return value === 'true';
    if (typeof value !== 'boolean') fail(path, 'expected true or false');
    return value;
  }
  if (kind === 'bytes') {
    if (typeof value !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) fail(path, 'expected base64');
    return Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  }
  if (INT32.has(kind) || INT64.has(kind)) {
    const text = typeof value === 'number' ? String(value) : value;
    if (typeof text !== 'string' || !/^-?\d+$/.test(text)) fail(path, `expected an integer (${kind})`);
    const unsigned = kind.startsWith('u') || kind.startsWith('fixed');
    if (unsigned && text.startsWith('-')) fail(path, `${kind} cannot be negative`);
    if (INT64.has(kind)) return text;
    const n = Number(text);
    const [min, max] = unsigned ? [0, 0xffffffff] : [-0x80000000, 0x7fffffff];
    if (n < min || n > max) fail(path, `${text} is out of range for ${kind}`);
    return n;
  }
  if (kind === 'double' || kind === 'float') {
    if (typeof value === 'number') return value;
    if (value === 'NaN') return NaN;
    if (value === 'Infinity') return Infinity;
    if (value === '-Infinity') return -Infinity;
    if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
    return fail(path, `expected a number (${kind})`);
  }
  return fail(path, `unsupported scalar type ${kind}`);
}

/** JSON forms of google.protobuf types; undefined when `type` is an ordinary message. */
function readWellKnown(type: protobuf.Type, json: unknown, path: string): PlainMessage | undefined {
  const name = type.fullName;
  const wrapped = WRAPPERS[name];
  if (wrapped) return { value: readScalar(wrapped, json, path, false) };
  switch (name) {
    case '.google.protobuf.Timestamp':
      return readTimestamp(json, path);
    case '.google.protobuf.Duration':
      return readDuration(json, path);
    case '.google.protobuf.Struct':
      if (!isPlainObject(json)) fail(path, 'a Struct must be a JSON object');
      return {
        fields: Object.fromEntries(Object.entries(json).map(([k, v]) => [k, readValue(v, `${path}.${k}`)])),
      };
    case '.google.protobuf.Value':
      return readValue(json, path);
    case '.google.protobuf.ListValue':
      if (!Array.isArray(json)) fail(path, 'a ListValue must be a JSON array');
      return { values: json.map((v, i) => readValue(v, `${path}[${i}]`)) };
    case '.google.protobuf.Empty':
      if (!isPlainObject(json) || Object.keys(json).length) fail(path, 'Empty must be {}');
      return {};
    case '.google.protobuf.Any':
      return readAny(type, json, path);
    case '.google.protobuf.FieldMask':
      if (typeof json !== 'string') fail(path, 'a FieldMask must be a string');
      return { paths: json === '' ? [] : json.split(',').map((p) => p.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)) };
    default:
      return undefined;
  }
}

/** google.protobuf.Value; camelCase members, as in protobufjs's bundled struct.proto. */
function readValue(json: unknown, path: string): PlainMessage {
  if (json === null) return { nullValue: 'NULL_VALUE' };
  if (typeof json === 'boolean') return { boolValue: json };
  if (typeof json === 'number') return { numberValue: json };
  if (typeof json === 'string') return { stringValue: json };
  if (Array.isArray(json)) return { listValue: { values: json.map((v, i) => readValue(v, `${path}[${i}]`)) } };
  if (isPlainObject(json)) {
    return {
      structValue: { fields: Object.fromEntries(Object.entries(json).map(([k, v]) => [k, readValue(v, `${path}.${k}`)])) },
    };
  }
  return fail(path, 'not a JSON value');
}

function readTimestamp(json: unknown, path: string): PlainMessage {
  const m = typeof json === 'string' ? /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(json) : null;
  if (!m) return fail(path, 'a Timestamp must be an RFC 3339 string such as 2026-01-01T00:00:00Z');
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) fail(path, 'invalid date');
  return { seconds: String(Math.floor(ms / 1000)), nanos: Number((m[2] ?? '').padEnd(9, '0')) };
}

function readDuration(json: unknown, path: string): PlainMessage {
  const m = typeof json === 'string' ? /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(json) : null;
  if (!m) return fail(path, 'a Duration must be a string such as "1.5s"');
  const sign = m[1] ? -1 : 1;
  const nanos = Number((m[3] ?? '').padEnd(9, '0'));
  return { seconds: `${m[1] ?? ''}${m[2]}`, nanos: sign * nanos };
}

const WELL_KNOWN_JSON = new Set([
  ...Object.keys(WRAPPERS),
  '.google.protobuf.Timestamp',
  '.google.protobuf.Duration',
  '.google.protobuf.Struct',
  '.google.protobuf.Value',
  '.google.protobuf.ListValue',
  '.google.protobuf.FieldMask',
  '.google.protobuf.Empty',
  '.google.protobuf.Any',
]);

/** {"@type": URL, ...fields} or, for a well-known inner type, {"@type": URL, "value": JSON}. */
function readAny(anyType: protobuf.Type, json: unknown, path: string): PlainMessage {
  if (!isPlainObject(json) || typeof json['@type'] !== 'string') return fail(path, 'an Any needs "@type"');
  const typeUrl = json['@type'];
  const inner = anyType.root.lookupType(typeUrl.slice(typeUrl.lastIndexOf('/') + 1));
  const rest = Object.fromEntries(Object.entries(json).filter(([k]) => k !== '@type'));
  const object = WELL_KNOWN_JSON.has(inner.fullName)
    ? readMessage(inner, rest.value, `${path}.value`)
    : readMessage(inner, rest, path);
  return { type_url: typeUrl, value: encodeWith(inner, object) };
}

// ---------------------------------------------------------------------------------------
// Fixture files (test/fixtures/check-requests/*.json, proto3 JSON).

export const CHECK_REQUEST_FIXTURES_DIR = join(REPO_DIR, 'test', 'fixtures', 'check-requests');
/** The stand-in for a real key in fixtures; see withApiKey. */
export const KEY_PLACEHOLDER = 'kg_PLACEHOLDER';

export function checkRequestFixtureNames(): string[] {
  return readdirSync(CHECK_REQUEST_FIXTURES_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort();
}

/** The parsed JSON of a fixture, e.g. readCheckRequestFixture('x-api-key-route-settings.json'). */
export function readCheckRequestFixture(name: string): unknown {
  return JSON.parse(readFileSync(join(CHECK_REQUEST_FIXTURES_DIR, name), 'utf8')) as unknown;
}

/**
 * Replaces the placeholder with a real key everywhere in a proto3-JSON fixture: in string
 * values, and inside base64 `rawValue`/`raw_value` header values (decoded, replaced, re-encoded,
 * other bytes kept exactly).
 */
export function withApiKey(json: unknown, key: string, placeholder: string = KEY_PLACEHOLDER): unknown {
  const walk = (value: unknown, fieldName: string | undefined): unknown => {
    if (typeof value === 'string') {
      if (fieldName === 'rawValue' || fieldName === 'raw_value') {
        const bytes = Buffer.from(value, 'base64').toString('latin1');
        return Buffer.from(bytes.split(placeholder).join(key), 'latin1').toString('base64');
      }
      return value.split(placeholder).join(key);
    }
    if (Array.isArray(value)) return value.map((v) => walk(v, fieldName));
    if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v, k)]));
    return value;
  };
  return walk(json, undefined);
}
