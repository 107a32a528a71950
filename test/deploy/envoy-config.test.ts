// Proves envoy/envoy.yaml loadable without an Envoy binary: it is validated field by field
// against Envoy's v3 protos (test/helpers/envoy-validate.ts), the validator itself is
// checked against known-good and known-bad configs, and the keygate-specific choices in our
// config are asserted one by one.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  formatIssues,
  loadEnvoySchema,
  validateEnvoyConfig,
  validateEnvoyFile,
  validateEnvoyYaml,
  type EnvoyValidationResult,
} from '../helpers/envoy-validate';

const REPO = resolve(__dirname, '../..');
const ENVOY_YAML = join(REPO, 'envoy/envoy.yaml');
// Envoy's own example configs (read in place, not copied into the repository). Where this
// directory does not exist, the "reference configs" tests are reported as skipped.
const EXAMPLES = process.env.ENVOY_EXAMPLES_DIR ?? resolve(REPO, '..', 'shared', 'reference', 'envoy-examples');
const HAVE_EXAMPLES = existsSync(join(EXAMPLES, 'good')) && existsSync(join(EXAMPLES, 'bad-pre-1.22'));
const ourText = readFileSync(ENVOY_YAML, 'utf8');

type Obj = Record<string, any>;

/** Replaces exactly one occurrence of `from` in our config (fails loudly if the anchor moved). */
function mutate(from: string, to: string): string {
  const at = ourText.indexOf(from);
  expect(at, `mutation anchor not found in envoy.yaml: ${from}`).toBeGreaterThanOrEqual(0);
  expect(ourText.indexOf(from, at + 1), `mutation anchor is not unique: ${from}`).toBe(-1);
  return ourText.slice(0, at) + to + ourText.slice(at + from.length);
}

function messages(r: EnvoyValidationResult): string {
  return formatIssues(r.errors);
}

