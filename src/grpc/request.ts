// CheckRequest → CheckInput: reads only what the Check path needs, in either header form Envoy
// sends (the `headers` map, or `header_map` with raw byte values when encode_raw_headers is on).
// decodeCheckInput (below) reads the bytes directly and is what the Check path uses; toCheckInput
// does the same from a proto-loader object and is the readable reference it is tested against.
// Missing parts become absent fields.
//
// Every header is kept, however many there are. Ignoring headers past some count (as an earlier
// version did past 1000 names) lets a request hide a header from the Check: a client-sent
// `x-keygate-…` header past the limit was not removed before the request went upstream, and a
// second key past it escaped the two-keys conflict check (found by test/fuzz). The work stays
// bounded by the gRPC receive limit (1 MiB per CheckRequest, see grpc/server.ts), which bounds
// the decoded message this map is built from.
import type { CheckInput } from '../check/request';
import type {
  AddressObject,
  CheckRequestObject,
  HeaderMapObject,
  HeaderValueObject,
  PeerObject,
  SocketAddressObject,
} from './protos';

/** A CheckInput's headers map (lower-case names, repeated headers kept apart) and its adder. */
function headerCollector(): { headers: Map<string, string[]>; add(rawName: unknown, value: string): void } {
  const headers = new Map<string, string[]>();
  return {
    headers,
    add(rawName, value) {
      if (typeof rawName !== 'string') return;
      const name = rawName.toLowerCase();
      const list = headers.get(name);
      if (list) list.push(value);
      else headers.set(name, [value]);
    },
  };
}

/** The CheckInput of collected headers and the HTTP fields Envoy sent (a pseudo-header when one is missing). */
function checkInputOf(
  headers: Map<string, string[]>,
  http: { path?: unknown; method?: unknown; host?: unknown; id?: unknown } | undefined | null,
  sourceAddress: unknown,
  contextExtensions: Record<string, string>,
): CheckInput {
  const first = (name: string) => headers.get(name)?.[0];
  return {
    headers,
    path: str(http?.path) ?? first(':path'),
    method: str(http?.method) ?? first(':method'),
    host: str(http?.host) ?? first(':authority'),
    requestId: str(http?.id) ?? first('x-request-id'),
    sourceAddress: str(sourceAddress),
    contextExtensions,
  };
}

export function toCheckInput(req: CheckRequestObject | undefined | null): CheckInput {
  const attrs = req?.attributes;
  const http = attrs?.request?.http;
  const { headers, add } = headerCollector();
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
  return checkInputOf(headers, http, attrs?.source?.address?.socket_address?.address, plainStrings(attrs?.context_extensions));
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

// ---------------------------------------------------------------------------------------
// The Check request decoder. proto-loader decodes the whole CheckRequest (metadata_context
// Structs, destination, TLS session, body, ...) into protobufjs messages and then copies all of
// it into plain objects; keygate reads a handful of fields. This walks the protobuf wire format
// once and reads only those (a field sent twice: the last one wins, as protobufjs decodes it).
// Everything else is skipped by its length without being decoded. Malformed input (truncated
// field, bad length, unknown wire type) throws, as protobufjs does, and the Check is answered
// INTERNAL. Like protobufjs, a field keygate reads is read as its declared type whatever wire type
// its tag says; only the others are skipped by wire type.
//
//   CheckRequest        attributes = 1
//   AttributeContext    source = 1 (Peer), request = 4 (Request), context_extensions = 10 (map)
//   Peer                address = 1 (Address)
//   Address             socket_address = 1 (SocketAddress)
//   SocketAddress       address = 2
//   Request             http = 2 (HttpRequest)
//   HttpRequest         id = 1, method = 2, headers = 3 (map), path = 4, host = 5, header_map = 13
//   HeaderMap           headers = 1 (repeated HeaderValue)
//   HeaderValue         key = 1, value = 2, raw_value = 3 (bytes)

class WireReader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    /** end of the message being read (readMessage narrows it for nested ones) */
    public end: number,
  ) {
    this.pos = start;
  }

  /** A varint, as protobufjs's uint32(): the low 32 bits, at most 10 bytes. */
  uint32(): number {
    const buf = this.buf;
    let value = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new RangeError('protobuf: truncated varint');
      const b = buf[this.pos++];
      if (shift < 32) value |= (b & 0x7f) << shift;
      if (b < 0x80) return value >>> 0;
      shift += 7;
    }
    throw new Error('protobuf: invalid varint encoding');
  }

  /** The end of a length-delimited field that starts here (its length read). */
  delimited(): number {
    const len = this.uint32();
    const end = this.pos + len;
    if (end > this.end) throw new RangeError(`protobuf: index out of range: ${this.pos} + ${len} > ${this.end}`);
    return end;
  }

  string(): string {
    const end = this.delimited();
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end;
    return s;
  }

  bytes(): Buffer {
    const end = this.delimited();
    const b = this.buf.subarray(this.pos, end);
    this.pos = end;
    return b;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.uint32();
        return;
      case 1:
        this.advance(8);
        return;
      case 2:
        this.pos = this.delimited();
        return;
      case 3:
        for (;;) {
          const tag = this.uint32();
          if ((tag & 7) === 4) return;
          this.skip(tag & 7);
        }
      case 5:
        this.advance(4);
        return;
      default:
        throw new Error(`protobuf: invalid wire type ${wireType} at offset ${this.pos}`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw new RangeError('protobuf: index out of range');
    this.pos += n;
  }
}

