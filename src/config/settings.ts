import { availableParallelism } from 'node:os';
import { parseApiKeys, parseBasicCredentials } from './credentials.js';
import type { EnvVars } from './env-source.js';
import { limitStoreText, parseLimitStore } from './limit-store.js';
import { formatAddress } from './redact.js';
import type {
  AddressRange,
  AuthMethod,
  BasicCredential,
  GatewayConfig,
  LimitStore,
  ListenAddress,
  ListenerConfig,
  ListenerName,
  LogLevel,
} from './types.js';
import { PLACEHOLDER_API_KEY } from './types.js';
import {
  formatDuration,
  formatRange,
  type Parsed,
  parseAddressRanges,
  parseDuration,
  parseInteger,
  parseListenAddress,
  parseOneOf,
  parseUpstream,
} from './values.js';

/** A setting's value, or every message (each naming the variable) saying why it has none. */
export type Checked<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly errors: readonly string[] };

/** `live`: a reload applies it to the next request; `restart`: a reload reports it and keeps the old value. */
export type Applies = 'live' | 'restart';

/**
 * One environment variable of the gateway. Everything about a setting is said here once:
 * the parser, the reload, `check`, the unknown-variable warning and the README's table all
 * read this table.
 */
export interface Setting<T> {
  readonly name: string;
  /** What an unset or blank variable means, as an operator would write it ('' : unset). */
  readonly default: string;
  readonly parse: (text: string, name: string) => Checked<T>;
  readonly applies: Applies;
  /** The GatewayConfig field the value lands in: what a reload keeps for a restart setting. */
  readonly field: keyof GatewayConfig;
  /** The value in force as text, never a secret: what `check` prints and a reload compares. */
  readonly inForce: (config: GatewayConfig) => string;
  /** One line of Markdown for the README's table. */
  readonly doc: string;
  /**
   * Whether a reload changes it, when `inForce` cannot tell (it hides a secret that may be all
   * that changed). Default: the two `inForce` texts differ.
   */
  readonly differs?: (running: GatewayConfig, next: GatewayConfig) => boolean;
}

/** A value parser that has one message, prefixed with the variable's name. */
function single<T>(parse: (text: string) => Parsed<T>): (text: string, name: string) => Checked<T> {
  return (text, name) => {
    const result = parse(text);
    return result.ok ? result : { ok: false, errors: [`${name}: ${result.error}`] };
  };
}

/** A parser in the credentials' style, which reports each bad entry on its own. */
function perEntry<T>(
  parse: (text: string, name: string, errors: string[]) => T,
): (text: string, name: string) => Checked<T> {
  return (text, name) => {
    const errors: string[] = [];
    const value = parse(text, name, errors);
    return errors.length === 0 ? { ok: true, value } : { ok: false, errors };
  };
}

const oneOf = <T extends string>(allowed: readonly T[]) => single((text) => parseOneOf(text, allowed));
const duration = single(parseDuration);
const count = single((text) => parseInteger(text, 0, 1_000_000));

/** `auto` (one worker per CPU this process may use) or a whole number of processes. */
function parseWorkers(text: string): Parsed<number> {
  if (text.trim().toLowerCase() === 'auto') return { ok: true, value: availableParallelism() };
  return parseInteger(text, 1, 256);
}

/** A file path, or null when unset. */
const optionalPath = single((text): Parsed<string | null> => ({ ok: true, value: text.trim() || null }));

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

export const AUTH_METHOD: Setting<AuthMethod> = {
  name: 'ENVOY_AUTH_METHOD',
  default: 'api-key',
  parse: oneOf(['api-key', 'basic-auth', 'any'] as const),
  applies: 'live',
  field: 'authMethod',
  inForce: (config) => config.authMethod,
  doc: '`api-key`, `basic-auth`, or `any` (either credential)',
};

