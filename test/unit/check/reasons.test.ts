// The deny-reason table matches the DESIGN contract: HTTP status and gRPC code per reason.
import { describe, expect, it } from 'vitest';
import { ALL_DENY_REASONS, DENY_REASONS, GrpcCode, wantsAuthenticateHeader, type DenyReason } from '../../../src/check/reasons';

// DESIGN.md, "Denied": reason | HTTP | gRPC code
const DESIGN_TABLE: Record<string, { http: number; grpc: number }> = {
  missing_api_key: { http: 401, grpc: 16 },
  invalid_api_key: { http: 401, grpc: 16 },
  expired_api_key: { http: 401, grpc: 16 },
  disabled_api_key: { http: 401, grpc: 16 },
  insufficient_scope: { http: 403, grpc: 7 },
  ip_not_allowed: { http: 403, grpc: 7 },
  rate_limited: { http: 429, grpc: 8 },
  quota_exceeded: { http: 429, grpc: 8 },
};
// Reasons the design is silent on (documented in the README): a key whose plan is gone, and a
// route whose keygate.* settings are invalid.
const BEYOND_DESIGN: Record<string, { http: number; grpc: number }> = {
  plan_not_found: { http: 403, grpc: 7 },
  invalid_route_config: { http: 500, grpc: 13 },
};

describe('DENY_REASONS', () => {
  for (const [reason, want] of Object.entries(DESIGN_TABLE)) {
    it(`${reason}: HTTP ${want.http}, gRPC ${want.grpc} as DESIGN.md says`, () => {
      const spec = DENY_REASONS[reason as DenyReason];
      expect(spec).toBeDefined();
      expect({ http: spec.http, grpc: spec.grpc }).toEqual(want);
    });
  }

  it('holds exactly the design reasons plus plan_not_found and invalid_route_config', () => {
    expect([...ALL_DENY_REASONS].sort()).toEqual([...Object.keys(DESIGN_TABLE), ...Object.keys(BEYOND_DESIGN)].sort());
    for (const [reason, want] of Object.entries(BEYOND_DESIGN)) {
      const spec = DENY_REASONS[reason as DenyReason];
      expect({ http: spec.http, grpc: spec.grpc }, reason).toEqual(want);
    }
  });

  it('gRPC codes are the google.rpc.Code values', () => {
    expect(GrpcCode).toEqual({ OK: 0, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, INTERNAL: 13, UNAVAILABLE: 14, UNAUTHENTICATED: 16 });
  });

  it('no reason answers gRPC OK or UNAVAILABLE (a deny is never an allow, nor an infrastructure failure)', () => {
    for (const reason of ALL_DENY_REASONS) {
      expect(DENY_REASONS[reason].grpc, reason).not.toBe(GrpcCode.OK);
      expect(DENY_REASONS[reason].grpc, reason).not.toBe(GrpcCode.UNAVAILABLE);
      expect(DENY_REASONS[reason].http, reason).toBeGreaterThanOrEqual(400);
    }
  });

  it('reason names are snake_case (they are metric labels and log fields)', () => {
    for (const reason of ALL_DENY_REASONS) expect(reason).toMatch(/^[a-z]+(_[a-z]+)*$/);
  });

  it('every reason has a short, human message in one sentence', () => {
    for (const reason of ALL_DENY_REASONS) {
      const { message } = DENY_REASONS[reason];
      expect(message.length, reason).toBeGreaterThan(10);
      expect(message.length, reason).toBeLessThan(120);
      expect(message, reason).toMatch(/^[A-Z].*\.$/);
    }
  });

  it('invalid_api_key does not tell a revoked key from an unknown or malformed one', () => {
    expect(DENY_REASONS.invalid_api_key.message).not.toMatch(/revoked|unknown|malformed|checksum/i);
  });

  it('the table cannot be changed at run time', () => {
    expect(Object.isFrozen(DENY_REASONS)).toBe(true);
    expect(() => {
      (DENY_REASONS as Record<string, unknown>).missing_api_key = { http: 200, grpc: 0, message: 'ok' };
    }).toThrow(TypeError);
    expect(DENY_REASONS.missing_api_key.http).toBe(401);
  });
});

describe('wantsAuthenticateHeader', () => {
  it('is true for exactly the 401 reasons', () => {
    const want = ALL_DENY_REASONS.filter((r) => DESIGN_TABLE[r]?.http === 401);
    expect(want.sort()).toEqual(['disabled_api_key', 'expired_api_key', 'invalid_api_key', 'missing_api_key']);
    for (const reason of ALL_DENY_REASONS) expect(wantsAuthenticateHeader(reason), reason).toBe(want.includes(reason));
  });
});
