// Loads keygate's own protobuf definitions (protos/: ext_authz v3 and grpc.health.v1) with
// @grpc/proto-loader, and describes, as TypeScript types, the plain objects those
// definitions produce and accept: the CheckRequest keygate reads, the CheckResponse it writes.
//
// This is the only module that loads protos; everything else asks it.
//
// Loader options (PROTO_LOADER_OPTIONS), and why:
// - keepCase: true   — field names stay as in the .proto (snake_case: context_extensions,
//                      header_map, raw_value, ok_response). One spelling everywhere: the
//                      .proto files, Envoy's docs, these types and the code that reads them.
// - longs: String    — int64/uint64 (HttpRequest.size, Timestamp.seconds) decode to decimal
//                      strings, as in proto3 JSON, instead of Long objects or lossy numbers.
// - enums: String    — decoded enums are names ('TCP', 'OVERWRITE_IF_EXISTS_OR_ADD',
//                      'Unauthorized'), which read well in logs and test failures. Values we
//                      write may be names or numbers: encoding accepts both. An enum number
//                      our protos do not declare decodes as the number.
// - bytes: (unset)   — bytes fields (HeaderValue.raw_value, HttpRequest.raw_body) decode to
//                      Node Buffers, not base64 strings; raw header values keep non-UTF-8
//                      bytes. The Buffer may share memory with the received message; copy it
//                      before keeping it past the call.
// - defaults: false  — absent fields stay absent (undefined); proto3 does not send default
//                      values, so '' and 0 would be indistinguishable from "not sent" anyway.
//                      Absent repeated fields and maps are undefined too (arrays/objects false).
// - oneofs: true     — decoded messages also carry the name of the oneof member that is set,
//                      e.g. response.http_response === 'ok_response',
//                      address.address === 'socket_address'.
// Well-known types (google/protobuf/struct, timestamp, any, wrappers) are not in protos/:
// protobufjs resolves them from its bundled definitions — and ignores any copy on the include
// path. Those bundled definitions spell google.protobuf.Value's fields in camelCase
// (stringValue, numberValue, boolValue, nullValue, structValue, listValue) whatever keepCase
// says; a snake_case string_value is silently dropped when encoding. Use toStruct/fromStruct.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const AUTHORIZATION_SERVICE = 'envoy.service.auth.v3.Authorization';
export const HEALTH_SERVICE = 'grpc.health.v1.Health';

/** The entry files, relative to PROTOS_DIR; everything else is reached through imports. */
export const PROTO_FILES: readonly string[] = [
  'envoy/service/auth/v3/external_auth.proto',
  'grpc/health/v1/health.proto',
];

/** Absolute path of protos/, from src/grpc (ts, vitest) or dist/src/grpc (compiled). */
export const PROTOS_DIR: string = findProtosDir();

function findProtosDir(): string {
  const marker = 'envoy/service/auth/v3/external_auth.proto';
  const candidates = [resolve(__dirname, '..', '..', 'protos'), resolve(__dirname, '..', '..', '..', 'protos')];
  for (const dir of candidates) {
    if (existsSync(resolve(dir, marker))) return dir;
  }
  throw new Error(`keygate protos not found: looked for ${marker} under ${candidates.join(' and ')}`);
}

export const PROTO_LOADER_OPTIONS: Readonly<protoLoader.Options> = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  arrays: false,
  objects: false,
  oneofs: true,
  includeDirs: [PROTOS_DIR],
});

export interface KeygateProtos {
  /** proto-loader's output: per full name, the service/message definition (serializers included). */
  packageDefinition: protoLoader.PackageDefinition;
  /** grpc.loadPackageDefinition(packageDefinition): nested by package, e.g. grpcObject.envoy.service.auth.v3. */
  grpcObject: grpc.GrpcObject;
  /** For server.addService(authorizationService, { Check }). */
  authorizationService: grpc.ServiceDefinition;
  /** For server.addService(healthService, { Check, Watch }). */
  healthService: grpc.ServiceDefinition;
  /** Client constructors (keygate-admin check, tests). */
  AuthorizationClient: grpc.ServiceClientConstructor;
  HealthClient: grpc.ServiceClientConstructor;
}

