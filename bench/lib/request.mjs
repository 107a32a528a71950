// The CheckRequest the benchmark sends: what Envoy's ext_authz filter sends for a typical API
// call (headers map, source and destination addresses, request time, context_extensions), with
// the API key in x-api-key. Encoded once to protobuf and framed for gRPC (1-byte compressed flag,
// 4-byte big-endian length, message), because h2load sends the body file's raw bytes.
import { loadProtos } from './protos.mjs';

/** The request as a proto-loader object (keepCase field names). */
export function checkRequestObject(apiKey, { requestId = '7f3c2a9e-5b1d-4e8a-9c6f-2d4b8e1a0c3f', now = Date.UTC(2025, 0, 15, 12, 0, 0) } = {}) {
  const path = '/v1/orders/8472/items?expand=product&limit=20';
  const headers = {
    ':authority': 'api.example.com',
    ':method': 'GET',
    ':path': path,
    ':scheme': 'https',
    'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0',
    accept: 'application/json',
    'accept-encoding': 'gzip',
    'x-api-key': apiKey,
    'x-forwarded-for': '203.0.113.7',
    'x-request-id': requestId,
    'x-envoy-expected-rq-timeout-ms': '15000',
  };
  return {
    attributes: {
      source: { address: { socket_address: { address: '203.0.113.7', port_value: 51234 } } },
      destination: { address: { socket_address: { address: '10.0.0.5', port_value: 8443 } } },
      request: {
        time: { seconds: String(Math.floor(now / 1000)), nanos: 123456000 },
        http: {
          id: '14893025167390128446',
          method: 'GET',
          headers,
          path,
          host: 'api.example.com',
          scheme: 'https',
          size: '0',
          protocol: 'HTTP/2',
        },
      },
      context_extensions: { 'keygate.cost': '1', route: 'orders-api' },
    },
  };
}

/** A protobuf message framed as one gRPC message (uncompressed). */
export function grpcFrame(message) {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt8(0, 0);
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

/** { object, message, body }: body is what h2load sends (-d). */
export function buildCheckBody(apiKey) {
  const object = checkRequestObject(apiKey);
  const message = loadProtos().encodeRequest(object);
  return { object, message, body: grpcFrame(message) };
}

/** Splits a gRPC response body into its messages. */
export function grpcMessages(body) {
  const out = [];
  let off = 0;
  while (off + 5 <= body.length) {
    const len = body.readUInt32BE(off + 1);
    out.push(body.subarray(off + 5, off + 5 + len));
    off += 5 + len;
  }
  return out;
}
