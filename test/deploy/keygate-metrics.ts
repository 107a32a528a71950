// The Prometheus metrics keygate exports, in one place: the Grafana dashboard
// (deploy/grafana/dashboards/keygate.json) may only query these names, and the metrics module
// is checked against this list. Counter names include their `_total`; a histogram is listed by
// its base name and is scraped as <name>_bucket, <name>_sum and <name>_count.
export type MetricType = 'counter' | 'histogram' | 'gauge';

export interface KeygateMetric {
  readonly name: string;
  readonly type: MetricType;
  readonly labels: readonly string[];
}

export const KEYGATE_METRICS: readonly KeygateMetric[] = [
  { name: 'keygate_checks_total', type: 'counter', labels: ['decision', 'reason'] }, // decision: allow|deny|error
  { name: 'keygate_check_duration_seconds', type: 'histogram', labels: ['decision'] },
  { name: 'keygate_usage_total', type: 'counter', labels: ['owner', 'plan', 'decision'] },
  { name: 'keygate_quota_denials_total', type: 'counter', labels: ['plan', 'window'] },
  { name: 'keygate_redis_errors_total', type: 'counter', labels: ['operation'] },
  { name: 'keygate_redis_duration_seconds', type: 'histogram', labels: ['operation'] },
  { name: 'keygate_key_cache_hits_total', type: 'counter', labels: [] },
  { name: 'keygate_key_cache_misses_total', type: 'counter', labels: [] },
  { name: 'keygate_key_cache_invalidations_total', type: 'counter', labels: [] },
  { name: 'keygate_build_info', type: 'gauge', labels: ['version', 'node_version'] },
];

export const KEYGATE_METRIC_NAMES: readonly string[] = KEYGATE_METRICS.map((m) => m.name);

const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'] as const;

/**
 * The listed metric a series name belongs to (`keygate_check_duration_seconds_bucket` →
 * `keygate_check_duration_seconds`), or undefined when it is not one of ours.
 */
export function metricForSeries(series: string): KeygateMetric | undefined {
  const direct = KEYGATE_METRICS.find((m) => m.name === series);
  if (direct) return direct;
  for (const suffix of HISTOGRAM_SUFFIXES) {
    if (!series.endsWith(suffix)) continue;
    const base = KEYGATE_METRICS.find((m) => m.name === series.slice(0, -suffix.length));
    if (base?.type === 'histogram') return base;
  }
  return undefined;
}