export const API_KEYS: Setting<string[]> = {
  name: 'ENVOY_API_KEYS',
  default: PLACEHOLDER_API_KEY,
  parse: perEntry(parseApiKeys),
  applies: 'live',
  field: 'apiKeys',
  inForce: (config) => plural(config.apiKeys.length, 'key'),
  doc: 'comma-separated keys; whitespace around each trimmed; a list with no key in it is an error when keys are the only credentials',
};

export const BASIC_CREDENTIALS: Setting<BasicCredential[]> = {
  name: 'ENVOY_BASIC_AUTH_CREDENTIALS',
  default: '',
  parse: perEntry(parseBasicCredentials),
  applies: 'live',
  field: 'basicCredentials',
  inForce: (config) => plural(config.basicCredentials.length, 'user'),
  doc: 'comma-separated `user:password` or `user:<bcrypt hash>` (`$2a$`, `$2b$`, `$2y$`; other hashes are refused); the password may contain `:`',
};

interface ListenerSpec {
  readonly name: ListenerName;
  readonly protocol: ListenerConfig['protocol'];
  readonly prefix: string;
  /** What the port carries, for the docs. */
  readonly carries: string;
  readonly listen: string;
  readonly upstream: string;
}

/** The four data ports of the stock gateway, with the stock compose service names as upstreams. */
export const LISTENER_SPECS: readonly ListenerSpec[] = [
  {
    name: 'otlp-grpc',
    protocol: 'h2c',
    prefix: 'OTLP_GRPC',
    carries: 'OTLP over gRPC',
    listen: '0.0.0.0:4317',
    upstream: 'http://otel-collector:4317',
  },
  {
    name: 'otlp-http',
    protocol: 'http1',
    prefix: 'OTLP_HTTP',
    carries: 'OTLP over HTTP',
    listen: '0.0.0.0:4318',
    upstream: 'http://otel-collector:4318',
  },
  {
    name: 'prometheus',
    protocol: 'http1',
    prefix: 'PROMETHEUS',
    carries: 'Prometheus',
    listen: '0.0.0.0:9090',
    upstream: 'http://prometheus:9090',
  },
  {
    name: 'victoriametrics',
    protocol: 'http1',
    prefix: 'VICTORIAMETRICS',
    carries: 'VictoriaMetrics',
    listen: '0.0.0.0:8428',
    upstream: 'http://victoriametrics:8428',
  },
];

function listenerIn(config: GatewayConfig, name: ListenerName): ListenerConfig | undefined {
  return config.listeners.find((listener) => listener.name === name);
}

export interface ListenerSettings {
  readonly spec: ListenerSpec;
  readonly listen: Setting<ListenAddress>;
  readonly upstream: Setting<URL | null>;
}

export const LISTENER_SETTINGS: readonly ListenerSettings[] = LISTENER_SPECS.map((spec) => ({
  spec,
  listen: {
    name: `${spec.prefix}_LISTEN`,
    default: spec.listen,
    parse: single(parseListenAddress),
    applies: 'restart',
    field: 'listeners',
    inForce: (config) => {
      const listener = listenerIn(config, spec.name);
      return listener === undefined ? 'none' : formatAddress(listener.listen);
    },
    doc: `where the ${spec.carries} port listens`,
  },
  upstream: {
    name: `${spec.prefix}_UPSTREAM`,
    default: spec.upstream,
    parse: single(parseUpstream),
    applies: 'restart',
    field: 'listeners',
    inForce: (config) => listenerIn(config, spec.name)?.upstream?.origin ?? 'off',
    doc: `where the ${spec.carries} port forwards; \`off\` switches the listener off`,
  },
}));

export const ADMIN_LISTEN: Setting<ListenAddress> = {
  name: 'ADMIN_LISTEN',
  default: '127.0.0.1:9901',
  parse: single(parseListenAddress),
  applies: 'restart',
  field: 'admin',
  inForce: (config) => formatAddress(config.admin),
  doc: 'admin port',
};

