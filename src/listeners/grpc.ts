import {
  type ClientHttp2Stream,
  constants,
  createSecureServer,
  createServer,
  type Http2SecureServer,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { type Admission, type BodyMeter, RequestAdmission } from '../auth/admission.js';
import type { AuthState } from '../auth/auth-state.js';
import type { ListenerConfig } from '../config/types.js';
import { OVERLOADED_TEXT, TOO_MANY_FAILURES_TEXT, upstreamAnsweredText } from '../dataplane/answers.js';
import { type ExchangeRecord, ExchangeRecorder } from '../dataplane/exchange-record.js';
import { addForwardedHeaders, clientAddress } from '../dataplane/forwarding.js';
import {
  BAD_RESPONSE,
  classifyUpstreamError,
  failureLabel,
  TIMEOUT,
  upstreamFailureText,
} from '../dataplane/upstream-failure.js';
import { statusDetailsWithRetry } from '../limits/grpc-retry-info.js';
import type { RateRefusal } from '../limits/request-rate-limiter.js';
import type { AccessLog } from '../observability/access-log.js';
import type { CredentialMetrics } from '../observability/credential-metrics.js';
import type { Logger } from '../observability/logger.js';
import type { ListenerMetrics } from '../observability/metrics.js';
import { DROPPED_REQUEST_HEADERS, DROPPED_RESPONSE_HEADERS } from '../upstream/headers.js';
import {
  Http2SessionPool,
  NGHTTP2_CANCEL,
  NGHTTP2_INTERNAL_ERROR,
  NGHTTP2_NO_ERROR,
} from '../upstream/http2-upstream.js';
import { ConnectionAdmission } from './connection-admission.js';
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

/** gRPC statuses that mean the server failed (UNKNOWN, INTERNAL, DATA_LOSS). */
const SERVER_FAULT_STATUSES = new Set(['2', '13', '15']);

/** Largest header list accepted, counted as HPACK does (name + value + 32 per field). */
const MAX_HEADER_LIST_BYTES = 16 * 1024;

/** Upstream HTTP/2 sessions a gRPC port opens (each one connection). */
export const GRPC_UPSTREAM_SESSIONS = 4;

const GRPC_UNAUTHENTICATED = 16;
const GRPC_PERMISSION_DENIED = 7;
const GRPC_INVALID_ARGUMENT = 3;
const CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024;
const GRPC_UNAVAILABLE = 14;
const GRPC_RESOURCE_EXHAUSTED = 8;
const GRPC_DEADLINE_EXCEEDED = 4;

/** A call as it arrived: what its exchange record is made of, besides how it ended. */
interface GrpcCall {
  readonly stream: ServerHttp2Stream;
  readonly headers: IncomingHttpHeaders;
  readonly startedAt: number;
}

/** How a call ended: the fields of its ExchangeRecord that the listener and the exchange decide. */
type GrpcEnding = Omit<
  ExchangeRecord,
  'method' | 'url' | 'client' | 'startedAt' | 'status' | 'bytesIn' | 'bytesOut'
> & {
  readonly bytesIn?: number;
  readonly bytesOut?: number;
};

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
    this.recorder = new ExchangeRecorder({
      listener: options.config.name,
      upstream: this.upstreamName,
      metrics: options.metrics,
      credentialMetrics: options.credentialMetrics,
      accessLog: options.accessLog,
    });
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
    const { identity } = admission.principal;
    const { release, meter } = admission;
    // Forwarded on the next turn of the event loop: when a client opens a stream only to reset
    // it at once (rapid reset, CVE-2023-44487), its RST_STREAM, read in the same chunk, is
    // processed first, and the upstream never sees the stream. Forwarding such streams would
    // make the gateway a rapid-reset client of the collector, whose own limit would then close
    // the upstream session that honest calls share.
    setImmediate(() => {
      if (stream.destroyed) release?.();
      else new GrpcExchange(this, call, flags, identity, release, meter).start();
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

/** gRPC's percent-encoding: only bytes outside printable ASCII, and '%' itself, are escaped. */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A gRPC answer without a body: status and message in the (only) HEADERS frame. */
function respondTrailersOnly(
  stream: ServerHttp2Stream,
  grpcStatus: number,
  message: string,
  retryAfterSeconds?: number,
  details?: string,
): void {
  if (stream.headersSent || stream.destroyed) {
    stream.close(NGHTTP2_INTERNAL_ERROR);
    return;
  }
  const headers: OutgoingHttpHeaders = {
    ':status': 200,
    'content-type': 'application/grpc',
    'grpc-status': String(grpcStatus),
    'grpc-message': encodeGrpcMessage(message),
  };
  if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
  if (details !== undefined) headers['grpc-status-details-bin'] = details;
  stream.respond(headers, { endStream: true });
  // Still sending after the grace period (see answerWhenRequestEnds): nothing more is read.
  if (!stream.readableEnded) stream.close(NGHTTP2_NO_ERROR);
}

/**
 * Bytes one leg of a call may have waiting to be written before the other leg is paused. A
 * stream's own highWaterMark (16 KiB) is exactly one DATA frame: pausing at it costs a pause,
 * a write completion and a resume for every frame of a 190 KB export.
 */
const WRITE_BUFFER_LIMIT = 256 * 1024;

/** Writes a chunk read from one leg to the other, pausing the reader while the writer is full. */
function relay(chunk: Buffer, from: Duplex, to: Duplex): void {
  to.write(chunk);
  if (to.writableLength > WRITE_BUFFER_LIMIT) {
    from.pause();
    to.once('drain', () => from.resume());
  }
}

/** How long a client may go on sending a request that was already answered (or refused). */
const UNWANTED_BODY_GRACE_MS = 1000;

/**
 * Answers a call without forwarding it (refused, or its upstream failed) once the client has
 * finished sending it, reading and dropping its body, or after UNWANTED_BODY_GRACE_MS, whichever
 * comes first; in the second case the stream is reset (RST_STREAM NO_ERROR) right after the
 * answer. Answering first and resetting is allowed by RFC 9113 8.1, but curl 7.88 either reports
 * the call as failed when the reset overtakes its own END_STREAM, or, without a reset, waits
 * forever for a stream that the answer already ended. A unary gRPC client (every OTLP exporter)
 * half-closes at once, so the answer is not delayed. `then` runs once the call is over (answered,
 * or reset by the client first).
 */
function answerWhenRequestEnds(
  stream: ServerHttp2Stream,
  answer: { grpcStatus: number; message: string; retryAfterSeconds?: number; details?: string },
  then: () => void,
): void {
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  const settle = (): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    if (!stream.destroyed && !stream.closed)
      respondTrailersOnly(
        stream,
        answer.grpcStatus,
        answer.message,
        answer.retryAfterSeconds,
        answer.details,
      );
    then();
  };
  if (stream.readableEnded) {
    settle();
    return;
  }
  timer = setTimeout(settle, UNWANTED_BODY_GRACE_MS);
  stream.once('end', settle);
  // Reset by the client meanwhile: nothing to answer, but the call still ends (and is logged).
  stream.once('close', settle);
  stream.resume();
}

function forwardedRequestHeaders(
  headers: IncomingHttpHeaders,
  listener: GrpcListener,
  stream: ServerHttp2Stream,
  identity: string,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {
    ':method': headers[':method'],
    ':path': headers[':path'],
    ':scheme': listener.options.config.upstream.protocol === 'https:' ? 'https' : 'http',
    ':authority': listener.options.config.upstream.host,
  };
  for (const name in headers) {
    // Pseudo-headers are set above; `te: trailers` is the one TE value HTTP/2 allows, and gRPC needs it.
    if (name.charCodeAt(0) === 58 /* : */) continue;
    if (name === 'te' ? headers.te !== 'trailers' : DROPPED_REQUEST_HEADERS.has(name)) continue;
    out[name] = headers[name];
  }
  const previousFor = headers['x-forwarded-for'];
  addForwardedHeaders(
    Array.isArray(previousFor) ? previousFor.join(', ') : previousFor,
    {
      clientAddress: clientAddress(stream.session?.socket?.remoteAddress),
      proto: listener.proto,
      originalHost: headers[':authority'],
      identity,
    },
    (name, value) => {
      out[name] = value;
    },
  );
  return out;
}

function filterResponseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (!DROPPED_RESPONSE_HEADERS.has(name)) out[name] = headers[name];
  }
  return out;
}

