// The fault proxy itself, in front of a loopback echo server: pass forwards, delay holds each
// chunk (in order), blackhole reads and holds everything (new connections too) and delivers it
// when passing again, reset resets open connections and refuses new ones, stats count them, and
// close() ends every socket.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy';
import { now, sleep } from './load';

let echo: net.Server;
let proxy: FaultProxy;
const echoSockets = new Set<net.Socket>();

beforeAll(async () => {
  echo = net.createServer((s) => {
    echoSockets.add(s);
    s.on('close', () => echoSockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  proxy = await startFaultProxy({ port: (echo.address() as net.AddressInfo).port });
});

afterAll(async () => {
  await proxy?.close();
  for (const s of echoSockets) s.destroy();
  await new Promise<void>((resolve) => echo.close(() => resolve()));
});

interface Client {
  socket: net.Socket;
  received(): string;
  /** resolves once `text` has arrived (rejects after `ms`) */
  waitFor(text: string, ms?: number): Promise<number>;
  closed: Promise<string>;
}

async function connect(): Promise<Client> {
  const socket = net.connect(proxy.port, '127.0.0.1');
  let data = '';
  const waiters: (() => void)[] = [];
  socket.on('data', (d) => {
    data += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<string>((resolve) => {
    socket.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    socket.on('close', () => resolve('closed'));
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const waitFor = (text: string, ms = 2000) =>
    new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`"${text}" did not arrive within ${ms} ms (got "${data}")`)), ms);
      const check = () => {
        if (data.includes(text)) {
          clearTimeout(t);
          resolve(now());
        } else waiters.push(check);
      };
      check();
    });
  return { socket, received: () => data, waitFor, closed };
}

describe('the fault proxy', () => {
  it('pass: forwards both ways and counts the connection', async () => {
    const before = proxy.stats();
    const c = await connect();
    c.socket.write('hello');
    await c.waitFor('hello');
    expect(proxy.stats().accepted).toBe(before.accepted + 1);
    expect(proxy.stats().open).toBe(before.open + 1);
    c.socket.destroy();
    await c.closed;
  });

  it('delay: each direction waits the delay; order is kept; pass again forwards at once', async () => {
    const c = await connect();
    proxy.delay(80);
    const sent = now();
    c.socket.write('a');
    c.socket.write('b');
    const arrived = await c.waitFor('ab');
    expect(arrived - sent).toBeGreaterThanOrEqual(150); // 80 ms there, 80 ms back (timer rounding: -10)
    proxy.pass();
    const again = now();
    c.socket.write('c');
    expect((await c.waitFor('abc')) - again).toBeLessThan(80);
    c.socket.destroy();
  });

  it('blackhole: accepts and reads, answers nothing (new connections too); pass delivers what was held, in order', async () => {
    const old = await connect();
    proxy.blackhole();
    old.socket.write('one');
    const fresh = await connect(); // accepted while blackholed
    fresh.socket.write('two');
    await sleep(150);
    expect(old.received()).toBe('');
    expect(fresh.received()).toBe('');
    old.socket.write('three');
    proxy.pass();
    await old.waitFor('onethree');
    await fresh.waitFor('two');
    old.socket.destroy();
    fresh.socket.destroy();
  });

  it('reset: open connections are reset, held bytes dropped, new connections refused; pass accepts again', async () => {
    const c = await connect();
    proxy.blackhole();
    c.socket.write('lost');
    const before = proxy.stats();
    proxy.reset();
    expect(await c.closed).toBe('ECONNRESET');
    const refused = net.connect(proxy.port, '127.0.0.1');
    const outcome = await new Promise<string>((resolve) => {
      refused.on('data', () => resolve('data'));
      refused.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      refused.on('close', () => resolve('closed'));
    });
    expect(outcome).toBe('ECONNRESET');
    expect(proxy.stats().reset).toBe(before.reset + before.open + 1); // every open one, and the refused one
    expect(proxy.stats().open).toBe(0);
    proxy.pass();
    const ok = await connect();
    ok.socket.write('back');
    await ok.waitFor('back');
    expect(ok.received()).toBe('back'); // nothing of the reset connection leaks into a new one
    ok.socket.destroy();
  });

  it('close: every connection ends', async () => {
    const spare = await startFaultProxy({ port: (echo.address() as net.AddressInfo).port });
    const c = net.connect(spare.port, '127.0.0.1');
    c.on('error', () => {});
    const closed = new Promise<void>((resolve) => c.on('close', () => resolve()));
    await new Promise((resolve) => c.once('connect', resolve));
    await spare.close();
    await closed;
    expect(spare.stats().open).toBe(0);
  });
});