// Each reader below loops over the fields of one message from r.pos to its end (the length just
// read), takes the fields keygate reads and skips the others by wire type. Plain loops, no
// callbacks: this runs for every header of every Check.

/** Where readStringMapEntry puts an entry: a Map, or a plain record through recordSink. */
interface StringMapSink {
  set(key: string, value: string): unknown;
}

/** A sink that assigns into a plain object, as protobufjs fills a map field (`into[key] = value`). */
function recordSink(into: Record<string, string>): StringMapSink {
  return {
    set(key, value) {
      into[key] = value;
    },
  };
}

/** A map<string, string> entry (key = 1, value = 2), missing parts '' as protobufjs decodes them. */
function readStringMapEntry(r: WireReader, into: StringMapSink): void {
  const end = r.delimited();
  const outer = r.end;
  r.end = end;
  let key = '';
  let value = '';
  while (r.pos < end) {
    const tag = r.uint32();
    const no = tag >>> 3;
    if (no === 1) key = r.string();
    else if (no === 2) value = r.string();
    else r.skip(tag & 7);
  }
  r.end = outer;
  into.set(key, value);
}

function readHeaderValue(r: WireReader): HeaderValueObject {
  const end = r.delimited();
  const outer = r.end;
  r.end = end;
  const h: HeaderValueObject = {};
  while (r.pos < end) {
    const tag = r.uint32();
    const no = tag >>> 3;
    if (no === 1) h.key = r.string();
    else if (no === 2) h.value = r.string();
    else if (no === 3) h.raw_value = r.bytes();
    else r.skip(tag & 7);
  }
  r.end = outer;
  return h;
}

function readHeaderMap(r: WireReader): HeaderMapObject {
  const end = r.delimited();
  const outer = r.end;
  r.end = end;
  const list: HeaderValueObject[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) list.push(readHeaderValue(r));
    else r.skip(tag & 7);
  }
  r.end = outer;
  return list.length > 0 ? { headers: list } : {};
}

/** A message with one field keygate reads, number `no`, read by `read`; the rest skipped. */
function readOne<T extends object>(r: WireReader, no: number, into: T, read: (r: WireReader, into: T) => void): T {
  const end = r.delimited();
  const outer = r.end;
  r.end = end;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag >>> 3 === no) read(r, into);
    else r.skip(tag & 7);
  }
  r.end = outer;
  return into;
}

