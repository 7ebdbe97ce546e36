import { formatAddress } from './redact.js';
import type { GatewayConfig } from './types.js';

/**
 * What differs between two configurations that only a restart applies: listener addresses,
 * upstreams, the admin address and the upstream timeouts (they shape the open pools).
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
  });
}
