import type { EnvVars } from '../config/env-source.js';
import type { GatewayConfig } from '../config/types.js';
import type { MetricsJson } from '../observability/credential-report.js';

/**
 * What carries the traffic under the control plane: the listeners of this process, or a fleet
 * of node:cluster workers sharing the listening sockets. The control plane owns configuration,
 * readiness and the admin port; a data plane only serves, takes what it is given, and reports.
 */
export interface DataPlane {
  /** Binds the listeners (forks the workers); settles once every one takes traffic. */
  start(): Promise<void>;
  /** True while every listener (every worker) takes traffic. */
  readonly serving: boolean;
  /** Processes serving traffic: 1 here, the ready workers in a fleet. */
  readonly workers: number;
  /**
   * Applies a validated configuration's live settings; `vars` is the env snapshot it was parsed
   * from (workers parse the same bytes).
   */
  apply(config: GatewayConfig, vars: EnvVars): void;
  /** Prometheus text of the data plane's metrics, summed over workers. */
  metricsText(): Promise<string>;
  /** The per-credential metrics as JSON, summed over workers (admin GET /credentials). */
  credentialMetricsJson(): Promise<MetricsJson>;
  /** Stops accepting and lets in-flight requests finish, cut after `drainTimeoutMs`. */
  stop(drainTimeoutMs: number): Promise<void>;
}