const readSocketAddress = (r: WireReader, sock: SocketAddressObject): void => {
  sock.address = r.string();
};
const readAddress = (r: WireReader, address: AddressObject): void => {
  address.socket_address = readOne(r, 2, {}, readSocketAddress);
};
const readPeer = (r: WireReader, peer: PeerObject): void => {
  peer.address = readOne(r, 1, {}, readAddress);
};
// ---------------------------------------------------------------------------------------
// decodeCheckInput: bytes → CheckInput in one pass, without a CheckRequestObject in between. It
// gives what toCheckInput gives for proto-loader's full decode of the same bytes, which is the
// reference (test/unit/check/grpc-decode.test.ts holds the two equal): a message field sent again
// replaces the earlier one (attributes, source, request, http, header_map), map entries add up (a
// key sent again: the last value wins).

/** What one `attributes` message gave so far. */
interface AttributesDraft {
  sourceAddress?: string;
  http?: HttpDraft;
  extensions?: Record<string, string>;
}

interface HttpDraft {
  id?: string;
  method?: string;
  path?: string;
  host?: string;
  /** the `headers` map: name as sent → value */
  headers?: Map<string, string>;
  /** header_map.headers, when sent */
  headerMap?: HeaderValueObject[];
}

function readHttpDraft(r: WireReader): HttpDraft {
  const end = r.delimited();
  const outer = r.end;
  r.end = end;
  const http: HttpDraft = {};
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1:
        http.id = r.string();
        break;
      case 2:
        http.method = r.string();
        break;
      case 3:
        readStringMapEntry(r, (http.headers ??= new Map()));
        break;
      case 4:
        http.path = r.string();
        break;
      case 5:
        http.host = r.string();
        break;
      case 13:
        http.headerMap = readHeaderMap(r).headers;
        break;
      default:
        r.skip(tag & 7);
    }
  }
  r.end = outer;
  return http;
}

/** Request { http = 2 }: the last http message, or none. */
function readRequestDraft(r: WireReader): HttpDraft | undefined {
  const end = r.delimited();
  const outer = r.end;
  r.end = end;
  let http: HttpDraft | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag >>> 3 === 2) http = readHttpDraft(r);
    else r.skip(tag & 7);
  }
  r.end = outer;
  return http;
}

function readAttributesDraft(r: WireReader): AttributesDraft {
  const end = r.delimited();
  const outer = r.end;
  r.end = end;
  const attrs: AttributesDraft = {};
  let extensions: StringMapSink | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    const no = tag >>> 3;
    if (no === 1) attrs.sourceAddress = readOne(r, 1, {} as PeerObject, readPeer).address?.socket_address?.address;
    else if (no === 4) attrs.http = readRequestDraft(r);
    else if (no === 10) readStringMapEntry(r, (extensions ??= recordSink((attrs.extensions = {}))));
    else r.skip(tag & 7);
  }
  r.end = outer;
  return attrs;
}

/** Bytes of a CheckRequest → CheckInput, as toCheckInput(full proto-loader decode) gives it. Throws on malformed input. */
export function decodeCheckInput(buf: Buffer): CheckInput {
  const r = new WireReader(buf, 0, buf.length);
  let attrs: AttributesDraft | undefined;
  while (r.pos < buf.length) {
    const tag = r.uint32();
    if (tag >>> 3 === 1) attrs = readAttributesDraft(r);
    else r.skip(tag & 7);
  }
  const http = attrs?.http;
  const { headers, add } = headerCollector();
  const map = http?.headerMap;
  if (map && map.length > 0) {
    for (const h of map) add(h.key, h.raw_value ? h.raw_value.toString('latin1') : (h.value ?? ''));
  } else if (http?.headers) {
    for (const [name, value] of http.headers) add(name, value);
  }
  return checkInputOf(headers, http, attrs?.sourceAddress, attrs?.extensions ?? {});
}
