// The operator's HTTP endpoints: /metrics (Prometheus text format), /healthz (the process is
// alive) and /readyz (the store answers and keygate is not draining; 503 with the reason otherwise).
import http from 'node:http';

/** Where /readyz reads readiness: null when ready, else the reason (HealthState fits). */
export interface ReadinessView {
  readonly problem: string | null;
}

/** Where /metrics reads the exposition (a prom-client Registry fits; so does a cluster aggregate). */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  health: ReadinessView;
  registry: MetricsSource;
}

export function createHttpServer(opts: HttpServerOptions): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, 'text/plain', 'method not allowed\n');
    }
    if (path === '/healthz') return send(res, 200, 'text/plain', 'ok\n');
    if (path === '/readyz') {
      const problem = opts.health.problem;
      return problem === null ? send(res, 200, 'text/plain', 'ready\n') : send(res, 503, 'text/plain', `not ready: ${problem}\n`);
    }
    if (path === '/metrics') {
      opts.registry.metrics().then(
        (text) => send(res, 200, opts.registry.contentType, text),
        () => send(res, 500, 'text/plain', 'metrics unavailable\n'),
      );
      return;
    }
    send(res, 404, 'text/plain', 'not found\n');
  });
}

function send(res: http.ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

export function listenHttp(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
}
