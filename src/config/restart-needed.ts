import { formatAddress } from './redact.js';
import type { GatewayConfig } from './types.js';

/**
 * What differs between two configurations that only a restart applies: listener addresses,
 * upstreams, the admin address, the upstream and client timeouts (they shape the open pools and
 * servers) and the TLS file paths.
 */
export function settingsNeedingRestart(running: GatewayConfig, next: GatewayConfig): string[] {
  const changed: string[] = [];
  for (const listener of next.listeners) {
    const current = running.listeners.find((candidate) => candidate.name === listener.name);
    if (current === undefined) continue;
    if (formatAddress(current.listen) !== formatAddress(listener.listen))
      changed.push(`${listener.name} listen address`);
    if ((current.upstream?.origin ?? 'off') !== (listener.upstream?.origin ?? 'off')) {
      changed.push(`${listener.name} upstream`);
    }
  }
  if (formatAddress(running.admin) !== formatAddress(next.admin)) changed.push('ADMIN_LISTEN');
  if (running.upstreamConnectTimeoutMs !== next.upstreamConnectTimeoutMs)
    changed.push('UPSTREAM_CONNECT_TIMEOUT');
  if (running.upstreamTimeoutMs !== next.upstreamTimeoutMs) changed.push('UPSTREAM_TIMEOUT');
  if (running.clientHeaderTimeoutMs !== next.clientHeaderTimeoutMs) changed.push('CLIENT_HEADER_TIMEOUT');
  if (running.clientBodyTimeoutMs !== next.clientBodyTimeoutMs) changed.push('CLIENT_BODY_TIMEOUT');
  if (running.clientIdleTimeoutMs !== next.clientIdleTimeoutMs) changed.push('CLIENT_IDLE_TIMEOUT');
  if (running.clientSendTimeoutMs !== next.clientSendTimeoutMs) changed.push('CLIENT_SEND_TIMEOUT');
  if (running.maxConnectionsPerClient !== next.maxConnectionsPerClient)
    changed.push('MAX_CONNECTIONS_PER_CLIENT');
  // The files' content is re-read live; switching TLS on or off, or moving the files, is not.
  if (running.upstreamErrorBodies !== next.upstreamErrorBodies) changed.push('UPSTREAM_ERROR_BODIES');
  if (running.tls?.certFile !== next.tls?.certFile) changed.push('TLS_CERT_FILE');
  if (running.tls?.keyFile !== next.tls?.keyFile) changed.push('TLS_KEY_FILE');
  if (running.workers !== next.workers) changed.push('WORKERS');
  return changed;
}

/** The configuration actually in force after a live reload: new credentials and logging, old sockets. */
export function mergeReloadable(running: GatewayConfig, next: GatewayConfig): GatewayConfig {
  return Object.freeze({
    ...next,
    listeners: running.listeners,
    admin: running.admin,
    upstreamConnectTimeoutMs: running.upstreamConnectTimeoutMs,
    upstreamTimeoutMs: running.upstreamTimeoutMs,
    clientHeaderTimeoutMs: running.clientHeaderTimeoutMs,
    clientBodyTimeoutMs: running.clientBodyTimeoutMs,
    clientIdleTimeoutMs: running.clientIdleTimeoutMs,
    clientSendTimeoutMs: running.clientSendTimeoutMs,
    maxConnectionsPerClient: running.maxConnectionsPerClient,
    upstreamErrorBodies: running.upstreamErrorBodies,
    tls: running.tls,
    workers: running.workers,
  });
}
