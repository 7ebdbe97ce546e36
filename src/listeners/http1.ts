import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerOptions,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer, Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Dispatcher, Pool } from 'undici';
import type { AuthState } from '../auth/auth-state.js';
import type { AuthFailureReason, AuthOutcome } from '../auth/credential-store.js';
import { readPresentedCredential } from '../auth/presented-credential.js';
import type { ListenerConfig } from '../config/types.js';
import type { AccessLog } from '../observability/access-log.js';
import type { Logger } from '../observability/logger.js';
import type { ListenerMetrics } from '../observability/metrics.js';
import { classifyUpstreamError, upstreamFailureText } from '../upstream/errors.js';
import { clientAddress, downstreamResponseHeaders, upstreamRequestHeaders } from '../upstream/headers.js';
import { createHttp1Upstream } from '../upstream/http1-upstream.js';
import { listenOn } from './listen.js';
import {
  connectionsCheckingInterval,
  type ListenerProtection,
  TOO_MANY_FAILURES_TEXT,
  upstreamAnsweredText,
} from './protection.js';
import type { TlsMaterial } from './tls-certificates.js';

export interface Http1ListenerOptions {
  readonly config: ListenerConfig & { readonly upstream: URL };
  readonly auth: AuthState;
  readonly metrics: ListenerMetrics;
  readonly accessLog: AccessLog;
  readonly logger: Logger;
  readonly connectTimeoutMs: number;
  readonly responseTimeoutMs: number;
  readonly protection: ListenerProtection;
}

const OVERLOADED_TEXT = 'authentication temporarily overloaded';

/** Headers of a short text answer, with its length: no chunked framing for a one-line body. */
function textHeaders(text: string, extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  return {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...extra,
  };
}

/**
 * An HTTP/1.1 data port (4318, 9090, 8428): authenticate every request, then stream it to the
 * upstream pool and stream the answer back. No framework sits on this path: the node:http
 * server hands over the request, undici's dispatch API delivers the response in chunks that are
 * written straight to the client with backpressure. With TLS configured the port speaks HTTPS.
 */
export class Http1Listener {
  readonly server: Server;
  readonly pool: Pool;
  /** `host:port` of the upstream: its Host header, and how answers and logs name it. */
  readonly upstreamName: string;
  readonly proto: 'http' | 'https';
  private readonly sockets = new Set<Socket>();
  /** Connections whose current answer is their last: requests pipelined behind it are not served. */
  private readonly closing = new WeakSet<Socket>();
  /**
   * Requests pipelined behind the one a connection is being served, in arrival order. Node hands
   * over every pipelined request at once; they are forwarded one at a time, as nginx and Envoy
   * do, so the upstream sees a connection's requests in its order and one connection never
   * holds more than one upstream request (nor buffers the answers of many).
   */
  private readonly pipelined = new WeakMap<Socket, PipelinedRequest[]>();

