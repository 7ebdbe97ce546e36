import type { Registry } from 'prom-client';
import { counterFrom, gaugeFrom } from './metrics.js';

/** What the control plane reports about configuration and readiness, over either data plane. */
export interface ControlState {
  reloadStatus(): { ok: boolean; timestamp: number; successes: number; failures: number };
  placeholderKeyInUse(): boolean;
  ready(): boolean;
  /** Processes serving traffic: 1 for a single process, the ready workers under a cluster primary. */
  workers(): number;
}

/** Reload, placeholder-key and readiness metrics, registered once per instance. */
export function registerControlMetrics(registry: Registry, state: ControlState): void {
  gaugeFrom(
    registry,
    'gateway_config_last_reload_successful',
    'Whether the last configuration reload succeeded (1) or was rejected (0).',
    null,
    () => (state.reloadStatus().ok ? 1 : 0),
  );
  gaugeFrom(
    registry,
    'gateway_config_last_reload_success_timestamp_seconds',
    'Unix time of the last successful configuration load.',
    null,
    () => state.reloadStatus().timestamp,
  );
  counterFrom(
    registry,
    'gateway_config_reloads_total',
    'Configuration reloads applied.',
    () => state.reloadStatus().successes,
  );
  counterFrom(
    registry,
    'gateway_config_reload_failures_total',
    'Configuration reloads rejected as invalid.',
    () => state.reloadStatus().failures,
  );
  gaugeFrom(
    registry,
    'gateway_placeholder_key_in_use',
    'Whether the stock placeholder API key is accepted.',
    null,
    () => (state.placeholderKeyInUse() ? 1 : 0),
  );
  gaugeFrom(registry, 'gateway_workers', 'Worker processes serving traffic.', null, () => state.workers());
  gaugeFrom(registry, 'gateway_ready', 'Whether the instance takes traffic (admin /ready).', null, () =>
    state.ready() ? 1 : 0,
  );
}
