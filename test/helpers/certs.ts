// Throw-away TLS material for tests, made with the `openssl` command in a temporary directory:
// a CA, a server certificate it signs (CN 127.0.0.1, SAN IP:127.0.0.1, IP:::1, DNS:localhost; usable
// as server and client certificate, so Redis replication and cluster links can use it too), and a
// second, unrelated CA that must NOT be trusted for that server. EC P-256 keys: fast to make.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCerts {
  dir: string;
  /** PEM file of the CA that signed the server certificate */
  caFile: string;
  /** PEM file of another CA (did not sign anything here): trusting it must fail */
  otherCaFile: string;
  certFile: string;
  keyFile: string;
  /** Removes the directory. */
  remove(): void;
}

export function opensslPath(): string {
  const found = spawnSync('sh', ['-c', 'command -v openssl'], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status !== 0 || !path) {
    throw new Error('openssl not found on PATH: the TLS tests make throw-away certificates with it (Debian: apt-get install -y openssl)');
  }
  return path;
}

export function makeTestCerts(): TestCerts {
  const openssl = opensslPath();
  const dir = mkdtempSync(join(tmpdir(), 'keygate-certs-'));
  const run = (...args: string[]) => execFileSync(openssl, args, { cwd: dir, stdio: 'pipe' });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string) =>
    run('req', '-x509', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=keygate test ${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  ca('ca');
  ca('other-ca');
  run('req', '-new', ...ecKey, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(
    join(dir, 'server.ext'),
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost',
      '',
    ].join('\n'),
  );
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext');
  return {
    dir,
    caFile: join(dir, 'ca.crt'),
    otherCaFile: join(dir, 'other-ca.crt'),
    certFile: join(dir, 'server.crt'),
    keyFile: join(dir, 'server.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