  constructor(readonly options: Http1ListenerOptions) {
    this.upstreamName = options.config.upstream.host;
    this.pool = createHttp1Upstream(options.config.upstream, {
      connectTimeoutMs: options.connectTimeoutMs,
      responseTimeoutMs: options.responseTimeoutMs,
      connections: 256,
    });
    const { timeouts, tls } = options.protection;
    this.proto = tls === null ? 'http' : 'https';
    const serverOptions: ServerOptions = {
      keepAlive: true,
      keepAliveTimeout: timeouts.idleMs,
      // Counted from a connection's first byte (or its accept): trickled headers and silent
      // connections are both cut, with 408.
      headersTimeout: timeouts.headerMs,
      connectionsCheckingInterval: connectionsCheckingInterval(timeouts.headerMs),
      // Bodies such as a multi-GB /api/v1/import stream for as long as they need; a body that
      // stops flowing is cut by CLIENT_BODY_TIMEOUT instead (ProxyExchange).
      requestTimeout: 0,
      noDelay: true,
      maxHeaderSize: 16 * 1024,
    };
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => this.handle(req, res, false);
    this.server =
      tls === null
        ? createServer(serverOptions, onRequest)
        : createHttpsServer(
            {
              ...serverOptions,
              cert: tls.cert,
              key: tls.key,
              ALPNProtocols: ['http/1.1'],
              handshakeTimeout: timeouts.headerMs,
            },
            onRequest,
          );
    if (tls !== null) {
      // Failed handshakes (a load balancer's TCP check, a client that does not trust the
      // certificate, a scanner) are the client's problem, not an error of the gateway.
      // With a listener, closing the socket is the listener's job (handshake timeouts included).
      this.server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: Socket) => {
        socket.destroy();
        options.logger.debug({ listener: options.config.name, code: error.code }, 'TLS handshake failed');
      });
    }
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) =>
      this.handle(req, res, true),
    );
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) =>
      this.onClientError(error, socket),
    );
    this.server.on('connect', (req: IncomingMessage, socket: Socket) => this.refuseConnect(req, socket));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  get openConnections(): number {
    return this.sockets.size;
  }

  /** Serves a renewed certificate to new connections; open ones keep theirs. */
  setCertificate(tls: TlsMaterial): void {
    if (this.server instanceof HttpsServer) this.server.setSecureContext({ cert: tls.cert, key: tls.key });
  }

  listen(): Promise<void> {
    return listenOn(this.server, this.options.config.listen);
  }

  /**
   * Stops accepting and lets in-flight exchanges finish: idle keep-alive connections are closed
   * at once, busy ones as soon as their response is done, and whatever is left at the deadline
   * is cut.
   */
  async close(deadlineMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const sweep = setInterval(() => this.server.closeIdleConnections(), 50);
    const deadline = setTimeout(() => this.server.closeAllConnections(), deadlineMs);
    this.server.closeIdleConnections();
    try {
      await closed;
    } finally {
      clearInterval(sweep);
      clearTimeout(deadline);
    }
    await this.pool.destroy();
  }

  private handle(req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void {
    const startedAt = performance.now();
    const socket = req.socket;
    const waiting = this.pipelined.get(socket);
    if (waiting !== undefined) {
      waiting.push({ req, res, expectsContinue, startedAt });
      return;
    }
    // Node is still writing the answer of a request before this one: it was pipelined behind it.
    const inProgress = answerInProgress(socket);
    if (inProgress != null && inProgress !== res) {
      this.pipelined.set(socket, [{ req, res, expectsContinue, startedAt }]);
      inProgress.once('close', () => this.serveNext(socket));
      return;
    }
    this.serve(req, res, expectsContinue, startedAt);
  }

  /** Serves the next pipelined request on `socket` once the answer before it is done. */
  private serveNext(socket: Socket): void {
    const waiting = this.pipelined.get(socket) ?? [];
    const next = waiting.shift();
    if (next === undefined || socket.destroyed) {
      this.pipelined.delete(socket);
      return;
    }
    // Requests still behind this one wait for its answer; with none, the connection is back to
    // the common case, in which nothing is queued or listened to.
    if (waiting.length > 0) next.res.once('close', () => this.serveNext(socket));
    else this.pipelined.delete(socket);
    this.serve(next.req, next.res, next.expectsContinue, next.startedAt);
  }

  private serve(
    req: IncomingMessage,
    res: ServerResponse,
    expectsContinue: boolean,
    startedAt: number,
  ): void {
    // Node parses (and hands over) requests pipelined behind one we answered with
    // `Connection: close`; serving them would turn one refused request into an upstream request.
    if (this.closing.has(req.socket)) return;
    // A client over its failure budget is refused before any credential work (bcrypt included).
    const retryAfter = this.options.protection.limiter.retryAfterSeconds(req.socket.remoteAddress);
    if (retryAfter > 0) {
      this.refuseOverLimit(req, res, retryAfter, startedAt);
      return;
    }
    this.options.auth.current.store.check(readPresentedCredential(req.rawHeaders), (outcome) =>
      this.afterAuth(req, res, outcome, expectsContinue, startedAt),
    );
  }

  private afterAuth(
    req: IncomingMessage,
    res: ServerResponse,
    outcome: AuthOutcome,
    expectsContinue: boolean,
    startedAt: number,
  ): void {
    if (!outcome.ok) {
      this.reject(req, res, outcome.reason, startedAt);
      return;
    }
    const path = originFormPath(req.url);
    if (path === null) {
      this.answerText(req, res, 400, 'bad request target', startedAt, outcome.identity);
      return;
    }
    if (!framingIsPlain(req)) {
      // Node's parser rejects most ambiguous framing itself; what it lets through to here
      // (a Transfer-Encoding that is not just "chunked") is refused before reaching the upstream.
      this.answerText(req, res, 400, 'bad request framing', startedAt, outcome.identity);
      return;
    }
    if (!this.server.listening) this.closeAfter(req, res);
    if (expectsContinue) res.writeContinue();
    new ProxyExchange(this, req, res, outcome.identity, path, startedAt).start();
  }

  private reject(
    req: IncomingMessage,
    res: ServerResponse,
    reason: AuthFailureReason,
    startedAt: number,
  ): void {
    const { http401 } = this.options.auth.current;
    const status = reason === 'overloaded' ? 503 : 401;
    this.options.metrics.authFailure(reason);
    // An overloaded verifier is the gateway's condition, not the client's failure.
    if (status === 401) this.options.protection.limiter.recordFailure(req.socket?.remoteAddress);
    // Do not read an unauthenticated body: answer and close the connection instead.
    if (hasRequestBody(req) && !req.complete) this.closeAfter(req, res);
    if (status === 401) {
      res.writeHead(401, http401.headers);
      res.end(http401.body);
    } else {
      res.writeHead(503, textHeaders(OVERLOADED_TEXT, { 'retry-after': '1' }));
      res.end(OVERLOADED_TEXT);
    }
    this.finish(req, status, startedAt, undefined, 0, 0, reason);
  }

  /**
   * CONNECT (authority-form, `CONNECT host:port`) would make the gateway a tunnel to anywhere: it
   * is never served. Without valid credentials it gets the usual 401, with them 405; either way
   * the connection is closed and nothing reaches an upstream.
   */
  private refuseConnect(req: IncomingMessage, socket: Socket): void {
    const startedAt = performance.now();
    socket.on('error', () => undefined);
    const { limiter, limits } = this.options.protection;
    const retryAfter = limiter.retryAfterSeconds(socket.remoteAddress);
    if (retryAfter > 0) {
      limits.authFailureLimit.inc();
      socket.end(
        rawResponse(429, 'Too Many Requests', { 'retry-after': String(retryAfter) }, TOO_MANY_FAILURES_TEXT),
      );
      this.finish(req, 429, startedAt, undefined, 0, 0, undefined, 'auth_failure_limit');
      return;
    }
    const answer = (outcome: AuthOutcome): void => {
      if (outcome.ok) {
        socket.end(
          rawResponse(
            405,
            'Method Not Allowed',
            { allow: 'GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH' },
            'CONNECT is not supported',
          ),
        );
        this.finish(req, 405, startedAt, outcome.identity, 0, 0);
        return;
      }
      this.options.metrics.authFailure(outcome.reason);
      if (outcome.reason !== 'overloaded') limiter.recordFailure(socket.remoteAddress);
      const { http401 } = this.options.auth.current;
      socket.end(rawResponse(401, 'Unauthorized', http401.headers, http401.body));
      this.finish(req, 401, startedAt, undefined, 0, 0, outcome.reason);
    };
    this.options.auth.current.store.check(readPresentedCredential(req.rawHeaders), answer);
  }

  /** This response ends the connection (an unread body, a drain): nothing after it is served. */
  private closeAfter(req: IncomingMessage, res: ServerResponse): void {
    res.shouldKeepAlive = false;
    if (req.socket !== null) this.closing.add(req.socket);
  }

  private refuseOverLimit(
    req: IncomingMessage,
    res: ServerResponse,
    retryAfterSeconds: number,
    startedAt: number,
  ): void {
    this.options.protection.limits.authFailureLimit.inc();
    // Not kept alive: a client over its limit has no use for the connection.
    this.closeAfter(req, res);
    res.writeHead(429, textHeaders(TOO_MANY_FAILURES_TEXT, { 'retry-after': String(retryAfterSeconds) }));
    res.end(TOO_MANY_FAILURES_TEXT);
    this.finish(req, 429, startedAt, undefined, 0, 0, undefined, 'auth_failure_limit');
  }

  answerText(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    text: string,
    startedAt: number,
    identity: string | undefined,
    error?: string,
    client?: string,
  ): void {
    if (!res.headersSent) {
      if (hasRequestBody(req) && !req.complete) this.closeAfter(req, res);
      res.writeHead(status, textHeaders(text));
      res.end(text);
    } else {
      res.destroy();
    }
    this.finish(req, status, startedAt, identity, 0, 0, undefined, error, client);
  }

  finish(
    req: IncomingMessage,
    status: number,
    startedAt: number,
    identity: string | undefined,
    bytesIn: number,
    bytesOut: number,
    authFailure?: AuthFailureReason,
    error?: string,
    /**
     * The client's address. A proxied exchange passes the one it read on arrival: undici destroys
     * a request body it has sent, which detaches `req.socket` before the access-log line is written.
     */
    client = clientAddress(req.socket?.remoteAddress),
  ): void {
    const { metrics, accessLog, config } = this.options;
    metrics.request(status);
    if (bytesIn > 0) metrics.bytesIn.inc(bytesIn);
    if (bytesOut > 0) metrics.bytesOut.inc(bytesOut);
    accessLog.write({
      listener: config.name,
      method: req.method ?? '',
      url: req.url ?? '',
      status,
      durationMs: performance.now() - startedAt,
      bytesIn,
      bytesOut,
      identity,
      client,
      upstream: this.upstreamName,
      authFailure,
      error,
    });
  }

  private onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    // Malformed requests (smuggling attempts, bad framing, oversize headers) never reach the upstream.
    // Node's own default handler makes the same check (on the same internal field): a response
    // already under way must not get a second status line spliced into it.
    const inProgress = answerInProgress(socket);
    if (error.code === 'ECONNRESET' || !socket.writable || inProgress?.headersSent === true) {
      socket.destroy();
      return;
    }
    const status =
      error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const { limits } = this.options.protection;
    if (status === 431) limits.headerSizeLimit.inc();
    else if (status === 408) limits.clientTimeouts.headers.inc();
    const text =
      status === 431 ? 'request header fields too large' : status === 408 ? 'request timeout' : 'bad request';
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\n` +
        `content-type: text/plain\r\ncontent-length: ${text.length}\r\nconnection: close\r\n\r\n${text}`,
    );
    this.options.logger.debug(
      { listener: this.options.config.name, code: error.code },
      'rejected malformed request',
    );
  }
}

/**
 * One proxied request: an undici dispatch handler that writes the upstream's answer straight
 * into the client's response, pausing the upstream when the client is slow. It uses undici's
 * original handler interface (onConnect/onHeaders/onData/...): undici passes such a handler
 * through unwrapped, hands over raw header buffers, and reports request body bytes sent.
 */
class ProxyExchange implements Dispatcher.DispatchHandler {
  private abortUpstream: ((error?: Error) => void) | null = null;
  private resumeUpstream: (() => void) | null = null;
  private status = 0;
  private pendingHeaders: Buffer[] | null = null;
  private hideBody = false;
  private bytesIn = 0;
  private bytesOut = 0;
  private done = false;
  private forwardedAt = 0;
  private client = '';

  constructor(
    private readonly listener: Http1Listener,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly identity: string,
    private readonly path: string,
    private readonly startedAt: number,
  ) {}

  start(): void {
    const { req, listener } = this;
    this.client = clientAddress(req.socket.remoteAddress);
    listener.options.metrics.inFlight.inc();
    this.res.on('close', () => this.onClientClose());
    const withBody = hasRequestBody(req);
    if (withBody && !req.complete) this.watchBodySilence();
    this.forwardedAt = performance.now();
    listener.pool.dispatch(
      {
        path: this.path,
        method: req.method as Dispatcher.HttpMethod,
        headers: upstreamRequestHeaders(req.rawHeaders, req.headers, {
          clientAddress: this.client,
          proto: listener.proto,
          originalHost: req.headers.host,
          identity: this.identity,
          upstreamHost: listener.upstreamName,
        }),
        body: withBody ? req : null,
        // A proxy must not replay a request on its own; a failed exchange is the client's to retry.
        idempotent: false,
        blocking: true,
      },
      this,
    );
  }

  /**
   * Cuts a request whose body stops arriving for CLIENT_BODY_TIMEOUT: the socket's inactivity
   * timer runs only while the body is being received, so an upload that keeps sending, however
   * long, and a slow upstream answer after the body are never cut by it.
   */
  private watchBodySilence(): void {
    const { req, res } = this;
    req.setTimeout(this.listener.options.protection.timeouts.bodyMs, () => this.onBodySilence());
    const disarm = (): void => {
      req.socket?.setTimeout(0);
    };
    req.once('end', disarm);
    // Received in full but not yet consumed (the upstream reads slowly): not the client's fault.
    res.on('timeout', disarm);
  }

  private onBodySilence(): void {
    const { listener, req } = this;
    req.socket?.setTimeout(0);
    if (this.done) return;
    listener.options.protection.limits.clientTimeouts.body.inc();
    this.done = true;
    listener.options.metrics.inFlight.dec();
    this.abortUpstream?.(new Error('client body timeout'));
    listener.answerText(
      req,
      this.res,
      408,
      'request body timeout',
      this.startedAt,
      this.identity,
      'client body timeout',
      this.client,
    );
  }

  onConnect(abort: (error?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.done) abort(new Error('client went away'));
  }

  /** undici passes the chunk itself (its type declaration says a size). */
  onBodySent(chunk: Buffer | number): void {
    this.bytesIn += typeof chunk === 'number' ? chunk : chunk.length;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true;
    this.listener.options.metrics.upstreamLatency.observe((performance.now() - this.forwardedAt) / 1000);
    this.status = statusCode;
    this.resumeUpstream = resume;
    // Held until the first body bytes (Node would not send them earlier anyway): an upstream
    // that fails or hangs before sending any still gets a proper 502/504, not a cut connection.
    this.pendingHeaders = rawHeaders;
    this.hideBody = statusCode >= 500 && this.listener.options.protection.hideUpstreamErrors;
    return true;
  }

  /**
   * UPSTREAM_ERROR_BODIES=hide: an upstream's 5xx body (a stack trace, an internal path) is read
   * and dropped; the client gets the status, any Retry-After, and a short text of ours.
   */
  private answerHiddenError(): void {
    const raw = this.pendingHeaders ?? [];
    this.pendingHeaders = null;
    const text = upstreamAnsweredText(this.listener.upstreamName, this.status);
    const retryAfter = rawHeaderValue(raw, 'retry-after');
    this.res.writeHead(
      this.status,
      textHeaders(text, retryAfter === undefined ? {} : { 'retry-after': retryAfter }),
    );
    this.res.end(text);
    this.bytesOut = Buffer.byteLength(text);
    this.complete(this.status);
  }

  /** Writes the held status line and headers; false when the upstream's headers are unusable. */
  private flushHead(): boolean {
    const raw = this.pendingHeaders;
    if (raw === null) return true;
    this.pendingHeaders = null;
    try {
      this.res.writeHead(this.status, downstreamResponseHeaders(raw));
      return true;
    } catch {
      this.abortUpstream?.(badHeadersError());
      return false;
    }
  }

  onData(chunk: Buffer): boolean {
    if (this.hideBody) return true;
    if (!this.flushHead()) return false;
    this.bytesOut += chunk.length;
    if (this.res.write(chunk)) return true;
    this.res.once('drain', this.resumeUpstream ?? noop);
    return false;
  }

  onComplete(): void {
    if (this.hideBody) {
      this.answerHiddenError();
      return;
    }
    if (!this.flushHead()) {
      this.settleError(badHeadersError());
      return;
    }
    this.res.end();
    this.complete(this.status);
  }

  /**
   * undici re-emits anything thrown here as an 'error' event on its Client, which nothing
   * listens to: a throw would take the process down. So this never throws.
   */
  onError(error: Error): void {
    try {
      this.settleError(error);
    } catch (failure) {
      this.listener.options.logger.error(
        { listener: this.listener.options.config.name, err: (failure as Error).message },
        'failed to answer an upstream error; connection cut',
      );
      this.res.destroy();
    }
  }

  private settleError(error: Error): void {
    if (this.done) return;
    const { listener } = this;
    if (this.res.headersSent) {
      // Mid-body failure: the status line is gone, so the only honest signal is a cut connection.
      this.res.destroy();
      this.complete(this.status, errorLabel(error));
      return;
    }
    this.done = true;
    listener.options.metrics.inFlight.dec();
    if (this.res.destroyed) {
      // The client went away first (and aborted the exchange): not the upstream's failure.
      listener.finish(
        this.req,
        499,
        this.startedAt,
        this.identity,
        this.bytesIn,
        0,
        undefined,
        'client closed',
        this.client,
      );
      return;
    }
    const failure = classifyUpstreamError(error);
    listener.options.metrics.upstreamErrors[failure.kind].inc();
    listener.answerText(
      this.req,
      this.res,
      failure.httpStatus,
      upstreamFailureText(failure, listener.upstreamName),
      this.startedAt,
      this.identity,
      errorLabel(error),
      this.client,
    );
  }

  private onClientClose(): void {
    if (this.done || this.res.writableFinished) return;
    this.abortUpstream?.(new Error('client went away'));
    this.complete(499, 'client closed');
  }

  private complete(status: number, error?: string): void {
    if (this.done) return;
    this.done = true;
    const { listener } = this;
    listener.options.metrics.inFlight.dec();
    listener.finish(
      this.req,
      status,
      this.startedAt,
      this.identity,
      this.bytesIn,
      this.bytesOut,
      undefined,
      error,
      this.client,
    );
  }
}

const noop = (): void => undefined;

/**
 * The answer Node is writing on a connection (or null), from the internal field Node's own
 * server code reads for the same purpose.
 */
function answerInProgress(socket: Socket): ServerResponse | null | undefined {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
}

interface PipelinedRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly expectsContinue: boolean;
  /** When it arrived: its access-log duration includes the wait behind the requests before it. */
  readonly startedAt: number;
}

/** The value of a header in undici's raw [name, value, ...] Buffer list (first one), or undefined. */
function rawHeaderValue(raw: readonly Buffer[], lowerName: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as Buffer;
    if (name.length === lowerName.length && name.toString('latin1').toLowerCase() === lowerName) {
      return (raw[i + 1] as Buffer).toString('latin1');
    }
  }
  return undefined;
}

function badHeadersError(): Error {
  return Object.assign(new Error('invalid response headers'), { code: 'ERR_BAD_UPSTREAM_HEADERS' });
}

function errorLabel(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code ?? error.name;
}

/** Framing an upstream reads exactly as we do: no Transfer-Encoding, or exactly `chunked`. */
function framingIsPlain(req: IncomingMessage): boolean {
  const te = req.headers['transfer-encoding'];
  return te === undefined || te.toLowerCase() === 'chunked';
}

/** A whole HTTP/1.1 answer for a socket no ServerResponse owns (CONNECT), closing the connection. */
function rawResponse(
  status: number,
  reason: string,
  headers: Readonly<Record<string, string>>,
  body: string,
): string {
  let head = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (const name in headers) {
    if (name !== 'content-length') head += `${name}: ${headers[name]}\r\n`;
  }
  if (headers['content-type'] === undefined) head += 'content-type: text/plain; charset=utf-8\r\n';
  return `${head}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

function hasRequestBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** The origin-form target to forward; absolute-form (`http://host/path`) is reduced to its path. */
function originFormPath(url: string | undefined): string | null {
  if (url === undefined || url === '') return null;
  if (url.charCodeAt(0) === 47 /* / */) return url;
  if (!/^https?:\/\//i.test(url)) return null;
  try {
    const parsed = new URL(url);
    return parsed.pathname + parsed.search;
  } catch {
    return null;
  }
}
