import type { AuthFailureLimiter } from '../auth/failure-limiter.js';
import type { InflightCounter } from '../limits/inflight.js';
import type { RequestRateLimiter } from '../limits/request-rate-limiter.js';
import type { ListenerLimitMetrics } from '../observability/limit-metrics.js';
import type { ConnectionCaps } from './connection-admission.js';
import type { TlsMaterial } from './tls-certificates.js';

/** How long a client may take, in the slow ways an attacker would stretch out. */
export interface ClientTimeouts {
  /** Whole header section (HTTP/1.1), and the TLS handshake. */
  readonly headerMs: number;
  /** Silence inside a request body. */
  readonly bodyMs: number;
  /** A connection with no request in progress. */
  readonly idleMs: number;
  /** An answer the client does not take (its receive window or socket stays full). */
  readonly sendMs: number;
}

/** What every data listener needs to defend itself, built once by the gateway. */
export interface ListenerProtection {
  /** Shared by all listeners: a client's failures on one port count on every port. */
  readonly limiter: AuthFailureLimiter;
  /** The credentials' rate= budgets, shared by all listeners (issue 14). */
  readonly rates: RequestRateLimiter;
  /** The credentials' inflight= places in this process, shared by all listeners (issue 14). */
  readonly inflight: InflightCounter;
  readonly limits: ListenerLimitMetrics;
  readonly timeouts: ClientTimeouts;
  /** Certificate and key when the data ports speak TLS, else null. */
  readonly tls: TlsMaterial | null;
  /** Replace upstream 5xx bodies (gRPC: server-fault messages) by a short text of our own. */
  readonly hideUpstreamErrors: boolean;
  readonly connections: ConnectionCaps;
}
