// Child process of the concurrency proof in redis-specific.test.ts: one keygate-like instance
// that fires its share of charges at one key all at once, over several connections, and
// reports how many were allowed. Plain JavaScript: it loads the limiter compiled by the test.
//
// argv: <compiled redis-limiter.js> <redis url> <charge request JSON> <charges> <connections>
// stdout: "ready" once connected; after a line on stdin: {"allowed":N,"denied":M}
'use strict';
const Redis = require('ioredis');

const [limiterModule, redisUrl, requestJson, chargesText, connectionsText] = process.argv.slice(2);
const { RedisLimiter } = require(limiterModule);

async function main() {
  const request = JSON.parse(requestJson);
  const charges = Number(chargesText);
  const clients = Array.from({ length: Number(connectionsText) }, () => new Redis(redisUrl, { maxRetriesPerRequest: 1 }));
  const limiters = clients.map((client) => new RedisLimiter(client));
  await Promise.all(clients.map((client) => client.ping()));
  process.stdout.write('ready\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.destroy();
  const results = await Promise.all(
    Array.from({ length: charges }, (_, i) => limiters[i % limiters.length].charge(request)),
  );
  const allowed = results.filter((result) => result.allowed).length;
  process.stdout.write(`${JSON.stringify({ allowed, denied: results.length - allowed })}\n`);
  for (const client of clients) client.disconnect();
}

main().catch((err) => {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
