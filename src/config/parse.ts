import type { EnvVars } from './env-source.js';
import { legacyClashes, readNamedCredentials } from './named-credentials.js';
import {
  ACCESS_LOG,
  ADMIN_LISTEN,
  API_KEYS,
  AUTH_FAILURE_LIMIT,
  AUTH_FAILURE_LIMIT_EXEMPT,
  AUTH_FAILURE_WINDOW,
  AUTH_METHOD,
  BASIC_CREDENTIALS,
  CLIENT_BODY_TIMEOUT,
  CLIENT_HEADER_TIMEOUT,
  CLIENT_IDLE_TIMEOUT,
  CLIENT_SEND_TIMEOUT,
  DRAIN_TIMEOUT,
  LIMIT_STORE,
  LISTENER_SETTINGS,
  LOG_FORMAT,
  LOG_LEVEL,
  MAX_CONNECTIONS_PER_CLIENT,
  METRICS_LISTEN,
  readSettings,
  type SettingValues,
  TLS_CERT_FILE,
  TLS_KEY_FILE,
  UPSTREAM_CONNECT_TIMEOUT,
  UPSTREAM_ERROR_BODIES,
  UPSTREAM_TIMEOUT,
  WORKERS,
} from './settings.js';
import type { GatewayConfig, ListenAddress, ListenerConfig, NamedCredential, TlsFiles } from './types.js';
import { PLACEHOLDER_API_KEY } from './types.js';
import { unknownSettingWarnings } from './unknown-settings.js';

export type ConfigResult =
  | { readonly ok: true; readonly config: GatewayConfig; readonly warnings: readonly string[] }
  /** `warnings` is absent when the environment itself could not be read. */
  | { readonly ok: false; readonly errors: readonly string[]; readonly warnings?: readonly string[] };

/**
 * Parses and validates the whole configuration, reading every setting of the table
 * (settings.ts). Every problem is reported, each naming its variable, so that
 * `edge-gateway check` can list them all at once; variables that look like misspelt settings
 * are answered as warnings.
 */
export function parseGatewayConfig(vars: EnvVars, envFile: string): ConfigResult {
  const { values, errors } = readSettings(vars);
  const warnings = unknownSettingWarnings(vars);
  const namedCredentials = readNamedCredentials(vars, errors);
  // With named credentials and no ENVOY_API_KEYS, there are no legacy keys: the stock
  // placeholder default is a drop-in convenience, never a key next to named ones.
  const legacyKeysUnset = vars[API_KEYS.name] === undefined || vars[API_KEYS.name]?.trim() === '';
  const legacyKeys = namedCredentials.length > 0 && legacyKeysUnset ? [] : values.find(API_KEYS);
  const legacyUsers = values.find(BASIC_CREDENTIALS);
  if (legacyKeys !== undefined && legacyUsers !== undefined)
    errors.push(...legacyClashes(namedCredentials, legacyKeys, legacyUsers));
  errors.push(...credentialProblems(values, legacyKeys, namedCredentials));
  const tls = pairTlsFiles(values, errors);
  const listeners = LISTENER_SETTINGS.flatMap(({ spec, listen, upstream }): ListenerConfig[] => {
    const address = values.find(listen);
    const origin = values.find(upstream);
    if (address === undefined || origin === undefined) return [];
    return [{ name: spec.name, protocol: spec.protocol, listen: address, upstream: origin }];
  });
  checkPortClashes(listeners, values.find(ADMIN_LISTEN), values.find(METRICS_LISTEN), errors);
  if (errors.length > 0) return { ok: false, errors, warnings };

  const authMethod = values.get(AUTH_METHOD);
  const apiKeys = legacyKeys ?? [];
  const config: GatewayConfig = {
    authMethod,
    apiKeys,
    basicCredentials: values.get(BASIC_CREDENTIALS),
    namedCredentials,
    placeholderKeyInUse: authMethod !== 'basic-auth' && apiKeys.includes(PLACEHOLDER_API_KEY),
    listeners,
    admin: values.get(ADMIN_LISTEN),
    metricsListen: values.get(METRICS_LISTEN),
    upstreamConnectTimeoutMs: values.get(UPSTREAM_CONNECT_TIMEOUT),
    upstreamTimeoutMs: values.get(UPSTREAM_TIMEOUT),
    drainTimeoutMs: values.get(DRAIN_TIMEOUT),
    logLevel: values.get(LOG_LEVEL),
    logFormat: values.get(LOG_FORMAT),
    accessLog: values.get(ACCESS_LOG),
    envFile,
    authFailureLimit: values.get(AUTH_FAILURE_LIMIT),
    authFailureWindowMs: values.get(AUTH_FAILURE_WINDOW),
    authFailureLimitExempt: values.get(AUTH_FAILURE_LIMIT_EXEMPT),
    clientHeaderTimeoutMs: values.get(CLIENT_HEADER_TIMEOUT),
    clientBodyTimeoutMs: values.get(CLIENT_BODY_TIMEOUT),
    clientIdleTimeoutMs: values.get(CLIENT_IDLE_TIMEOUT),
    clientSendTimeoutMs: values.get(CLIENT_SEND_TIMEOUT),
    maxConnectionsPerClient: values.get(MAX_CONNECTIONS_PER_CLIENT),
    upstreamErrorBodies: values.get(UPSTREAM_ERROR_BODIES),
    tls,
    workers: values.get(WORKERS),
    limitStore: values.get(LIMIT_STORE),
  };
  return { ok: true, config: deepFreeze(config), warnings };
}

