import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { ListenerLimitMetrics } from '../observability/limit-metrics.js';

/** How many connections a data port takes, and how many of them one client address may hold. */
export interface ConnectionCaps {
  /** MAX_CONNECTIONS_PER_CLIENT; 0: no cap. */
  readonly perClient: number;
  /** Client connections one port may hold before it refuses more (from the open-file limit). */
  readonly perListener: number;
}

/**
 * Descriptors kept out of every data port's reach: the admin port, the env-file and certificate
 * reloaders, log files and the processes' own pipes keep working while the ports are flooded.
 */
const RESERVED_DESCRIPTORS = 256;
/** Never fewer client connections per port than this, whatever the limit says. */
const MIN_CONNECTIONS_PER_LISTENER = 64;

/**
 * The process's open-file limit (Node raises the soft limit to the hard one when it starts), or
 * undefined where /proc does not tell.
 */
export function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((candidate) => candidate.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    if (soft === undefined || soft === 'unlimited') return undefined;
    const value = Number(soft);
    return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Splits what the open-file limit leaves, after the reserve and the upstream pools' own
 * connections, evenly between the data ports, so that a flood of idle connections on one port
 * meets a refusal at accept instead of EMFILE everywhere (issue 10 §5).
 */
export function connectionsPerListener(
  fileLimit: number | undefined,
  listeners: number,
  upstreamConnections: number,
): number {
  if (fileLimit === undefined || listeners === 0) return Number.MAX_SAFE_INTEGER;
  const left = fileLimit - RESERVED_DESCRIPTORS - upstreamConnections;
  return Math.max(MIN_CONNECTIONS_PER_LISTENER, Math.floor(left / listeners));
}

/**
 * Counts one port's open client connections, in total and per client address. A client address
 * at MAX_CONNECTIONS_PER_CLIENT is refused; a full port makes room by closing its oldest
 * connection that has not sent a request yet (a flood of idle connections), so honest clients
 * are still served, and refuses only when every connection is in use.
 */
export class ConnectionAdmission {
  private readonly byClient = new Map<string, number>();
  /**
   * Connections that have not sent a request yet, oldest first, by client address and port (the
   * socket a request arrives on may be a TLS socket or an HTTP/2 session's proxy of this one).
   */
  private readonly idle = new Map<string, Socket>();
  private open = 0;

  constructor(
    private readonly caps: ConnectionCaps,
    private readonly limits: ListenerLimitMetrics,
  ) {}

  /** Takes a newly accepted socket, or destroys it (and counts why): answers whether it was taken. */
  admit(socket: Socket): boolean {
    const client = socket.remoteAddress ?? '';
    const held = this.byClient.get(client) ?? 0;
    if (this.caps.perClient > 0 && held >= this.caps.perClient) {
      this.limits.connectionLimit.per_client.inc();
      socket.destroy();
      return false;
    }
    if (this.open >= this.caps.perListener) {
      this.limits.connectionLimit.total.inc();
      const oldest: Socket | undefined = this.idle.values().next().value;
      if (oldest === undefined) {
        socket.destroy();
        return false;
      }
      // Counted out at once: its 'close' comes later, and this socket takes its place now.
      this.release(oldest);
      oldest.destroy();
    }
    this.open++;
    this.byClient.set(client, held + 1);
    this.idle.set(connectionKey(socket), socket);
    socket.once('close', () => this.release(socket));
    return true;
  }

  /** The connection sent a request: it is no longer an idle one to close first. */
  inUse(socket: Pick<Socket, 'remoteAddress' | 'remotePort'>): void {
    if (this.idle.size > 0) this.idle.delete(connectionKey(socket));
  }

  private readonly released = new WeakSet<Socket>();

  private release(socket: Socket): void {
    if (this.released.has(socket)) return;
    this.released.add(socket);
    this.idle.delete(connectionKey(socket));
    this.open--;
    const client = socket.remoteAddress ?? '';
    const left = (this.byClient.get(client) ?? 1) - 1;
    if (left === 0) this.byClient.delete(client);
    else this.byClient.set(client, left);
  }
}

function connectionKey(socket: Pick<Socket, 'remoteAddress' | 'remotePort'>): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}