describe('the validator', () => {
  it('loads the Envoy v3 API (bootstrap and the extensions an Any can name)', () => {
    const schema = loadEnvoySchema();
    for (const name of [
      'envoy.config.bootstrap.v3.Bootstrap',
      'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
      'envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
      'envoy.extensions.filters.http.router.v3.Router',
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      'envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
      'envoy.extensions.access_loggers.file.v3.FileAccessLog',
      'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      'xds.type.v3.TypedStruct',
    ]) {
      expect(schema.allMessageNames, name).toContain(name);
    }
    // Only files needing non-vendored third-party protos are left out.
    expect(schema.skippedFiles.length).toBeLessThan(10);
  });

  it('reports a misspelled field with its path and a suggestion', () => {
    const r = validateEnvoyYaml(
      mutate(
        '          - name: envoy.filters.http.router\n            typed_config:\n              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n\n  # ──',
        '          - name: envoy.filters.http.router\n            typed_confg:\n              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n\n  # ──',
      ),
    );
    expect(messages(r)).toContain(
      'static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[1].typed_confg: unknown field "typed_confg" in envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter (did you mean "typed_config"?)',
    );
  });

  it('reports a misspelled field deep inside an Any body', () => {
    const r = validateEnvoyYaml(mutate('failure_mode_allow: false', 'failure_mode_alow: false'));
    expect(messages(r)).toMatch(
      /http_filters\[0\]\.typed_config\.failure_mode_alow: unknown field "failure_mode_alow" in envoy\.extensions\.filters\.http\.ext_authz\.v3\.ExtAuthz \(did you mean "failure_mode_allow"\?\)/,
    );
  });

  it('rejects an @type naming a message that does not exist', () => {
    const r = validateEnvoyYaml(
      mutate(
        '"@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz\n',
        '"@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuth\n',
      ),
    );
    expect(messages(r)).toContain(
      'http_filters[0].typed_config.@type: unknown type "envoy.extensions.filters.http.ext_authz.v3.ExtAuth" in "@type" (did you mean "envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"?)',
    );
  });

  it('rejects an @type without the type.googleapis.com/ prefix', () => {
    const r = validateEnvoyYaml(
      mutate(
        '"@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz\n',
        '"@type": envoy.extensions.filters.http.ext_authz.v3.ExtAuthz\n',
      ),
    );
    expect(messages(r)).toContain('must have the form "type.googleapis.com/<full message name>"');
  });

  it('validates an Any body as the message its @type names', () => {
    // The ext_authz settings sent under the router's type: none of them is a Router field.
    const r = validateEnvoyYaml(
      mutate(
        '"@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz\n',
        '"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n',
      ),
    );
    const text = messages(r);
    for (const f of ['transport_api_version', 'grpc_service', 'failure_mode_allow', 'status_on_error', 'include_peer_certificate']) {
      expect(text).toContain(`http_filters[0].typed_config.${f}: unknown field "${f}" in envoy.extensions.filters.http.router.v3.Router`);
    }
  });

  it('checks scalar types, well-known types, enums, oneofs and PGV rules', () => {
    const cases: [string, string, string][] = [
      // a number where map<string, string> wants a string
      ['keygate.cost: "5"', 'keygate.cost: 5', 'context_extensions["keygate.cost"]: expected a string, got number 5 (quote it)'],
      // Duration must be a "0.25s" string
      ['\n                timeout: 0.25s', '\n                timeout: 0.25', 'grpc_service.timeout: expected a duration string'],
      ['interval: 2s', 'interval: 2 seconds', 'health_checks[0].interval: expected a duration string'],
      // enum by name
      ['code: ServiceUnavailable', 'code: Unavailable', 'status_on_error.code: unknown envoy.type.v3.StatusCode value "Unavailable"'],
      // integer range
      ['max_requests: 1024', 'max_requests: -1', 'max_requests: -1 is out of range for uint32'],
      ['unhealthy_threshold: 2', 'unhealthy_threshold: 2.5', 'unhealthy_threshold: expected an integer (uint32), got number 2.5'],
      // BoolValue wrapper takes a bare bool
      ['use_remote_address: true', 'use_remote_address: "yes"', 'use_remote_address: expected true or false, got the string "yes"'],
      // oneof: prefix and path both set
      ['match: { prefix: "/public/" }', 'match: { prefix: "/public/", path: "/p" }', 'only one of "prefix", "path" may be set'],
      // PGV: required message
      ['    - timeout: 0.5s\n      interval: 2s', '    - interval: 2s', 'required field "timeout" of envoy.config.core.v3.HealthCheck is missing'],
      // PGV: duration > 0
      ['interval: 2s', 'interval: 0s', 'field "interval" must be longer than 0s'],
      // PGV: a cluster needs a name
      ['  - name: envoy_admin\n    type: STATIC\n', '  - type: STATIC\n', 'clusters[2].name: field "name" (absent, so "") must be at least 1 character long'],
      // field given under both its proto and JSON names
      ['stat_prefix: ingress_http', 'stat_prefix: ingress_http\n          statPrefix: other', 'field "stat_prefix" is set twice'],
    ];
    for (const [from, to, expected] of cases) {
      const r = validateEnvoyYaml(mutate(from, to));
      expect(messages(r), `${from} → ${to}`).toContain(expected);
    }
  });

  it('unpacks xds.type.v3.TypedStruct and validates its value as the type_url message', () => {
    // Our ext_authz config, re-wrapped as a TypedStruct (how UDPA/xDS tooling often ships it).
    const wrap = (mangle: (cfg: Obj) => void): unknown => {
      const cfg = parse(ourText) as Obj;
      const filters = cfg.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters as Obj[];
      const { '@type': typeUrl, ...value } = filters[0]!.typed_config as Obj;
      mangle(value);
      filters[0]!.typed_config = { '@type': 'type.googleapis.com/xds.type.v3.TypedStruct', type_url: typeUrl, value };
      return cfg;
    };
    expect(messages(validateEnvoyConfig(wrap(() => {})))).toBe('');
    const r = validateEnvoyConfig(
      wrap((v) => {
        v.grpc_servce = v.grpc_service;
        delete v.grpc_service;
      }),
    );
    expect(messages(r)).toContain(
      'http_filters[0].typed_config.value.grpc_servce: unknown field "grpc_servce" in envoy.extensions.filters.http.ext_authz.v3.ExtAuthz (did you mean "grpc_service"?)',
    );
  });

  it('rejects disabled: false (ExtAuthzPerRoute.disabled may only be true)', () => {
    const text = ourText.replace(/disabled: true/, 'disabled: false');
    expect(messages(validateEnvoyYaml(text))).toContain('field "disabled" must be true (got false)');
  });

  it('accepts lowerCamelCase JSON names and case-insensitive enum names, as Envoy does', () => {
    const camel = {
      admin: { address: { socketAddress: { address: '127.0.0.1', portValue: 9901 } } },
      staticResources: {
        listeners: [
          {
            name: 'in',
            address: { socketAddress: { address: '0.0.0.0', portValue: 8080 } },
            filterChains: [
              {
                filters: [
                  {
                    name: 'envoy.filters.network.http_connection_manager',
                    typedConfig: {
                      '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                      statPrefix: 'in',
                      codecType: 'auto',
                      routeConfig: { virtualHosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] },
                      httpFilters: [
                        {
                          name: 'envoy.filters.http.ext_authz',
                          typedConfig: {
                            '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
                            transportApiVersion: 'V3',
                            failureModeAllow: false,
                            statusOnError: { code: 503 },
                            grpcService: { envoyGrpc: { clusterName: 'authz' }, timeout: '0.25s' },
                          },
                        },
                        { name: 'envoy.filters.http.router', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
                      ],
                    },
                  },
                ],
              },
            ],
          },
        ],
        clusters: ['app', 'authz'].map((name) => ({
          name,
          type: 'STRICT_DNS',
          connectTimeout: '1s',
          loadAssignment: { clusterName: name, endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: name, portValue: 80 } } } }] }] },
        })),
      },
    };
    expect(messages(validateEnvoyConfig(camel))).toBe('');
    expect(messages(validateEnvoyYaml(mutate('codec_type: AUTO\n\n', 'codec_type: auto\n\n')))).toBe('');
  });

  it('reports YAML syntax problems (duplicate keys) with a line number', () => {
    const r = validateEnvoyYaml(mutate('stat_prefix: ingress_http', 'stat_prefix: ingress_http\n          stat_prefix: again'));
    expect(messages(r)).toMatch(/^\(yaml line \d+, column \d+\): Map keys must be unique/);
  });

  it('semantic rules: cluster references, router last, duplicate binds', () => {
    expect(messages(validateEnvoyYaml(mutate('envoy_grpc:\n                  cluster_name: keygate', 'envoy_grpc:\n                  cluster_name: keygat')))).toContain(
      'envoy_grpc.cluster_name: envoy_grpc service names cluster "keygat", which is not a static cluster (did you mean "keygate"?)',
    );
    expect(messages(validateEnvoyYaml(mutate('route: { cluster: upstream }\n                typed_per_filter_config:\n                  envoy.filters.http.ext_authz:\n                    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute\n                    disabled: true', 'route: { cluster: upstreams }\n                typed_per_filter_config:\n                  envoy.filters.http.ext_authz:\n                    "@type": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute\n                    disabled: true')))).toContain(
      'route names cluster "upstreams", which is not a static cluster',
    );
    const routerFirst = mutate(
      '          http_filters:\n          # ── external',
      '          http_filters:\n          - name: envoy.filters.http.router\n            typed_config:\n              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n          # ── external',
    );
    expect(messages(validateEnvoyYaml(routerFirst))).toContain('http_filters[0]: the router filter is terminal and must be the last HTTP filter');
    expect(messages(validateEnvoyYaml(mutate('port_value: 9902', 'port_value: 8080')))).toContain(
      'static_resources.listeners[1]: listener binds TCP 0.0.0.0:8080, already bound at static_resources.listeners[0]',
    );
  });
});

