import type { EnvVars } from './env-source.js';
import { type GatewayConfig, PLACEHOLDER_API_KEY } from './types.js';

/** A parsed configuration with the merged environment it was parsed from. */
export interface LoadedConfig {
  readonly config: GatewayConfig;
  readonly vars: EnvVars;
}

/**
 * Why a valid new configuration must not replace the running one at reload, or null when it
 * may. A reload must never lower the gate (issue 10 §3): a half-written or emptied env file
 * still parses (an empty one is the stock defaults, placeholder key included), so the changes
 * such a file causes are refused like an invalid edit. Start-up does not ask: what an operator
 * starts with on purpose is theirs to choose.
 */
export function reloadRefusal(running: LoadedConfig, next: LoadedConfig): string | null {
  const runningMethod = running.config.authMethod;
  if (
    isSet(running.vars, 'ENVOY_AUTH_METHOD') &&
    !isSet(next.vars, 'ENVOY_AUTH_METHOD') &&
    next.config.authMethod !== runningMethod
  ) {
    return (
      `ENVOY_AUTH_METHOD: the new env file no longer sets it, which would switch authentication from ` +
      `${runningMethod} to the default ${next.config.authMethod}; write ENVOY_AUTH_METHOD=${next.config.authMethod} to switch on purpose`
    );
  }
  if (next.config.placeholderKeyInUse && !running.config.placeholderKeyInUse) {
    const why = isSet(next.vars, 'ENVOY_API_KEYS')
      ? 'the new env file lists it in ENVOY_API_KEYS'
      : 'the new env file sets no ENVOY_API_KEYS';
    return (
      `ENVOY_API_KEYS: the public ${PLACEHOLDER_API_KEY} would be accepted (${why}); ` +
      'a reload never switches it on: restart the gateway to use it on purpose'
    );
  }
  if (credentialCount(running.config) > 0 && credentialCount(next.config) === 0) {
    const variables =
      next.config.authMethod === 'any'
        ? 'ENVOY_API_KEYS, ENVOY_BASIC_AUTH_CREDENTIALS'
        : next.config.authMethod === 'api-key'
          ? 'ENVOY_API_KEYS'
          : 'ENVOY_BASIC_AUTH_CREDENTIALS';
    return (
      `${variables}: the new env file leaves no credential for ENVOY_AUTH_METHOD=${next.config.authMethod}, ` +
      'so every client would be refused'
    );
  }
  return null;
}

/** Same rule as the parser: a blank value counts as unset. */
function isSet(vars: EnvVars, name: string): boolean {
  const value = vars[name];
  return value !== undefined && value.trim() !== '';
}

/** Credentials the auth method accepts, the public placeholder key not counted. */
function credentialCount(config: GatewayConfig): number {
  const named = config.namedCredentials;
  const keys =
    config.apiKeys.filter((key) => key !== PLACEHOLDER_API_KEY).length +
    named.filter(({ secret }) => secret.kind === 'key').length;
  const users = config.basicCredentials.length + named.filter(({ secret }) => secret.kind === 'user').length;
  if (config.authMethod === 'api-key') return keys;
  if (config.authMethod === 'basic-auth') return users;
  return keys + users;
}
