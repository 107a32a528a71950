// Loads keygate's ext_authz protos (protos/) with @grpc/proto-loader, with the loader options of
// src/grpc/protos.ts (PROTO_LOADER_OPTIONS), copied here on purpose: the baseline must stay a
// *stock* grpc-js server even when keygate's own loading changes.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

const require = createRequire(import.meta.url);
export const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

export const REPO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PROTOS_DIR = resolve(REPO_DIR, 'protos');
export const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

export const PROTO_LOADER_OPTIONS = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  arrays: false,
  objects: false,
  oneofs: true,
  includeDirs: [PROTOS_DIR],
});

let cached;
/** { packageDefinition, service, encodeRequest(obj) → Buffer, decodeResponse(buf) → obj } */
export function loadProtos() {
  if (cached) return cached;
  const packageDefinition = protoLoader.loadSync(['envoy/service/auth/v3/external_auth.proto'], { ...PROTO_LOADER_OPTIONS });
  const service = packageDefinition['envoy.service.auth.v3.Authorization'];
  const check = service.Check;
  cached = {
    packageDefinition,
    service,
    encodeRequest: (obj) => check.requestSerialize(obj),
    decodeRequest: (buf) => check.requestDeserialize(buf),
    encodeResponse: (obj) => check.responseSerialize(obj),
    decodeResponse: (buf) => check.responseDeserialize(buf),
  };
  return cached;
}
