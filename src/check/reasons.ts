// Deny reasons are data: this one table maps each reason to the HTTP status the client sees,
// the gRPC code in CheckResponse.status and the message in the JSON body. The reason string is
// also the `reason` label of keygate_checks_total and the `reason` field of the log line.

export type DenyReason =
  | 'missing_api_key'
  | 'invalid_api_key'
  | 'expired_api_key'
  | 'disabled_api_key'
  | 'insufficient_scope'
  | 'ip_not_allowed'
  | 'rate_limited'
  | 'quota_exceeded'
  | 'plan_not_found'
  | 'invalid_route_config';

export interface ReasonSpec {
  http: number;
  /** google.rpc.Code sent in CheckResponse.status */
  grpc: number;
  message: string;
}

/** google.rpc.Code values used here */
export const GrpcCode = { OK: 0, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, INTERNAL: 13, UNAVAILABLE: 14, UNAUTHENTICATED: 16 } as const;

export const DENY_REASONS: Readonly<Record<DenyReason, ReasonSpec>> = Object.freeze({
  missing_api_key: { http: 401, grpc: GrpcCode.UNAUTHENTICATED, message: 'An API key is required.' },
  invalid_api_key: { http: 401, grpc: GrpcCode.UNAUTHENTICATED, message: 'The API key is not valid.' },
  expired_api_key: { http: 401, grpc: GrpcCode.UNAUTHENTICATED, message: 'The API key has expired.' },
  disabled_api_key: { http: 401, grpc: GrpcCode.UNAUTHENTICATED, message: 'The API key is disabled.' },
  insufficient_scope: { http: 403, grpc: GrpcCode.PERMISSION_DENIED, message: 'The API key does not grant access to this resource.' },
  ip_not_allowed: { http: 403, grpc: GrpcCode.PERMISSION_DENIED, message: 'The API key may not be used from this address.' },
  rate_limited: { http: 429, grpc: GrpcCode.RESOURCE_EXHAUSTED, message: 'Too many requests. Retry later.' },
  quota_exceeded: { http: 429, grpc: GrpcCode.RESOURCE_EXHAUSTED, message: 'The quota of this API key is used up.' },
  plan_not_found: { http: 403, grpc: GrpcCode.PERMISSION_DENIED, message: 'The API key has no valid plan. Contact the API provider.' },
  invalid_route_config: { http: 500, grpc: GrpcCode.INTERNAL, message: 'This route is misconfigured. Contact the API provider.' },
});

export const ALL_DENY_REASONS = Object.keys(DENY_REASONS) as DenyReason[];

/** Every 401 carries WWW-Authenticate (RFC 9110 section 15.5.2). */
export function wantsAuthenticateHeader(reason: DenyReason): boolean {
  return DENY_REASONS[reason].http === 401;
}
