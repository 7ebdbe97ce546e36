import type { AuthFailureReason } from '../auth/credential-store.js';
import type { ListenerName } from '../config/types.js';
import type { Logger } from './logger.js';

export interface AccessRecord {
  readonly listener: ListenerName;
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly grpcStatus?: string | undefined;
  readonly durationMs: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly identity: string | undefined;
  readonly client: string;
  readonly upstream: string;
  readonly authFailure?: AuthFailureReason | undefined;
  readonly error?: string | undefined;
  /** On a 429 of AUTH_FAILURE_LIMIT: the client's failures in its current window. */
  readonly authFailures?: number | undefined;
}

/** Path without the query string: queries may carry PromQL with label values nobody asked us to keep. */
function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** One JSON line per request, on the `access` child logger (silenced by ACCESS_LOG=off). */
export class AccessLog {
  private readonly logger: Logger;

  constructor(
    parent: Logger,
    public enabled: boolean,
  ) {
    this.logger = parent.child({ log: 'access' });
  }

  write(record: AccessRecord): void {
    if (!this.enabled) return;
    this.logger.info(
      {
        listener: record.listener,
        method: record.method,
        path: pathOf(record.url),
        status: record.status,
        grpc_status: record.grpcStatus,
        duration_ms: Math.round(record.durationMs * 1000) / 1000,
        bytes_in: record.bytesIn,
        bytes_out: record.bytesOut,
        identity: record.identity,
        client: record.client,
        upstream: record.upstream,
        auth_failure: record.authFailure,
        error: record.error,
        auth_failures: record.authFailures,
      },
      'request',
    );
  }
}
