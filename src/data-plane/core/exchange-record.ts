import { performance } from 'node:perf_hooks';
import type { AuthFailureReason } from '../../auth/credential-store.js';
import type { ListenerName } from '../../config/types.js';
import type { AccessLog } from '../../observability/access-log.js';
import { type CredentialMetrics, grpcCodeClass } from '../../observability/credential-metrics.js';
import type { ListenerMetrics } from '../../observability/metrics.js';

/** How one request ended, on any port: what the metrics count and the access log says. */
export interface ExchangeRecord {
  readonly method: string;
  /** The target as received (the access log keeps its path only). */
  readonly url: string;
  /** The HTTP status sent to the client; 0 when none was (a cut connection, a reset stream). */
  readonly status: number;
  /** 4317 only: the grpc-status the call ended with. */
  readonly grpcStatus?: string | undefined;
  /** performance.now() when the request arrived. */
  readonly startedAt: number;
  /** The credential's name, once the request was authenticated. */
  readonly identity?: string | undefined;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** The client's address as read on arrival (see clientAddress). */
  readonly client: string;
  readonly authFailure?: AuthFailureReason | undefined;
  /** What went wrong, as a short label (`client closed`, `scope_denied:read`, `ECONNREFUSED`). */
  readonly error?: string | undefined;
  /** On a 429 of AUTH_FAILURE_LIMIT: the client's failures in its current window. */
  readonly authFailures?: number | undefined;
  /** Gives back the credential's inflight= place the request held, if it held one. */
  readonly release?: (() => void) | undefined;
}

export interface ExchangeRecorderOptions {
  readonly listener: ListenerName;
  /** `host:port` of the upstream, as logs name it. */
  readonly upstream: string;
  readonly metrics: ListenerMetrics;
  readonly credentialMetrics: CredentialMetrics;
  readonly accessLog: AccessLog;
}

/** The end of every exchange of a listener, whatever its protocol: metrics, then the access log. */
export class ExchangeRecorder {
  constructor(private readonly options: ExchangeRecorderOptions) {}

  /** The recorder of a data listener, from the options it is built with. */
  static forListener(options: {
    readonly config: { readonly name: ListenerName; readonly upstream: URL };
    readonly metrics: ListenerMetrics;
    readonly credentialMetrics: CredentialMetrics;
    readonly accessLog: AccessLog;
  }): ExchangeRecorder {
    return new ExchangeRecorder({
      listener: options.config.name,
      upstream: options.config.upstream.host,
      metrics: options.metrics,
      credentialMetrics: options.credentialMetrics,
      accessLog: options.accessLog,
    });
  }

  record(record: ExchangeRecord): void {
    record.release?.();
    const { metrics, credentialMetrics, accessLog, listener, upstream } = this.options;
    metrics.request(record.status, record.grpcStatus);
    if (record.identity !== undefined) {
      credentialMetrics.request(
        record.identity,
        listener,
        grpcCodeClass(record.grpcStatus, record.status),
        record.bytesIn,
      );
    }
    if (record.bytesIn > 0) metrics.bytesIn.inc(record.bytesIn);
    if (record.bytesOut > 0) metrics.bytesOut.inc(record.bytesOut);
    accessLog.write({
      listener,
      method: record.method,
      url: record.url,
      status: record.status,
      grpcStatus: record.grpcStatus,
      durationMs: performance.now() - record.startedAt,
      bytesIn: record.bytesIn,
      bytesOut: record.bytesOut,
      identity: record.identity,
      client: record.client,
      upstream,
      authFailure: record.authFailure,
      error: record.error,
      authFailures: record.authFailures,
    });
  }
}