/**
 * Zero credentials for the active method is an error: nobody could authenticate. A list of
 * only commas and spaces is not blank, so it is not the default either. Checked only when the
 * credential settings themselves parsed, so a bad entry is not also reported as "none".
 */
function credentialProblems(
  values: SettingValues,
  legacyKeys: readonly string[] | undefined,
  named: readonly NamedCredential[],
): string[] {
  const method = values.find(AUTH_METHOD);
  const legacyUsers = values.find(BASIC_CREDENTIALS);
  if (method === undefined || legacyKeys === undefined || legacyUsers === undefined) return [];
  const keys = legacyKeys.length + named.filter(({ secret }) => secret.kind === 'key').length;
  const users = legacyUsers.length + named.filter(({ secret }) => secret.kind === 'user').length;
  if (method === 'basic-auth' && users === 0) {
    return [
      `${BASIC_CREDENTIALS.name}: ${AUTH_METHOD.name} is basic-auth but no user is configured (expected user:password,... or GATEWAY_USER_<NAME>)`,
    ];
  }
  if (method === 'api-key' && keys === 0) {
    return [
      `${API_KEYS.name}: ${AUTH_METHOD.name} is api-key but the list holds no key (only commas and spaces) and no GATEWAY_KEY_<NAME> is set: nobody could authenticate`,
    ];
  }
  if (method === 'any' && keys === 0 && users === 0) {
    return [
      `${API_KEYS.name}: ${AUTH_METHOD.name} is any but the list holds no key and ${BASIC_CREDENTIALS.name} no user: nobody could authenticate`,
    ];
  }
  return [];
}

/**
 * TLS_CERT_FILE and TLS_KEY_FILE: both (TLS on every data port) or neither (cleartext). The
 * files themselves are read when the listeners start, and re-read whenever they change.
 */
function pairTlsFiles(values: SettingValues, errors: string[]): TlsFiles | null {
  const certFile = values.find(TLS_CERT_FILE) ?? null;
  const keyFile = values.find(TLS_KEY_FILE) ?? null;
  if (certFile === null && keyFile === null) return null;
  if (certFile === null) {
    errors.push(
      'TLS_CERT_FILE: TLS_KEY_FILE is set, so TLS_CERT_FILE must name the certificate file too (both or neither)',
    );
    return null;
  }
  if (keyFile === null) {
    errors.push(
      'TLS_KEY_FILE: TLS_CERT_FILE is set, so TLS_KEY_FILE must name the private key file too (both or neither)',
    );
    return null;
  }
  return { certFile, keyFile };
}

function checkPortClashes(
  listeners: readonly ListenerConfig[],
  admin: ListenAddress | undefined,
  metrics: ListenAddress | null | undefined,
  errors: string[],
): void {
  const byPort = new Map<number, string>();
  const claim = (port: number, owner: string): void => {
    const other = byPort.get(port);
    if (other !== undefined) errors.push(`${owner}: port ${port} is already used by ${other}`);
    else byPort.set(port, owner);
  };
  for (const listener of listeners) {
    const settings = LISTENER_SETTINGS.find(({ spec }) => spec.name === listener.name);
    if (listener.upstream !== null && settings) claim(listener.listen.port, settings.listen.name);
  }
  if (admin) claim(admin.port, ADMIN_LISTEN.name);
  if (metrics) claim(metrics.port, METRICS_LISTEN.name);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value) && !(value instanceof URL)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
