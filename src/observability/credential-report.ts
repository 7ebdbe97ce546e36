import {
  AggregatorRegistry,
  type MetricObjectWithValues,
  type MetricValue,
  type Registry,
} from 'prom-client';
import { credentialSummaries, scopeText } from '../config/credential-summary.js';
import type { GatewayConfig } from '../config/types.js';
import { CREDENTIAL_METRIC_NAMES } from './credential-metrics.js';

/** Metrics as `Registry.getMetricsAsJSON()` answers them. */
export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** The per-credential metrics of one registry, as a cluster worker sends them to its primary. */
export async function credentialMetricsJson(registry: Registry): Promise<MetricsJson> {
  const names = new Set<string>(Object.values(CREDENTIAL_METRIC_NAMES));
  return (await registry.getMetricsAsJSON()).filter((metric) => names.has(metric.name)) as MetricsJson;
}

/**
 * Several workers' per-credential metrics (as received over IPC), combined as the cluster's
 * /metrics combines them: counters summed, the last-used and expiry gauges by maximum.
 */
export async function aggregateCredentialMetrics(perWorker: readonly unknown[][]): Promise<MetricsJson> {
  return (await AggregatorRegistry.aggregate(perWorker as MetricsJson[]).getMetricsAsJSON()) as MetricsJson;
}

export interface CredentialReportEntry {
  readonly name: string;
  readonly kind: 'key' | 'user';
  readonly scopes: string;
  readonly expires: string | null;
  readonly expired: boolean;
  readonly source: string;
  readonly legacy: boolean;
  /** RFC 3339, or null: not used since start. */
  readonly last_used: string | null;
  /** Requests answered since start, by listener. */
  readonly requests: Readonly<Record<string, number>>;
  readonly scope_denials: Readonly<Record<string, number>>;
}

/**
 * Admin GET /credentials: every configured credential with what it may do and what it did,
 * derived from the same metrics /metrics serves, so the two never disagree. No secret, no digest.
 */
export function credentialReport(
  config: GatewayConfig,
  metrics: MetricsJson,
  now = Date.now(),
): { credentials: CredentialReportEntry[] } {
  const values = (name: string): ReadonlyArray<MetricValue<string>> =>
    metrics.find((metric) => metric.name === name)?.values ?? [];
  const credentials = credentialSummaries(config).map((summary): CredentialReportEntry => {
    const requests: Record<string, number> = {};
    for (const { labels, value } of values(CREDENTIAL_METRIC_NAMES.requests)) {
      if (labels.credential !== summary.name) continue;
      const listener = String(labels.listener);
      requests[listener] = (requests[listener] ?? 0) + value;
    }
    const scopeDenials: Record<string, number> = {};
    for (const { labels, value } of values(CREDENTIAL_METRIC_NAMES.scopeDenials)) {
      if (labels.credential === summary.name) scopeDenials[String(labels.scope)] = value;
    }
    const lastUsed = values(CREDENTIAL_METRIC_NAMES.lastUsed).find(
      ({ labels }) => labels.credential === summary.name,
    );
    return {
      name: summary.name,
      kind: summary.kind,
      scopes: scopeText(summary.scopes),
      expires: summary.expires,
      expired: summary.expires !== null && Date.parse(summary.expires) <= now,
      source: summary.source,
      legacy: summary.legacy,
      last_used: lastUsed === undefined ? null : new Date(lastUsed.value * 1000).toISOString(),
      requests,
      scope_denials: scopeDenials,
    };
  });
  return { credentials };
}
