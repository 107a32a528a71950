#!/usr/bin/env node
// Bulk-loads N keys straight into Redis, in keygate's schema (src/keys/redis-store.ts), writing
// the Redis protocol (RESP) down one pipelined socket, as `redis-cli --pipe` does:
//   SET  kg:{<id>}:key         JSON KeyRecord
//   SET  kg:digest:{<digest>}  "<id>"
//   HSET kg:{<id>}:digests     <digest> ""
//   SADD kg:keys               <id> ...   (one per batch)
// The keys are real keygate keys: `kg_` + 32 base62 + 6-character CRC32 checksum, the format of
// src/keys/format.ts (generated here in bulk for speed; a sample of them is checked with
// keygate's own classifyKey before anything is written, so a format change fails loudly).
// Stored by SHA-256 digest (keygate's makeDigester() without a pepper, its default).
//
//   node bench/load-keys.mjs --redis redis://127.0.0.1:6379 --count 1000000 --plan bench-1 [--sample 3]
// Prints one JSON line: {count, seconds, keysPerSec, samples:[{id, key}]}: the plaintext of a few
// of the loaded keys, for the benchmark to send. Progress goes to stderr.
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { crc32 } from 'node:zlib';
import { requireDist } from './lib/keygate-lib.mjs';

function arg(name, def) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const url = new URL(arg('redis', 'redis://127.0.0.1:6379'));
const count = Number(arg('count', '1000000'));
const plan = arg('plan', 'bench-1');
const owners = Number(arg('owners', '1000'));
const sampleCount = Number(arg('sample', '3'));
const batchKeys = Number(arg('batch', '1000'));
const quiet = process.argv.includes('--quiet');

const { classifyKey } = requireDist('keys/format.js');
const { makeDigester } = requireDist('keys/digest.js');
const { redisKeys } = requireDist('keys/redis-store.js');
const digest = makeDigester();

// --- key generation in bulk (the format of src/keys/format.ts) -------------------------------
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
let pool = Buffer.alloc(0);
let poolAt = 0;
function base62(n) {
  let out = '';
  while (out.length < n) {
    if (poolAt >= pool.length) {
      pool = randomBytes(1 << 16);
      poolAt = 0;
    }
    const b = pool[poolAt++];
    if (b < 248) out += ALPHABET[b % 62];
  }
  return out;
}
function checksum(text) {
  let n = crc32(text);
  let out = '';
  for (let i = 0; i < 6; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}
const newKey = () => {
  const head = `kg_${base62(32)}`;
  return head + checksum(head);
};
const newId = () => `key_${base62(16)}`;

for (let i = 0; i < 1000; i++) {
  const k = newKey();
  if (classifyKey(k) !== 'native') {
    process.stderr.write(`load-keys: generated key ${k.slice(0, 6)}… is not a valid keygate key: src/keys/format.ts changed?\n`);
    process.exit(1);
  }
}

// --- RESP over one socket ---------------------------------------------------------------------
const bulk = (s) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
const command = (...args) => `*${args.length}\r\n${args.map(bulk).join('')}`;

const socket = connect({ host: url.hostname, port: Number(url.port || 6379), noDelay: true });
let expected = 0;
let received = 0;
let failure = null;
let tail = '';
let onProgress = () => {};
socket.setEncoding('utf8');
socket.on('data', (chunk) => {
  // Every reply to these commands is one line: +OK, :<n>, or -ERR ...
  const text = tail + chunk;
  let at = 0;
  for (;;) {
    const nl = text.indexOf('\r\n', at);
    if (nl < 0) break;
    if (text[at] === '-' && !failure) failure = new Error(`redis: ${text.slice(at + 1, nl)}`);
    received++;
    at = nl + 2;
  }
  tail = text.slice(at);
  onProgress();
});
const closed = new Promise((_, reject) => socket.on('error', reject));
closed.catch(() => {});
await Promise.race([new Promise((r) => socket.once('connect', r)), closed]);
if (url.password) {
  socket.write(command('AUTH', ...(url.username ? [decodeURIComponent(url.username)] : []), decodeURIComponent(url.password)));
  expected++;
}
if (url.pathname.length > 1) {
  socket.write(command('SELECT', url.pathname.slice(1)));
  expected++;
}

const started = process.hrtime.bigint();
const createdAt = Date.now();
const samples = [];
let lastReport = 0;
const MAX_OUTSTANDING = 200_000; // replies not yet read: bounds memory on both sides

for (let from = 0; from < count; from += batchKeys) {
  const to = Math.min(count, from + batchKeys);
  let out = '';
  const ids = [];
  for (let i = from; i < to; i++) {
    const key = newKey();
    const id = newId();
    const d = digest(key);
    const record = { id, owner: `owner-${i % owners}`, plan, scopes: [], status: 'active', createdAt, cidrs: [], metadata: {} };
    out += command('SET', redisKeys.record(id), JSON.stringify(record));
    out += command('SET', redisKeys.digest(d), id);
    out += command('HSET', redisKeys.digests(id), d, '');
    ids.push(id);
    if (i >= count - sampleCount) samples.push({ id, key });
  }
  out += command('SADD', 'kg:keys', ...ids);
  expected += 3 * (to - from) + 1;
  if (!socket.write(out)) await new Promise((r) => socket.once('drain', r));
  while (expected - received > MAX_OUTSTANDING && !failure) await new Promise((r) => (onProgress = r));
  if (failure) break;
  if (!quiet && to - lastReport >= 100_000) {
    lastReport = to;
    process.stderr.write(`load-keys: ${to} / ${count} keys sent, ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(1)} s\n`);
  }
}
while (received < expected && !failure) await Promise.race([new Promise((r) => (onProgress = r)), closed]);
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
socket.end();
if (failure) {
  process.stderr.write(`load-keys: ${failure.message}\n`);
  process.exit(1);
}
process.stdout.write(`${JSON.stringify({ count, seconds, keysPerSec: count / seconds, samples })}\n`);
