// TLS and mTLS on keygate's gRPC listener (KEYGATE_GRPC_TLS_CERT / _KEY / _CLIENT_CA), with
// throw-away certificates made by openssl: a client that trusts the server CA gets Checks and
// grpc.health.v1 answers; a plaintext client, a client that does not trust the CA, and (with
// mTLS) a client without a certificate or with one from another CA get no answer at all.
// keygate-admin check reaches both listeners with its --tls-* options.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { AUTHORIZATION_SERVICE, loadKeygateProtos } from '../../src/grpc/protos';
import { generateKey } from '../../src/keys/format';
import { makeDigester } from '../../src/keys/digest';
import { runAdmin } from '../helpers/admin-cli';
import { makeGrpcPki, type GrpcPki } from '../helpers/grpc-certs';
import { checkRequest, startTestKeygate, type TestKeygate } from '../helpers/keygate';
import { OfficialAuthorizationClient, type PlainMessage } from '../helpers/official-protos';

let pki: GrpcPki;
const SECRET = generateKey();

beforeAll(() => {
  pki = makeGrpcPki();
});
afterAll(() => pki?.cleanup());

type AnyClient = grpc.Client & Record<string, any>;

function sendCheck(client: AnyClient, request: PlainMessage): Promise<PlainMessage> {
  return new Promise((resolve, reject) => {
    client.Check(request, { deadline: Date.now() + 3000 }, (err: grpc.ServiceError | null, res: PlainMessage) => (err ? reject(err) : resolve(res)));
  });
}

function healthCheck(client: AnyClient, service = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    client.Check({ service }, { deadline: Date.now() + 3000 }, (err: grpc.ServiceError | null, res: { status: string }) => (err ? reject(err) : resolve(res.status)));
  });
}

interface Clients {
  auth: AnyClient;
  health: AnyClient;
  close(): void;
}

function clients(port: number, creds: grpc.ChannelCredentials): Clients {
  const Auth = OfficialAuthorizationClient();
  const { HealthClient } = loadKeygateProtos();
  // one connection per test client (no reuse of a channel another client opened); the server
  // name checked against the certificate is localhost (SNI cannot carry an IP address)
  const options = { 'grpc.use_local_subchannel_pool': 1, 'grpc.ssl_target_name_override': 'localhost' };
  const auth = new Auth(`127.0.0.1:${port}`, creds, options) as AnyClient;
  const health = new HealthClient(`127.0.0.1:${port}`, creds, options) as AnyClient;
  return { auth, health, close: () => (auth.close(), health.close()) };
}

async function seeded(env: Record<string, string>): Promise<TestKeygate> {
  const kg = await startTestKeygate(env);
  kg.client.close(); // the helper's plaintext client is of no use here
  await kg.store.putPlan({ name: 'pro', limits: [{ count: 1000, window: 's' }] });
  await kg.store.createKey(
    { id: 'key_tls', owner: 'acme', plan: 'pro', scopes: [], status: 'active', createdAt: Date.now(), cidrs: [], metadata: {} },
    { digest: makeDigester()(SECRET) },
  );
  return kg;
}

const verdict = (res: PlainMessage) => (res.http_response === 'ok_response' ? 'allow' : JSON.parse((res.denied_response as { body: string }).body).error.code);

/** keygate-admin check against this keygate with the given options (the key sent is SECRET). */
const adminCheck = (port: number, ...args: string[]) =>
  runAdmin(['check', '--target', `127.0.0.1:${port}`, '--key', SECRET, '--timeout', '3000', '--json', ...args], { env: {} });

/** The call fails without any answer from keygate (the handshake or the connection failed). */
async function expectNoAnswer(c: Clients): Promise<void> {
  await expect(sendCheck(c.auth, checkRequest({ headers: { 'x-api-key': SECRET } }))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  await expect(healthCheck(c.health)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
}

describe('TLS on the gRPC listener', () => {
  let kg: TestKeygate;
  beforeAll(async () => {
    kg = await seeded({ KEYGATE_GRPC_TLS_CERT: pki.server.cert, KEYGATE_GRPC_TLS_KEY: pki.server.key });
  });
  afterAll(async () => kg?.close());

  it('logs that the listener speaks TLS', () => {
    const line = kg.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'keygate listening');
    expect(line?.grpc_tls).toBe('tls');
  });

  it('a client trusting the server CA gets Check verdicts and health answers', async () => {
    const c = clients(kg.grpcPort, grpc.credentials.createSsl(pki.read(pki.serverCa.cert)));
    try {
      expect(verdict(await sendCheck(c.auth, checkRequest({ headers: { 'x-api-key': SECRET } })))).toBe('allow');
      expect(verdict(await sendCheck(c.auth, checkRequest()))).toBe('missing_api_key');
      expect(await healthCheck(c.health)).toBe('SERVING');
      expect(await healthCheck(c.health, AUTHORIZATION_SERVICE)).toBe('SERVING');
    } finally {
      c.close();
    }
  });

  it('a plaintext client gets no answer', async () => {
    const c = clients(kg.grpcPort, grpc.credentials.createInsecure());
    try {
      await expectNoAnswer(c);
    } finally {
      c.close();
    }
  });

  it('a client that does not trust the server CA gets no answer', async () => {
    const c = clients(kg.grpcPort, grpc.credentials.createSsl(pki.read(pki.rogueCa.cert)));
    try {
      await expectNoAnswer(c);
    } finally {
      c.close();
    }
  });

  it('keygate-admin check gets a verdict with --tls-ca (and --tls-server-name for an IP target)', async () => {
    const run = await adminCheck(kg.grpcPort, '--tls-ca', pki.serverCa.cert, '--tls-server-name', 'localhost');
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ verdict: 'allow', keyId: 'key_tls' });
    expect(run.stdout + run.stderr).not.toContain(SECRET);
  });

  it('keygate-admin check without TLS, or trusting another CA, gets no verdict and says what to try', async () => {
    const plain = await adminCheck(kg.grpcPort);
    expect(plain.code).toBe(3);
    expect(plain.stderr).toMatch(/UNAVAILABLE.*--tls-ca/);
    const rogue = await adminCheck(kg.grpcPort, '--tls-ca', pki.rogueCa.cert, '--tls-server-name', 'localhost');
    expect(rogue.code).toBe(3);
    expect(rogue.stderr).toMatch(/UNAVAILABLE.*--tls-server-name/);
  });

  it('keygate-admin check names every bad TLS option at once, as a usage error', async () => {
    const run = await adminCheck(kg.grpcPort, '--tls-ca', '/nonexistent/ca.pem', '--tls-cert', pki.client.cert);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--tls-cert and --tls-key go together');
    expect(run.stderr).toContain('--tls-ca /nonexistent/ca.pem: ENOENT');
  });
});