let loaded: KeygateProtos | undefined;

/** Loads protos/ once (later calls return the same objects). Throws if a file is missing or invalid. */
export function loadKeygateProtos(): KeygateProtos {
  if (loaded) return loaded;
  const packageDefinition = protoLoader.loadSync([...PROTO_FILES], { ...PROTO_LOADER_OPTIONS });
  const grpcObject = grpc.loadPackageDefinition(packageDefinition);
  const AuthorizationClient = lookupService(grpcObject, AUTHORIZATION_SERVICE);
  const HealthClient = lookupService(grpcObject, HEALTH_SERVICE);
  loaded = {
    packageDefinition,
    grpcObject,
    authorizationService: AuthorizationClient.service,
    healthService: HealthClient.service,
    AuthorizationClient,
    HealthClient,
  };
  return loaded;
}

function lookupService(root: grpc.GrpcObject, fullName: string): grpc.ServiceClientConstructor {
  let node: unknown = root;
  for (const part of fullName.split('.')) {
    const container = (node !== null && typeof node === 'object') || typeof node === 'function';
    node = container ? (node as Record<string, unknown>)[part] : undefined;
  }
  if (typeof node !== 'function' || !('service' in node)) {
    throw new Error(`service ${fullName} not found in keygate protos`);
  }
  return node as grpc.ServiceClientConstructor;
}

// ---------------------------------------------------------------------------------------
// Plain-object shapes (keepCase, longs/enums as strings, bytes as Buffer, defaults absent).
// Decoded objects may carry more than declared here; everything is optional on the read
// side because Envoy omits whatever is unset.

// google.protobuf.Struct / Value / ListValue / Timestamp / Any / BoolValue

export interface StructObject {
  fields?: Record<string, ValueObject>;
}

/**
 * google.protobuf.Value. camelCase, unlike every other field here: protobufjs's bundled
 * struct.proto names them so and keepCase does not apply to it. Exactly one member is meant
 * to be set; `kind` names it on decoded objects.
 */
export interface ValueObject {
  nullValue?: 'NULL_VALUE' | 0;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: StructObject;
  listValue?: ListValueObject;
  kind?: 'nullValue' | 'numberValue' | 'stringValue' | 'boolValue' | 'structValue' | 'listValue';
}

export interface ListValueObject {
  values?: ValueObject[];
}

export interface TimestampObject {
  /** Seconds since the Unix epoch, as a decimal string (longs: String). */
  seconds?: string;
  nanos?: number;
}

export interface AnyObject {
  type_url?: string;
  value?: Buffer;
}

export interface BoolValueObject {
  value?: boolean;
}

// envoy.config.core.v3

export interface HeaderValueObject {
  key?: string;
  /** Set in headers keygate writes, and in most headers Envoy sends outside header_map. */
  value?: string;
  /** Set (instead of value) in AttributeContext.HttpRequest.header_map; may hold non-UTF-8 bytes. */
  raw_value?: Buffer;
}

export interface HeaderMapObject {
  /** One entry per header line; names repeat when the client repeated them. */
  headers?: HeaderValueObject[];
}

export type HeaderAppendAction =
  | 'APPEND_IF_EXISTS_OR_ADD'
  | 'ADD_IF_ABSENT'
  | 'OVERWRITE_IF_EXISTS_OR_ADD'
  | 'OVERWRITE_IF_EXISTS';

export interface HeaderValueOptionObject {
  header: HeaderValueObject;
  /** Deprecated upstream; use append_action. Envoy treats it as false for ext_authz. */
  append?: BoolValueObject;
  /** Defaults to APPEND_IF_EXISTS_OR_ADD; numbers 0..3 are accepted too. */
  append_action?: HeaderAppendAction | 0 | 1 | 2 | 3;
  /** Envoy drops empty-valued headers unless this is true. */
  keep_empty_value?: boolean;
}

