// CheckOutcome → CheckResponse wire bytes, written by hand for the Check hot path: the same
// message toCheckResponse (./response.ts) describes, without building protobufjs objects. One
// pass measures, a second writes into one Buffer of exactly that size. What never changes per
// deny reason (status, HTTP status, content-type header, JSON body) and per key record (its
// dynamic_metadata Struct entries) is encoded once and copied.
//
// Wire layout (field numbers and types from protos/; test/contract/wire.test.ts holds those
// equal to Envoy's official definitions):
//
//   envoy.service.auth.v3.CheckResponse
//     1 status            google.rpc.Status       { 1 code int32, 2 message string }
//     2 denied_response   DeniedHttpResponse      { 1 status envoy.type.v3.HttpStatus { 1 code enum },
//                                                   2 headers repeated HeaderValueOption, 3 body string }
//     3 ok_response       OkHttpResponse          { 2 headers, 5 headers_to_remove repeated string,
//                                                   6 response_headers_to_add, 8 query_parameters_to_remove
//                                                   repeated string }   (1 and 4 unused, 3 and 7 not written)
//     4 dynamic_metadata  google.protobuf.Struct  { 1 fields map<string, Value>: entries { 1 key, 2 value } }
//                         google.protobuf.Value   { 3 string_value }
//   envoy.config.core.v3.HeaderValueOption        { 1 header HeaderValue { 1 key, 2 value }, 3 append_action enum }
//                                                   OVERWRITE_IF_EXISTS_OR_ADD = 2
//
// Presence follows protobufjs (the encoder behind toCheckResponse + responseSerialize), so that
// both decode to the same object: every field toCheckResponse sets is written even when it holds
// the proto3 default (status.code 0, an empty ok_response, empty header values, empty strings),
// empty repeated fields are not written.
//
// One deliberate difference: a string holding a lone UTF-16 surrogate is written as U+FFFD
// (valid UTF-8, like Buffer.from), whereas protobufjs writes strings shorter than 40 code units
// with its own encoder, which emits the surrogate's 3 bytes (invalid UTF-8, which a proto3 parser
// such as Envoy's may reject). For every well-formed string the bytes decode identically.
import type { Allowed, CheckOutcome, Denied } from '../check/check';
import type { HeaderPair } from '../check/ratelimit-headers';
import { DENY_REASONS, GrpcCode, type DenyReason } from '../check/reasons';
import type { KeyRecord } from '../keys/types';

// ---------------------------------------------------------------------------------------
// Tags: (field number << 3) | wire type. Wire types: 0 varint, 2 length-delimited.

const VARINT = 0;
const LEN = 2;
const tag = (field: number, wireType: number): number => (field << 3) | wireType;

// CheckResponse
const CR_STATUS = tag(1, LEN);
const CR_DENIED = tag(2, LEN);
const CR_OK = tag(3, LEN);
const CR_METADATA = tag(4, LEN);
// google.rpc.Status
const RPC_CODE = tag(1, VARINT);
const RPC_MESSAGE = tag(2, LEN);
// DeniedHttpResponse
const DENIED_STATUS = tag(1, LEN);
const DENIED_HEADERS = tag(2, LEN);
const DENIED_BODY = tag(3, LEN);
// envoy.type.v3.HttpStatus
const HTTP_STATUS_CODE = tag(1, VARINT);
// OkHttpResponse
const OK_HEADERS = tag(2, LEN);
const OK_HEADERS_TO_REMOVE = tag(5, LEN);
const OK_RESPONSE_HEADERS_TO_ADD = tag(6, LEN);
const OK_QUERY_PARAMETERS_TO_REMOVE = tag(8, LEN);
// envoy.config.core.v3.HeaderValueOption / HeaderValue
const HVO_HEADER = tag(1, LEN);
const HVO_APPEND_ACTION = tag(3, VARINT);
const HV_KEY = tag(1, LEN);
const HV_VALUE = tag(2, LEN);
/** HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD */
const OVERWRITE_IF_EXISTS_OR_ADD = 2;
// google.protobuf.Struct / map entry / Value
const STRUCT_FIELDS = tag(1, LEN);
const ENTRY_KEY = tag(1, LEN);
const ENTRY_VALUE = tag(2, LEN);
const VALUE_STRING = tag(3, LEN);

// Every tag above is below 128, so each takes one byte on the wire (asserted at load time).
for (const t of [CR_STATUS, CR_DENIED, CR_OK, CR_METADATA, RPC_CODE, RPC_MESSAGE, DENIED_STATUS, DENIED_HEADERS, DENIED_BODY,
  HTTP_STATUS_CODE, OK_HEADERS, OK_HEADERS_TO_REMOVE, OK_RESPONSE_HEADERS_TO_ADD, OK_QUERY_PARAMETERS_TO_REMOVE, HVO_HEADER,
  HVO_APPEND_ACTION, HV_KEY, HV_VALUE, STRUCT_FIELDS, ENTRY_KEY, ENTRY_VALUE, VALUE_STRING]) {
  if (t > 0x7f) throw new Error(`response-encoder: tag ${t} needs more than one byte`);
}

