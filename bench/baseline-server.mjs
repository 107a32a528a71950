#!/usr/bin/env node
// The baseline of `npm run bench`: a bare grpc-js ext_authz server with stock settings that
// answers every Check with OK and does nothing else. keygate's throughput is reported as a
// ratio to this server's, measured in the same run on the same core.
//
//   node bench/baseline-server.mjs [--host 127.0.0.1] [--port 0]
// Prints `listening <port>` on stdout once bound; SIGTERM/SIGINT stop it.
import { grpc, loadProtos } from './lib/protos.mjs';

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const host = arg('host', '127.0.0.1');
const port = Number(arg('port', '0'));
const { service } = loadProtos();
const OK = { status: { code: 0 }, ok_response: {} };

const server = new grpc.Server();
server.addService(service, {
  Check(_call, callback) {
    callback(null, OK);
  },
});
server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) {
    process.stderr.write(`baseline-server: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`listening ${bound}\n`);
});
const stop = () => server.tryShutdown(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
