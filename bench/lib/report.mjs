// The console table and BENCHMARKS.md, from the results object of bench/run.mjs.
// Scenarios of kind 'workers' (keygate KEYGATE_WORKERS=1 vs 2, no baseline) have their own table
// and section; every other scenario is keygate against the baseline.

const f = (x, d = 0) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));
const thousands = (x) => (x === null || x === undefined || !Number.isFinite(x) ? '-' : Math.round(x).toLocaleString('en-US'));

function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function mdTable(header, rows) {
  return [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function redisPerCheck(perCheck) {
  if (!perCheck) return '-';
  const parts = Object.entries(perCheck)
    .filter(([, v]) => v >= 0.005)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${v.toFixed(2)} ${k.toUpperCase()}`);
  return parts.length ? parts.join(' + ') : '0';
}

const isWorkers = (s) => s.kind === 'workers';
const workersScenario = (results) => results.scenarios.find(isWorkers);

function throughputRows(results) {
  return results.scenarios
    .filter((s) => s.throughput && !isWorkers(s))
    .map((s) => {
      const t = s.throughput;
      return [
        s.name,
        thousands(t.baselineReqPerSec),
        thousands(t.keygateReqPerSec),
        `${f(t.ratio, 2)}x`,
        t.ratios.map((r) => f(r, 2)).join(' / '),
        f(t.baselineCpuPct),
        f(t.keygateCpuPct),
        f(t.baselineMaxRssMb),
        f(t.keygateMaxRssMb),
        f(t.redisCpuPct),
        redisPerCheck(s.redisCalls?.fromClientsPerCheck),
        f(t.foreignServerCorePct),
      ];
    });
}
const THROUGHPUT_HEADER = [
  'scenario',
  'baseline req/s',
  'keygate req/s',
  'ratio',
  'ratio per round',
  'baseline CPU%',
  'keygate CPU%',
  'baseline RSS MB',
  'keygate RSS MB',
  'redis CPU%',
  'Redis calls / Check',
  'other CPU% on server core',
];

function latencyRows(results) {
  const rows = [];
  for (const s of results.scenarios) {
    for (const p of s.probes ?? []) {
      const b = p.baseline?.latencyMs;
      const k = p.keygate?.latencyMs;
      const errors = (m) => (m ? `${m.errors ?? '-'}${m.rateReached === false ? ` (reached ${thousands(m.reqPerSec)}/s)` : ''}` : '-');
      rows.push([
        s.name,
        thousands(p.rate),
        `${f(b?.p50, 2)} / ${f(b?.p99, 2)} / ${f(b?.p999, 2)}`,
        `${f(k?.p50, 2)} / ${f(k?.p99, 2)} / ${f(k?.p999, 2)}`,
        `${f(p.p99Ratio, 2)}x`,
        f(p.keygate?.cpuPct),
        `${errors(p.baseline)} / ${errors(p.keygate)}`,
      ]);
    }
  }
  return rows;
}
/** The workers scenario: one row per variant (1 worker, 2 workers). */
function workersRows(s) {
  const w = s.workers;
  const rounds = s.rounds ?? [];
  const perProcess = (id) => {
    // medians over rounds, per process position (keygate | primary, worker, worker)
    const first = rounds[0]?.[id]?.processes ?? [];
    return first
      .map((p, i) => {
        const v = rounds.map((r) => r[id]?.processes?.[i]?.cpuPct).filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
        const m = v.length >> 1;
        return `${p.role} ${f(v.length === 0 ? null : v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2)}`;
      })
      .join(' + ');
  };
  const row = (id, label) => [
    label,
    thousands(w[`${id}ReqPerSec`]),
    rounds.map((r) => thousands(r[id]?.reqPerSec)).join(' / '),
    f(w[`${id}CpuPct`]),
    perProcess(id) || '-',
    f(w[`${id}CpuUsPerCheck`]),
    f(w[`${id}MaxRssMb`]),
    f(w[`${id}H2loadCpuPct`]),
    f(w[`${id}RedisCpuPct`]),
    f(w[`${id}MachineBusyPct`]),
    f(w[`${id}ForeignPct`]),
  ];
  return [row('w1', 'KEYGATE_WORKERS=1'), row('w2', 'KEYGATE_WORKERS=2')];
}
const WORKERS_HEADER = [
  'keygate',
  'req/s',
  'req/s per round',
  'CPU% (all processes)',
  'CPU% per process',
  'CPU µs / Check',
  'RSS MB (all processes)',
  'h2load CPU%',
  'redis CPU%',
  'machine busy %',
  'other CPU%',
];

function placementText(s) {
  const p = s.placement;
  if (!p || p.keygate === null) return 'no core pinning (taskset missing or --no-pin): every process may run on every core';
  const core = (c) => (/^\d+$/.test(String(c)) ? `core ${c}` : `cores ${c}`);
  return `keygate not pinned (\`taskset -c ${p.keygate}\`: the single process, or the primary and both workers, may run on ${core(p.keygate)}); h2load, Redis and the harness pinned to ${core(p.h2load)} as in the other scenarios`;
}

const LATENCY_HEADER = ['scenario', 'rate req/s', 'baseline p50 / p99 / p99.9 ms', 'keygate p50 / p99 / p99.9 ms', 'p99 ratio', 'keygate CPU%', 'errors baseline / keygate'];

export function renderTable(results) {
  const out = [''];
  out.push(`keygate vs bare grpc-js baseline (${results.mode} run, ${results.machine.nproc} cores, ${results.machine.cpuModel})`);
  out.push('');
  out.push('throughput (h2load closed loop, medians over rounds):');
  out.push(table(THROUGHPUT_HEADER, throughputRows(results)));
  out.push('');
  out.push('latency at fixed rates (h2load --rps, open loop):');
  out.push(table(LATENCY_HEADER, latencyRows(results)));
  const ws = workersScenario(results);
  if (ws) {
    out.push('');
    out.push(`workers: keygate KEYGATE_WORKERS=1 vs 2, valid key, h2load closed loop (medians over rounds; ${placementText(ws)}):`);
    if (ws.workers) {
      out.push(table(WORKERS_HEADER, workersRows(ws)));
      out.push(`2 workers / 1 worker: ${f(ws.workers.ratio, 2)}x (per round: ${ws.workers.ratios.map((r) => f(r, 2)).join(' / ')})`);
    } else out.push('not measured (see the failures)');
  }
  const bulk = results.scenarios.find((s) => s.load);
  if (results.adminImport) {
    const a = results.adminImport;
    out.push('');
    out.push(`keygate-admin key import: ${thousands(a.keys)} keys in ${f(a.seconds, 1)} s (${thousands(a.keysPerSec)} keys/s)`);
  }
  if (bulk) {
    out.push('');
    out.push(`bulk load: ${thousands(bulk.load.keys)} keys in ${f(bulk.load.seconds, 1)} s (${thousands(bulk.load.keysPerSec)} keys/s), Redis used_memory ${f(bulk.load.redisUsedMemoryMb)} MB`);
  }
  if (results.profiles) {
    for (const [name, p] of Object.entries(results.profiles)) {
      out.push('');
      out.push(`CPU profile, ${name} (${thousands(p.reqPerSec)} req/s under profiler): ${p.categories.slice(0, 8).map((c) => `${c.name} ${f(c.pct)}%`).join(', ')}`);
    }
  }
  out.push('');
  if (results.failures.length) out.push(`FAILURES (${results.failures.length}):\n${results.failures.map((p) => `  - ${p}`).join('\n')}`);
  out.push(results.problems.length ? `problems under load (${results.problems.length}):\n${results.problems.map((p) => `  - ${p}`).join('\n')}` : 'no errors under load');
  if (!results.failures.length) out.push('every answer verified: no wrong answers');
  out.push('');
  return out.join('\n');
}

/** How much CPU other processes took during the measured windows. */
function noiseSummary(results) {
  const runs = [];
  for (const s of results.scenarios) {
    if (isWorkers(s)) continue; // keygate not pinned there: "the server's core" does not apply
    for (const r of s.rounds ?? []) runs.push(r.baseline, r.keygate);
    for (const p of s.probes ?? []) runs.push(p.baseline, p.keygate);
  }
  const foreign = runs.map((m) => m?.foreignServerCorePct).filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const both = runs
    .map((m) => (m?.coreBusyPct ? Math.min(...Object.values(m.coreBusyPct)) : NaN))
    .filter((x) => Number.isFinite(x))
    .sort((a, b) => a - b);
  const med = (v) => (v.length ? v[v.length >> 1] : null);
  const machineForeign = runs
    .map((m) => (m?.machineBusyPct !== undefined && m?.cpuPct !== null ? 2 * m.machineBusyPct - (m.cpuPct ?? 0) - (m.h2loadCpuPct ?? 0) - (m.redisCpuPct ?? 0) : NaN))
    .filter((x) => Number.isFinite(x));
  return {
    maxForeign: foreign.length ? foreign[foreign.length - 1] : 0,
    medianForeign: med(foreign),
    medianBothBusy: med(both),
    maxMachineForeign: machineForeign.length ? Math.max(...machineForeign) : 0,
  };
}

function acceptance(results) {
  const rows = [];
  const valid = results.scenarios.find((s) => s.name === 'valid');
  if (valid?.throughput) {
    const r = valid.throughput.ratio;
    rows.push(['valid-key throughput >= 0.9x baseline (target >= 1.0x)', `${f(r, 2)}x`, r >= 1 ? 'meets target' : r >= 0.9 ? 'pass' : 'FAIL']);
  }
  const ws = workersScenario(results);
  if (ws) {
    const w = ws.workers;
    rows.push([
      `2 workers >= 1.5x one worker (${results.machine.nproc}-core machine; keygate not pinned)`,
      w
        ? `${f(w.ratio, 2)}x (${thousands(w.w2ReqPerSec)} vs ${thousands(w.w1ReqPerSec)} req/s${w.ratios.length > 1 ? `; per round ${w.ratios.map((r) => f(r, 2)).join(' / ')}` : ''})` +
          `${w.foreignPct >= 25 ? ` (noisy: other processes took up to ${f(w.foreignPct)}% of a core)` : ''}`
        : 'not measured (see Problems)',
      w && w.ratio >= 1.5 ? 'pass' : 'FAIL',
    ]);
  }
  for (const s of results.scenarios) {
    const p5 = s.probes?.find((p) => p.rate === 5000);
    if (p5 && s.expect === 'allow') {
      const reached = p5.keygate.rateReached !== false;
      rows.push([
        `${s.name}: p99 at 5k req/s <= 1.5x baseline p99`,
        `${f(p5.keygate.latencyMs?.p99, 2)} ms vs ${f(p5.baseline.latencyMs?.p99, 2)} ms = ${f(p5.p99Ratio, 2)}x${reached ? '' : ` (keygate reached only ${thousands(p5.keygate.reqPerSec)} req/s)`}`,
        reached && p5.p99Ratio <= 1.5 ? 'pass' : 'FAIL',
      ]);
    }
  }
  const a = results.adminImport;
  if (a) {
    const est = 1e6 / a.keysPerSec;
    rows.push([
      '`keygate-admin key import` of 1M keys <= 60 s',
      a.keys >= 1e6 ? `${f(a.seconds, 1)} s` : `${thousands(a.keys)} keys in ${f(a.seconds, 1)} s = ${thousands(a.keysPerSec)} keys/s, so 1M ~${f(est)} s`,
      (a.keys >= 1e6 ? a.seconds : est) <= 60 ? 'pass' : 'FAIL',
    ]);
  }
  const probeProblems = results.problems.filter((p) => / probe /.test(p));
  rows.push(['no errors at any fixed rate (latency probes)', probeProblems.length === 0 ? 'none' : `${probeProblems.length} problem(s), listed below`, probeProblems.length === 0 ? 'pass' : 'FAIL']);
  const loadProblems = results.problems.filter((p) => / round /.test(p));
  rows.push(['errors under saturating closed-loop load (not a criterion; informative)', loadProblems.length === 0 ? 'none' : `${loadProblems.length} problem(s), listed below`, '-']);
  if (results.failures.length) rows.push(['wrong answers / harness failures', `${results.failures.length}, listed below`, 'FAIL']);
  const bulk = results.scenarios.find((s) => s.load);
  if (bulk) {
    rows.push([`load of ${thousands(bulk.load.keys)} keys with the bench loader (pipelined RESP)`, `${f(bulk.load.seconds, 1)} s`, '-']);
    const ab = bulk.keysAB;
    if (ab) {
      rows.push([
        `keygate latency with ${thousands(ab.bulkKeys)} keys vs ${thousands(ab.smallKeys)} keys, at ${thousands(ab.rate)} req/s (±10%)`,
        `p50 ${f(ab.bulk.p50, 2)} ms vs ${f(ab.small.p50, 2)} ms: ${f(ab.p50Ratio, 2)}x (per round ${ab.rounds.map((r) => f(r.p50Ratio, 2)).join(' / ')}); ` +
          `p99 ${f(ab.bulk.p99, 2)} vs ${f(ab.small.p99, 2)} ms: ${f(ab.p99Ratio, 2)}x`,
        ab.p50Ratio !== null && Math.abs(ab.p50Ratio - 1) <= 0.1 ? 'pass' : 'FAIL',
      ]);
    }
    // Without the A/B (older results): compare the two scenarios' probes at the highest rate
    // keygate kept up with in both (else the lowest rate).
    const probesOf = (name) => results.scenarios.find((s) => s.name === name)?.probes ?? [];
    const small = probesOf('valid');
    const big = probesOf(bulk.name);
    const rates = small.map((p) => p.rate).filter((r) => big.some((q) => q.rate === r));
    const kept = rates.filter((r) => small.find((p) => p.rate === r).keygate.rateReached && big.find((p) => p.rate === r).keygate.rateReached);
    const rate = kept.length ? Math.max(...kept) : rates.length ? Math.min(...rates) : null;
    if (!ab && rate !== null) {
      const a = small.find((p) => p.rate === rate).keygate.latencyMs;
      const b = big.find((p) => p.rate === rate).keygate.latencyMs;
      const ratio = b.p50 / a.p50;
      rows.push([
        `keygate latency with ${thousands(bulk.load.keys)} keys vs ~1k keys, at ${thousands(rate)} req/s (±10%)`,
        `p50 ${f(b.p50, 2)} ms vs ${f(a.p50, 2)} ms = ${f(ratio, 2)}x; p99 ${f(b.p99, 2)} vs ${f(a.p99, 2)} ms = ${f(b.p99 / a.p99, 2)}x`,
        Math.abs(ratio - 1) <= 0.1 ? 'pass' : 'FAIL',
      ]);
    }
  }
  return mdTable(['criterion (issue #5)', 'measured', 'verdict'], rows);
}

export function renderMarkdown(results, { jsonFile }) {
  const m = results.machine;
  const o = results.options;
  const L = [];
  L.push('# keygate benchmarks');
  L.push('');
  L.push('Written by `npm run bench` (bench/run.mjs); do not edit by hand, run it again. How the harness');
  L.push('works and how to read the numbers: [bench/README.md](bench/README.md).');
  L.push('');
  L.push(`- **date**: ${results.startedAt} (took ${Math.round(results.elapsedSeconds)} s)`);
  L.push(`- **command**: \`${results.command}\``);
  L.push(`- **machine**: ${m.nproc} cores (\`nproc\`), ${m.cpuModel}, ${m.memoryGb} GB RAM, Linux ${m.kernel}; load average at start ${m.loadavgAtStart}`);
  L.push(`- **versions**: Node ${m.node}, Redis ${m.redis}, ${m.h2load}, @grpc/grpc-js ${m.grpcJs}, @grpc/proto-loader ${m.protoLoader}, ioredis ${m.ioredis}; keygate ${m.keygate}${m.commit ? ` at ${m.commit}${m.dirty ? ' (with uncommitted changes)' : ''}` : ''}`);
  L.push(
    `- **setup**: ${results.pinning ? `server under test pinned to core ${results.pinning.server}; h2load, Redis and the harness on core ${results.pinning.client} (\`taskset\`)` : 'no core pinning'}; ` +
      `keygate as \`node ${o.keygateNodeArgs.length ? `${o.keygateNodeArgs.join(' ')} ` : ''}dist/src/main.js\` with REDIS_URL, log level info (log discarded)${Object.keys(o.keygateEnv).length ? `, ${Object.entries(o.keygateEnv).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}; ` +
      `baseline \`node bench/baseline-server.mjs\` (stock grpc-js server, answers every Check \`{status:{code:0}, ok_response:{}}\`)` +
      `${workersScenario(results) ? '; the workers comparison places processes differently (see [Workers](#workers-keygate_workers1-vs-2))' : ''}.`,
  );
  L.push(`- **request**: a ${results.request.messageBytes}-byte CheckRequest (${results.request.framedBytes} bytes as a gRPC message): x-api-key plus the headers, addresses and context_extensions Envoy sends for a typical API call.`);
  L.push(`- **load**: h2load \`-c ${o.clients} -m ${o.streams}\`; throughput runs ${o.duration} s after ${o.warmup} s warm-up, ${o.rounds} round(s) per scenario alternating which server goes first${o.restartEvery > 0 ? `, both servers restarted every ${o.restartEvery} rounds (each fresh process loaded ${o.startWarmup} s unmeasured first)` : ''}; latency probes at ${o.rates.map((r) => `${r / 1000}k`).join(', ')} req/s (h2load \`--rps\`, open loop) for ${o.probeDuration} s after ${o.probeWarmup} s warm-up.`);
  L.push(`- **raw results**: \`${jsonFile}\` (bench/results/ is not committed)`);
  L.push('');
  const noise = noiseSummary(results);
  if (noise.maxForeign >= 10 || noise.maxMachineForeign >= 25) {
    L.push(
      `> **Noisy run.** Other processes on this machine used up to ${f(noise.maxForeign)}% of the server's core during ` +
        `measured windows (median ${f(noise.medianForeign)}%), and both cores were busy ${f(noise.medianBothBusy)}% of the time (median over runs). ` +
        'Absolute numbers are lower than on an idle machine and keygate, which needs more CPU per Check, suffers more than ' +
        'the baseline. Ratios of the same round are the fairest comparison; re-run on a quiet machine before drawing conclusions.',
    );
    L.push('');
  }
  L.push('## Against issue #5');
  L.push('');
  L.push(acceptance(results));
  L.push('');
  L.push('## Throughput');
  L.push('');
  L.push('Medians over rounds; the ratio is the median of the per-round keygate/baseline ratios. CPU% is of one core,');
  L.push('measured from /proc during the measured window; RSS is the maximum sampled. "Redis calls / Check":');
  L.push('commands keygate sent to Redis (Redis `MONITOR`, cache warm, 2000 Checks at low concurrency), not');
  L.push('counting the commands its Lua scripts run inside Redis (listed below the table). "other CPU%": busy');
  L.push("time of the server's core not used by the server (other processes on the machine): high = noisy run.");
  L.push('keygate req/s counts only the expected answers: Checks that ended in an error (`error/deadline`,');
  L.push('`error/store`, i.e. UNAVAILABLE to Envoy) are left out and listed under Problems.');
  L.push('');
  L.push(mdTable(THROUGHPUT_HEADER, throughputRows(results)));
  L.push('');
  for (const s of results.scenarios.filter((x) => !isWorkers(x))) {
    const inside = s.redisCalls ? redisPerCheck(s.redisCalls.inScriptsPerCheck) : null;
    L.push(
      `- \`${s.name}\`: ${s.title}; keygate answers ${s.expect === 'allow' ? 'OK (ok_response)' : `denied_response ${s.expect}`}` +
        `${inside && inside !== '0' ? `; inside Redis scripts per Check: ${inside}` : ''}.`,
    );
  }
  L.push('');
  L.push('## Latency at fixed rates');
  L.push('');
  L.push('Open loop: each of the h2load clients sends at a fixed schedule (`--rps`), whether or not answers');
  L.push('came back; latency per request from h2load\'s `--log-file`. Errors: h2load\'s failed + errored + timed-out');
  L.push('requests plus, for keygate, Checks answered with an error (`error/deadline`, `error/store`: UNAVAILABLE).');
  L.push('"reached N/s": the server could not keep up with the asked rate, so the latency is that of an overloaded server.');
  L.push('');
  L.push(mdTable(LATENCY_HEADER, latencyRows(results)));
  L.push('');
  const ws = workersScenario(results);
  if (ws) {
    L.push('## Workers: KEYGATE_WORKERS=1 vs 2');
    L.push('');
    L.push(
      `keygate with \`KEYGATE_WORKERS=1\` (one process) and with \`KEYGATE_WORKERS=2\` (a node:cluster primary and two workers ` +
        `on one gRPC port), the valid-key request of \`valid\`, h2load closed loop \`-c ${o.clients} -m ${o.streams}\`, ` +
        `${o.rounds} round(s) of ${o.duration} s after ${o.warmup} s warm-up alternating which goes first; no baseline. ` +
        'The ratio is the median of the per-round 2-worker/1-worker ratios.',
    );
    L.push('');
    L.push(
      `**Placement on this ${results.machine.nproc}-core machine**: ${placementText(ws)}. ` +
        'So the two workers do not have two cores to themselves: the second one shares a core with the load generator and ' +
        'Redis, and the single process can move between cores too. The ratio is what a second worker gives here, with h2load ' +
        'and Redis on the same machine; with cores to spare (clients and Redis elsewhere) it would likely be higher.',
    );
    L.push('');
    L.push(
      "CPU% is of one core, from /proc during the measured window, summed over keygate's processes (the primary and its " +
        'workers); RSS is the maximum sampled sum over them. "CPU µs / Check": CPU% / req/s. "machine busy %": all cores, ' +
        'all processes; "other CPU%": CPU (of one core) taken by processes other than keygate, h2load, Redis and the harness. ' +
        "Answers verified before and after the load (ok_response, one Check per connection, two per worker); " +
        "Checks counted from the primary's /metrics (keygate_checks_total summed over the workers), and req/s counts only " +
        'the allow/ok answers.',
    );
    L.push('');
    if (ws.workers) {
      L.push(mdTable(WORKERS_HEADER, workersRows(ws)));
      L.push('');
      L.push(`2 workers / 1 worker: **${f(ws.workers.ratio, 2)}x** (per round: ${ws.workers.ratios.map((r) => f(r, 2)).join(' / ')}).`);
      if (ws.workers.foreignPct >= 25) {
        L.push('');
        L.push(`> Other processes on the machine used up to ${f(ws.workers.foreignPct)}% of a core during these runs: noisy.`);
      }
    } else L.push('Not measured: see Problems.');
    L.push('');
  }
  const bulk = results.scenarios.find((s) => s.load);
  if (bulk) {
    L.push('## Many keys');
    L.push('');
    L.push(
      `${thousands(bulk.load.keys)} keys loaded with ${bulk.load.loader} in **${f(bulk.load.seconds, 1)} s** ` +
        `(${thousands(bulk.load.keysPerSec)} keys/s, Redis on one core); Redis used_memory afterwards ${f(bulk.load.redisUsedMemoryMb)} MB ` +
        `(${thousands(bulk.load.redisKeysAfter)} Redis keys), a Redis of its own. Then one of them is the key of the \`${bulk.name}\` scenario above.`,
    );
    L.push('');
    const ab = bulk.keysAB;
    if (ab) {
      L.push(
        `Latency with many keys against few: keygate on this Redis and keygate on the ${thousands(ab.smallKeys)}-key Redis of the other scenarios, ` +
          `both on the server core, probed in turn at ${thousands(ab.rate)} req/s (open loop, ${ab.rounds.length} round(s) alternating which goes first). ` +
          'The ratio is the median of the per-round ratios.',
      );
      L.push('');
      L.push(
        mdTable(
          ['round', `${thousands(ab.smallKeys)} keys p50 / p99 ms`, `${thousands(ab.bulkKeys)} keys p50 / p99 ms`, 'p50 ratio', 'p99 ratio'],
          ab.rounds.map((r) => [r.round, `${f(r.small.p50, 2)} / ${f(r.small.p99, 2)}`, `${f(r.bulk.p50, 2)} / ${f(r.bulk.p99, 2)}`, f(r.p50Ratio, 2), f(r.p99Ratio, 2)]),
        ),
      );
      L.push('');
    }
  }
  if (results.adminImport) {
    const a = results.adminImport;
    if (!bulk) {
      L.push('## Many keys');
      L.push('');
    }
    L.push(
      `\`${a.command}\` (the admin CLI, ${thousands(a.keys)} new keys as JSON lines, into an empty Redis database): ` +
        `**${f(a.seconds, 1)} s**, ${thousands(a.keysPerSec)} keys/s` +
        `${a.keys < 1e6 ? ` (1M keys at that rate: ~${f(1e6 / a.keysPerSec, 0)} s)` : ''}.`,
    );
    L.push('');
  }
  if (results.profiles) {
    L.push('## Where the time goes (CPU profiles under closed-loop load)');
    L.push('');
    L.push('`node --cpu-prof`, valid-key scenario, self time as a share of busy (non-idle) time.');
    L.push('');
    for (const [name, p] of Object.entries(results.profiles)) {
      L.push(`### ${name} (${thousands(p.reqPerSec)} req/s under the profiler; \`${p.file}\`)`);
      L.push('');
      L.push(mdTable(['category', 'self %'], p.categories.filter((c) => c.pct >= 0.5).map((c) => [c.name, f(c.pct, 1)])));
      L.push('');
      L.push(mdTable(['function', 'where', 'self %'], p.functions.slice(0, 15).map((fn) => [`\`${fn.name}\``, `\`${fn.where}\``, f(fn.pct, 1)])));
      L.push('');
    }
  }
  L.push('## Problems');
  L.push('');
  if (results.failures.length) {
    L.push('Failures (wrong answers or a broken harness):');
    L.push('');
    L.push(results.failures.map((p) => `- ${p}`).join('\n'));
    L.push('');
  }
  L.push(
    results.problems.length === 0
      ? 'No errors under load.'
      : `Errors under load (\`error/deadline\`, \`error/store\`: keygate answered UNAVAILABLE; "achieved": the server could not keep up with the asked rate):\n\n${results.problems.map((p) => `- ${p}`).join('\n')}`,
  );
  L.push('');
  if (!results.failures.length) L.push('Every answer was verified (bench/README.md, "How errors are caught"): no wrong answers.');
  L.push('');
  return L.join('\n');
}