/** Bytes of append_action (tag + OVERWRITE_IF_EXISTS_OR_ADD), the same for every header. */
const APPEND_ACTION_SIZE = 2;

// ---------------------------------------------------------------------------------------
// Primitives.

/** Bytes of a non-negative integer below 2^32 as a varint. */
function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** Writes a non-negative integer below 2^32 as a varint; returns the next position. */
function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n > 0x7f) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

/** An int32 as protobuf writes it: negatives sign-extended to 64 bits (10 bytes). Cold path. */
function int32Varint(n: number): Buffer {
  const bytes: number[] = [];
  let v = BigInt.asUintN(64, BigInt(n | 0));
  do {
    const low = Number(v & 0x7fn);
    v >>= 7n;
    bytes.push(v > 0n ? low | 0x80 : low);
  } while (v > 0n);
  return Buffer.from(bytes);
}

/**
 * UTF-8 byte length of a string, as Buffer.byteLength (a lone surrogate counts 3, the size of
 * the U+FFFD it is written as). Short ASCII strings (header names, ids) are counted inline.
 */
function utf8Length(s: string): number {
  const n = s.length;
  if (n > 32) return Buffer.byteLength(s, 'utf8');
  for (let i = 0; i < n; i++) {
    if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s, 'utf8');
  }
  return n;
}

/**
 * Node's Buffer methods behind buf.write(s, offset, length, encoding), without its argument
 * handling; @types/node does not declare them.
 */
interface RawWrites {
  latin1Write(s: string, offset: number, length: number): number;
  utf8Write(s: string, offset: number, length: number): number;
}
const rawWrites = Buffer.prototype as unknown as Partial<RawWrites>;
if (typeof rawWrites.latin1Write !== 'function' || typeof rawWrites.utf8Write !== 'function') {
  throw new Error('response-encoder: this Node has no Buffer.prototype.latin1Write/utf8Write');
}

/** Writes `s`, whose utf8Length is `len`; returns the next position. */
function writeString(buf: Buffer, pos: number, s: string, len: number): number {
  if (len === s.length) {
    // ASCII: byte length equals code units only when every unit is below 0x80.
    if (len < 32) {
      for (let i = 0; i < len; i++) buf[pos + i] = s.charCodeAt(i);
    } else {
      (buf as unknown as RawWrites).latin1Write(s, pos, len);
    }
  } else {
    (buf as unknown as RawWrites).utf8Write(s, pos, len);
  }
  return pos + len;
}

/** Copies cached bytes in; returns the next position. (TypedArray.set: cheaper than Buffer.copy.) */
function put(buf: Buffer, pos: number, bytes: Buffer): number {
  buf.set(bytes, pos);
  return pos + bytes.length;
}

/** Bytes of a length-delimited field (one-byte tag) whose payload is `len` bytes. */
const fieldSize = (len: number): number => 1 + varintSize(len) + len;

/** A whole length-delimited string field as bytes. Cold path (caches). */
function stringField(fieldTag: number, s: string): Buffer {
  const len = utf8Length(s);
  const buf = Buffer.alloc(fieldSize(len));
  buf[0] = fieldTag;
  writeString(buf, writeVarint(buf, 1, len), s, len);
  return buf;
}

/** A whole length-delimited field around already encoded bytes. Cold path (caches). */
function messageField(fieldTag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const head = Buffer.alloc(1 + varintSize(body.length));
  head[0] = fieldTag;
  writeVarint(head, 1, body.length);
  return Buffer.concat([head, body]);
}

/** A Struct map entry field: fields { key, value: Value { string_value } }. Cold path (caches). */
function structEntry(key: string, value: string): Buffer {
  return messageField(STRUCT_FIELDS, stringField(ENTRY_KEY, key), messageField(ENTRY_VALUE, stringField(VALUE_STRING, value)));
}

// ---------------------------------------------------------------------------------------
// Header lists: HeaderValueOption { header { key, value }, append_action OVERWRITE_IF_EXISTS_OR_ADD }.
//
// The measuring pass stores each string's byte length in `lens` (reused across calls; Checks
// are encoded one at a time on the event loop), the writing pass reads them back in order.

let lens = new Int32Array(64);

function ensureLens(count: number): void {
  if (count > lens.length) lens = new Int32Array(Math.max(count, lens.length * 2));
}

/** Payload bytes of a HeaderValue with key/value byte lengths kl/vl. */
const headerValueSize = (kl: number, vl: number): number => 2 + varintSize(kl) + kl + varintSize(vl) + vl;