/** `off` (null) or an address, as the other `*_LISTEN` settings are written. */
function parseOptionalListen(text: string): Parsed<ListenAddress | null> {
  return text.trim().toLowerCase() === 'off' ? { ok: true, value: null } : parseListenAddress(text);
}

// Issue 15: the admin port stays on loopback; this one lets the stack's Prometheus scrape.
export const METRICS_LISTEN: Setting<ListenAddress | null> = {
  name: 'METRICS_LISTEN',
  default: 'off',
  parse: single(parseOptionalListen),
  applies: 'restart',
  field: 'metricsListen',
  inForce: (config) => (config.metricsListen === null ? 'off' : formatAddress(config.metricsListen)),
  doc: 'a port serving only `GET /metrics` (summed over workers), without credentials, for Prometheus to scrape; `off` for none',
};

/** A duration setting, shown as an operator writes it. */
function durationSetting(
  name: string,
  field: { [K in keyof GatewayConfig]: GatewayConfig[K] extends number ? K : never }[keyof GatewayConfig],
  defaults: { default: string; applies: Applies; doc: string },
): Setting<number> {
  return { name, field, parse: duration, inForce: (config) => formatDuration(config[field]), ...defaults };
}

export const UPSTREAM_CONNECT_TIMEOUT = durationSetting(
  'UPSTREAM_CONNECT_TIMEOUT',
  'upstreamConnectTimeoutMs',
  {
    default: '5s',
    applies: 'restart',
    doc: "connect timeout to an upstream (Envoy's stock value)",
  },
);

export const UPSTREAM_TIMEOUT = durationSetting('UPSTREAM_TIMEOUT', 'upstreamTimeoutMs', {
  default: '300s',
  applies: 'restart',
  doc: "longest wait for an upstream's response headers (slow PromQL), and for each silence inside its body",
});

export const UPSTREAM_ERROR_BODIES: Setting<'hide' | 'pass'> = {
  name: 'UPSTREAM_ERROR_BODIES',
  default: 'hide',
  parse: oneOf(['hide', 'pass'] as const),
  applies: 'restart',
  field: 'upstreamErrorBodies',
  inForce: (config) => config.upstreamErrorBodies,
  doc: '`hide`: an upstream 5xx body is replaced by a short text naming the upstream and the status; `pass`: relayed',
};

export const CLIENT_HEADER_TIMEOUT = durationSetting('CLIENT_HEADER_TIMEOUT', 'clientHeaderTimeoutMs', {
  default: '30s',
  applies: 'restart',
  doc: "longest time a client may take to send a request's headers (and the TLS handshake)",
});

export const CLIENT_BODY_TIMEOUT = durationSetting('CLIENT_BODY_TIMEOUT', 'clientBodyTimeoutMs', {
  default: '60s',
  applies: 'restart',
  doc: 'longest silence inside a request body (408)',
});

export const CLIENT_IDLE_TIMEOUT = durationSetting('CLIENT_IDLE_TIMEOUT', 'clientIdleTimeoutMs', {
  default: '65s',
  applies: 'restart',
  doc: 'an idle keep-alive or HTTP/2 client connection is closed after this long',
});

export const CLIENT_SEND_TIMEOUT = durationSetting('CLIENT_SEND_TIMEOUT', 'clientSendTimeoutMs', {
  default: '60s',
  applies: 'restart',
  doc: 'longest time an answer may wait on a client that does not read it',
});

export const MAX_CONNECTIONS_PER_CLIENT: Setting<number> = {
  name: 'MAX_CONNECTIONS_PER_CLIENT',
  default: '512',
  parse: count,
  applies: 'restart',
  field: 'maxConnectionsPerClient',
  inForce: (config) => String(config.maxConnectionsPerClient),
  doc: 'open connections one client address may hold on each data port (`0`: no cap)',
};

