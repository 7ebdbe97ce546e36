import type { Logger } from '../observability/logger.js';
import type { EnvVars } from './env-source.js';
import { SETTINGS } from './settings.js';

/** Name beginnings of the gateway's settings: a variable with one of them is probably meant for it. */
export const SETTING_PREFIXES: readonly string[] = [
  'ENVOY_',
  'GATEWAY_',
  'OTLP_',
  'PROMETHEUS_',
  'VICTORIAMETRICS_',
  'ADMIN_',
  'UPSTREAM_',
  'CLIENT_',
  'AUTH_',
  'TLS_',
  'LOG_',
  'DRAIN_',
  'WORKER',
  'ACCESS_',
  'MAX_',
  'METRICS_',
  'LIMIT_',
];

/** Reserved for named credentials (GATEWAY_KEY_<NAME>, GATEWAY_USER_<NAME>). */
const RESERVED_PREFIXES = ['GATEWAY_KEY_', 'GATEWAY_USER_'];

/**
 * Variables with the gateway's prefixes that others read from the same .env or container
 * environment: docker compose (its interpolations) and the compose preflight script.
 */
export const NOT_GATEWAY_SETTINGS: readonly string[] = [
  'COMPOSE_PROFILES',
  'GATEWAY_CONFIG_DIR',
  'COLLECTOR_BIND_ADDRESS',
  'GATEWAY_PROFILE',
  'GATEWAY_PROFILE_SERVICES',
  'GRAFANA_GATEWAY_KEY',
];

const KNOWN = new Set([...SETTINGS.map((setting) => setting.name), ...NOT_GATEWAY_SETTINGS]);

/**
 * One warning per variable that looks meant for the gateway but is no setting (a typo would
 * otherwise be ignored silently), with the closest setting's name when one is close. Names
 * only: a value may be a secret.
 */
export function unknownSettingWarnings(vars: EnvVars): string[] {
  const warnings: string[] = [];
  for (const name of Object.keys(vars).sort()) {
    if (KNOWN.has(name) || !SETTING_PREFIXES.some((prefix) => name.startsWith(prefix))) continue;
    if (RESERVED_PREFIXES.some((prefix) => name.startsWith(prefix))) continue;
    const closest = closestSetting(name);
    warnings.push(
      closest === undefined
        ? `${name}: unknown setting (every setting is listed in .env.example)`
        : `${name}: unknown setting; did you mean ${closest}?`,
    );
  }
  return warnings;
}

/** Logs the warnings of a configuration about to be used, at start-up and at each reload. */
export function logConfigWarnings(logger: Logger, warnings: readonly string[]): void {
  if (warnings.length > 0) logger.warn({ warnings }, 'configuration warnings');
}

/** The setting whose name is fewest edits away, if that is few enough to be a typo. */
function closestSetting(name: string): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const setting of SETTINGS) {
    const distance = editDistance(name, setting.name);
    if (best === undefined || distance < best.distance) best = { name: setting.name, distance };
  }
  return best !== undefined && best.distance <= Math.max(2, Math.floor(name.length / 4))
    ? best.name
    : undefined;
}

/**
 * Levenshtein distance (insertions, deletions, substitutions), one row at a time. Written here
 * rather than taken from a package: it is a dozen lines, runs only on configuration load, over
 * a few dozen short names, and is no security boundary.
 */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
