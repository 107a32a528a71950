// Wire compatibility of keygate's protos/ with Envoy's official ext_authz v3 protos: the same
// names, numbers, types and labels (reflection), the same bytes both ways (round trips), a real
// gRPC call from a client built on the official definitions, and the CheckRequest fixtures.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import * as protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AUTHORIZATION_SERVICE,
  PROTO_FILES,
  PROTOS_DIR,
  fromStruct,
  loadKeygateProtos,
  toStruct,
  type CheckRequestObject,
  type CheckResponseObject,
  type HeaderValueObject,
} from '../../src/grpc/protos';
import {
  KEY_PLACEHOLDER,
  OfficialAuthorizationClient,
  checkRequestBytesFromProto3Json,
  checkRequestFixtureNames,
  checkRequestFromProto3Json,
  decodeOfficialCheckRequest,
  decodeOfficialCheckResponse,
  encodeOfficialCheckRequest,
  encodeOfficialCheckResponse,
  loadProtobufRoot,
  officialProtos,
  readCheckRequestFixture,
  withApiKey,
  type PlainMessage,
} from '../helpers/official-protos';

// ---------------------------------------------------------------------------------------
// Reflection: compare two protobufjs roots.

/** Packages whose definitions come from protobufjs's bundled copies on both sides. */
const BUNDLED_PREFIX = 'google.protobuf.';

/**
 * What an upstream type may be replaced with in our protos without changing what we read:
 * same wire type and every upstream value representable. Anything else must match exactly.
 */
const ALLOWED_WIDENINGS: Record<string, readonly string[]> = {
  int32: ['int64'],
  uint32: ['uint64', 'int64'],
  sint32: ['sint64'],
  string: ['bytes'],
  enum: ['int32', 'int64'],
};

interface Comparison {
  /** Differences that break the wire contract. Must be empty. */
  mismatches: string[];
  /** Upstream fields / enum values / methods we do not declare (decoded as unknown and dropped). */
  omissions: string[];
  /** Full names of everything compared. */
  compared: string[];
  fieldCount: number;
}

function strip(fullName: string): string {
  return fullName.startsWith('.') ? fullName.slice(1) : fullName;
}

function allNested(ns: protobuf.NamespaceBase): protobuf.ReflectionObject[] {
  const out: protobuf.ReflectionObject[] = [];
  for (const obj of ns.nestedArray) {
    out.push(obj);
    if (obj instanceof protobuf.Namespace || obj instanceof protobuf.Type || obj instanceof protobuf.Service) {
      out.push(...allNested(obj));
    }
  }
  return out;
}

function describeType(field: protobuf.Field): string {
  if (field.resolvedType instanceof protobuf.Enum) return 'enum';
  if (field.resolvedType instanceof protobuf.Type) return 'message';
  return field.type;
}

function fieldLabel(field: protobuf.Field): string {
  if (field instanceof protobuf.MapField) return `map<${field.keyType}, …>`;
  if (field.repeated) return 'repeated';
  if (field.options?.proto3_optional) return 'optional';
  return 'singular';
}

function fieldTypeName(field: protobuf.Field): string {
  return field.resolvedType ? strip(field.resolvedType.fullName) : field.type;
}

function compareField(where: string, ours: protobuf.Field, theirs: protobuf.Field, out: string[]): void {
  if (ours.id !== theirs.id) out.push(`${where}: number ${ours.id}, upstream ${theirs.id}`);
  if (fieldLabel(ours) !== fieldLabel(theirs)) {
    out.push(`${where}: label ${fieldLabel(ours)}, upstream ${fieldLabel(theirs)}`);
  }
  const oursOneof = ours.partOf?.name ?? '(none)';
  const theirsOneof = theirs.partOf?.name ?? '(none)';
  if (oursOneof !== theirsOneof) out.push(`${where}: oneof ${oursOneof}, upstream ${theirsOneof}`);
  const oursName = fieldTypeName(ours);
  const theirsName = fieldTypeName(theirs);
  if (oursName !== theirsName) {
    const widened = ALLOWED_WIDENINGS[describeType(theirs) === 'enum' ? 'enum' : theirsName] ?? [];
    if (!(ours.resolvedType === null && widened.includes(ours.type))) {
      out.push(`${where}: type ${oursName}, upstream ${theirsName}`);
    }
  }
}