describe.skipIf(!HAVE_EXAMPLES)(`reference configs (${EXAMPLES})`, () => {
  it('passes the official ext_authz gRPC example (the validator is not too strict)', () => {
    const r = validateEnvoyFile(join(EXAMPLES, 'good/ext_authz__config__grpc-service__v3.yaml'));
    expect(messages(r)).toBe('');
  });

  // Envoy's example configs that use contrib extensions, whose protos live outside the
  // vendored envoy-api tree: they can only fail with "not vendored".
  const CONTRIB = new Set([
    'golang-http__envoy.yaml',
    'golang-network__envoy.yaml',
    'kafka-mesh__envoy.yaml',
    'kafka__envoy.yaml',
    'mysql__envoy.yaml',
    'postgres__envoy.yaml',
  ]);
  const list = (dir: string, re: RegExp): string[] => (HAVE_EXAMPLES ? readdirSync(join(EXAMPLES, dir)).filter((f) => re.test(f)) : ['-']);
  const goodFiles = list('good', /\.(ya?ml|json)$/);

  it.each(goodFiles)('good example %s: no errors (contrib extensions aside)', (file) => {
    const full = join(EXAMPLES, 'good', file);
    const r = file.endsWith('.json') ? validateEnvoyConfig(JSON.parse(readFileSync(full, 'utf8'))) : validateEnvoyFile(full);
    if (CONTRIB.has(file)) {
      expect(r.errors.length).toBeGreaterThan(0);
      for (const e of r.errors) expect(e.message).toContain('contrib extensions such as kafka, mysql or golang are not vendored');
    } else {
      expect(messages(r)).toBe('');
    }
  });

  it.each(list('good-xds', /\.ya?ml$/))('xDS resource file %s validates as a DiscoveryResponse', (file) => {
    const r = validateEnvoyFile(join(EXAMPLES, 'good-xds', file), { rootType: 'envoy.service.discovery.v3.DiscoveryResponse' });
    expect(messages(r)).toBe('');
  });

  const badFiles = list('bad-pre-1.22', /\.yaml$/);
  it('has the two pre-1.22 ext_authz examples', () => {
    expect(badFiles).toHaveLength(2);
  });

  it.each(badFiles)('pre-1.22 example %s is well-formed protobuf but refused: router typed_config has no @type', (file) => {
    const full = join(EXAMPLES, 'bad-pre-1.22', file);
    // By proto structure alone they are fine: `typed_config: {}` is an empty, valid Any.
    expect(messages(validateEnvoyFile(full, { semantic: false }))).toBe('');
    // What current Envoy refuses is the filter lookup by type URL (envoyproxy/envoy#20919).
    const r = validateEnvoyFile(full);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.path).toBe('static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[1]');
    expect(r.errors[0]!.message).toContain('HTTP filter "envoy.filters.http.router" has a typed_config without "@type"');
    expect(r.errors[0]!.message).toContain("Didn't find a registered implementation for 'envoy.filters.http.router' with type URL: ''");
  });

  it('the older grpc example also uses the deprecated cluster-level http2_protocol_options (a warning)', () => {
    const r = validateEnvoyFile(join(EXAMPLES, 'bad-pre-1.22/envoy-repo__examples__ext_authz__config__grpc-service__v3.pre-1.22.yaml'));
    expect(formatIssues(r.warnings)).toContain('static_resources.clusters[1].http2_protocol_options: field "http2_protocol_options" is deprecated');
  });
});

