// CheckInput: the parts of an Envoy CheckRequest the Check path reads, already normalised
// (lower-case header names, repeated headers kept apart). The gRPC adapter builds it.

export interface CheckInput {
  /** lower-case header name → every value sent under it (pseudo-headers included) */
  headers: Map<string, string[]>;
  /** request path with query string (`:path`), if Envoy sent one */
  path?: string;
  method?: string;
  host?: string;
  /** Envoy's x-request-id, for logs */
  requestId?: string;
  /** the downstream peer address Envoy reports (attributes.source) */
  sourceAddress?: string;
  /** per-route check_settings.context_extensions */
  contextExtensions: Record<string, string>;
}

export function firstHeader(input: CheckInput, name: string): string | undefined {
  return input.headers.get(name)?.[0];
}
