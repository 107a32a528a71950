// docker-compose.yml, the Dockerfile, the Envoy config, Prometheus and Grafana must agree with
// each other: files that are mounted exist, host names are services, ports line up, images are
// pinned, and the dashboard only queries metrics keygate exports. No Docker engine needed.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, posix, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { KEYGATE_METRICS, metricForSeries } from './keygate-metrics';

const REPO = resolve(__dirname, '../..');
const at = (...p: string[]): string => join(REPO, ...p);
const readYaml = (file: string): any => parse(readFileSync(file, 'utf8'));

type Obj = Record<string, any>;

const COMPOSE_FILE = at('docker-compose.yml');
const compose = readYaml(COMPOSE_FILE) as Obj;
const services = (compose.services ?? {}) as Record<string, Obj>;
const envoyCfg = readYaml(at('envoy/envoy.yaml')) as Obj;
const dockerfile = readFileSync(at('Dockerfile'), 'utf8');

// Defaults from DESIGN.md's configuration table (KEYGATE_GRPC_PORT / KEYGATE_HTTP_PORT).
const DEFAULT_GRPC_PORT = 9191;
const DEFAULT_HTTP_PORT = 9464;

function service(name: string): Obj {
  const s = services[name];
  expect(s, `docker-compose.yml has no service "${name}"`).toBeDefined();
  return s!;
}