export const AUTH_FAILURE_LIMIT: Setting<number> = {
  name: 'AUTH_FAILURE_LIMIT',
  default: '20',
  parse: count,
  applies: 'live',
  field: 'authFailureLimit',
  inForce: (config) => String(config.authFailureLimit),
  doc: 'authentication failures per client address per window before 429 (`0`: no limit; see [Security](#security))',
};

export const AUTH_FAILURE_WINDOW = durationSetting('AUTH_FAILURE_WINDOW', 'authFailureWindowMs', {
  default: '1m',
  applies: 'live',
  doc: 'the window of `AUTH_FAILURE_LIMIT`',
});

export const AUTH_FAILURE_LIMIT_EXEMPT: Setting<readonly AddressRange[]> = {
  name: 'AUTH_FAILURE_LIMIT_EXEMPT',
  default: '',
  parse: single(parseAddressRanges),
  applies: 'live',
  field: 'authFailureLimitExempt',
  inForce: (config) => config.authFailureLimitExempt.map(formatRange).join(',') || 'none',
  doc: 'comma-separated addresses and CIDR ranges (IPv4, IPv6) that `AUTH_FAILURE_LIMIT` never refuses, e.g. a shared NAT or sidecar',
};

export const TLS_CERT_FILE: Setting<string | null> = {
  name: 'TLS_CERT_FILE',
  default: '',
  parse: optionalPath,
  applies: 'restart',
  field: 'tls',
  inForce: (config) => config.tls?.certFile ?? 'unset',
  doc: 'PEM certificate chain; with `TLS_KEY_FILE`: TLS on every data port (HTTPS; gRPC over TLS with ALPN h2), files re-read when they change',
};

export const TLS_KEY_FILE: Setting<string | null> = {
  name: 'TLS_KEY_FILE',
  default: '',
  parse: optionalPath,
  applies: 'restart',
  field: 'tls',
  inForce: (config) => config.tls?.keyFile ?? 'unset',
  doc: 'PEM private key of `TLS_CERT_FILE` (both or neither)',
};

export const DRAIN_TIMEOUT = durationSetting('DRAIN_TIMEOUT', 'drainTimeoutMs', {
  default: '15s',
  applies: 'live',
  doc: 'how long in-flight requests may finish after SIGTERM',
});

export const WORKERS: Setting<number> = {
  name: 'WORKERS',
  default: 'auto',
  parse: single(parseWorkers),
  applies: 'restart',
  field: 'workers',
  inForce: (config) => String(config.workers),
  doc: 'processes serving traffic (`auto`: one per CPU); `1`: a single process',
};

// Restart: each process opens its Redis connection at start, and switching stores live would
// drop every budget and count in the middle of their windows.
export const LIMIT_STORE: Setting<LimitStore> = {
  name: 'LIMIT_STORE',
  default: 'memory',
  parse: single(parseLimitStore),
  applies: 'restart',
  field: 'limitStore',
  inForce: (config) => limitStoreText(config.limitStore),
  differs: (running, next) =>
    limitStoreText(running.limitStore) !== limitStoreText(next.limitStore) ||
    (running.limitStore.kind === 'redis' &&
      next.limitStore.kind === 'redis' &&
      running.limitStore.password !== next.limitStore.password),
  doc: '`memory` (each process on its own) or `redis://[user:password@]host:port[/db]` (`rediss://`: TLS), shared by every worker and replica: where `rate=`, `bytes=` and `AUTH_FAILURE_LIMIT` count',
};

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export const LOG_LEVEL: Setting<LogLevel> = {
  name: 'LOG_LEVEL',
  default: 'info',
  parse: oneOf(LOG_LEVELS),
  applies: 'live',
  field: 'logLevel',
  inForce: (config) => config.logLevel,
  doc: '`fatal` … `trace`, `silent`',
};