function compareRoots(ours: protobuf.Root, official: protobuf.Root): Comparison {
  const result: Comparison = { mismatches: [], omissions: [], compared: [], fieldCount: 0 };
  for (const obj of allNested(ours)) {
    const name = strip(obj.fullName);
    if (name.startsWith(BUNDLED_PREFIX) || obj instanceof protobuf.Method || obj instanceof protobuf.Field) continue;
    if (!(obj instanceof protobuf.Type || obj instanceof protobuf.Enum || obj instanceof protobuf.Service)) continue;
    const theirs = official.lookup(obj.fullName);
    if (!theirs) {
      result.mismatches.push(`${name}: not defined upstream`);
      continue;
    }
    if (theirs.constructor !== obj.constructor) {
      result.mismatches.push(`${name}: a ${obj.constructor.name} here, a ${theirs.constructor.name} upstream`);
      continue;
    }
    result.compared.push(name);
    if (obj instanceof protobuf.Type && theirs instanceof protobuf.Type) {
      for (const field of obj.fieldsArray) {
        result.fieldCount += 1;
        const where = `${name}.${field.name}`;
        const byName = theirs.fields[field.name];
        if (byName) {
          compareField(where, field, byName, result.mismatches);
        } else {
          result.mismatches.push(`${where}: no field of that name upstream`);
        }
        const byNumber = theirs.fieldsById[field.id];
        if (byNumber && byNumber.name !== field.name) {
          result.mismatches.push(`${where}: number ${field.id} is ${byNumber.name} upstream`);
        }
      }
      for (const theirField of theirs.fieldsArray) {
        if (!obj.fields[theirField.name]) result.omissions.push(`${name}.${theirField.name} = ${theirField.id}`);
      }
    } else if (obj instanceof protobuf.Enum && theirs instanceof protobuf.Enum) {
      for (const [valueName, number] of Object.entries(obj.values)) {
        const upstream = theirs.values[valueName];
        if (upstream === undefined) {
          result.mismatches.push(`${name}.${valueName}: no enum value of that name upstream`);
        } else if (upstream !== number) {
          result.mismatches.push(`${name}.${valueName}: number ${number}, upstream ${upstream}`);
        }
      }
      for (const [valueName, number] of Object.entries(theirs.values)) {
        if (!(valueName in obj.values)) result.omissions.push(`${name}.${valueName} = ${number}`);
      }
    } else if (obj instanceof protobuf.Service && theirs instanceof protobuf.Service) {
      for (const method of obj.methodsArray) {
        const where = `${name}.${method.name}`;
        const upstream = theirs.methods[method.name];
        if (!upstream) {
          result.mismatches.push(`${where}: no method of that name upstream`);
          continue;
        }
        const shape = (m: protobuf.Method): string =>
          `(${m.requestStream ? 'stream ' : ''}${strip(m.resolvedRequestType?.fullName ?? m.requestType)}) returns ` +
          `(${m.responseStream ? 'stream ' : ''}${strip(m.resolvedResponseType?.fullName ?? m.responseType)})`;
        if (shape(method) !== shape(upstream)) {
          result.mismatches.push(`${where}: ${shape(method)}, upstream ${shape(upstream)}`);
        }
      }
      for (const method of theirs.methodsArray) {
        if (!obj.methods[method.name]) result.omissions.push(`${name}.${method.name}()`);
      }
    }
  }
  return result;
}

/**
 * grpc.health.v1 has no official copy in node_modules, so its upstream facts (grpc/grpc
 * src/proto/grpc/health/v1/health.proto, doc/health-checking.md) are pinned here: the
 * Check/Watch service keygate serves. (Newer upstream revisions add a List method, which
 * keygate does not offer; it is not part of this pinned table.)
 */