/** Payload bytes of a HeaderValueOption with key/value byte lengths kl/vl. */
const headerOptionSize = (kl: number, vl: number): number => fieldSize(headerValueSize(kl, vl)) + APPEND_ACTION_SIZE;

/** Measures a header list as repeated HeaderValueOption fields, storing lengths from lens[at]. */
function measureHeaders(headers: readonly HeaderPair[], at: number): number {
  let size = 0;
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    const kl = utf8Length(h[0]);
    const vl = utf8Length(h[1]);
    lens[at++] = kl;
    lens[at++] = vl;
    size += fieldSize(headerOptionSize(kl, vl));
  }
  return size;
}

/** Writes a header list measured by measureHeaders(headers, at). */
function writeHeaders(buf: Buffer, pos: number, fieldTag: number, headers: readonly HeaderPair[], at: number): number {
  for (let i = 0; i < headers.length; i++) {
    const h = headers[i]!;
    const kl = lens[at++]!;
    const vl = lens[at++]!;
    const hv = headerValueSize(kl, vl);
    buf[pos++] = fieldTag;
    pos = writeVarint(buf, pos, fieldSize(hv) + APPEND_ACTION_SIZE);
    buf[pos++] = HVO_HEADER;
    pos = writeVarint(buf, pos, hv);
    buf[pos++] = HV_KEY;
    pos = writeString(buf, writeVarint(buf, pos, kl), h[0], kl);
    buf[pos++] = HV_VALUE;
    pos = writeString(buf, writeVarint(buf, pos, vl), h[1], vl);
    buf[pos++] = HVO_APPEND_ACTION;
    buf[pos++] = OVERWRITE_IF_EXISTS_OR_ADD;
  }
  return pos;
}

/** Measures a string list as repeated string fields, storing lengths from lens[at]. */
function measureStrings(strings: readonly string[], at: number): number {
  let size = 0;
  for (let i = 0; i < strings.length; i++) {
    const len = utf8Length(strings[i]!);
    lens[at++] = len;
    size += fieldSize(len);
  }
  return size;
}

function writeStrings(buf: Buffer, pos: number, fieldTag: number, strings: readonly string[], at: number): number {
  for (let i = 0; i < strings.length; i++) {
    const len = lens[at++]!;
    buf[pos++] = fieldTag;
    pos = writeString(buf, writeVarint(buf, pos, len), strings[i]!, len);
  }
  return pos;
}

// ---------------------------------------------------------------------------------------
// Caches.

/** CheckResponse.status of an allow: { code: 0 } (protobufjs writes the explicit 0). */
const ALLOW_STATUS = messageField(CR_STATUS, Buffer.from([RPC_CODE]), int32Varint(GrpcCode.OK));

interface ReasonParts {
  /** CheckResponse.status field: { code: grpc, message: reason }. */
  status: Buffer;
  /** Start of DeniedHttpResponse: status { code: http } and the content-type header. */
  deniedHead: Buffer;
  /** End of DeniedHttpResponse: body, the JSON error document. */
  deniedBody: Buffer;
  /** The dynamic_metadata Struct entry reason → the reason. */
  reasonEntry: Buffer;
  /** dynamic_metadata field for a deny without a key: just the reason entry. */
  metadataNoKey: Buffer;
}

function reasonParts(reason: DenyReason): ReasonParts {
  const spec = DENY_REASONS[reason];
  const contentType: HeaderPair = ['content-type', 'application/json'];
  ensureLens(2);
  const ct = Buffer.alloc(measureHeaders([contentType], 0));
  writeHeaders(ct, 0, DENIED_HEADERS, [contentType], 0);
  const reasonEntry = structEntry('reason', reason);
  return {
    status: messageField(CR_STATUS, Buffer.from([RPC_CODE]), int32Varint(spec.grpc), stringField(RPC_MESSAGE, reason)),
    deniedHead: Buffer.concat([messageField(DENIED_STATUS, Buffer.from([HTTP_STATUS_CODE]), int32Varint(spec.http)), ct]),
    deniedBody: stringField(DENIED_BODY, JSON.stringify({ error: { code: reason, message: spec.message } })),
    reasonEntry,
    metadataNoKey: messageField(CR_METADATA, reasonEntry),
  };
}

const REASONS = new Map<string, ReasonParts>();
for (const reason of Object.keys(DENY_REASONS) as DenyReason[]) REASONS.set(reason, reasonParts(reason));

function partsOf(reason: DenyReason): ReasonParts {
  const parts = REASONS.get(reason);
  if (!parts) throw new Error(`response-encoder: unknown deny reason ${String(reason)}`);
  return parts;
}