export const LOG_FORMAT: Setting<GatewayConfig['logFormat']> = {
  name: 'LOG_FORMAT',
  default: 'auto',
  parse: oneOf(['auto', 'json', 'pretty'] as const),
  // The logger's output stream is chosen once, when the process starts.
  applies: 'restart',
  field: 'logFormat',
  inForce: (config) => config.logFormat,
  doc: '`json`, `pretty`, or `auto` (pretty on a terminal)',
};

export const ACCESS_LOG: Setting<boolean> = {
  name: 'ACCESS_LOG',
  default: 'on',
  parse: single((text) => {
    const word = parseOneOf(text, ['on', 'off'] as const);
    return word.ok ? { ok: true, value: word.value === 'on' } : word;
  }),
  applies: 'live',
  field: 'accessLog',
  inForce: (config) => (config.accessLog ? 'on' : 'off'),
  doc: 'one JSON line per request',
};

/**
 * Read by the loader (envFilePath), before there is a file to read settings from: listed here
 * for the docs, `check` and the unknown-variable warning.
 */
export const GATEWAY_ENV_FILE: Setting<string> = {
  name: 'GATEWAY_ENV_FILE',
  default: '.env',
  parse: single((text) => ({ ok: true, value: text.trim() })),
  applies: 'restart',
  field: 'envFile',
  inForce: (config) => config.envFile,
  doc: 'the env file read over the process environment (a missing file is fine)',
};

/** Every setting, in the order of the docs. */
export const SETTINGS: readonly Setting<unknown>[] = [
  AUTH_METHOD,
  API_KEYS,
  BASIC_CREDENTIALS,
  ...LISTENER_SETTINGS.flatMap(({ listen, upstream }) => [listen, upstream]),
  ADMIN_LISTEN,
  METRICS_LISTEN,
  UPSTREAM_CONNECT_TIMEOUT,
  UPSTREAM_TIMEOUT,
  UPSTREAM_ERROR_BODIES,
  CLIENT_HEADER_TIMEOUT,
  CLIENT_BODY_TIMEOUT,
  CLIENT_IDLE_TIMEOUT,
  CLIENT_SEND_TIMEOUT,
  MAX_CONNECTIONS_PER_CLIENT,
  AUTH_FAILURE_LIMIT,
  AUTH_FAILURE_WINDOW,
  AUTH_FAILURE_LIMIT_EXEMPT,
  TLS_CERT_FILE,
  TLS_KEY_FILE,
  DRAIN_TIMEOUT,
  WORKERS,
  LIMIT_STORE,
  LOG_LEVEL,
  LOG_FORMAT,
  ACCESS_LOG,
  GATEWAY_ENV_FILE,
];

/** A set variable, or undefined when unset or blank (compose's `${VAR:-default}` treats both alike). */
export function setValue(vars: EnvVars, name: string): string | undefined {
  const value = vars[name];
  return value === undefined || value.trim() === '' ? undefined : value;
}

/** The parsed value of every setting that parsed. */
export class SettingValues {
  constructor(private readonly values: ReadonlyMap<Setting<unknown>, unknown>) {}

  /** The value, or undefined when the variable's value was refused. */
  find<T>(setting: Setting<T>): T | undefined {
    return this.values.get(setting) as T | undefined;
  }

  /** The value of a setting the caller knows parsed (every one did when there was no error). */
  get<T>(setting: Setting<T>): T {
    if (!this.values.has(setting))
      throw new Error(`${setting.name} has no value: read only when every setting parsed`);
    return this.values.get(setting) as T;
  }
}

/** Parses every setting of the table; the errors name their variables. */
export function readSettings(vars: EnvVars): { readonly values: SettingValues; readonly errors: string[] } {
  const values = new Map<Setting<unknown>, unknown>();
  const errors: string[] = [];
  for (const setting of SETTINGS) {
    const result = setting.parse(setValue(vars, setting.name) ?? setting.default, setting.name);
    if (result.ok) values.set(setting, result.value);
    else errors.push(...result.errors);
  }
  return { values: new SettingValues(values), errors };
}
