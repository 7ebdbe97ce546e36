import { availableParallelism } from 'node:os';
import { parseApiKeys, parseBasicCredentials } from './credentials.js';
import type { EnvVars } from './env-source.js';
import type { AuthMethod, GatewayConfig, ListenerConfig, ListenerName, LogLevel, TlsFiles } from './types.js';
import { PLACEHOLDER_API_KEY } from './types.js';
import { type Parsed, parseDuration, parseInteger, parseListenAddress, parseUpstream } from './values.js';

export type ConfigResult =
  | { readonly ok: true; readonly config: GatewayConfig }
  | { readonly ok: false; readonly errors: readonly string[] };

interface ListenerSpec {
  readonly name: ListenerName;
  readonly protocol: ListenerConfig['protocol'];
  readonly prefix: string;
  readonly listen: string;
  readonly upstream: string;
}

/** The four data ports of the stock gateway, with the stock compose service names as upstreams. */
export const LISTENER_SPECS: readonly ListenerSpec[] = [
  {
    name: 'otlp-grpc',
    protocol: 'h2c',
    prefix: 'OTLP_GRPC',
    listen: '0.0.0.0:4317',
    upstream: 'http://otel-collector:4317',
  },
  {
    name: 'otlp-http',
    protocol: 'http1',
    prefix: 'OTLP_HTTP',
    listen: '0.0.0.0:4318',
    upstream: 'http://otel-collector:4318',
  },
  {
    name: 'prometheus',
    protocol: 'http1',
    prefix: 'PROMETHEUS',
    listen: '0.0.0.0:9090',
    upstream: 'http://prometheus:9090',
  },
  {
    name: 'victoriametrics',
    protocol: 'http1',
    prefix: 'VICTORIAMETRICS',
    listen: '0.0.0.0:8428',
    upstream: 'http://victoriametrics:8428',
  },
];

const AUTH_METHODS: readonly AuthMethod[] = ['api-key', 'basic-auth', 'any'];
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function oneOf<T extends string>(text: string, allowed: readonly T[]): Parsed<T> {
  const value = text.trim().toLowerCase();
  const match = allowed.find((candidate) => candidate === value);
  return match === undefined
    ? { ok: false, error: `must be one of ${allowed.join(', ')}, got "${text}"` }
    : { ok: true, value: match };
}

/** A set variable, or undefined when unset or blank (compose's `${VAR:-default}` treats both alike). */
function setValue(vars: EnvVars, name: string): string | undefined {
  const value = vars[name];
  return value === undefined || value.trim() === '' ? undefined : value;
}

/**
 * Parses and validates the whole configuration. Every problem is reported, each naming its
 * variable, so that `edge-gateway check` can list them all at once.
 */