interface KeyParts {
  id: string;
  owner: string;
  plan: string;
  /** The Struct entries key_id, owner, plan. */
  entries: Buffer;
  /** The allow's whole dynamic_metadata field: { key_id, owner, plan }. */
  allowMetadata: Buffer;
}

/**
 * Per key record, its metadata entries, re-checked against the record's fields (an object
 * changed in place gets fresh bytes). The plan is the allow's outcome.plan or, on a deny,
 * key.plan; check() allows with plan = key.plan, so one entry serves both.
 */
const keyParts = new WeakMap<KeyRecord, KeyParts>();
function partsOfKey(key: KeyRecord, plan: string): KeyParts {
  const p = keyParts.get(key);
  if (p !== undefined && p.plan === plan && p.id === key.id && p.owner === key.owner) return p;
  const entries = Buffer.concat([structEntry('key_id', key.id), structEntry('owner', key.owner), structEntry('plan', plan)]);
  const fresh: KeyParts = { id: key.id, owner: key.owner, plan, entries, allowMetadata: messageField(CR_METADATA, entries) };
  keyParts.set(key, fresh);
  return fresh;
}

// ---------------------------------------------------------------------------------------
// The encoder.

/** The protobuf bytes of toCheckResponse(outcome): an envoy.service.auth.v3.CheckResponse. */
export function encodeCheckResponse(outcome: CheckOutcome): Buffer {
  return outcome.decision === 'allow' ? encodeAllow(outcome) : encodeDeny(outcome);
}

function encodeAllow(outcome: Allowed): Buffer {
  const { upstreamHeaders, removeHeaders, responseHeaders, removeQueryParams } = outcome;
  ensureLens(2 * (upstreamHeaders.length + responseHeaders.length) + removeHeaders.length + removeQueryParams.length);
  const atRemove = 2 * upstreamHeaders.length;
  const atResponse = atRemove + removeHeaders.length;
  const atQuery = atResponse + 2 * responseHeaders.length;
  const okLen =
    measureHeaders(upstreamHeaders, 0) +
    measureStrings(removeHeaders, atRemove) +
    measureHeaders(responseHeaders, atResponse) +
    measureStrings(removeQueryParams, atQuery);
  const metadata = partsOfKey(outcome.key, outcome.plan).allowMetadata;

  const buf = Buffer.allocUnsafe(ALLOW_STATUS.length + fieldSize(okLen) + metadata.length);
  let pos = put(buf, 0, ALLOW_STATUS);
  buf[pos++] = CR_OK;
  pos = writeVarint(buf, pos, okLen);
  pos = writeHeaders(buf, pos, OK_HEADERS, upstreamHeaders, 0);
  pos = writeStrings(buf, pos, OK_HEADERS_TO_REMOVE, removeHeaders, atRemove);
  pos = writeHeaders(buf, pos, OK_RESPONSE_HEADERS_TO_ADD, responseHeaders, atResponse);
  pos = writeStrings(buf, pos, OK_QUERY_PARAMETERS_TO_REMOVE, removeQueryParams, atQuery);
  pos = put(buf, pos, metadata);
  return finish(buf, pos);
}

function encodeDeny(outcome: Denied): Buffer {
  const parts = partsOf(outcome.reason);
  const headers = outcome.responseHeaders;
  ensureLens(2 * headers.length);
  const deniedLen = parts.deniedHead.length + measureHeaders(headers, 0) + parts.deniedBody.length;

  const key = outcome.key;
  const entries = key === undefined ? undefined : partsOfKey(key, key.plan).entries;
  const structLen = entries === undefined ? 0 : parts.reasonEntry.length + entries.length;
  const metadataLen = entries === undefined ? parts.metadataNoKey.length : fieldSize(structLen);

  const buf = Buffer.allocUnsafe(parts.status.length + fieldSize(deniedLen) + metadataLen);
  let pos = put(buf, 0, parts.status);
  buf[pos++] = CR_DENIED;
  pos = writeVarint(buf, pos, deniedLen);
  pos = put(buf, pos, parts.deniedHead);
  pos = writeHeaders(buf, pos, DENIED_HEADERS, headers, 0);
  pos = put(buf, pos, parts.deniedBody);
  if (entries === undefined) {
    pos = put(buf, pos, parts.metadataNoKey);
  } else {
    buf[pos++] = CR_METADATA;
    pos = writeVarint(buf, pos, structLen);
    pos = put(buf, pos, parts.reasonEntry);
    pos = put(buf, pos, entries);
  }
  return finish(buf, pos);
}

/** The measuring and writing passes must agree; a mismatch is a bug here, never sent. */
function finish(buf: Buffer, end: number): Buffer {
  if (end !== buf.length) throw new Error(`response-encoder: wrote ${end} of ${buf.length} bytes`);
  return buf;
}
