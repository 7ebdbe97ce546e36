import { keyIdentity } from '../auth/credential-store.js';
import { credentialSummaries, scopeText } from './credential-summary.js';
import { limitStoreText } from './limit-store.js';
import type { GatewayConfig, ListenAddress } from './types.js';
import { formatRange } from './values.js';

export const REDACTED = '[redacted]';

function address({ host, port }: ListenAddress): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * The effective configuration as plain JSON with every secret replaced by `[redacted]`: keys
 * appear only as their identity (`key-<8 hex of sha256>`), users with their kind of password.
 */
export function redactedConfig(config: GatewayConfig): Record<string, unknown> {
  return {
    auth: {
      method: config.authMethod,
      api_keys: config.apiKeys.map((key) => ({ identity: keyIdentity(key), key: REDACTED })),
      basic_users: config.basicCredentials.map((credential) => ({
        user: credential.user,
        password: credential.kind === 'bcrypt' ? 'bcrypt hash [redacted]' : REDACTED,
      })),
      placeholder_key_in_use: config.placeholderKeyInUse,
      // Every accepted credential by name with what it may do; the secret is never shown.
      credentials: credentialSummaries(config).map((summary) => ({
        name: summary.name,
        kind: summary.kind,
        scopes: scopeText(summary.scopes),
        expires: summary.expires,
        source: summary.source,
      })),
    },
    listeners: config.listeners.map((listener) => ({
      name: listener.name,
      protocol: listener.protocol,
      listen: address(listener.listen),
      upstream: listener.upstream === null ? 'off' : listener.upstream.origin,
    })),
    admin: address(config.admin),
    metrics_listen: config.metricsListen === null ? 'off' : address(config.metricsListen),
    upstream_connect_timeout_ms: config.upstreamConnectTimeoutMs,
    upstream_timeout_ms: config.upstreamTimeoutMs,
    drain_timeout_ms: config.drainTimeoutMs,
    log_level: config.logLevel,
    log_format: config.logFormat,
    access_log: config.accessLog,
    env_file: config.envFile,
    workers: config.workers,
    limit_store: limitStoreText(config.limitStore),
    auth_failure_limit: config.authFailureLimit,
    auth_failure_window_ms: config.authFailureWindowMs,
    auth_failure_limit_exempt: config.authFailureLimitExempt.map(formatRange),
    client_header_timeout_ms: config.clientHeaderTimeoutMs,
    client_body_timeout_ms: config.clientBodyTimeoutMs,
    client_idle_timeout_ms: config.clientIdleTimeoutMs,
    client_send_timeout_ms: config.clientSendTimeoutMs,
    max_connections_per_client: config.maxConnectionsPerClient,
    // Paths only: the private key's content never leaves the listeners.
    upstream_error_bodies: config.upstreamErrorBodies,
    tls: config.tls === null ? 'off' : { cert_file: config.tls.certFile, key_file: config.tls.keyFile },
  };
}

export { address as formatAddress };