export function parseGatewayConfig(vars: EnvVars, envFile: string): ConfigResult {
  const errors: string[] = [];
  const take = <T>(name: string, fallback: string, parse: (text: string) => Parsed<T>): T | undefined => {
    const result = parse(setValue(vars, name) ?? fallback);
    if (result.ok) return result.value;
    errors.push(`${name}: ${result.error}`);
    return undefined;
  };

  const methodText = (setValue(vars, 'ENVOY_AUTH_METHOD') ?? 'api-key').trim().toLowerCase();
  const authMethod = AUTH_METHODS.find((method) => method === methodText);
  if (authMethod === undefined) {
    errors.push(`ENVOY_AUTH_METHOD: must be one of ${AUTH_METHODS.join(', ')}, got "${methodText}"`);
  }

  const apiKeys = parseApiKeys(
    setValue(vars, 'ENVOY_API_KEYS') ?? PLACEHOLDER_API_KEY,
    'ENVOY_API_KEYS',
    errors,
  );
  const basicCredentials = parseBasicCredentials(
    vars.ENVOY_BASIC_AUTH_CREDENTIALS ?? '',
    'ENVOY_BASIC_AUTH_CREDENTIALS',
    errors,
  );
  if (authMethod === 'basic-auth' && basicCredentials.length === 0 && !errors.some(isCredentialError)) {
    errors.push(
      'ENVOY_BASIC_AUTH_CREDENTIALS: ENVOY_AUTH_METHOD is basic-auth but no user is configured (expected user:password,...)',
    );
  }

  const listeners: ListenerConfig[] = [];
  for (const spec of LISTENER_SPECS) {
    const listen = take(`${spec.prefix}_LISTEN`, spec.listen, parseListenAddress);
    const upstream = take(`${spec.prefix}_UPSTREAM`, spec.upstream, parseUpstream);
    if (listen !== undefined && upstream !== undefined) {
      listeners.push({ name: spec.name, protocol: spec.protocol, listen, upstream });
    }
  }
  const admin = take('ADMIN_LISTEN', '127.0.0.1:9901', parseListenAddress);
  const upstreamConnectTimeoutMs = take('UPSTREAM_CONNECT_TIMEOUT', '5s', parseDuration);
  const upstreamTimeoutMs = take('UPSTREAM_TIMEOUT', '300s', parseDuration);

  const drainTimeoutMs = take('DRAIN_TIMEOUT', '15s', parseDuration);
  const logLevel = take('LOG_LEVEL', 'info', (text) => oneOf(text, LOG_LEVELS));
  const logFormat = take('LOG_FORMAT', 'auto', (text) => oneOf(text, ['auto', 'json', 'pretty'] as const));
  const accessLog = take('ACCESS_LOG', 'on', (text) => oneOf(text, ['on', 'off'] as const));

  const authFailureLimit = take('AUTH_FAILURE_LIMIT', '20', (text) => parseInteger(text, 0, 1_000_000));
  const authFailureWindowMs = take('AUTH_FAILURE_WINDOW', '1m', parseDuration);
  const clientHeaderTimeoutMs = take('CLIENT_HEADER_TIMEOUT', '30s', parseDuration);
  const clientBodyTimeoutMs = take('CLIENT_BODY_TIMEOUT', '60s', parseDuration);
  const clientIdleTimeoutMs = take('CLIENT_IDLE_TIMEOUT', '65s', parseDuration);
  const clientSendTimeoutMs = take('CLIENT_SEND_TIMEOUT', '60s', parseDuration);
  const maxConnectionsPerClient = take('MAX_CONNECTIONS_PER_CLIENT', '512', (text) =>
    parseInteger(text, 0, 1_000_000),
  );
  const tls = parseTlsFiles(vars, errors);
  const upstreamErrorBodies = take('UPSTREAM_ERROR_BODIES', 'hide', (text) =>
    oneOf(text, ['hide', 'pass'] as const),
  );
  const workers = take('WORKERS', 'auto', parseWorkers);

  checkPortClashes(listeners, admin, errors);

  if (
    errors.length > 0 ||
    authMethod === undefined ||
    admin === undefined ||
    upstreamConnectTimeoutMs === undefined ||
    upstreamTimeoutMs === undefined ||
    drainTimeoutMs === undefined ||
    logLevel === undefined ||
    logFormat === undefined ||
    accessLog === undefined ||
    authFailureLimit === undefined ||
    authFailureWindowMs === undefined ||
    clientHeaderTimeoutMs === undefined ||
    clientBodyTimeoutMs === undefined ||
    clientIdleTimeoutMs === undefined ||
    clientSendTimeoutMs === undefined ||
    maxConnectionsPerClient === undefined ||
    upstreamErrorBodies === undefined ||
    workers === undefined
  ) {
    return { ok: false, errors };
  }
  const config: GatewayConfig = {
    authMethod,
    apiKeys,
    basicCredentials,
    placeholderKeyInUse: authMethod !== 'basic-auth' && apiKeys.includes(PLACEHOLDER_API_KEY),
    listeners,
    admin,
    upstreamConnectTimeoutMs,
    upstreamTimeoutMs,
    drainTimeoutMs,
    logLevel,
    logFormat,
    accessLog: accessLog === 'on',
    envFile,
    authFailureLimit,
    authFailureWindowMs,
    clientHeaderTimeoutMs,
    clientBodyTimeoutMs,
    clientIdleTimeoutMs,
    clientSendTimeoutMs,
    maxConnectionsPerClient,
    upstreamErrorBodies,
    tls,
    workers,
  };
  return { ok: true, config: deepFreeze(config) };
}

/**
 * TLS_CERT_FILE and TLS_KEY_FILE: both (TLS on every data port) or neither (cleartext). The
 * files themselves are read when the listeners start, and re-read whenever they change.
 */
function parseTlsFiles(vars: EnvVars, errors: string[]): TlsFiles | null {
  const certFile = setValue(vars, 'TLS_CERT_FILE')?.trim();
  const keyFile = setValue(vars, 'TLS_KEY_FILE')?.trim();
  if (certFile === undefined && keyFile === undefined) return null;
  if (certFile === undefined) {
    errors.push(
      'TLS_CERT_FILE: TLS_KEY_FILE is set, so TLS_CERT_FILE must name the certificate file too (both or neither)',
    );
    return null;
  }
  if (keyFile === undefined) {
    errors.push(
      'TLS_KEY_FILE: TLS_CERT_FILE is set, so TLS_KEY_FILE must name the private key file too (both or neither)',
    );
    return null;
  }
  return { certFile, keyFile };
}

/** `auto` (one worker per CPU this process may use) or a whole number of processes. */
function parseWorkers(text: string): Parsed<number> {
  if (text.trim().toLowerCase() === 'auto') return { ok: true, value: availableParallelism() };
  return parseInteger(text, 1, 256);
}

function isCredentialError(message: string): boolean {
  return message.startsWith('ENVOY_BASIC_AUTH_CREDENTIALS');
}

function checkPortClashes(
  listeners: readonly ListenerConfig[],
  admin: { port: number } | undefined,
  errors: string[],
): void {
  const byPort = new Map<number, string>();
  const claim = (port: number, owner: string): void => {
    const other = byPort.get(port);
    if (other !== undefined) errors.push(`${owner}: port ${port} is already used by ${other}`);
    else byPort.set(port, owner);
  };
  for (const listener of listeners) {
    const spec = LISTENER_SPECS.find((candidate) => candidate.name === listener.name);
    if (listener.upstream !== null && spec) claim(listener.listen.port, `${spec.prefix}_LISTEN`);
  }
  if (admin) claim(admin.port, 'ADMIN_LISTEN');
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value) && !(value instanceof URL)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
