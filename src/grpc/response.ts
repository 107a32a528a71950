// CheckOutcome → CheckResponse: the Envoy-facing shape of a verdict. Allowed: identity headers
// overwrite the client's, the key header and parameter go, rate-limit headers go to the client,
// dynamic metadata names the key for the access log. Denied: an explicit HTTP status, a JSON
// body and the reason's headers.
//
// This is the readable definition of the answer, as proto-loader objects. The Check path sends
// the same message encoded by hand (src/grpc/response-encoder.ts); its test holds the two equal
// after decoding with Envoy's official protos.
import type { CheckOutcome } from '../check/check';
import type { HeaderPair } from '../check/ratelimit-headers';
import { DENY_REASONS, GrpcCode } from '../check/reasons';
import type { KeyRecord } from '../keys/types';
import { toStruct, type CheckResponseObject, type HeaderValueOptionObject, type StructObject } from './protos';

const overwrite = ([key, value]: HeaderPair): HeaderValueOptionObject => ({
  header: { key, value },
  append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
});

/**
 * The allowed answer's dynamic_metadata, built once per key record (re-checked against the record's
 * fields, so an object changed in place still gets its own) instead of once per Check.
 */
const allowMetadata = new WeakMap<object, StructObject>();
function allowedMetadata(key: KeyRecord, plan: string): StructObject {
  const m = allowMetadata.get(key);
  const f = m?.fields;
  if (m && f && f.plan?.stringValue === plan && f.key_id?.stringValue === key.id && f.owner?.stringValue === key.owner) return m;
  const fresh = toStruct({ key_id: key.id, owner: key.owner, plan });
  allowMetadata.set(key, fresh);
  return fresh;
}

export function toCheckResponse(outcome: CheckOutcome): CheckResponseObject {
  if (outcome.decision === 'allow') {
    const k = outcome.key;
    return {
      status: { code: GrpcCode.OK },
      ok_response: {
        headers: outcome.upstreamHeaders.map(overwrite),
        headers_to_remove: outcome.removeHeaders,
        response_headers_to_add: outcome.responseHeaders.map(overwrite),
        query_parameters_to_remove: outcome.removeQueryParams,
      },
      dynamic_metadata: allowedMetadata(k, outcome.plan),
    };
  }
  const spec = DENY_REASONS[outcome.reason];
  const body = JSON.stringify({ error: { code: outcome.reason, message: spec.message } });
  const headers: HeaderPair[] = [['content-type', 'application/json'], ...outcome.responseHeaders];
  const metadata: Record<string, string> = { reason: outcome.reason };
  if (outcome.key) {
    metadata.key_id = outcome.key.id;
    metadata.owner = outcome.key.owner;
    metadata.plan = outcome.key.plan;
  }
  return {
    status: { code: spec.grpc, message: outcome.reason },
    denied_response: { status: { code: spec.http }, headers: headers.map(overwrite), body },
    dynamic_metadata: toStruct(metadata),
  };
}