function envOf(s: Obj): Record<string, string> {
  const env = s.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((e: string) => {
        const i = e.indexOf('=');
        return i < 0 ? [e, ''] : [e.slice(0, i), e.slice(i + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

/** Bind mounts of a service (short and long syntax); named volumes are skipped. */
function bindMounts(s: Obj): Mount[] {
  const out: Mount[] = [];
  for (const v of (s.volumes ?? []) as unknown[]) {
    if (typeof v === 'string') {
      const [source, target, mode] = v.split(':');
      if (source && target && /^[./~]/.test(source)) out.push({ source, target, readOnly: (mode ?? '').split(',').includes('ro') });
    } else if (v && typeof v === 'object' && (v as Obj).type === 'bind') {
      const o = v as Obj;
      out.push({ source: String(o.source), target: String(o.target), readOnly: o.read_only === true });
    }
  }
  return out;
}

/** The host path behind a path inside a service's container (via its bind mounts). */
function hostPathOf(s: Obj, containerPath: string): string | undefined {
  for (const m of bindMounts(s)) {
    const target = m.target.replace(/\/$/, '');
    if (containerPath === target || containerPath.startsWith(`${target}/`)) {
      return resolve(dirname(COMPOSE_FILE), m.source, posix.relative(target, containerPath));
    }
  }
  return undefined;
}

/** Container ports a service publishes ("127.0.0.1:9191:9191" → 9191). */
function publishedContainerPorts(s: Obj): number[] {
  return ((s.ports ?? []) as unknown[]).map((p) => {
    if (typeof p === 'object' && p !== null) return Number((p as Obj).target);
    const parts = String(p).split('/')[0]!.split(':');
    return Number(parts[parts.length - 1]);
  });
}

/** "host:port" of a URL or address. */
function hostPort(url: string): { host: string; port: number } {
  const u = new URL(url.includes('://') ? url : `tcp://${url}`);
  return { host: u.hostname, port: Number(u.port) };
}

function imageRef(ref: string): { name: string; tag?: string; digest?: string } {
  const [nameTag, digest] = ref.split('@');
  const slash = nameTag!.lastIndexOf('/');
  const colon = nameTag!.lastIndexOf(':');
  if (colon > slash) return { name: nameTag!.slice(0, colon), tag: nameTag!.slice(colon + 1), digest };
  return { name: nameTag!, digest };
}

function expectPinned(ref: string, where: string): void {
  const { tag, digest } = imageRef(ref);
  expect(tag !== undefined || digest !== undefined, `${where}: image "${ref}" has no tag (it would float on :latest)`).toBe(true);
  if (tag !== undefined) expect(tag, `${where}: image "${ref}" uses a "latest" tag`).not.toMatch(/latest/i);
}

/** The envoy.yaml cluster's single endpoint address. */
function envoyClusterEndpoint(name: string): { host: string; port: number } {
  const c = (envoyCfg.static_resources.clusters as Obj[]).find((x) => x.name === name);
  expect(c, `envoy.yaml has no cluster "${name}"`).toBeDefined();
  const sa = c!.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
  return { host: String(sa.address), port: Number(sa.port_value) };
}

function envoyListener(name: string): Obj {
  const l = (envoyCfg.static_resources.listeners as Obj[]).find((x) => x.name === name);
  expect(l, `envoy.yaml has no listener "${name}"`).toBeDefined();
  return l!;
}

function hcmOf(listener: Obj): Obj {
  return (listener.filter_chains[0].filters as Obj[]).find((f) => f.name === 'envoy.filters.network.http_connection_manager')!
    .typed_config as Obj;
}

/** Docker's EXPOSE ports in the Dockerfile. */
function exposedPorts(): number[] {
  return [...dockerfile.matchAll(/^EXPOSE\s+(.+)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/).map((p) => Number(p.split('/')[0])));
}

const keygateGrpcPort = (): number => Number(envOf(service('keygate')).KEYGATE_GRPC_PORT ?? DEFAULT_GRPC_PORT);
const keygateHttpPort = (): number => Number(envOf(service('keygate')).KEYGATE_HTTP_PORT ?? DEFAULT_HTTP_PORT);

// ────────────────────────────────────────────────────────────────────────────────────────────

describe('docker-compose.yml: services and files', () => {
  it('has the demo services', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['envoy', 'grafana', 'keygate', 'keygate-init', 'prometheus', 'redis', 'upstream'].sort(),
    );
  });

  it('pins every image to a tag or digest (no latest), Dockerfile FROM lines included', () => {
    for (const [name, s] of Object.entries(services)) {
      expect(s.image ?? s.build, `service ${name} has neither image nor build`).toBeDefined();
      if (s.image) expectPinned(String(s.image), `service ${name}`);
    }
    const args = Object.fromEntries([...dockerfile.matchAll(/^ARG\s+(\w+)=(\S+)/gm)].map((m) => [m[1]!, m[2]!]));
    const froms = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]!.replace(/^\$\{(\w+)\}$/, (_x, v: string) => args[v] ?? _x));
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expectPinned(f, 'Dockerfile FROM');
  });

  it('every bind-mounted host path exists', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const m of bindMounts(s)) {
        const host = resolve(dirname(COMPOSE_FILE), m.source);
        expect(existsSync(host), `service ${name} mounts ${m.source}, which does not exist`).toBe(true);
        expect(m.readOnly, `service ${name} should mount ${m.source} read-only`).toBe(true);
      }
    }
  });

  it('mounts the files each service is configured to read', () => {
    const envoyCmd = (service('envoy').command ?? []) as string[];
    const configArg = envoyCmd[envoyCmd.indexOf('-c') + 1] ?? '/etc/envoy/envoy.yaml';
    expect(hostPathOf(service('envoy'), configArg)).toBe(at('envoy/envoy.yaml'));
    expect(hostPathOf(service('prometheus'), '/etc/prometheus/prometheus.yml')).toBe(at('deploy/prometheus/prometheus.yml'));
    expect(hostPathOf(service('grafana'), '/etc/grafana/provisioning')).toBe(at('deploy/grafana/provisioning'));
    for (const sub of ['datasources', 'dashboards']) {
      const dir = at('deploy/grafana/provisioning', sub);
      expect(existsSync(dir) && readdirSync(dir).some((f) => /\.ya?ml$/.test(f)), `${dir} has no provisioning YAML`).toBe(true);
    }
    const home = envOf(service('grafana')).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    if (home) expect(existsSync(hostPathOf(service('grafana'), home) ?? ''), `grafana home dashboard ${home}`).toBe(true);
  });

  it('builds keygate (and its init job) from the Dockerfile in the repository root', () => {
    for (const name of ['keygate', 'keygate-init']) {
      const s = service(name);
      const build = typeof s.build === 'string' ? { context: s.build } : (s.build as Obj | undefined);
      expect(build, `${name} must build the keygate image`).toBeDefined();
      const context = resolve(dirname(COMPOSE_FILE), String(build!.context ?? '.'));
      expect(statSync(context).isDirectory()).toBe(true);
      expect(existsSync(join(context, String(build!.dockerfile ?? 'Dockerfile')))).toBe(true);
    }
    expect(service('keygate-init').image).toBe(service('keygate').image);
  });

  it('keygate-init imports examples/demo-seed.json with keygate-admin once Redis is healthy', () => {
    const init = service('keygate-init');
    expect(init.command).toEqual(['node', 'bin/keygate-admin.js', 'import', '/seed/demo-seed.json']);
    expect(existsSync(at('bin/keygate-admin.js')), 'bin/keygate-admin.js (the CLI the job runs)').toBe(true);
    const seed = hostPathOf(init, '/seed/demo-seed.json');
    expect(seed).toBe(at('examples/demo-seed.json'));
    expect(existsSync(seed!), 'examples/demo-seed.json must exist (keygate-init loads it)').toBe(true);
    expect(() => JSON.parse(readFileSync(seed!, 'utf8')), 'examples/demo-seed.json is not valid JSON').not.toThrow();
    expect(init.depends_on?.redis?.condition).toBe('service_healthy');
    expect(String(init.restart ?? 'no')).toBe('no');
    expect(envOf(init).REDIS_URL).toBe(envOf(service('keygate')).REDIS_URL);
  });

  it('keygate talks to the redis service, which has a healthcheck', () => {
    const { host, port } = hostPort(envOf(service('keygate')).REDIS_URL ?? '');
    expect(host).toBe('redis');
    expect(port).toBe(6379);
    expect(service('redis').healthcheck?.test).toBeDefined();
    expect(service('keygate').depends_on?.redis?.condition).toBe('service_healthy');
  });

  it('Envoy starts after keygate is healthy and the demo keys are loaded', () => {
    const dep = service('envoy').depends_on as Obj;
    expect(dep.keygate?.condition).toBe('service_healthy');
    expect(dep['keygate-init']?.condition).toBe('service_completed_successfully');
    expect(dep.upstream).toBeDefined();
  });
});

