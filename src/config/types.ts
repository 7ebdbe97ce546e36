/** Which credentials a data port accepts. `any` accepts either an API key or a Basic user. */
export type AuthMethod = 'api-key' | 'basic-auth' | 'any';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** Identifies a data listener; also its label in metrics and logs. */
export type ListenerName = 'otlp-grpc' | 'otlp-http' | 'prometheus' | 'victoriametrics';

export interface ListenerConfig {
  readonly name: ListenerName;
  /** HTTP/2 cleartext (gRPC) or HTTP/1.1. */
  readonly protocol: 'h2c' | 'http1';
  readonly listen: ListenAddress;
  /** The upstream origin (`http://host:port`), or null when the listener is switched off. */
  readonly upstream: URL | null;
}

export type BasicCredential =
  | { readonly user: string; readonly kind: 'plain'; readonly password: string }
  | { readonly user: string; readonly kind: 'bcrypt'; readonly hash: string };

/** What a credential may do (issue 12); `all` in the env file is all three. */
export type Scope = 'ingest' | 'read' | 'admin';
export const SCOPES: readonly Scope[] = ['ingest', 'read', 'admin'];

/** The secret of a named credential, as the request path needs it. */
export type NamedSecret =
  /** `sha256Hex`: the SHA-256 digest of the key, whether the env file held the key or only its digest. */
  | { readonly kind: 'key'; readonly sha256Hex: string }
  | { readonly kind: 'user'; readonly credential: BasicCredential };

/**
 * A credential from `GATEWAY_KEY_<NAME>` or `GATEWAY_USER_<NAME>`: a name for logs, metrics and
 * the identity header, what it may do, and until when.
 */
export interface NamedCredential {
  /** `checkout-service` for GATEWAY_KEY_CHECKOUT_SERVICE. */
  readonly name: string;
  readonly variable: string;
  readonly secret: NamedSecret;
  /** In the order of SCOPES, without repeats. */
  readonly scopes: readonly Scope[];
  /** Milliseconds since the epoch from which it is refused, or null: it does not expire. */
  readonly expiresAt: number | null;
  /** rate=, burst=, bytes=, inflight= (issue 14); each null when not set. */
  readonly limits: CredentialLimits;
}

/** A request rate: `count` requests per `windowSeconds`, in bursts of at most `burst`. */
export interface RequestRate {
  readonly count: number;
  readonly windowSeconds: 1 | 60;
  readonly burst: number;
}

/** What one credential may use (issue 14). Rate and bytes are budgets; inflight is per process. */
export interface CredentialLimits {
  readonly rate: RequestRate | null;
  /** Request body bytes per minute on ingest paths. */
  readonly bytesPerMinute: number | null;
  /** Requests in progress at once, per gateway process. */
  readonly inflight: number | null;
}

export interface GatewayConfig {
  readonly authMethod: AuthMethod;
  /** ENVOY_API_KEYS: legacy keys, scope `all`. */
  readonly apiKeys: readonly string[];
  /** ENVOY_BASIC_AUTH_CREDENTIALS: legacy users, scope `all`. */
  readonly basicCredentials: readonly BasicCredential[];
  readonly namedCredentials: readonly NamedCredential[];
  /** True while the stock placeholder key is accepted: start-up warns loudly. */
  readonly placeholderKeyInUse: boolean;
  readonly listeners: readonly ListenerConfig[];
  readonly admin: ListenAddress;
  /** METRICS_LISTEN: where `GET /metrics` is served without credentials, or null (off). */
  readonly metricsListen: ListenAddress | null;
  readonly upstreamConnectTimeoutMs: number;
  readonly upstreamTimeoutMs: number;
  /** How long in-flight requests may take to finish after SIGTERM. */
  readonly drainTimeoutMs: number;
  readonly logLevel: LogLevel;
  /** `json`, `pretty`, or `auto` (pretty when stdout is a terminal). */
  readonly logFormat: 'json' | 'pretty' | 'auto';
  /** One access-log line per request. */
  readonly accessLog: boolean;
  /** Where the env file was looked for (it may not exist). */
  readonly envFile: string;
  /** Authentication failures one client address may make per window before it gets 429 (0: no limit). */
  readonly authFailureLimit: number;
  readonly authFailureWindowMs: number;
  /** Client addresses AUTH_FAILURE_LIMIT never refuses (their failures are still counted in metrics). */
  readonly authFailureLimitExempt: readonly AddressRange[];
  /** Longest time a client may take to send a request's headers (HTTP/1.1; also the TLS handshake). */
  readonly clientHeaderTimeoutMs: number;
  /** Longest silence inside a request body before the request is cut (408). */
  readonly clientBodyTimeoutMs: number;
  /** An idle client connection (no request in progress) is closed after this long. */
  readonly clientIdleTimeoutMs: number;
  /** Longest time an answer may wait on a client that does not read it before the exchange is cut. */
  readonly clientSendTimeoutMs: number;
  /** Open connections one client address may hold on each data port (0: no cap). */
  readonly maxConnectionsPerClient: number;
  /**
   * `hide`: the body of an upstream 5xx answer (and the grpc-message of UNKNOWN, INTERNAL,
   * DATA_LOSS) is replaced by a short text naming the upstream and the status, so internals such
   * as stack traces never reach clients. `pass`: relayed as they are.
   */
  readonly upstreamErrorBodies: 'hide' | 'pass';
  /** TLS on the data ports (HTTPS, and gRPC over TLS with ALPN h2), or null for cleartext. */
  readonly tls: TlsFiles | null;
  /** Processes serving traffic: 1 runs in this process; more runs a node:cluster primary and workers. */
  readonly workers: number;
  /** LIMIT_STORE: where the rate= and bytes= budgets and the AUTH_FAILURE_LIMIT counts live. */
  readonly limitStore: LimitStore;
}

/**
 * LIMIT_STORE (issue 14): `memory`, each process on its own, or a Redis shared by every worker
 * and replica that points at it. `password` is a secret: shown only as [redacted].
 */
export type LimitStore =
  | { readonly kind: 'memory' }
  | {
      readonly kind: 'redis';
      /** rediss:// */
      readonly tls: boolean;
      readonly host: string;
      readonly port: number;
      readonly username: string | null;
      readonly password: string | null;
      readonly db: number;
    };

/** An address range (`10.0.0.0/8`; a single address has the full prefix length). */
export interface AddressRange {
  /** Canonical spelling, as Node writes it. */
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

export interface TlsFiles {
  /** PEM certificate chain, leaf first. */
  readonly certFile: string;
  /** PEM private key of the leaf certificate. */
  readonly keyFile: string;
}

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export const PLACEHOLDER_API_KEY = 'placeholder_api_key';