const PINNED_HEALTH_UPSTREAM = {
  nested: {
    grpc: {
      nested: {
        health: {
          nested: {
            v1: {
              nested: {
                HealthCheckRequest: { fields: { service: { type: 'string', id: 1 } } },
                HealthCheckResponse: {
                  fields: { status: { type: 'ServingStatus', id: 1 } },
                  nested: {
                    ServingStatus: { values: { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } },
                  },
                },
                Health: {
                  methods: {
                    Check: { requestType: 'HealthCheckRequest', responseType: 'HealthCheckResponse' },
                    Watch: {
                      requestType: 'HealthCheckRequest',
                      responseType: 'HealthCheckResponse',
                      responseStream: true,
                    },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

function pinnedHealthRoot(): protobuf.Root {
  // (protobufjs's IMethod typing wants a `comment`; the JSON form does not need one.)
  const root = protobuf.Root.fromJSON(PINNED_HEALTH_UPSTREAM as unknown as protobuf.INamespace);
  root.resolveAll();
  return root;
}

function oursRoot(dir: string = PROTOS_DIR): protobuf.Root {
  return loadProtobufRoot(PROTO_FILES, [dir]);
}

/** Health types are compared against the pinned table, everything else against the official protos. */
function compareAll(ours: protobuf.Root): Comparison {
  const official = compareRoots(ours, officialProtos().root);
  const health = compareRoots(ours, pinnedHealthRoot());
  const isHealth = (line: string): boolean => line.startsWith('grpc.health.v1.');
  return {
    mismatches: [...official.mismatches.filter((l) => !isHealth(l)), ...health.mismatches.filter(isHealth)],
    omissions: [...official.omissions, ...health.omissions],
    compared: [...official.compared, ...health.compared],
    fieldCount: official.fieldCount,
  };
}

// ---------------------------------------------------------------------------------------

describe('protos/ against the official ext_authz v3 definitions (reflection)', () => {
  it('declares every message, enum and service we serve with upstream names, numbers, types and labels', () => {
    const result = compareAll(oursRoot());
    expect(result.mismatches).toEqual([]);
    // Guard against a vacuous pass (e.g. a walker that finds nothing).
    expect(result.compared).toEqual(
      expect.arrayContaining([
        'envoy.service.auth.v3.Authorization',
        'envoy.service.auth.v3.CheckRequest',
        'envoy.service.auth.v3.CheckResponse',
        'envoy.service.auth.v3.OkHttpResponse',
        'envoy.service.auth.v3.DeniedHttpResponse',
        'envoy.service.auth.v3.AttributeContext',
        'envoy.service.auth.v3.AttributeContext.Peer',
        'envoy.service.auth.v3.AttributeContext.Request',
        'envoy.service.auth.v3.AttributeContext.HttpRequest',
        'envoy.service.auth.v3.AttributeContext.TLSSession',
        'envoy.config.core.v3.Address',
        'envoy.config.core.v3.SocketAddress',
        'envoy.config.core.v3.SocketAddress.Protocol',
        'envoy.config.core.v3.Pipe',
        'envoy.config.core.v3.EnvoyInternalAddress',
        'envoy.config.core.v3.HeaderValue',
        'envoy.config.core.v3.HeaderValueOption',
        'envoy.config.core.v3.HeaderValueOption.HeaderAppendAction',
        'envoy.config.core.v3.HeaderMap',
        'envoy.config.core.v3.Metadata',
        'envoy.config.core.v3.QueryParameter',
        'envoy.type.v3.HttpStatus',
        'envoy.type.v3.StatusCode',
        'google.rpc.Status',
        'grpc.health.v1.Health',
        'grpc.health.v1.HealthCheckRequest',
        'grpc.health.v1.HealthCheckResponse',
        'grpc.health.v1.HealthCheckResponse.ServingStatus',
      ]),
    );
    expect(result.fieldCount).toBeGreaterThan(60);
  });

  it('declares every upstream field, enum value and method of what it includes', () => {
    // An omitted field is not a wire break (it is skipped as unknown), but keygate could not
    // read it; list it here deliberately if a message is ever trimmed.
    const allowed: string[] = [];
    expect(compareAll(oursRoot()).omissions.filter((o) => !allowed.includes(o))).toEqual([]);
  });

  describe('fails on a deliberately altered copy of protos/', () => {
    let scratch: string;
    beforeAll(() => {
      scratch = mkdtempSync(join(tmpdir(), 'keygate-protos-'));
    });
    afterAll(() => {
      rmSync(scratch, { recursive: true, force: true });
    });

    /** Copies protos/, applies one textual edit (which must match once), compares. */
    function alteredMismatches(file: string, from: string, to: string): string[] {
      const dir = mkdtempSync(join(scratch, 'copy-'));
      cpSync(PROTOS_DIR, dir, { recursive: true });
      const path = join(dir, file);
      const text = readFileSync(path, 'utf8');
      expect(text.split(from).length - 1, `"${from}" must occur once in ${file}`).toBe(1);
      writeFileSync(path, text.replace(from, to));
      return compareAll(oursRoot(dir)).mismatches;
    }

    const cases: Array<{ what: string; file: string; from: string; to: string; expected: string[] }> = [
      {
        what: 'a changed field number',
        file: 'envoy/service/auth/v3/external_auth.proto',
        from: 'repeated string headers_to_remove = 5;',
        to: 'repeated string headers_to_remove = 4;',
        expected: ['envoy.service.auth.v3.OkHttpResponse.headers_to_remove: number 4, upstream 5'],
      },
      {
        what: 'two swapped field numbers',
        file: 'envoy/service/auth/v3/attribute_context.proto',
        from: 'string path = 4;\n\n    // Host / :authority.\n    string host = 5;',
        to: 'string path = 5;\n\n    // Host / :authority.\n    string host = 4;',
        expected: [
          'envoy.service.auth.v3.AttributeContext.HttpRequest.path: number 5, upstream 4',
          'envoy.service.auth.v3.AttributeContext.HttpRequest.path: number 5 is host upstream',
          'envoy.service.auth.v3.AttributeContext.HttpRequest.host: number 4, upstream 5',
          'envoy.service.auth.v3.AttributeContext.HttpRequest.host: number 4 is path upstream',
        ],
      },
      {
        what: 'a narrowed scalar type',
        file: 'envoy/service/auth/v3/attribute_context.proto',
        from: 'int64 size = 9;',
        to: 'int32 size = 9;',
        expected: ['envoy.service.auth.v3.AttributeContext.HttpRequest.size: type int32, upstream int64'],
      },
      {
        what: 'string where upstream has bytes (a narrowing: non-UTF-8 values would break)',
        file: 'envoy/config/core/v3/base.proto',
        from: 'bytes raw_value = 3;',
        to: 'string raw_value = 3;',
        expected: ['envoy.config.core.v3.HeaderValue.raw_value: type string, upstream bytes'],
      },
      {
        what: 'a dropped repeated label',
        file: 'envoy/service/auth/v3/external_auth.proto',
        from: 'repeated string query_parameters_to_remove = 8;',
        to: 'string query_parameters_to_remove = 8;',
        expected: ['envoy.service.auth.v3.OkHttpResponse.query_parameters_to_remove: label singular, upstream repeated'],
      },
      {
        what: 'a changed map value type',
        file: 'envoy/service/auth/v3/attribute_context.proto',
        from: 'map<string, string> context_extensions = 10;',
        to: 'map<string, int32> context_extensions = 10;',
        expected: ['envoy.service.auth.v3.AttributeContext.context_extensions: type int32, upstream string'],
      },
      {
        what: 'a changed map key type',
        file: 'envoy/service/auth/v3/attribute_context.proto',
        from: 'map<string, string> labels = 3;',
        to: 'map<int64, string> labels = 3;',
        expected: ['envoy.service.auth.v3.AttributeContext.Peer.labels: label map<int64, …>, upstream map<string, …>'],
      },
      {
        what: 'a changed HTTP status enum number',
        file: 'envoy/type/v3/http_status.proto',
        from: 'Unauthorized = 401;',
        to: 'Unauthorized = 499;',
        expected: ['envoy.type.v3.StatusCode.Unauthorized: number 499, upstream 401'],
      },
      {
        what: 'a changed append action number',
        file: 'envoy/config/core/v3/base.proto',
        from: 'OVERWRITE_IF_EXISTS_OR_ADD = 2;',
        to: 'OVERWRITE_IF_EXISTS_OR_ADD = 7;',
        expected: ['envoy.config.core.v3.HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD: number 7, upstream 2'],
      },
      {
        what: 'a field moved out of its oneof',
        file: 'envoy/service/auth/v3/external_auth.proto',
        from: '    OkHttpResponse ok_response = 3;\n  }',
        to: '  }\n  OkHttpResponse ok_response = 3;',
        expected: ['envoy.service.auth.v3.CheckResponse.ok_response: oneof (none), upstream http_response'],
      },
      {
        what: 'a streaming response on Check',
        file: 'envoy/service/auth/v3/external_auth.proto',
        from: 'rpc Check(CheckRequest) returns (CheckResponse)',
        to: 'rpc Check(CheckRequest) returns (stream CheckResponse)',
        expected: [
          'envoy.service.auth.v3.Authorization.Check: (envoy.service.auth.v3.CheckRequest) returns (stream ' +
            'envoy.service.auth.v3.CheckResponse), upstream (envoy.service.auth.v3.CheckRequest) returns ' +
            '(envoy.service.auth.v3.CheckResponse)',
        ],
      },
      {
        what: 'a changed health enum number (pinned upstream)',
        file: 'grpc/health/v1/health.proto',
        from: 'NOT_SERVING = 2;',
        to: 'NOT_SERVING = 4;',
        expected: ['grpc.health.v1.HealthCheckResponse.ServingStatus.NOT_SERVING: number 4, upstream 2'],
      },
    ];

    for (const c of cases) {
      it(`reports ${c.what}`, () => {
        expect(alteredMismatches(c.file, c.from, c.to)).toEqual(c.expected);
      });
    }

    it('accepts a wire-compatible widening (uint32 → uint64)', () => {
      expect(alteredMismatches('envoy/config/core/v3/address.proto', 'uint32 mode = 2;', 'uint64 mode = 2;')).toEqual([]);
    });
  });
});

// ---------------------------------------------------------------------------------------
// Round trips through the serializers keygate's gRPC server actually uses.

type CheckMethod = protoLoader.MethodDefinition<CheckRequestObject, CheckResponseObject, CheckRequestObject, CheckResponseObject>;

function oursCheck(): CheckMethod {
  const service = loadKeygateProtos().packageDefinition[AUTHORIZATION_SERVICE] as unknown as Record<string, CheckMethod>;
  const check = service.Check;
  if (!check) throw new Error('Check not found in our package definition');
  return check;
}

/** A value no UTF-8 decoder would keep: latin-1 "café", then 0xff 0xfe, NUL and a lone continuation byte. */
const NON_UTF8 = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0xff, 0xfe, 0x00, 0x80]);
const RAW_BODY = Buffer.from([0x00, 0x00, 0x00, 0x00, 0x03, 0x0a, 0x01, 0xff]);

function officialRequestObject(): PlainMessage {
  return {
    attributes: {
      source: {
        address: { socket_address: { address: '203.0.113.9', port_value: 40100 } },
        principal: 'spiffe://example.org/ns/shop/sa/web',
        labels: { app: 'web' },
      },
      destination: { address: { socket_address: { address: '10.0.0.5', port_value: 8080 } } },
      request: {
        time: { seconds: '1767259800', nanos: 125000000 },
        http: {
          id: '9876543210',
          method: 'GET',
          path: '/v1/things?x=1',
          host: 'api.example.com',
          scheme: 'https',
          protocol: 'HTTP/2',
          size: '-1',
          headers: {
            ':path': '/v1/things?x=1',
            'x-api-key': 'kg_wire_test',
            'x-forwarded-for': '198.51.100.1,198.51.100.2',
          },
          header_map: {
            headers: [
              { key: 'x-api-key', raw_value: Buffer.from('kg_wire_test') },
              { key: 'x-forwarded-for', raw_value: Buffer.from('198.51.100.1') },
              { key: 'x-forwarded-for', raw_value: Buffer.from('198.51.100.2') },
              { key: 'x-odd', raw_value: NON_UTF8 },
              { key: 'x-empty', raw_value: Buffer.alloc(0) },
            ],
          },
          raw_body: RAW_BODY,
        },
      },
      context_extensions: { 'keygate.scope': 'things:read', 'keygate.cost': '3' },
      metadata_context: {
        filter_metadata: { 'envoy.filters.http.jwt_authn': { fields: { sub: { stringValue: 'user-1' } } } },
      },
      tls_session: { sni: 'api.example.com' },
    },
  };
}

function expectRawHeaders(headers: HeaderValueObject[] | undefined): void {
  expect(headers?.map((h) => h.key)).toEqual(['x-api-key', 'x-forwarded-for', 'x-forwarded-for', 'x-odd', 'x-empty']);
  const raw = headers?.map((h) => h.raw_value) ?? [];
  for (const value of raw.slice(0, 4)) expect(Buffer.isBuffer(value)).toBe(true);
  expect(raw[0]?.toString()).toBe('kg_wire_test');
  expect(raw[1]?.toString()).toBe('198.51.100.1');
  expect(raw[2]?.toString()).toBe('198.51.100.2');
  expect(raw[3]?.equals(NON_UTF8)).toBe(true);
  // An empty bytes value is not distinguishable from an absent one on the wire.
  expect(raw[4] === undefined || raw[4].length === 0).toBe(true);
  expect(headers?.every((h) => h.value === undefined)).toBe(true);
}

describe('CheckRequest round trips', () => {
  it('official encoding → our decoding keeps headers, raw header bytes, addresses and route settings', () => {
    const bytes = encodeOfficialCheckRequest(officialRequestObject());
    const req = oursCheck().requestDeserialize(bytes);
    const attrs = req.attributes;
    const http = attrs?.request?.http;
    expect(http?.headers).toEqual({
      ':path': '/v1/things?x=1',
      'x-api-key': 'kg_wire_test',
      'x-forwarded-for': '198.51.100.1,198.51.100.2',
    });
    expectRawHeaders(http?.header_map?.headers);
    expect(http?.path).toBe('/v1/things?x=1');
    expect(http?.method).toBe('GET');
    expect(http?.host).toBe('api.example.com');
    expect(http?.id).toBe('9876543210');
    expect(http?.size).toBe('-1');
    expect(http?.raw_body?.equals(RAW_BODY)).toBe(true);
    expect(http?.body).toBeUndefined();
    expect(attrs?.source?.address?.address).toBe('socket_address');
    expect(attrs?.source?.address?.socket_address).toEqual({
      address: '203.0.113.9',
      port_value: 40100,
      port_specifier: 'port_value',
    });
    expect(attrs?.source?.principal).toBe('spiffe://example.org/ns/shop/sa/web');
    expect(attrs?.source?.labels).toEqual({ app: 'web' });
    expect(attrs?.context_extensions).toEqual({ 'keygate.scope': 'things:read', 'keygate.cost': '3' });
    expect(attrs?.request?.time).toEqual({ seconds: '1767259800', nanos: 125000000 });
    expect(fromStruct(attrs?.metadata_context?.filter_metadata?.['envoy.filters.http.jwt_authn'])).toEqual({
      sub: 'user-1',
    });
    expect(attrs?.tls_session).toEqual({ sni: 'api.example.com' });
    // Nothing is lost: re-encoding what we decoded gives the official bytes back.
    expect(oursCheck().requestSerialize(req).equals(bytes)).toBe(true);
  });

  it('our encoding → official decoding keeps the same fields', () => {
    const ours: CheckRequestObject = {
      attributes: {
        source: { address: { socket_address: { address: '2001:db8::5', port_value: 1234 } } },
        request: {
          http: {
            method: 'POST',
            path: '/v1/orders',
            headers: { 'x-api-key': 'kg_wire_test' },
            header_map: {
              headers: [
                { key: 'x-api-key', raw_value: Buffer.from('kg_wire_test') },
                { key: 'x-odd', raw_value: NON_UTF8 },
                { key: 'x-odd', raw_value: Buffer.from('second') },
              ],
            },
            size: '12',
            body: '{"qty":2}',
          },
        },
        context_extensions: { 'keygate.cost': '2' },
      },
    };
    const decoded = decodeOfficialCheckRequest(oursCheck().requestSerialize(ours)) as CheckRequestObject;
    const http = decoded.attributes?.request?.http;
    expect(http?.headers).toEqual({ 'x-api-key': 'kg_wire_test' });
    expect(http?.header_map?.headers?.map((h) => h.key)).toEqual(['x-api-key', 'x-odd', 'x-odd']);
    expect(http?.header_map?.headers?.[1]?.raw_value?.equals(NON_UTF8)).toBe(true);
    expect(http?.header_map?.headers?.[2]?.raw_value?.toString()).toBe('second');
    expect(http?.size).toBe('12');
    expect(http?.body).toBe('{"qty":2}');
    expect(decoded.attributes?.source?.address?.socket_address?.address).toBe('2001:db8::5');
    expect(decoded.attributes?.context_extensions).toEqual({ 'keygate.cost': '2' });
  });
});

const OVERWRITE = 'OVERWRITE_IF_EXISTS_OR_ADD' as const;

function okResponse(): CheckResponseObject {
  return {
    status: { code: 0 },
    ok_response: {
      headers: [
        { header: { key: 'x-keygate-key-id', value: 'key_01' }, append_action: OVERWRITE },
        { header: { key: 'x-keygate-owner', value: 'acme' }, append_action: OVERWRITE },
        // Enum by number: 2 is OVERWRITE_IF_EXISTS_OR_ADD.
        { header: { key: 'x-keygate-plan', value: '' }, append_action: 2, keep_empty_value: true },
      ],
      headers_to_remove: ['x-api-key', 'x-keygate-spoofed'],
      response_headers_to_add: [
        { header: { key: 'RateLimit-Policy', value: '"default";q=100;w=60' }, append_action: OVERWRITE },
        { header: { key: 'X-RateLimit-Remaining', value: '99' }, append_action: 'ADD_IF_ABSENT' },
      ],
      query_parameters_to_set: [{ key: 'via', value: 'keygate' }],
      query_parameters_to_remove: ['api_key'],
    },
    dynamic_metadata: toStruct({
      key_id: 'key_01',
      owner: 'acme',
      plan: 'gold',
      cost: 1,
      scopes: ['orders:read', 'orders:write'],
      extra: { expired: false, note: null },
    }),
  };
}

function deniedResponse(): CheckResponseObject {
  return {
    status: { code: 16, message: 'invalid_api_key' },
    denied_response: {
      status: { code: 401 },
      headers: [
        { header: { key: 'content-type', value: 'application/json' }, append_action: OVERWRITE },
        { header: { key: 'www-authenticate', value: 'ApiKey realm="keygate"' }, append_action: OVERWRITE },
      ],
      body: '{"error":{"code":"invalid_api_key","message":"The API key is not valid."}}',
    },
  };
}

function expectOk(decoded: PlainMessage): void {
  const res = decoded as unknown as CheckResponseObject;
  expect(res.http_response).toBe('ok_response');
  expect(res.denied_response).toBeUndefined();
  // code 0 is proto3's default, so it is not on the wire: status arrives as an empty message.
  expect(res.status).toBeDefined();
  expect(res.status.code ?? 0).toBe(0);
  const ok = res.ok_response;
  expect(ok?.headers?.map((h) => [h.header.key, h.header.value ?? '', h.append_action, h.keep_empty_value])).toEqual([
    ['x-keygate-key-id', 'key_01', OVERWRITE, undefined],
    ['x-keygate-owner', 'acme', OVERWRITE, undefined],
    ['x-keygate-plan', '', OVERWRITE, true],
  ]);
  expect(ok?.headers_to_remove).toEqual(['x-api-key', 'x-keygate-spoofed']);
  expect(ok?.response_headers_to_add?.map((h) => [h.header.key, h.header.value, h.append_action])).toEqual([
    ['RateLimit-Policy', '"default";q=100;w=60', OVERWRITE],
    // ADD_IF_ABSENT is 1, not the default, so it is sent and comes back by name.
    ['X-RateLimit-Remaining', '99', 'ADD_IF_ABSENT'],
  ]);
  expect(ok?.query_parameters_to_set).toEqual([{ key: 'via', value: 'keygate' }]);
  expect(ok?.query_parameters_to_remove).toEqual(['api_key']);
  expect(ok?.dynamic_metadata).toBeUndefined();
  expect(fromStruct(res.dynamic_metadata)).toEqual({
    key_id: 'key_01',
    owner: 'acme',
    plan: 'gold',
    cost: 1,
    scopes: ['orders:read', 'orders:write'],
    extra: { expired: false, note: null },
  });
}

function expectDenied(decoded: PlainMessage): void {
  const res = decoded as unknown as CheckResponseObject;
  expect(res.http_response).toBe('denied_response');
  expect(res.ok_response).toBeUndefined();
  expect(res.status).toEqual({ code: 16, message: 'invalid_api_key' });
  const denied = res.denied_response;
  expect(denied?.status).toEqual({ code: 'Unauthorized' });
  expect(denied?.headers?.map((h) => [h.header.key, h.header.value, h.append_action])).toEqual([
    ['content-type', 'application/json', OVERWRITE],
    ['www-authenticate', 'ApiKey realm="keygate"', OVERWRITE],
  ]);
  expect(JSON.parse(denied?.body ?? '')).toEqual({
    error: { code: 'invalid_api_key', message: 'The API key is not valid.' },
  });
}

describe('CheckResponse round trips', () => {
  it('ok_response: our encoding → official decoding', () => {
    expectOk(decodeOfficialCheckResponse(oursCheck().responseSerialize(okResponse())));
  });

  it('ok_response: official encoding → our decoding', () => {
    expectOk(oursCheck().responseDeserialize(encodeOfficialCheckResponse(okResponse() as unknown as PlainMessage)) as unknown as PlainMessage);
  });

  it('denied_response: our encoding → official decoding', () => {
    expectDenied(decodeOfficialCheckResponse(oursCheck().responseSerialize(deniedResponse())));
  });

  it('denied_response: official encoding → our decoding', () => {
    expectDenied(
      oursCheck().responseDeserialize(encodeOfficialCheckResponse(deniedResponse() as unknown as PlainMessage)) as unknown as PlainMessage,
    );
  });

  it('encodes an HTTP status given by name exactly like the number', () => {
    const byName: CheckResponseObject = { status: { code: 8 }, denied_response: { status: { code: 'TooManyRequests' } } };
    const byNumber: CheckResponseObject = { status: { code: 8 }, denied_response: { status: { code: 429 } } };
    const bytes = oursCheck().responseSerialize(byName);
    expect(bytes.equals(oursCheck().responseSerialize(byNumber))).toBe(true);
    expect(bytes.equals(encodeOfficialCheckResponse(byNumber as unknown as PlainMessage))).toBe(true);
  });

  it('produces byte-identical encodings to the official definitions', () => {
    for (const response of [okResponse(), deniedResponse()]) {
      const ours = oursCheck().responseSerialize(response);
      const official = encodeOfficialCheckResponse(response as unknown as PlainMessage);
      expect(ours.equals(official)).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------------------
// A real gRPC call: client from the official definitions, server from ours.

describe('gRPC Check over the network', () => {
  let server: grpc.Server;
  let port: number;
  let seen: CheckRequestObject | undefined;

  beforeAll(async () => {
    server = new grpc.Server();
    server.addService(loadKeygateProtos().authorizationService, {
      Check: (
        call: grpc.ServerUnaryCall<CheckRequestObject, CheckResponseObject>,
        callback: grpc.sendUnaryData<CheckResponseObject>,
      ) => {
        seen = call.request;
        const apiKey = call.request.attributes?.request?.http?.header_map?.headers?.find((h) => h.key === 'x-api-key');
        callback(null, {
          status: { code: 0 },
          ok_response: {
            headers: [
              { header: { key: 'x-seen-key', value: apiKey?.raw_value?.toString('latin1') ?? '' }, append_action: OVERWRITE },
              {
                header: {
                  key: 'x-seen-ip',
                  value: call.request.attributes?.source?.address?.socket_address?.address ?? '',
                },
              },
            ],
            headers_to_remove: ['x-api-key'],
          },
        });
      },
    });
    port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
    });
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  });

  it('serves a Check sent by a client built from the official protos', async () => {
    const Client = OfficialAuthorizationClient();
    const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const request = checkRequestFromProto3Json(withApiKey(readCheckRequestFixture('get-header-map-raw.json'), 'kg_live_123'));
    try {
      const response = await new Promise<PlainMessage>((resolve, reject) => {
        const check = client.Check as (req: PlainMessage, cb: (err: grpc.ServiceError | null, res: PlainMessage) => void) => void;
        check.call(client, request, (err, res) => (err ? reject(err) : resolve(res)));
      });
      const res = response as unknown as CheckResponseObject;
      expect(res.http_response).toBe('ok_response');
      expect(res.ok_response?.headers?.map((h) => [h.header.key, h.header.value])).toEqual([
        ['x-seen-key', 'kg_live_123'],
        ['x-seen-ip', '2001:db8::17'],
      ]);
      expect(res.ok_response?.headers_to_remove).toEqual(['x-api-key']);
      const names = seen?.attributes?.request?.http?.header_map?.headers?.map((h) => h.key);
      expect(names?.filter((n) => n === 'x-forwarded-for')).toHaveLength(2);
      const label = seen?.attributes?.request?.http?.header_map?.headers?.find((h) => h.key === 'x-legacy-label');
      expect(label?.raw_value?.equals(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x20, 0xff, 0xfe]))).toBe(true);
    } finally {
      client.close();
    }
  });
});

// ---------------------------------------------------------------------------------------
// Fixtures.

describe('CheckRequest fixtures (test/fixtures/check-requests)', () => {
  const names = checkRequestFixtureNames();

  it('has the expected fixtures', () => {
    expect(names).toEqual(
      expect.arrayContaining([
        'get-header-map-raw.json',
        'get-headers-bearer.json',
        'post-json-body.json',
        'x-api-key-route-settings.json',
      ]),
    );
  });

  for (const name of names) {
    it(`${name} parses with the official protos, carries the key placeholder, and reads back with ours`, () => {
      const json = readCheckRequestFixture(name);
      const official = checkRequestFromProto3Json(json) as CheckRequestObject;
      expect(official.attributes?.request?.http?.method).toMatch(/^(GET|POST)$/);

      const ours = oursCheck().requestDeserialize(checkRequestBytesFromProto3Json(json));
      expect(ours).toEqual(official);
      expect(credentialsIn(ours).some((v) => v.includes(KEY_PLACEHOLDER))).toBe(true);

      const real = 'kg_realKEY_0123456789';
      const substituted = oursCheck().requestDeserialize(checkRequestBytesFromProto3Json(withApiKey(json, real)));
      expect(credentialsIn(substituted).some((v) => v.includes(real))).toBe(true);
      expect(credentialsIn(substituted).some((v) => v.includes(KEY_PLACEHOLDER))).toBe(false);
    });
  }

  it('x-api-key-route-settings.json carries keygate.scope and keygate.cost', () => {
    const req = checkRequestFromProto3Json(readCheckRequestFixture('x-api-key-route-settings.json')) as CheckRequestObject;
    expect(req.attributes?.context_extensions).toEqual({ 'keygate.scope': 'reports:export', 'keygate.cost': '5' });
    expect(req.attributes?.request?.http?.headers?.['x-api-key']).toBe(KEY_PLACEHOLDER);
  });

  it('post-json-body.json carries the body and its size', () => {
    const http = (checkRequestFromProto3Json(readCheckRequestFixture('post-json-body.json')) as CheckRequestObject)
      .attributes?.request?.http;
    expect(http?.method).toBe('POST');
    expect(http?.size).toBe(String(Buffer.byteLength(http?.body ?? '')));
    expect(JSON.parse(http?.body ?? '')).toEqual({ sku: 'A-100', quantity: 2 });
  });

  it('get-header-map-raw.json uses header_map only, with repeated names and non-UTF-8 bytes', () => {
    const http = (checkRequestFromProto3Json(readCheckRequestFixture('get-header-map-raw.json')) as CheckRequestObject)
      .attributes?.request?.http;
    expect(http?.headers).toBeUndefined();
    const headers = http?.header_map?.headers ?? [];
    expect(headers.filter((h) => h.key === 'x-forwarded-for')).toHaveLength(2);
    expect(headers.find((h) => h.key === 'x-api-key')?.raw_value?.toString()).toBe(KEY_PLACEHOLDER);
    const label = headers.find((h) => h.key === 'x-legacy-label')?.raw_value;
    expect(label && Buffer.from(label.toString('utf8'), 'utf8').equals(label)).toBe(false);
  });

  it('the proto3-JSON reader is strict: unknown fields, bad base64 and bad timestamps are rejected', () => {
    const base = readCheckRequestFixture('get-headers-bearer.json') as { attributes: Record<string, unknown> };
    expect(() => checkRequestFromProto3Json({ attributes: { ...base.attributes, parsed_path: ['v1'] } })).toThrow(
      /no field "parsed_path"/,
    );
    expect(() =>
      checkRequestFromProto3Json({ attributes: { request: { http: { headerMap: { headers: [{ key: 'a', rawValue: '***' }] } } } } }),
    ).toThrow(/expected base64/);
    expect(() => checkRequestFromProto3Json({ attributes: { request: { time: 'yesterday' } } })).toThrow(/Timestamp/);
    expect(() =>
      checkRequestFromProto3Json({ attributes: { source: { address: { socketAddress: { portValue: 1 }, pipe: { path: '/x' } } } } }),
    ).toThrow(/oneof address/);
  });
});

/** Every header value, raw header value (as latin-1) and the path: where a key can be. */
function credentialsIn(req: CheckRequestObject): string[] {
  const http = req.attributes?.request?.http;
  return [
    ...Object.values(http?.headers ?? {}),
    ...(http?.header_map?.headers ?? []).map((h) => h.raw_value?.toString('latin1') ?? h.value ?? ''),
    http?.path ?? '',
  ];
}