export interface QueryParameterObject {
  key: string;
  value?: string;
}

export interface MetadataObject {
  filter_metadata?: Record<string, StructObject>;
  typed_filter_metadata?: Record<string, AnyObject>;
}

export interface SocketAddressObject {
  protocol?: 'TCP' | 'UDP';
  /** The IP (keygate: the client address for CIDR allowlists). */
  address?: string;
  port_value?: number;
  named_port?: string;
  resolver_name?: string;
  ipv4_compat?: boolean;
  port_specifier?: 'port_value' | 'named_port';
}

export interface PipeObject {
  path?: string;
  mode?: number;
}

export interface EnvoyInternalAddressObject {
  server_listener_name?: string;
  endpoint_id?: string;
  address_name_specifier?: 'server_listener_name';
}

export interface AddressObject {
  socket_address?: SocketAddressObject;
  pipe?: PipeObject;
  envoy_internal_address?: EnvoyInternalAddressObject;
  address?: 'socket_address' | 'pipe' | 'envoy_internal_address';
}

// envoy.service.auth.v3 — what keygate reads

export interface PeerObject {
  address?: AddressObject;
  service?: string;
  labels?: Record<string, string>;
  principal?: string;
  certificate?: string;
}

export interface HttpRequestObject {
  id?: string;
  method?: string;
  /** Lower-case names, repeated headers joined with ','. Absent when Envoy sends header_map. */
  headers?: Record<string, string>;
  /** Present instead of headers when Envoy runs with encode_raw_headers: true. */
  header_map?: HeaderMapObject;
  /** Path plus query string, as received (not decoded). */
  path?: string;
  host?: string;
  scheme?: string;
  query?: string;
  fragment?: string;
  /** Decimal string (int64); "-1" when unknown. */
  size?: string;
  protocol?: string;
  body?: string;
  raw_body?: Buffer;
}

export interface RequestObject {
  time?: TimestampObject;
  http?: HttpRequestObject;
}

export interface TlsSessionObject {
  sni?: string;
}

export interface AttributeContextObject {
  source?: PeerObject;
  destination?: PeerObject;
  request?: RequestObject;
  /** Per-route settings; keygate reads 'keygate.scope' and 'keygate.cost'. */
  context_extensions?: Record<string, string>;
  metadata_context?: MetadataObject;
  route_metadata_context?: MetadataObject;
  tls_session?: TlsSessionObject;
}

/** A decoded envoy.service.auth.v3.CheckRequest. */
export interface CheckRequestObject {
  attributes?: AttributeContextObject;
}

// envoy.service.auth.v3 — what keygate writes

/** envoy.type.v3.StatusCode names (the enum is CamelCase upstream). */
export type HttpStatusCodeName =
  | 'Empty' | 'Continue' | 'OK' | 'Created' | 'Accepted' | 'NonAuthoritativeInformation'
  | 'NoContent' | 'ResetContent' | 'PartialContent' | 'MultiStatus' | 'AlreadyReported'
  | 'IMUsed' | 'MultipleChoices' | 'MovedPermanently' | 'Found' | 'SeeOther' | 'NotModified'
  | 'UseProxy' | 'TemporaryRedirect' | 'PermanentRedirect' | 'BadRequest' | 'Unauthorized'
  | 'PaymentRequired' | 'Forbidden' | 'NotFound' | 'MethodNotAllowed' | 'NotAcceptable'
  | 'ProxyAuthenticationRequired' | 'RequestTimeout' | 'Conflict' | 'Gone' | 'LengthRequired'
  | 'PreconditionFailed' | 'PayloadTooLarge' | 'URITooLong' | 'UnsupportedMediaType'
  | 'RangeNotSatisfiable' | 'ExpectationFailed' | 'MisdirectedRequest' | 'UnprocessableEntity'
  | 'Locked' | 'FailedDependency' | 'UpgradeRequired' | 'PreconditionRequired'
  | 'TooManyRequests' | 'RequestHeaderFieldsTooLarge' | 'InternalServerError' | 'NotImplemented'
  | 'BadGateway' | 'ServiceUnavailable' | 'GatewayTimeout' | 'HTTPVersionNotSupported'
  | 'VariantAlsoNegotiates' | 'InsufficientStorage' | 'LoopDetected' | 'NotExtended'
  | 'NetworkAuthenticationRequired';

