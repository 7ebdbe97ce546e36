import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { AUTH_FAILURE_REASONS, type AuthFailureReason } from '../auth/credential-store.js';
import type { ListenerName } from '../config/types.js';

type CounterChild = ReturnType<Counter<string>['labels']>;
type GaugeChild = ReturnType<Gauge<string>['labels']>;
type HistogramChild = ReturnType<Histogram<string>['labels']>;

/**
 * One listener's instruments, with label children resolved once: the request path increments
 * a child directly instead of hashing a label object on every call.
 */
export class ListenerMetrics {
  readonly inFlight: GaugeChild;
  readonly upstreamLatency: HistogramChild;
  readonly bytesIn: CounterChild;
  readonly bytesOut: CounterChild;
  readonly upstreamErrors: Readonly<Record<'unavailable' | 'timeout' | 'bad_response', CounterChild>>;
  private readonly byStatus = new Map<string, CounterChild>();
  private readonly authFailures: Readonly<Record<AuthFailureReason, CounterChild>>;

  constructor(
    private readonly metrics: GatewayMetrics,
    readonly listener: ListenerName,
    upstream: string,
  ) {
    this.inFlight = metrics.inFlight.labels(listener);
    this.upstreamLatency = metrics.upstreamLatency.labels(listener, upstream);
    this.bytesIn = metrics.bytesIn.labels(listener);
    this.bytesOut = metrics.bytesOut.labels(listener);
    this.upstreamErrors = {
      unavailable: metrics.upstreamErrors.labels(listener, upstream, 'unavailable'),
      timeout: metrics.upstreamErrors.labels(listener, upstream, 'timeout'),
      bad_response: metrics.upstreamErrors.labels(listener, upstream, 'bad_response'),
    };
    this.authFailures = Object.fromEntries(
      AUTH_FAILURE_REASONS.map((reason) => [reason, metrics.authFailures.labels(listener, reason)]),
    ) as unknown as Record<AuthFailureReason, CounterChild>;
  }

  /** Counts a finished request: `code` is the HTTP status; on 4317 `grpcStatus` is the call's gRPC status. */
  request(code: number, grpcStatus?: string): void {
    const key = grpcStatus === undefined ? String(code) : `${code}/${grpcStatus}`;
    let child = this.byStatus.get(key);
    if (child === undefined) {
      child = this.metrics.requests.labels(this.listener, String(code), grpcStatus ?? '');
      this.byStatus.set(key, child);
    }
    child.inc();
  }

  authFailure(reason: AuthFailureReason): void {
    this.authFailures[reason].inc();
  }
}

/** Every instrument of the gateway, in one registry served by the admin port. */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'listener' | 'code' | 'grpc_status'>;
  readonly authFailures: Counter<'listener' | 'reason'>;
  readonly upstreamLatency: Histogram<'listener' | 'upstream'>;
  readonly inFlight: Gauge<'listener'>;
  readonly bytesIn: Counter<'listener'>;
  readonly bytesOut: Counter<'listener'>;
  readonly upstreamErrors: Counter<'listener' | 'upstream' | 'kind'>;

  constructor() {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'gateway_requests_total',
      help: 'Requests answered, by listener, HTTP status code and (on the gRPC listener) gRPC status.',
      labelNames: ['listener', 'code', 'grpc_status'],
      registers,
    });
    this.authFailures = new Counter({
      name: 'gateway_auth_failures_total',
      help: 'Requests rejected by authentication, by listener and reason.',
      labelNames: ['listener', 'reason'],
      registers,
    });
    this.upstreamLatency = new Histogram({
      name: 'gateway_upstream_response_seconds',
      help: 'Time from forwarding a request to receiving the upstream response headers.',
      labelNames: ['listener', 'upstream'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.inFlight = new Gauge({
      name: 'gateway_requests_in_flight',
      help: 'Requests being served right now, by listener.',
      labelNames: ['listener'],
      registers,
    });
    this.bytesIn = new Counter({
      name: 'gateway_received_bytes_total',
      help: 'Request body bytes received from clients, by listener.',
      labelNames: ['listener'],
      registers,
    });
    this.bytesOut = new Counter({
      name: 'gateway_sent_bytes_total',
      help: 'Response body bytes sent to clients, by listener.',
      labelNames: ['listener'],
      registers,
    });
    this.upstreamErrors = new Counter({
      name: 'gateway_upstream_errors_total',
      help: 'Upstream failures before a response: unavailable (connect), timeout, bad_response.',
      labelNames: ['listener', 'upstream', 'kind'],
      registers,
    });
    // The event-loop lag sampler is a timer: at prom-client's default 10 ms it woke every idle
    // process 100 times a second; 10 samples a second still show a stalled loop.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
  }

  counterFrom(name: string, help: string, read: () => number): void {
    counterFrom(this.registry, name, help, read);
  }

  gaugeFrom(
    name: string,
    help: string,
    labelName: string | null,
    read: () => ReadonlyArray<readonly [string, number]> | number,
    aggregator: 'sum' | 'min' | 'max' | 'first' = 'sum',
  ): void {
    gaugeFrom(this.registry, name, help, labelName, read, aggregator);
  }

  forListener(listener: ListenerName, upstream: string): ListenerMetrics {
    return new ListenerMetrics(this, listener, upstream);
  }
}

/**
 * A counter whose value lives elsewhere (a plain number incremented on a hot path): prom-client
 * reads it at scrape time, so the hot path pays one integer increment.
 */
export function counterFrom(registry: Registry, name: string, help: string, read: () => number): void {
  let reported = 0;
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const current = read();
      if (current > reported) this.inc(current - reported);
      reported = current;
    },
  });
}

/**
 * A gauge read at scrape time, one series per label value. `aggregator` says how a cluster
 * primary combines the workers' values (prom-client's AggregatorRegistry; default: sum).
 */
export function gaugeFrom(
  registry: Registry,
  name: string,
  help: string,
  labelName: string | null,
  read: () => ReadonlyArray<readonly [string, number]> | number,
  aggregator: 'sum' | 'min' | 'max' | 'first' = 'sum',
): void {
  new Gauge({
    name,
    help,
    labelNames: labelName === null ? [] : [labelName],
    registers: [registry],
    aggregator,
    collect() {
      const value = read();
      if (typeof value === 'number') {
        this.set(value);
        return;
      }
      for (const [label, current] of value) this.set({ [labelName as string]: label }, current);
    },
  });
}