// ─────────────────────── our config, choice by choice ───────────────────────

describe('envoy/envoy.yaml', () => {
  const cfg = parse(ourText) as Obj;
  const listener = (name: string): Obj => {
    const l = (cfg.static_resources.listeners as Obj[]).find((x) => x.name === name);
    expect(l, `listener ${name}`).toBeDefined();
    return l!;
  };
  const hcmOf = (l: Obj): Obj => {
    const f = (l.filter_chains[0].filters as Obj[]).find((x) => x.name === 'envoy.filters.network.http_connection_manager');
    expect(f?.typed_config['@type']).toBe(
      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    );
    return f!.typed_config as Obj;
  };
  const cluster = (name: string): Obj => {
    const c = (cfg.static_resources.clusters as Obj[]).find((x) => x.name === name);
    expect(c, `cluster ${name}`).toBeDefined();
    return c!;
  };
  const ingress = hcmOf(listener('ingress_http'));
  const extAuthzFilter = (ingress.http_filters as Obj[]).find(
    (f) => f.typed_config?.['@type'] === 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
  )!;
  const extAuthz = extAuthzFilter.typed_config as Obj;
  const routes = ingress.route_config.virtual_hosts.flatMap((vh: Obj) => vh.routes) as Obj[];
  const perRoute = (r: Obj): Obj | undefined => r.typed_per_filter_config?.[extAuthzFilter.name];

  it('validates with no errors and no warnings (no deprecated fields)', () => {
    const r = validateEnvoyFile(ENVOY_YAML);
    expect(messages(r)).toBe('');
    expect(formatIssues(r.warnings)).toBe('');
  });

  it('listens on 0.0.0.0:8080', () => {
    expect(listener('ingress_http').address.socket_address).toEqual({ address: '0.0.0.0', port_value: 8080 });
  });

  it('ext_authz: gRPC to keygate, V3, fail closed with 503, explicit timeout, no body, no peer cert', () => {
    expect(extAuthzFilter.name).toBe('envoy.filters.http.ext_authz');
    expect(extAuthz.transport_api_version).toBe('V3');
    expect(extAuthz.grpc_service.envoy_grpc.cluster_name).toBe('keygate');
    expect(extAuthz.http_service).toBeUndefined();
    expect(extAuthz.failure_mode_allow).toBe(false);
    expect(['ServiceUnavailable', 503]).toContain(extAuthz.status_on_error.code);
    expect(extAuthz.grpc_service.timeout).toMatch(/^\d+(\.\d+)?s$/);
    const seconds = Number(String(extAuthz.grpc_service.timeout).slice(0, -1));
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThanOrEqual(1);
    expect(extAuthz.include_peer_certificate).toBe(false);
    expect(extAuthz).not.toHaveProperty('with_request_body');
    expect(extAuthz).not.toHaveProperty('clear_route_cache');
  });

  it('the router is the last HTTP filter and has a typed_config', () => {
    for (const l of ['ingress_http', 'prometheus_stats']) {
      const filters = hcmOf(listener(l)).http_filters as Obj[];
      expect(filters.at(-1)!.typed_config['@type']).toBe('type.googleapis.com/envoy.extensions.filters.http.router.v3.Router');
    }
  });

  it('keygate cluster: keygate:9191, HTTP/2 via HttpProtocolOptions, gRPC health check', () => {
    const kg = cluster('keygate');
    expect(kg.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({ address: 'keygate', port_value: 9191 });
    const opts = kg.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
    expect(opts['@type']).toBe('type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions');
    expect(opts.explicit_http_config).toHaveProperty('http2_protocol_options');
    expect(kg).not.toHaveProperty('http2_protocol_options'); // the deprecated spelling
    expect(kg.health_checks.some((h: Obj) => h.grpc_health_check !== undefined)).toBe(true);
  });

  it('upstream cluster: upstream:8080', () => {
    expect(cluster('upstream').load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({
      address: 'upstream',
      port_value: 8080,
    });
  });

  it('per-route context_extensions show keygate.scope and keygate.cost', () => {
    const ext = routes.map((r) => perRoute(r)?.check_settings?.context_extensions as Record<string, string> | undefined);
    const scope = ext.find((e) => e?.['keygate.scope'] !== undefined);
    const cost = ext.find((e) => e?.['keygate.cost'] !== undefined);
    expect(scope?.['keygate.scope']).toBe('admin');
    expect(cost?.['keygate.cost']).toBe('5');
    const adminRoute = routes.find((r) => perRoute(r)?.check_settings?.context_extensions?.['keygate.scope'] === 'admin')!;
    expect(adminRoute.match.path_separated_prefix ?? adminRoute.match.prefix).toBe('/admin');
  });

  it('some routes switch ext_authz off; the catch-all route keeps it on', () => {
    const disabled = routes.filter((r) => perRoute(r)?.disabled === true);
    expect(disabled.length).toBeGreaterThan(0);
    const last = routes.at(-1)!;
    expect(last.match).toEqual({ prefix: '/' });
    expect(perRoute(last)?.disabled).not.toBe(true);
  });

  it('per-route configs are keyed by the ext_authz filter name and typed ExtAuthzPerRoute', () => {
    for (const r of routes) {
      for (const [key, value] of Object.entries((r.typed_per_filter_config ?? {}) as Obj)) {
        expect(key).toBe(extAuthzFilter.name);
        expect(value['@type']).toBe('type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute');
      }
    }
  });

  it('normalizes paths before routing, so /public/../admin cannot skip the check', () => {
    expect(ingress.normalize_path).toBe(true);
    expect(ingress.merge_slashes).toBe(true);
    expect(ingress.path_with_escaped_slashes_action).toBe('REJECT_REQUEST');
    expect(ingress.use_remote_address).toBe(true);
    expect(ingress.common_http_protocol_options.headers_with_underscores_action).not.toBe('ALLOW');
  });

  it('access log prints keygate dynamic metadata, the request id, and no query string', () => {
    const log = (ingress.access_log as Obj[])[0]!;
    const format = JSON.stringify(log.typed_config.log_format);
    for (const key of ['key_id', 'owner', 'plan']) {
      expect(format).toContain(`%DYNAMIC_METADATA(envoy.filters.http.ext_authz:${key})%`);
    }
    expect(format).toContain('%REQ(X-REQUEST-ID)%');
    expect(format).not.toMatch(/%REQ\([^)]*PATH\)%/); // %REQ(:PATH)% would include the query
    expect(format).toContain('%REQ_WITHOUT_QUERY(');
    expect(format.toLowerCase()).not.toMatch(/authorization|x-api-key/);
  });

  it('admin binds 127.0.0.1:9901 only', () => {
    expect(cfg.admin.address.socket_address).toEqual({ address: '127.0.0.1', port_value: 9901 });
  });

  it('the :9902 stats listener exposes only GET /stats/prometheus, via the loopback admin', () => {
    const stats = listener('prometheus_stats');
    expect(stats.address.socket_address).toEqual({ address: '0.0.0.0', port_value: 9902 });
    const hcm = hcmOf(stats);
    const statRoutes = hcm.route_config.virtual_hosts.flatMap((vh: Obj) => vh.routes) as Obj[];
    const proxied = statRoutes.filter((r) => r.route !== undefined);
    expect(proxied).toHaveLength(1);
    expect(proxied[0]!.match.path).toBe('/stats/prometheus');
    expect(proxied[0]!.match.headers).toEqual([{ name: ':method', string_match: { exact: 'GET' } }]);
    expect(proxied[0]!.route.cluster).toBe('envoy_admin');
    expect(statRoutes.filter((r) => r.route === undefined).every((r) => r.direct_response?.status === 404)).toBe(true);
    expect(cluster('envoy_admin').load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address).toEqual({
      address: '127.0.0.1',
      port_value: 9901,
    });
    // No ext_authz on the stats listener, and nothing else routes to the admin cluster.
    expect((hcm.http_filters as Obj[]).map((f) => f.name)).toEqual(['envoy.filters.http.router']);
    expect(routes.some((r) => r.route?.cluster === 'envoy_admin')).toBe(false);
  });
});