/** One proxied gRPC call: client stream <-> upstream stream, headers, data and trailers. */
class GrpcExchange {
  private upstream: ClientHttp2Stream | null = null;
  private trailers: OutgoingHttpHeaders | null = null;
  private grpcStatus: string | undefined;
  private bytesIn = 0;
  private bytesOut = 0;
  private timer: NodeJS.Timeout | null = null;
  /** The call's outcome is decided (an answer may still wait for the end of the request). */
  private settled = false;
  private done = false;
  private forwardedAt = 0;
  private readonly stream: ServerHttp2Stream;
  private readonly headers: IncomingHttpHeaders;

  constructor(
    private readonly listener: GrpcListener,
    private readonly call: GrpcCall,
    private readonly flags: number,
    private readonly identity: string,
    /** Gives back the credential's inflight= place (see Admission). */
    private readonly release: (() => void) | undefined,
    /** Takes the request's bytes from the credential's bytes= budget as they arrive, or null. */
    private readonly meter: BodyMeter | null,
  ) {
    this.stream = call.stream;
    this.headers = call.headers;
  }

  start(): void {
    const { stream, listener } = this;
    listener.options.metrics.inFlight.inc();
    const endStream = (this.flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0 || stream.readableEnded;
    this.forwardedAt = performance.now();
    let upstream: ClientHttp2Stream;
    try {
      upstream = listener.pool.request(
        forwardedRequestHeaders(this.headers, listener, stream, this.identity),
        endStream,
      );
    } catch (error) {
      this.failBeforeResponse(error);
      return;
    }
    this.upstream = upstream;
    this.timer = setTimeout(() => this.onTimeout(), listener.options.responseTimeoutMs);

    upstream.on('response', (headers, flags) => this.onResponse(headers, flags));
    upstream.on('trailers', (trailers) => {
      this.trailers = this.hideServerFault(filterResponseHeaders(trailers));
      const status = trailers['grpc-status'];
      if (status !== undefined) this.grpcStatus = String(status);
    });
    upstream.on('data', (chunk: Buffer) => this.forwardResponseData(chunk));
    upstream.on('end', () => {
      if (stream.headersSent && !stream.writableEnded) stream.end();
    });
    upstream.on('error', (error: Error) => this.onUpstreamError(error));
    upstream.on('close', () => this.onUpstreamClose());

    stream.on('wantTrailers', () => {
      // An upstream that ends the call without a grpc-status has failed it.
      const trailers = this.trailers ?? this.failureTrailers(GRPC_UNAVAILABLE, this.failedText());
      // A stream reset meanwhile refuses trailers; a throw in an event handler would end the process.
      if (!stream.destroyed && !stream.closed) stream.sendTrailers(trailers);
    });
    stream.on('close', () => this.onClientClose());
    if (!endStream) {
      stream.on('data', this.forwardRequestData);
      stream.on('end', () => upstream.end());
    }
  }

  private sendTimer: NodeJS.Timeout | null = null;

  /** Upstream to client, paused while the client does not take it, and cut after CLIENT_SEND_TIMEOUT. */
  private forwardResponseData(chunk: Buffer): void {
    const { stream, upstream, listener } = this;
    this.bytesOut += chunk.length;
    this.timer?.refresh();
    stream.write(chunk);
    if (upstream === null || this.sendTimer !== null) return;
    if (stream.writableLength <= listener.writeBufferLimit(stream.session)) return;
    upstream.pause();
    this.sendTimer = setTimeout(this.onSendTimeout, listener.options.protection.timeouts.sendMs);
    stream.once('drain', this.onClientDrain);
  }

  private readonly onClientDrain = (): void => {
    this.clearSendTimer();
    this.upstream?.resume();
  };

  /** The client has not taken the answer for CLIENT_SEND_TIMEOUT: both legs are reset. */
  private readonly onSendTimeout = (): void => {
    this.sendTimer = null;
    if (this.done) return;
    this.listener.options.protection.limits.clientTimeouts.send.inc();
    this.upstream?.close(NGHTTP2_CANCEL);
    this.complete('client send timeout');
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  };

  private clearSendTimer(): void {
    if (this.sendTimer !== null) {
      clearTimeout(this.sendTimer);
      this.sendTimer = null;
    }
  }

  private upstreamCorked = false;
  private readonly uncorkUpstream = (): void => {
    this.upstreamCorked = false;
    this.upstream?.uncork();
  };

  private readonly forwardRequestData = (chunk: Buffer): void => {
    const upstream = this.upstream;
    if (upstream === null) return;
    this.bytesIn += chunk.length;
    if (this.meter !== null) {
      const refusal = this.meter(chunk.length);
      if (refusal !== null) {
        this.cutOverBytes(refusal);
        return;
      }
    }
    // DATA frames read from one socket read arrive back to back: one writev for all of them.
    if (!this.upstreamCorked) {
      this.upstreamCorked = true;
      upstream.cork();
      process.nextTick(this.uncorkUpstream);
    }
    relay(chunk, this.stream, upstream);
  };

  /**
   * The request crossed its credential's bytes= budget: the upstream stream is cancelled (the
   * collector never takes a cut message as an export) and the call gets RESOURCE_EXHAUSTED with
   * RetryInfo, like a request refused at the door; its answer, when already under way, ends
   * with that status in its trailers.
   */
  private cutOverBytes(refusal: RateRefusal): void {
    if (this.settled) return;
    this.settled = true;
    this.clearTimer();
    this.stream.off('data', this.forwardRequestData);
    this.upstream?.close(NGHTTP2_CANCEL);
    const ending = { identity: this.identity, error: 'credential_limit:bytes' };
    if (this.stream.headersSent) {
      this.failAfterResponse(GRPC_RESOURCE_EXHAUSTED, refusal.text, ending.error);
      return;
    }
    this.done = true;
    this.clearSendTimer();
    this.listener.options.metrics.inFlight.dec();
    this.listener.refuseOverCredentialLimit(this.call, refusal, {
      ...ending,
      bytesIn: this.bytesIn,
      release: this.release,
    });
  }

  private onResponse(headers: IncomingHttpHeaders, flags: number): void {
    const { stream } = this;
    this.listener.options.metrics.upstreamLatency.observe((performance.now() - this.forwardedAt) / 1000);
    if (stream.destroyed || this.settled) return;
    const trailersOnly = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    if (trailersOnly && headers['grpc-status'] !== undefined)
      this.grpcStatus = String(headers['grpc-status']);
    // From here on UPSTREAM_TIMEOUT is the longest silence between response messages: an
    // upstream that sends headers and then hangs does not hold the call forever.
    if (trailersOnly) this.clearTimer();
    else this.timer?.refresh();
    try {
      stream.respond(
        trailersOnly ? this.hideServerFault(filterResponseHeaders(headers)) : filterResponseHeaders(headers),
        trailersOnly ? { endStream: true } : { waitForTrailers: true },
      );
    } catch (error) {
      this.upstream?.close(NGHTTP2_CANCEL);
      this.failBeforeResponse(error);
    }
  }

  private onTimeout(): void {
    this.timer = null;
    if (this.settled) return;
    this.listener.options.metrics.upstreamErrors.timeout.inc();
    const text = upstreamFailureText(TIMEOUT, this.listener.upstreamName);
    if (this.stream.headersSent) this.failAfterResponse(GRPC_DEADLINE_EXCEEDED, text, 'timeout');
    else this.answer(GRPC_DEADLINE_EXCEEDED, text, 'timeout');
    this.upstream?.close(NGHTTP2_CANCEL);
  }

  private onUpstreamError(error: Error): void {
    if (this.settled) return;
    if (!this.stream.headersSent) {
      this.failBeforeResponse(error);
      return;
    }
    this.listener.options.metrics.upstreamErrors.bad_response.inc();
    this.failAfterResponse(GRPC_UNAVAILABLE, this.failedText(), failureLabel(error));
  }

  /**
   * The upstream broke the call after its response headers went out: the client still gets a
   * proper gRPC ending, trailers with the status, instead of a bare stream reset.
   */
  private failAfterResponse(grpcStatus: number, message: string, error: string): void {
    const { stream } = this;
    this.trailers = this.failureTrailers(grpcStatus, message);
    this.grpcStatus = String(grpcStatus);
    if (!stream.destroyed && !stream.writableEnded) stream.end();
    this.complete(error);
  }

  /**
   * With UPSTREAM_ERROR_BODIES=hide, the grpc-message of a status that means the upstream itself
   * failed (UNKNOWN, INTERNAL, DATA_LOSS: where stack traces and internals turn up) is replaced by
   * a short text naming the upstream and the status. Other statuses keep their message: it tells
   * the client what to do (RESOURCE_EXHAUSTED, UNAVAILABLE, INVALID_ARGUMENT, ...).
   */
  private hideServerFault(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
    const status = String(headers['grpc-status'] ?? '');
    if (!this.listener.options.protection.hideUpstreamErrors || !SERVER_FAULT_STATUSES.has(status))
      return headers;
    headers['grpc-message'] = encodeGrpcMessage(
      upstreamAnsweredText(this.listener.upstreamName, `grpc-status ${status}`),
    );
    return headers;
  }

  private failureTrailers(grpcStatus: number, message: string): OutgoingHttpHeaders {
    return { 'grpc-status': String(grpcStatus), 'grpc-message': encodeGrpcMessage(message) };
  }

  private failedText(): string {
    return upstreamFailureText(BAD_RESPONSE, this.listener.upstreamName);
  }

  private onUpstreamClose(): void {
    this.clearTimer();
    const { stream } = this;
    if (this.settled) return;
    if (!stream.headersSent) {
      // Closed (RST_STREAM) before any answer.
      this.failBeforeResponse(
        Object.assign(new Error('upstream reset the stream'), { code: 'ERR_UPSTREAM_RESET' }),
      );
      return;
    }
    if (!stream.writableEnded && !stream.destroyed) {
      // Closed or reset before its trailers: the call failed upstream.
      this.listener.options.metrics.upstreamErrors.bad_response.inc();
      this.failAfterResponse(GRPC_UNAVAILABLE, this.failedText(), 'upstream closed mid-response');
      return;
    }
    this.complete();
  }

  private onClientClose(): void {
    const upstream = this.upstream;
    if (upstream !== null && !upstream.closed && !upstream.destroyed) upstream.close(NGHTTP2_CANCEL);
    this.complete(
      this.stream.rstCode !== 0 && this.stream.rstCode !== undefined ? 'client reset' : undefined,
    );
  }

  private failBeforeResponse(error: unknown): void {
    if (this.settled) return;
    const failure = classifyUpstreamError(error);
    this.listener.options.metrics.upstreamErrors[failure.kind].inc();
    this.answer(
      failure.grpcStatus,
      upstreamFailureText(failure, this.listener.upstreamName),
      failureLabel(error),
    );
  }

  private answer(grpcStatus: number, message: string, error: string): void {
    if (this.settled) return;
    this.settled = true;
    this.clearTimer();
    this.grpcStatus = String(grpcStatus);
    // Nothing more goes upstream; the rest of the request is read and dropped.
    this.stream.off('data', this.forwardRequestData);
    answerWhenRequestEnds(this.stream, { grpcStatus, message }, () => this.complete(error));
  }

  private complete(error?: string): void {
    if (this.done) return;
    this.done = true;
    this.settled = true;
    this.clearTimer();
    this.clearSendTimer();
    const { listener } = this;
    listener.options.metrics.inFlight.dec();
    listener.finish(this.call, {
      grpcStatus: this.grpcStatus,
      identity: this.identity,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      error,
      release: this.release,
    });
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
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