describe('ports and host names line up', () => {
  it("Envoy's keygate cluster is keygate:<KEYGATE_GRPC_PORT> (default 9191), which the image exposes", () => {
    const ep = envoyClusterEndpoint('keygate');
    expect(services[ep.host], `envoy.yaml points at host "${ep.host}", not a compose service`).toBeDefined();
    expect(ep.port).toBe(keygateGrpcPort());
    expect(ep.port).toBe(DEFAULT_GRPC_PORT);
    expect(exposedPorts()).toContain(ep.port);
    const extAuthz = (hcmOf(envoyListener('ingress_http')).http_filters as Obj[]).find((f) => f.name === 'envoy.filters.http.ext_authz')!;
    expect(extAuthz.typed_config.grpc_service.envoy_grpc.cluster_name).toBe('keygate');
  });

  it("Envoy's upstream cluster is the upstream service on the port it listens on", () => {
    const ep = envoyClusterEndpoint('upstream');
    expect(services[ep.host], `envoy.yaml points at host "${ep.host}", not a compose service`).toBeDefined();
    // mendhak/http-https-echo listens on HTTP_PORT (its default is 8080).
    expect(ep.port).toBe(Number(envOf(service(ep.host)).HTTP_PORT ?? 8080));
  });

  it("Envoy publishes its ingress listener's port", () => {
    const port = envoyListener('ingress_http').address.socket_address.port_value;
    expect(port).toBe(8080);
    expect(publishedContainerPorts(service('envoy'))).toContain(port);
    // The admin port is loopback-only inside the container: publishing it would be pointless.
    expect(publishedContainerPorts(service('envoy'))).not.toContain(envoyCfg.admin.address.socket_address.port_value);
  });

  it('Prometheus scrapes keygate:<KEYGATE_HTTP_PORT>/metrics (default 9464), which the image exposes', () => {
    const prom = readYaml(at('deploy/prometheus/prometheus.yml')) as Obj;
    const job = (prom.scrape_configs as Obj[]).find((j) => j.job_name === 'keygate');
    expect(job, 'prometheus.yml has no keygate job').toBeDefined();
    expect(job!.metrics_path ?? '/metrics').toBe('/metrics');
    const targets: { host: string; port: number }[] = [
      ...((job!.static_configs ?? []) as Obj[]).flatMap((sc) => (sc.targets as string[]).map(hostPort)),
      ...((job!.dns_sd_configs ?? []) as Obj[]).flatMap((sd) => (sd.names as string[]).map((n) => ({ host: n, port: Number(sd.port) }))),
    ];
    expect(targets.length).toBeGreaterThan(0);
    for (const t of targets) {
      expect(t.host).toBe('keygate');
      expect(t.port).toBe(keygateHttpPort());
    }
    expect(keygateHttpPort()).toBe(DEFAULT_HTTP_PORT);
    expect(exposedPorts()).toContain(DEFAULT_HTTP_PORT);
  });

  it("Prometheus scrapes Envoy through the stats listener, which proxies exactly that path to Envoy's admin", () => {
    const prom = readYaml(at('deploy/prometheus/prometheus.yml')) as Obj;
    const job = (prom.scrape_configs as Obj[]).find((j) => j.job_name === 'envoy');
    expect(job, 'prometheus.yml has no envoy job').toBeDefined();
    const targets = ((job!.static_configs ?? []) as Obj[]).flatMap((sc) => (sc.targets as string[]).map(hostPort));
    expect(targets).toEqual([{ host: 'envoy', port: 9902 }]);
    const listener = (envoyCfg.static_resources.listeners as Obj[]).find((l) => l.address.socket_address.port_value === 9902);
    expect(listener, 'envoy.yaml has no listener on 9902').toBeDefined();
    const routes = hcmOf(listener!).route_config.virtual_hosts.flatMap((vh: Obj) => vh.routes) as Obj[];
    const route = routes.find((r) => r.match.path === job!.metrics_path);
    expect(route?.route?.cluster, `no route for ${job!.metrics_path} on the stats listener`).toBeDefined();
    expect(envoyClusterEndpoint(route!.route.cluster)).toEqual({
      host: envoyCfg.admin.address.socket_address.address,
      port: envoyCfg.admin.address.socket_address.port_value,
    });
  });

  it("Grafana's datasource is the prometheus service on Prometheus' port", () => {
    const ds = readYaml(at('deploy/grafana/provisioning/datasources/prometheus.yml')) as Obj;
    const prom = (ds.datasources as Obj[]).find((d) => d.type === 'prometheus');
    expect(prom).toBeDefined();
    const { host, port } = hostPort(String(prom!.url));
    expect(services[host], `datasource points at "${host}", not a compose service`).toBeDefined();
    expect(port).toBe(9090); // Prometheus' default --web.listen-address
    expect(publishedContainerPorts(service(host))).toContain(port);
  });

  it("Grafana's dashboard provider reads the mounted dashboards directory", () => {
    const prov = readYaml(at('deploy/grafana/provisioning/dashboards/keygate.yml')) as Obj;
    const provider = (prov.providers as Obj[])[0]!;
    expect(provider.type).toBe('file');
    expect(hostPathOf(service('grafana'), provider.options.path)).toBe(at('deploy/grafana/dashboards'));
    expect(existsSync(at('deploy/grafana/dashboards/keygate.json'))).toBe(true);
  });
});

