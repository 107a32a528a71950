// Throw-away certificates for TLS/mTLS tests of keygate's gRPC listener, made with the openssl
// command line in a temporary directory (P-256 keys, valid for one day):
//   server CA  → server certificate for localhost / 127.0.0.1 / ::1 (serverAuth)
//   client CA  → client certificate "envoy" (clientAuth)
//   rogue CA   → a client certificate no keygate trusts, and a server certificate no client trusts
// Nothing here is secret beyond the test run; cleanup() removes the directory.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  /** PEM certificate path */
  cert: string;
  /** PEM private key path */
  key: string;
}

export interface GrpcPki {
  dir: string;
  serverCa: CertFiles;
  clientCa: CertFiles;
  rogueCa: CertFiles;
  server: CertFiles;
  client: CertFiles;
  /** a client certificate signed by rogueCa */
  rogueClient: CertFiles;
  /** a server certificate for 127.0.0.1 signed by rogueCa */
  rogueServer: CertFiles;
  read(path: string): Buffer;
  cleanup(): void;
}

function openssl(dir: string, args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function makeCa(dir: string, name: string): CertFiles {
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  openssl(dir, [
    'req', '-x509', ...KEY_ARGS, '-keyout', files.key, '-out', files.cert, '-days', '1',
    '-subj', `/CN=keygate test ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return files;
}

function makeLeaf(dir: string, name: string, ca: CertFiles, usage: 'serverAuth' | 'clientAuth'): CertFiles {
  const files = { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  const san = usage === 'serverAuth' ? 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n' : 'subjectAltName=DNS:envoy.test\n';
  writeFileSync(ext, `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=${usage}\n${san}`);
  openssl(dir, ['req', ...KEY_ARGS, '-keyout', files.key, '-out', csr, '-subj', `/CN=${name}`]);
  openssl(dir, [
    'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial',
    '-out', files.cert, '-days', '1', '-extfile', ext,
  ]);
  return files;
}

export function makeGrpcPki(): GrpcPki {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-grpc-pki-'));
  const serverCa = makeCa(dir, 'server-ca');
  const clientCa = makeCa(dir, 'client-ca');
  const rogueCa = makeCa(dir, 'rogue-ca');
  return {
    dir,
    serverCa,
    clientCa,
    rogueCa,
    server: makeLeaf(dir, 'server', serverCa, 'serverAuth'),
    client: makeLeaf(dir, 'envoy', clientCa, 'clientAuth'),
    rogueClient: makeLeaf(dir, 'rogue-client', rogueCa, 'clientAuth'),
    rogueServer: makeLeaf(dir, 'rogue-server', rogueCa, 'serverAuth'),
    read: (path) => readFileSync(path),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