export interface HttpStatusObject {
  /** A number (401) or the enum name ('Unauthorized'); decoded objects carry the name. */
  code: number | HttpStatusCodeName;
}

/** google.rpc.Status. code 0 allows; keygate denies with 16, 7 or 8. */
export interface RpcStatusObject {
  code: number;
  message?: string;
  details?: AnyObject[];
}

export interface DeniedHttpResponseObject {
  status?: HttpStatusObject;
  headers?: HeaderValueOptionObject[];
  body?: string;
}

export interface OkHttpResponseObject {
  /** Headers set on the upstream request. */
  headers?: HeaderValueOptionObject[];
  /** Request header names removed before the request goes upstream. */
  headers_to_remove?: string[];
  /** Deprecated upstream (overrides CheckResponse.dynamic_metadata when set); do not use. */
  dynamic_metadata?: StructObject;
  /** Headers added to the response the client receives. */
  response_headers_to_add?: HeaderValueOptionObject[];
  query_parameters_to_set?: QueryParameterObject[];
  /** Query parameter names (case-sensitive) removed before the request goes upstream. */
  query_parameters_to_remove?: string[];
}

interface CheckResponseCommon {
  status: RpcStatusObject;
  /** Emitted by Envoy as the ext_authz filter's dynamic metadata (access logs). */
  dynamic_metadata?: StructObject;
  /** Set on decoded objects (oneofs: true); ignored when encoding. */
  http_response?: 'denied_response' | 'ok_response';
}

/**
 * envoy.service.auth.v3.CheckResponse. The http_response oneof holds at most one of
 * ok_response / denied_response; the union makes setting both a type error (the encoder
 * would otherwise write both and Envoy would keep whichever comes last).
 */
export type CheckResponseObject = CheckResponseCommon &
  (
    | { ok_response: OkHttpResponseObject; denied_response?: undefined }
    | { denied_response: DeniedHttpResponseObject; ok_response?: undefined }
    | { ok_response?: undefined; denied_response?: undefined }
  );

// grpc.health.v1

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

export interface HealthCheckRequestObject {
  service?: string;
}

export interface HealthCheckResponseObject {
  status: ServingStatus;
}

// ---------------------------------------------------------------------------------------
// google.protobuf.Struct conversion (dynamic_metadata is a Struct).

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * A plain JSON object as a Struct object for encoding (e.g. CheckResponse.dynamic_metadata).
 * Numbers become doubles (integers above 2^53 lose precision, as in any proto3 Struct).
 */
export function toStruct(json: { readonly [key: string]: JsonValue }): StructObject {
  const fields: Record<string, ValueObject> = {};
  for (const [key, value] of Object.entries(json)) fields[key] = toValue(value);
  return { fields };
}

function toValue(value: JsonValue): ValueObject {
  if (value === null) return { nullValue: 'NULL_VALUE' };
  if (typeof value === 'boolean') return { boolValue: value };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'string') return { stringValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(toValue) } };
  return { structValue: toStruct(value) };
}

/** The inverse of toStruct, for a decoded Struct object. */
export function fromStruct(struct: StructObject | undefined): { [key: string]: JsonValue } {
  const out: { [key: string]: JsonValue } = {};
  for (const [key, value] of Object.entries(struct?.fields ?? {})) out[key] = fromValue(value);
  return out;
}

function fromValue(value: ValueObject): JsonValue {
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.numberValue !== undefined) return value.numberValue;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.structValue !== undefined) return fromStruct(value.structValue);
  if (value.listValue !== undefined) return (value.listValue.values ?? []).map(fromValue);
  return null;
}
