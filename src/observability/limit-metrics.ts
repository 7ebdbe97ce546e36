import { Counter, type Registry } from 'prom-client';
import type { ListenerName } from '../config/types.js';
import { HTTP2_ABUSES, type Http2Abuse } from '../listeners/http2-session-guard.js';

type CounterChild = ReturnType<Counter<string>['labels']>;

/**
 * Client-side timeouts, as counted: trickled headers, a stalled body, an idle HTTP/2 session, an
 * answer the client does not take.
 */
export type ClientTimeout = 'headers' | 'body' | 'idle' | 'send';

const CLIENT_TIMEOUTS: readonly ClientTimeout[] = ['headers', 'body', 'idle', 'send'];

/** Why a client connection was refused at accept: its address holds too many, or the port does. */
export type ConnectionLimit = 'per_client' | 'total';

const CONNECTION_LIMITS: readonly ConnectionLimit[] = ['per_client', 'total'];

/**
 * One counter per limit that protects the gateway from its clients (`..._limit_reached_total`,
 * as vmauth names them), so an operator sees which limit fires and on which listener.
 */
export class LimitMetrics {
  readonly authFailureLimit: Counter<'listener'>;
  readonly clientTimeouts: Counter<'listener' | 'timeout'>;
  readonly headerSizeLimit: Counter<'listener'>;
  readonly http2Abuse: Counter<'listener' | 'abuse'>;
  readonly pipeliningLimit: Counter<'listener'>;
  readonly connectionLimit: Counter<'listener' | 'limit'>;
  readonly upstreamPoolLimit: Counter<'listener'>;
  readonly credentialLimit: Counter<'listener' | 'credential' | 'limit'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.authFailureLimit = new Counter({
      name: 'gateway_auth_failure_limit_reached_total',
      help: 'Requests refused with 429 / RESOURCE_EXHAUSTED because their client address failed authentication AUTH_FAILURE_LIMIT times within AUTH_FAILURE_WINDOW.',
      labelNames: ['listener'],
      registers,
    });
    this.clientTimeouts = new Counter({
      name: 'gateway_client_timeout_limit_reached_total',
      help: 'Client connections cut for slowness: headers not complete in CLIENT_HEADER_TIMEOUT, a request body silent for CLIENT_BODY_TIMEOUT, an HTTP/2 session idle for CLIENT_IDLE_TIMEOUT, an answer not taken by the client for CLIENT_SEND_TIMEOUT.',
      labelNames: ['listener', 'timeout'],
      registers,
    });
    this.headerSizeLimit = new Counter({
      name: 'gateway_header_size_limit_reached_total',
      help: 'HTTP/1.1 requests refused with 431 because their header section exceeds 16 KiB or holds too many header fields.',
      labelNames: ['listener'],
      registers,
    });
    this.http2Abuse = new Counter({
      name: 'gateway_http2_abuse_limit_reached_total',
      help: 'HTTP/2 client sessions closed with GOAWAY (ENHANCE_YOUR_CALM) for a rapid-reset, PING or SETTINGS flood.',
      labelNames: ['listener', 'abuse'],
      registers,
    });
    this.pipeliningLimit = new Counter({
      name: 'gateway_pipelining_limit_reached_total',
      help: 'HTTP/1.1 connections closed because more pipelined requests waited behind the one being served than a connection may queue.',
      labelNames: ['listener'],
      registers,
    });
    this.connectionLimit = new Counter({
      name: 'gateway_connection_limit_reached_total',
      help: 'Client connections closed at accept: their address already held MAX_CONNECTIONS_PER_CLIENT on the port (per_client), or the port held all the connections the open-file limit leaves it (total).',
      labelNames: ['listener', 'limit'],
      registers,
    });
    this.upstreamPoolLimit = new Counter({
      name: 'gateway_upstream_pool_limit_reached_total',
      help: 'Requests answered 503 at once because every connection of the listener upstream pool was busy.',
      labelNames: ['listener'],
      registers,
    });
    this.credentialLimit = new Counter({
      name: 'gateway_credential_limit_reached_total',
      help: 'Requests refused with 429 / RESOURCE_EXHAUSTED because their credential was over one of its limits (rate=, bytes=, inflight=; issue 14).',
      labelNames: ['listener', 'credential', 'limit'],
      registers,
    });
  }

  forListener(listener: ListenerName): ListenerLimitMetrics {
    return new ListenerLimitMetrics(this, listener);
  }
}

/** One listener's limit counters, label children resolved once. */
export class ListenerLimitMetrics {
  readonly authFailureLimit: CounterChild;
  readonly headerSizeLimit: CounterChild;
  readonly clientTimeouts: Readonly<Record<ClientTimeout, CounterChild>>;
  readonly http2Abuse: Readonly<Record<Http2Abuse, CounterChild>>;
  readonly pipeliningLimit: CounterChild;
  readonly connectionLimit: Readonly<Record<ConnectionLimit, CounterChild>>;
  readonly upstreamPoolLimit: CounterChild;

  constructor(
    private readonly metrics: LimitMetrics,
    private readonly listener: ListenerName,
  ) {
    this.authFailureLimit = metrics.authFailureLimit.labels(listener);
    this.headerSizeLimit = metrics.headerSizeLimit.labels(listener);
    this.clientTimeouts = Object.fromEntries(
      CLIENT_TIMEOUTS.map((timeout) => [timeout, metrics.clientTimeouts.labels(listener, timeout)]),
    ) as Record<ClientTimeout, CounterChild>;
    this.http2Abuse = Object.fromEntries(
      HTTP2_ABUSES.map((abuse) => [abuse, metrics.http2Abuse.labels(listener, abuse)]),
    ) as Record<Http2Abuse, CounterChild>;
    this.pipeliningLimit = metrics.pipeliningLimit.labels(listener);
    this.connectionLimit = Object.fromEntries(
      CONNECTION_LIMITS.map((limit) => [limit, metrics.connectionLimit.labels(listener, limit)]),
    ) as Record<ConnectionLimit, CounterChild>;
    this.upstreamPoolLimit = metrics.upstreamPoolLimit.labels(listener);
  }

  /** A request of `credential` refused by its `limit` (names are bounded by the configuration). */
  credentialLimited(credential: string, limit: 'rate' | 'bytes' | 'inflight'): void {
    this.metrics.credentialLimit.labels(this.listener, credential, limit).inc();
  }
}
