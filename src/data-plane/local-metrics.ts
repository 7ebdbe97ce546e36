import type { BcryptVerifier } from '../auth/bcrypt-verifier.js';
import type { AuthFailureLimiter } from '../auth/failure-limiter.js';
import { GrpcListener } from '../listeners/grpc.js';
import type { Http1Listener } from '../listeners/http1.js';
import type { TlsReloader } from '../listeners/tls-certificates.js';
import type { GatewayMetrics } from '../observability/metrics.js';

export interface LocalState {
  readonly bcrypt: BcryptVerifier;
  readonly failureLimiter: AuthFailureLimiter;
  readonly tlsReloader: TlsReloader | null;
  readonly listeners: ReadonlyArray<Http1Listener | GrpcListener>;
}

/** The metrics read at scrape time from this process's listeners, bcrypt, limiter and TLS files. */
export function registerLocalMetrics(metrics: GatewayMetrics, state: LocalState): void {
  const { bcrypt, failureLimiter, tlsReloader, listeners } = state;
  metrics.counterFrom(
    'gateway_bcrypt_cache_hits_total',
    'bcrypt verifications answered from the cache.',
    () => bcrypt.cacheHits,
  );
  metrics.counterFrom(
    'gateway_bcrypt_cache_misses_total',
    'bcrypt verifications that ran bcrypt.',
    () => bcrypt.cacheMisses,
  );
  metrics.counterFrom(
    'gateway_bcrypt_rejected_overload_total',
    'bcrypt verifications refused (503 / UNAVAILABLE) because the bcrypt queue was full or its CPU budget spent.',
    () => bcrypt.rejectedOverload,
  );
  metrics.gaugeFrom(
    'gateway_auth_failure_tracked_addresses',
    'Client addresses with authentication failures in their current AUTH_FAILURE_WINDOW.',
    null,
    () => failureLimiter.trackedAddresses,
  );
  if (tlsReloader !== null) {
    metrics.gaugeFrom(
      'gateway_tls_certificate_expiry_timestamp_seconds',
      'Unix time at which the served TLS certificate expires.',
      null,
      () => tlsReloader.current.notAfterSeconds,
      // A timestamp: summed over workers it would lie; the earliest one is what expires first.
      'min',
    );
    metrics.counterFrom(
      'gateway_tls_certificate_reloads_total',
      'TLS certificate and key pairs reloaded from TLS_CERT_FILE and TLS_KEY_FILE.',
      () => tlsReloader.reloads,
    );
    metrics.counterFrom(
      'gateway_tls_certificate_reload_failures_total',
      'Changed TLS files that could not be used (unreadable, not PEM, key not matching).',
      () => tlsReloader.failures,
    );
  }
  metrics.gaugeFrom('gateway_open_connections', 'Open client connections, by listener.', 'listener', () =>
    listeners.map((listener) => [listener.options.config.name, listener.openConnections] as const),
  );
  metrics.gaugeFrom(
    'gateway_upstream_http2_sessions',
    'Open HTTP/2 sessions to gRPC upstreams, by listener.',
    'listener',
    () =>
      listeners
        .filter((listener): listener is GrpcListener => listener instanceof GrpcListener)
        .map((listener) => [listener.options.config.name, listener.pool.openSessions] as const),
  );
}
