// Micro-benchmark of CheckResponse encoding, the last step of every Check: the protobufjs path
// (toCheckResponse, then proto-loader's responseSerialize) against the hand-written encoder
// (encodeCheckResponse, src/grpc/response-encoder.ts), in ns per encode, for the outcomes a
// loaded keygate mostly sends: an allow with identity and rate-limit headers, a 429 deny with a
// key, a 401 deny without one. Uses dist/ (run `npm run build` first).
//
//   node bench/encode-response.mjs [--rounds 7] [--iterations 200000]
import { parseArgs } from 'node:util';
import { requireDist } from './lib/keygate-lib.mjs';

const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    iterations: { type: 'string', default: '200000' },
  },
});
const ROUNDS = Number(opts.rounds);
const ITERATIONS = Number(opts.iterations);

const { loadKeygateProtos } = requireDist('grpc/protos.js');
const { toCheckResponse } = requireDist('grpc/response.js');
const { encodeCheckResponse } = requireDist('grpc/response-encoder.js');
const { rateLimitHeaders } = requireDist('check/ratelimit-headers.js');

const check = loadKeygateProtos().authorizationService.Check;
const oldPath = (outcome) => check.responseSerialize(toCheckResponse(outcome));
const newPath = (outcome) => encodeCheckResponse(outcome);

// One key record, reused as the key cache reuses it.
const key = {
  id: 'key_01JD8Z6Q2W3E4R5T6Y7U8I9O0P',
  owner: 'acme-corp',
  plan: 'bench-3',
  scopes: ['*'],
  status: 'active',
  createdAt: 0,
  cidrs: [],
  metadata: {},
};
const now = Date.UTC(2026, 0, 15, 12, 0, 30);
const limitStates = [
  { limit: { count: 1_000_000_000, window: 's' }, remaining: 999_999_999, resetMs: 1000 },
  { limit: { count: 1_000_000_000, window: 'h' }, remaining: 999_998_000, resetMs: 1_770_000 },
  { limit: { count: 1_000_000_000, window: 'month' }, remaining: 997_000_000, resetMs: 1_400_000_000 },
];
const limitHeaders = rateLimitHeaders(limitStates, now);

const OUTCOMES = {
  // Fresh arrays per Check in real life; here one object (the encoders do not keep them).
  allow: {
    decision: 'allow',
    key,
    plan: key.plan,
    upstreamHeaders: [
      ['x-keygate-key-id', key.id],
      ['x-keygate-owner', key.owner],
      ['x-keygate-plan', key.plan],
    ],
    removeHeaders: ['x-api-key'],
    removeQueryParams: [],
    responseHeaders: limitHeaders,
  },
  'deny 429 (key)': {
    decision: 'deny',
    reason: 'rate_limited',
    key,
    responseHeaders: [['retry-after', '1'], ...limitHeaders],
  },
  'deny 401 (no key)': {
    decision: 'deny',
    reason: 'invalid_api_key',
    responseHeaders: [['www-authenticate', 'ApiKey realm="keygate", error="invalid_key"']],
  },
};

// Sanity: both paths give the same message.
for (const [name, outcome] of Object.entries(OUTCOMES)) {
  const a = JSON.stringify(check.responseDeserialize(oldPath(outcome)));
  const b = JSON.stringify(check.responseDeserialize(newPath(outcome)));
  if (a !== b) throw new Error(`${name}: the two encoders disagree\n${a}\n${b}`);
}

let sink = 0;
function measure(fn, outcome) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < ITERATIONS; i++) sink += fn(outcome).length;
  return Number(process.hrtime.bigint() - start) / ITERATIONS;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

console.log(`node ${process.version}, ${ROUNDS} rounds x ${ITERATIONS} encodes: ns per encode, median (min) of the rounds`);
const rows = [];
for (const [name, outcome] of Object.entries(OUTCOMES)) {
  // warm-up: both paths optimised before measuring
  measure(oldPath, outcome);
  measure(newPath, outcome);
  const old = [];
  const neu = [];
  for (let r = 0; r < ROUNDS; r++) {
    old.push(measure(oldPath, outcome));
    neu.push(measure(newPath, outcome));
  }
  const o = median(old);
  const n = median(neu);
  const cell = (xs) => `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)})`;
  rows.push({ outcome: name, bytes: newPath(outcome).length, protobufjs: cell(old), encoder: cell(neu), speedup: `${(o / n).toFixed(1)}x` });
}
console.table(rows);
if (sink === 0) console.log('(unreachable)');
