import { SETTINGS } from './settings.js';
import type { GatewayConfig } from './types.js';

const RESTART_SETTINGS = SETTINGS.filter((setting) => setting.applies === 'restart');

/**
 * The config fields only a restart changes (listeners, pools, servers, TLS switched on or
 * off, workers). A field that also holds a live setting would be half applied: the table's
 * test forbids it.
 */
const RESTART_FIELDS = [...new Set(RESTART_SETTINGS.map((setting) => setting.field))];

/** The names of the settings that differ between two configurations and that only a restart applies. */
export function settingsNeedingRestart(running: GatewayConfig, next: GatewayConfig): string[] {
  return RESTART_SETTINGS.filter((setting) =>
    setting.differs === undefined
      ? setting.inForce(running) !== setting.inForce(next)
      : setting.differs(running, next),
  ).map((setting) => setting.name);
}

/** The configuration actually in force after a live reload: the new live settings, the running rest. */
export function mergeReloadable(running: GatewayConfig, next: GatewayConfig): GatewayConfig {
  const kept: Partial<Record<keyof GatewayConfig, unknown>> = {};
  for (const field of RESTART_FIELDS) kept[field] = running[field];
  return Object.freeze({ ...next, ...(kept as Partial<GatewayConfig>) });
}