describe('mTLS on the gRPC listener (KEYGATE_GRPC_TLS_CLIENT_CA)', () => {
  let kg: TestKeygate;
  beforeAll(async () => {
    kg = await seeded({
      KEYGATE_GRPC_TLS_CERT: pki.server.cert,
      KEYGATE_GRPC_TLS_KEY: pki.server.key,
      KEYGATE_GRPC_TLS_CLIENT_CA: pki.clientCa.cert,
    });
  });
  afterAll(async () => kg?.close());

  it('logs that the listener requires client certificates', () => {
    const line = kg.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'keygate listening');
    expect(line?.grpc_tls).toBe('mtls');
  });

  it('a client with a certificate signed by the client CA gets Check verdicts and health answers', async () => {
    const creds = grpc.credentials.createSsl(pki.read(pki.serverCa.cert), pki.read(pki.client.key), pki.read(pki.client.cert));
    const c = clients(kg.grpcPort, creds);
    try {
      expect(verdict(await sendCheck(c.auth, checkRequest({ headers: { 'x-api-key': SECRET } })))).toBe('allow');
      expect(verdict(await sendCheck(c.auth, checkRequest({ headers: { 'x-api-key': generateKey() } })))).toBe('invalid_api_key');
      expect(await healthCheck(c.health)).toBe('SERVING');
      expect(await healthCheck(c.health, AUTHORIZATION_SERVICE)).toBe('SERVING');
    } finally {
      c.close();
    }
  });

  it('a TLS client without a client certificate gets no answer', async () => {
    const c = clients(kg.grpcPort, grpc.credentials.createSsl(pki.read(pki.serverCa.cert)));
    try {
      await expectNoAnswer(c);
    } finally {
      c.close();
    }
  });

  it('keygate-admin check gets a verdict with --tls-cert and --tls-key, and none without them', async () => {
    const tls = ['--tls-ca', pki.serverCa.cert, '--tls-server-name', 'localhost'];
    const withCert = await adminCheck(kg.grpcPort, ...tls, '--tls-cert', pki.client.cert, '--tls-key', pki.client.key);
    expect(withCert.code, withCert.stderr).toBe(0);
    expect(JSON.parse(withCert.stdout)).toMatchObject({ verdict: 'allow', keyId: 'key_tls' });
    const without = await adminCheck(kg.grpcPort, ...tls);
    expect(without.code).toBe(3);
    expect(without.stderr).toMatch(/--tls-cert\/--tls-key/);
  });

  it('a client certificate from another CA gets no answer', async () => {
    const creds = grpc.credentials.createSsl(pki.read(pki.serverCa.cert), pki.read(pki.rogueClient.key), pki.read(pki.rogueClient.cert));
    const c = clients(kg.grpcPort, creds);
    try {
      await expectNoAnswer(c);
    } finally {
      c.close();
    }
  });

  it('a plaintext client gets no answer', async () => {
    const c = clients(kg.grpcPort, grpc.credentials.createInsecure());
    try {
      await expectNoAnswer(c);
    } finally {
      c.close();
    }
  });
});

describe('TLS settings', () => {
  it('a certificate without its key (or a client CA without TLS) is a configuration error', () => {
    expect(() => loadConfig({ KEYGATE_GRPC_TLS_CERT: pki.server.cert })).toThrow(/KEYGATE_GRPC_TLS_CERT and KEYGATE_GRPC_TLS_KEY: set both or neither/);
    expect(() => loadConfig({ KEYGATE_GRPC_TLS_CLIENT_CA: pki.clientCa.cert })).toThrow(/mTLS is TLS first/);
    expect(() => loadConfig({ KEYGATE_GRPC_TLS_CERT: '/nonexistent.crt', KEYGATE_GRPC_TLS_KEY: pki.server.key })).toThrow(/no such file/);
  });

  it('a key that does not match the certificate fails start-up', async () => {
    await expect(startTestKeygate({ KEYGATE_GRPC_TLS_CERT: pki.server.cert, KEYGATE_GRPC_TLS_KEY: pki.client.key })).rejects.toThrow();
  });
});
