import {
  constants,
  createSecureServer,
  createServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { type Admission, RequestAdmission } from '../auth/admission.js';
import type { AuthState } from '../auth/auth-state.js';
import type { ListenerConfig } from '../config/types.js';
import { OVERLOADED_TEXT, TOO_MANY_FAILURES_TEXT } from '../data-plane/core/answers.js';
import { ExchangeRecorder } from '../data-plane/core/exchange-record.js';
import { clientAddress } from '../data-plane/core/forwarding.js';
import { statusDetailsWithRetry } from '../limits/grpc-retry-info.js';
import type { RateRefusal } from '../limits/request-rate-limiter.js';
import type { AccessLog } from '../observability/access-log.js';
import type { CredentialMetrics } from '../observability/credential-metrics.js';
import type { Logger } from '../observability/logger.js';
import type { ListenerMetrics } from '../observability/metrics.js';
import { Http2SessionPool } from '../upstream/http2-upstream.js';
import { ConnectionAdmission } from './connection-admission.js';
import {
  answerWhenRequestEnds,
  GRPC_INVALID_ARGUMENT,
  GRPC_PERMISSION_DENIED,
  GRPC_RESOURCE_EXHAUSTED,
  GRPC_UNAUTHENTICATED,
  GRPC_UNAVAILABLE,
  UNWANTED_BODY_GRACE_MS,
} from './grpc-answers.js';
import { type GrpcCall, type GrpcEnding, GrpcExchange, WRITE_BUFFER_LIMIT } from './grpc-exchange.js';
import { Http2SessionGuard } from './http2-session-guard.js';
import { closeSessionOutsideCallbacks, destroySessionAfter } from './http2-teardown.js';
import { listenOn } from './listen.js';
import type { ListenerProtection } from './protection.js';
import type { TlsMaterial } from './tls-certificates.js';

export interface GrpcListenerOptions {
  readonly config: ListenerConfig & { readonly upstream: URL };
  readonly auth: AuthState;
  readonly metrics: ListenerMetrics;
  readonly credentialMetrics: CredentialMetrics;
  readonly accessLog: AccessLog;
  readonly logger: Logger;
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  readonly protection: ListenerProtection;
}

const CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024;

/** Largest header list accepted, counted as HPACK does (name + value + 32 per field). */
const MAX_HEADER_LIST_BYTES = 16 * 1024;

/** Upstream HTTP/2 sessions a gRPC port opens (each one connection). */
export const GRPC_UPSTREAM_SESSIONS = 4;

/** Per-session state: the abuse guard, and the streams in progress (an idle session has none). */
interface SessionState {
  readonly guard: Http2SessionGuard;
  openStreams: number;
}

/**
 * Bytes of answers one client session may have waiting to be written, over all its streams: a
 * client that opens many streams and never grants window would otherwise make the gateway hold
 * WRITE_BUFFER_LIMIT for each of them (issue 10 §6: 16 sessions of 200 streams took 2.6 GB).
 */
const SESSION_WRITE_BUFFER_LIMIT = 4 * 1024 * 1024;

/**
 * The OTLP/gRPC port (4317): HTTP/2 cleartext with prior knowledge on both legs, because gRPC
 * needs HTTP/2 and trailers end to end (with TLS configured, the client leg is HTTP/2 over TLS,
 * ALPN h2). A rejected call is answered as a gRPC server would (HTTP 200, trailers-only,
 * grpc-status 16) so every client reports UNAUTHENTICATED.
 */
export class GrpcListener {
  readonly server: Http2Server | Http2SecureServer;
  readonly pool: Http2SessionPool;
  readonly upstreamName: string;
  readonly proto: 'http' | 'https';
  private readonly sessions = new Map<Http2Session, SessionState>();
  private readonly admission: ConnectionAdmission;
  /** Failure limit, credential, scope: the same door as the HTTP/1.1 listeners'. */
  private readonly door: RequestAdmission;
  private readonly recorder: ExchangeRecorder;

  constructor(readonly options: GrpcListenerOptions) {
    this.upstreamName = options.config.upstream.host;
    this.recorder = ExchangeRecorder.forListener(options);
    this.pool = new Http2SessionPool(options.config.upstream, {
      connectTimeoutMs: options.connectTimeoutMs,
      maxSessions: GRPC_UPSTREAM_SESSIONS,
      // Each upstream session has one connection-level flow-control window, sized by the
      // collector (64 KiB unless it grows it): a few streams per session keep large exports from
      // queueing behind that window, while up to 4 sessions still carry any number of streams.
      streamsPerSession: 4,
    });
    const { tls, timeouts } = options.protection;
    this.proto = tls === null ? 'http' : 'https';
    const serverOptions = {
      // maxHeaderListSize: the same 16 KiB as the HTTP/1.1 ports (gRPC's own default is 8 KiB).
      settings: {
        maxConcurrentStreams: 256,
        initialWindowSize: 1024 * 1024,
        maxHeaderListSize: MAX_HEADER_LIST_BYTES,
      },
      maxHeaderListPairs: 128,
      maxSessionMemory: 64,
      // Node's defaults, stated: streams refused beyond maxConcurrentStreams, and malformed
      // frames, each close the session after this many.
      maxSessionRejectedStreams: 100,
      maxSessionInvalidFrames: 1000,
    };
    this.server =
      tls === null
        ? createServer(serverOptions)
        : createSecureServer({
            ...serverOptions,
            cert: tls.cert,
            key: tls.key,
            ALPNProtocols: ['h2'],
            allowHTTP1: false,
            handshakeTimeout: timeouts.headerMs,
          });
    // Node passes the raw header list as a fourth argument: it shows duplicated credentials.
    this.server.on(
      'stream',
      (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, ...rest: unknown[]) =>
        this.handle(stream, headers, flags, (rest[0] as string[] | undefined) ?? flattenHeaders(headers)),
    );
    this.server.on('session', (session: Http2Session) => this.onSession(session));
    this.admission = new ConnectionAdmission(options.protection.connections, options.protection.limits);
    this.door = RequestAdmission.forListener(options);
    this.server.on('connection', (socket: Socket) => this.admission.admit(socket));
    this.server.on('sessionError', () => undefined);
    if (tls !== null) this.server.on('tlsClientError', (_error: Error, socket: Socket) => socket.destroy());
  }

  private onSession(session: Http2Session): void {
    // The connection-level receive window starts at 64 KiB whatever SETTINGS say; one 512-span
    // export is ~190 KB, so without this every connection stalls on WINDOW_UPDATE round trips.
    if (!session.destroyed) session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
    const { limits, timeouts } = this.options.protection;
    const guard = new Http2SessionGuard(session, (abuse) => {
      limits.http2Abuse[abuse].inc();
      this.options.logger.warn(
        { listener: this.options.config.name, client: clientAddress(session.socket?.remoteAddress), abuse },
        'HTTP/2 session closed with GOAWAY for abuse',
      );
    });
    this.sessions.set(session, { guard, openStreams: 0 });
    session.once('close', () => this.sessions.delete(session));
    // A load balancer's TCP health check connects and leaves: nothing to report.
    session.on('error', () => undefined);
    // No frame either way for CLIENT_IDLE_TIMEOUT and no call in progress (or never a valid
    // preface at all): GOAWAY, which gRPC clients follow by reconnecting when they need to.
    session.setTimeout(timeouts.idleMs, () => {
      if ((this.sessions.get(session)?.openStreams ?? 0) > 0 || session.closed) return;
      limits.clientTimeouts.idle.inc();
      session.close();
      // A peer that ignores GOAWAY and keeps the socket open is cut after a grace period.
      destroySessionAfter(session, 1000);
    });
  }

  /** Serves a renewed certificate to new connections; open sessions keep theirs. */
  setCertificate(tls: TlsMaterial): void {
    if ('setSecureContext' in this.server) this.server.setSecureContext({ cert: tls.cert, key: tls.key });
  }

  /**
   * How many bytes one stream of `session` may have waiting toward its client before its
   * upstream is paused: the session's budget shared by its streams in progress.
   */
  writeBufferLimit(session: Http2Session | undefined): number {
    const streams = session === undefined ? 1 : (this.sessions.get(session)?.openStreams ?? 1);
    return Math.min(WRITE_BUFFER_LIMIT, Math.floor(SESSION_WRITE_BUFFER_LIMIT / Math.max(1, streams)));
  }

  /** Open client HTTP/2 sessions (each is one connection). */
  get openConnections(): number {
    return this.sessions.size;
  }

  listen(): Promise<void> {
    return listenOn(this.server, this.options.config.listen);
  }

  /**
   * Stops accepting, sends GOAWAY to every session (in-flight streams finish, new ones go
   * elsewhere), and destroys what is still open at the deadline.
   */
  async close(deadlineMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const session of this.sessions.keys()) session.close();
    const deadline = setTimeout(() => {
      for (const session of this.sessions.keys()) session.destroy();
    }, deadlineMs);
    try {
      await closed;
    } finally {
      clearTimeout(deadline);
    }
    await this.pool.close();
  }

  private handle(
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    flags: number,
    rawHeaders: string[],
  ): void {
    const startedAt = performance.now();
    stream.on('error', () => undefined);
    if (headerListSize(rawHeaders) > MAX_HEADER_LIST_BYTES) {
      // nghttp2 applies SETTINGS_MAX_HEADER_LIST_SIZE only once the client has acknowledged our
      // SETTINGS; a client that sends its headers first (or never acknowledges) is held to it here.
      this.options.protection.limits.headerSizeLimit.inc();
      stream.close(constants.NGHTTP2_ENHANCE_YOUR_CALM);
      return;
    }
    const session = stream.session;
    const state = session === undefined ? undefined : this.sessions.get(session);
    if (state !== undefined) {
      if (state.openStreams === 0 && session?.socket !== undefined) this.admission.inUse(session.socket);
      state.openStreams++;
      stream.once('aborted', () => state.guard.streamAborted());
      stream.once('close', () => {
        state.openStreams--;
      });
    }
    const path = headers[':path'];
    const call = { stream, headers, startedAt };
    this.door.admit(
      session?.socket?.remoteAddress,
      String(headers[':method'] ?? ''),
      typeof path === 'string' ? path : null,
      rawHeaders,
      (admission) => this.afterAdmission(call, flags, admission),
    );
  }

  private refuseOverLimit(call: GrpcCall, retryAfterSeconds: number, failures: number): void {
    const { stream } = call;
    answerWhenRequestEnds(
      stream,
      { grpcStatus: GRPC_RESOURCE_EXHAUSTED, message: TOO_MANY_FAILURES_TEXT, retryAfterSeconds },
      () =>
        this.finish(call, {
          grpcStatus: String(GRPC_RESOURCE_EXHAUSTED),
          error: 'auth_failure_limit',
          authFailures: failures,
        }),
    );
    // The connection is not worth keeping for a client over its limit (nor a cheap pipe for
    // more guesses): GOAWAY once this answer is out, as the HTTP/1.1 ports close after 429.
    const session = stream.session;
    if (session !== undefined) {
      closeSessionOutsideCallbacks(session);
      // Its answers go out within UNWANTED_BODY_GRACE_MS; a client that keeps the connection
      // open past that (sending more streams) is cut.
      destroySessionAfter(session, UNWANTED_BODY_GRACE_MS + 500);
    }
  }

  private afterAdmission(call: GrpcCall, flags: number, admission: Admission): void {
    const { stream } = call;
    if (admission.kind === 'over-limit') {
      this.refuseOverLimit(call, admission.retryAfterSeconds, admission.failures);
      return;
    }
    if (stream.destroyed) {
      if (admission.kind === 'admitted') admission.release?.();
      return;
    }
    if (admission.kind === 'refused') {
      const status = admission.reason === 'overloaded' ? GRPC_UNAVAILABLE : GRPC_UNAUTHENTICATED;
      const message = status === GRPC_UNAVAILABLE ? OVERLOADED_TEXT : this.options.auth.current.grpcMessage;
      answerWhenRequestEnds(stream, { grpcStatus: status, message }, () =>
        this.finish(call, { grpcStatus: String(status), authFailure: admission.reason }),
      );
      return;
    }
    if (admission.kind === 'limited') {
      this.refuseOverCredentialLimit(call, admission.refusal, {
        identity: admission.principal.identity,
        error: `credential_limit:${admission.limit}`,
      });
      return;
    }
    if (admission.kind === 'bad-target' || admission.kind === 'forbidden') {
      // Not an authentication failure: nothing toward AUTH_FAILURE_LIMIT, nothing upstream.
      const status = admission.kind === 'forbidden' ? GRPC_PERMISSION_DENIED : GRPC_INVALID_ARGUMENT;
      const error = admission.kind === 'forbidden' ? `scope_denied:${admission.scope}` : 'bad request target';
      const { identity } = admission.principal;
      answerWhenRequestEnds(stream, { grpcStatus: status, message: admission.text }, () =>
        this.finish(call, { grpcStatus: String(status), identity, error }),
      );
      return;
    }
    // Forwarded on the next turn of the event loop: when a client opens a stream only to reset
    // it at once (rapid reset, CVE-2023-44487), its RST_STREAM, read in the same chunk, is
    // processed first, and the upstream never sees the stream. Forwarding such streams would
    // make the gateway a rapid-reset client of the collector, whose own limit would then close
    // the upstream session that honest calls share.
    setImmediate(() => {
      if (stream.destroyed) admission.release?.();
      else new GrpcExchange(this, call, flags, admission).start();
    });
  }

  /**
   * RESOURCE_EXHAUSTED for a credential over its rate=, bytes= or inflight= (issue 14). Not an
   * authentication failure; the RetryInfo in grpc-status-details-bin tells the exporter when to
   * send it again (the OTLP specification retries RESOURCE_EXHAUSTED only with it).
   */
  refuseOverCredentialLimit(call: GrpcCall, refusal: RateRefusal, ending: GrpcEnding): void {
    const answer = {
      grpcStatus: GRPC_RESOURCE_EXHAUSTED,
      message: refusal.text,
      retryAfterSeconds: refusal.retryAfterSeconds,
      details: statusDetailsWithRetry(
        GRPC_RESOURCE_EXHAUSTED,
        refusal.text,
        refusal.retryAfterSeconds * 1000,
      ),
    };
    answerWhenRequestEnds(call.stream, answer, () =>
      this.finish(call, { ...ending, grpcStatus: String(GRPC_RESOURCE_EXHAUSTED) }),
    );
  }

  /** Records the end of a call: metrics and its access-log line. */
  finish(call: GrpcCall, ending: GrpcEnding): void {
    const { stream, headers } = call;
    const status = stream.sentHeaders?.[':status'];
    this.recorder.record({
      method: String(headers[':method'] ?? ''),
      url: String(headers[':path'] ?? ''),
      status: typeof status === 'number' ? status : 0,
      grpcStatus: ending.grpcStatus,
      startedAt: call.startedAt,
      identity: ending.identity,
      bytesIn: ending.bytesIn ?? 0,
      bytesOut: ending.bytesOut ?? 0,
      client: clientAddress(stream.session?.socket?.remoteAddress),
      authFailure: ending.authFailure,
      error: ending.error,
      authFailures: ending.authFailures,
      release: ending.release,
    });
  }
}

function headerListSize(rawHeaders: readonly string[]): number {
  let size = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    size += (rawHeaders[i] as string).length + (rawHeaders[i + 1] as string).length + 32;
  }
  return size;
}

function flattenHeaders(headers: IncomingHttpHeaders): string[] {
  const flat: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (Array.isArray(value)) for (const item of value) flat.push(name, item);
    else if (value !== undefined) flat.push(name, String(value));
  }
  return flat;
}