describe('the Grafana dashboard', () => {
  const dashboard = JSON.parse(readFileSync(at('deploy/grafana/dashboards/keygate.json'), 'utf8')) as Obj;
  const panels = dashboard.panels as Obj[];
  const exprs = panels.flatMap((p) => (p.targets as Obj[]).map((t) => String(t.expr ?? '')));
  const datasourceUid = (
    (readYaml(at('deploy/grafana/provisioning/datasources/prometheus.yml')) as Obj).datasources as Obj[]
  ).find((d) => d.type === 'prometheus')!.uid;

  it('has a uid, a title, a schemaVersion and panels', () => {
    expect(typeof dashboard.uid).toBe('string');
    expect(dashboard.uid.length).toBeGreaterThan(0);
    expect(typeof dashboard.title).toBe('string');
    expect(Number.isInteger(dashboard.schemaVersion)).toBe(true);
    expect(panels.length).toBeGreaterThan(0);
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
  });

  it('every panel has a title and at least one target with a PromQL expression on the provisioned datasource', () => {
    for (const p of panels) {
      expect(typeof p.title, JSON.stringify(p).slice(0, 80)).toBe('string');
      expect(Array.isArray(p.targets) && p.targets.length > 0, `panel "${p.title}" has no targets`).toBe(true);
      for (const t of p.targets as Obj[]) {
        expect(String(t.expr ?? '').trim(), `panel "${p.title}" target ${t.refId} has no expr`).not.toBe('');
        expect((t.datasource ?? p.datasource)?.uid, `panel "${p.title}" datasource`).toBe(datasourceUid);
      }
    }
  });

  it('queries only metrics keygate exports (histograms via _bucket/_sum/_count)', () => {
    const used = new Set(exprs.flatMap((e) => e.match(/\bkeygate_[a-z_]+\b/g) ?? []));
    expect(used.size).toBeGreaterThan(0);
    for (const series of used) {
      const metric = metricForSeries(series);
      expect(metric, `dashboard queries ${series}, which is not in test/deploy/keygate-metrics.ts`).toBeDefined();
      if (metric!.type === 'histogram') expect(series, `histogram ${metric!.name} must be queried by a suffix`).not.toBe(metric!.name);
    }
  });

  it('uses only label names the metrics have', () => {
    for (const e of exprs) {
      for (const m of e.matchAll(/\b(keygate_[a-z_]+)\{([^}]*)\}/g)) {
        const metric = metricForSeries(m[1]!);
        if (!metric) continue; // reported by the test above
        const labels = [...m[2]!.matchAll(/(\w+)\s*(?:=~|!~|!=|=)/g)].map((x) => x[1]!);
        for (const l of labels) expect([...metric.labels, 'le'], `${m[1]} has no label ${l}`).toContain(l);
      }
      for (const m of e.matchAll(/\bby\s*\(([^)]*)\)\s*\(\s*(?:rate|increase)\(\s*(keygate_[a-z_]+)/g)) {
        const metric = metricForSeries(m[2]!);
        if (!metric) continue;
        for (const l of m[1]!.split(',').map((x) => x.trim()).filter(Boolean)) {
          expect([...metric.labels, 'le'], `${m[2]} has no label ${l}`).toContain(l);
        }
      }
    }
  });

  it('has the panels it exists for: checks by decision/reason, latency, top owners, quota denials, Redis errors, cache hit ratio', () => {
    const all = exprs.join('\n');
    expect(all).toMatch(/sum by \(decision, reason\) \(rate\(keygate_checks_total/);
    expect(all).toMatch(/histogram_quantile\(0\.5, [^\n]*keygate_check_duration_seconds_bucket/);
    expect(all).toMatch(/histogram_quantile\(0\.99, [^\n]*keygate_check_duration_seconds_bucket/);
    expect(all).toMatch(/topk\(\d+, [^\n]*keygate_usage_total/);
    expect(all).toMatch(/keygate_quota_denials_total/);
    expect(all).toMatch(/keygate_redis_errors_total/);
    expect(all).toMatch(/keygate_key_cache_hits_total[^\n]*keygate_key_cache_misses_total/);
  });

  it('the metric list names each metric once, with valid Prometheus names', () => {
    const names = KEYGATE_METRICS.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
    for (const m of KEYGATE_METRICS) {
      expect(m.name).toMatch(/^keygate_[a-z_]+$/);
      if (m.type === 'counter') expect(m.name).toMatch(/_total$/);
    }
  });
});

describe('Dockerfile and .dockerignore', () => {
  const stages = dockerfile.split(/^FROM\s+/m).slice(1);
  const runtime = stages.at(-1) ?? '';

  it('builds in a node:20-bookworm-slim stage with npm ci and npm run build, then drops dev dependencies', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
    expect(stages.length).toBe(2);
    expect(stages[0]).toMatch(/^\$\{NODE_IMAGE\} AS build/);
    expect(stages[0]).toMatch(/RUN npm ci\b/);
    expect(stages[0]).toMatch(/npm run build/);
    expect(stages[0]).toMatch(/npm prune --omit=dev|npm ci --omit=dev/);
  });

  it('the runtime stage copies dist, protos, bin and node_modules, runs as node, exposes 9191 and 9464', () => {
    expect(runtime).toMatch(/^\$\{NODE_IMAGE\} AS runtime/);
    for (const dir of ['dist', 'protos', 'bin', 'node_modules']) {
      expect(runtime).toMatch(new RegExp(`COPY --from=build /app/${dir} \\./${dir}`));
    }
    expect(runtime).toMatch(/^USER node$/m);
    expect(exposedPorts().sort()).toEqual([DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT].sort());
  });

  it('health-checks /healthz with node (no curl in the slim image) and starts dist/src/main.js', () => {
    const hc = /^HEALTHCHECK\s[\s\S]*?CMD\s+(\[.*\])$/m.exec(runtime);
    expect(hc, 'no HEALTHCHECK in the runtime stage').not.toBeNull();
    const cmd = JSON.parse(hc![1]!) as string[];
    expect(cmd[0]).toBe('node');
    expect(cmd.join(' ')).toContain('/healthz');
    expect(cmd.join(' ')).toContain('9464');
    expect(cmd.join(' ')).not.toMatch(/curl|wget/);
    const start = /^CMD\s+(\[.*\])$/m.exec(runtime.replace(/^HEALTHCHECK[\s\S]*?CMD\s+\[.*\]$/m, ''));
    expect(JSON.parse(start![1]!)).toEqual(['node', 'dist/src/main.js']);
    // dist/src/main.js is what tsc makes of src/main.ts (rootDir ".", outDir "dist").
    const pkg = JSON.parse(readFileSync(at('package.json'), 'utf8')) as Obj;
    expect(pkg.main).toBe('dist/src/main.js');
    expect(pkg.scripts.build).toMatch(/^tsc\b/);
    expect(existsSync(at('src/main.ts'))).toBe(true);
  });

  it('copies only paths that exist and that .dockerignore keeps in the context', () => {
    const ignored = readFileSync(at('.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(ignored.some((l) => l.startsWith('!')), 'negated .dockerignore patterns are not handled by this test').toBe(false);
    for (const must of ['node_modules', 'dist', '.git']) expect(ignored).toContain(must);
    const copied = [...stages[0]!.matchAll(/^COPY\s+(?!--from)(.+)\s+\S+$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
    expect(copied).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'tsconfig.json', 'src', 'protos', 'bin']));
    for (const p of copied) {
      expect(existsSync(at(p)), `Dockerfile copies ${p}, which does not exist`).toBe(true);
      expect(ignored.includes(p) || ignored.includes(`${p}/`), `.dockerignore excludes ${p}, which the build copies`).toBe(false);
    }
  });
});

describe('promtool', () => {
  it('accepts deploy/prometheus/prometheus.yml', () => {
    const r = spawnSync('promtool', ['check', 'config', at('deploy/prometheus/prometheus.yml')], { encoding: 'utf8' });
    if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(
        'promtool not found on PATH: this test checks deploy/prometheus/prometheus.yml with it. ' +
          'Install it (Debian: apt-get install -y prometheus, which ships promtool) and run the tests again.',
      );
    }
    expect(r.status, `promtool check config failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
  });
});
