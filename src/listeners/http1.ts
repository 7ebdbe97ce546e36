import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerOptions,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import { createServer as createHttpsServer, Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { type Admission, type CredentialLimit, RequestAdmission } from '../auth/admission.js';
import type { AuthState } from '../auth/auth-state.js';
import type { AuthFailureReason, AuthOutcome } from '../auth/credential-store.js';
import type { ListenerConfig } from '../config/types.js';
import { OVERLOADED_TEXT, TOO_MANY_FAILURES_TEXT, upstreamBusyText } from '../data-plane/core/answers.js';
import { ExchangeRecorder } from '../data-plane/core/exchange-record.js';
import { clientAddress } from '../data-plane/core/forwarding.js';
import { Http1UpstreamPool } from '../data-plane/h1/upstream-pool.js';
import type { RateRefusal } from '../limits/request-rate-limiter.js';
import type { AccessLog } from '../observability/access-log.js';
import type { CredentialMetrics } from '../observability/credential-metrics.js';
import type { Logger } from '../observability/logger.js';
import type { ListenerMetrics } from '../observability/metrics.js';
import { ConnectionAdmission } from './connection-admission.js';
import { Http1Connection, type Http1Request } from './http1-connection.js';
import { type Http1Ending, hasRequestBody, ProxyExchange, textHeaders } from './http1-exchange.js';
import { listenOn } from './listen.js';
import { connectionsCheckingInterval, type ListenerProtection } from './protection.js';
import type { TlsMaterial } from './tls-certificates.js';

export interface Http1ListenerOptions {
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

/** Connections of a port's upstream pool: each carries one exchange at a time. */
export const HTTP1_UPSTREAM_CONNECTIONS = 256;

/**
 * Header fields a request may carry. Node keeps only the first `maxHeadersCount` fields in
 * `req.headers` while its parser still frames the body by all of them: a Content-Length after
 * the cut would be forwarded as no body at all. A request that reaches the count is refused.
 */
const MAX_HEADER_FIELDS = 256;

/**
 * An HTTP/1.1 data port (4318, 9090, 8428): authenticate every request, then stream it to the
 * upstream pool and stream the answer back. No framework sits on this path: the node:http
 * server hands over the request, the upstream pool (llhttp on keep-alive sockets) delivers the
 * response as views of its socket reads, written straight to the client with backpressure. With TLS configured the port speaks HTTPS.
 */
export class Http1Listener {
  readonly server: Server;
  readonly pool: Http1UpstreamPool;
  /** `host:port` of the upstream: its Host header, and how answers and logs name it. */
  readonly upstreamName: string;
  readonly proto: 'http' | 'https';
  private readonly connections = new Map<Socket, Http1Connection>();
  private readonly admission: ConnectionAdmission;
  /** Failure limit, credential, scope: the same door as the gRPC listener's. */
  private readonly door: RequestAdmission;
  /** Exchanges holding an upstream connection (or waiting for one): at most the pool's size. */
  private upstreamBusy = 0;
  private readonly recorder: ExchangeRecorder;

  constructor(readonly options: Http1ListenerOptions) {
    this.upstreamName = options.config.upstream.host;
    this.pool = new Http1UpstreamPool(options.config.upstream, {
      connectTimeoutMs: options.connectTimeoutMs,
      responseTimeoutMs: options.responseTimeoutMs,
      connections: HTTP1_UPSTREAM_CONNECTIONS,
    });
    this.admission = new ConnectionAdmission(options.protection.connections, options.protection.limits);
    this.door = RequestAdmission.forListener(options);
    this.recorder = ExchangeRecorder.forListener(options);
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
    this.server.maxHeadersCount = MAX_HEADER_FIELDS;
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) =>
      this.handle(req, res, true),
    );
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) =>
      this.onClientError(error, socket),
    );
    this.server.on('connect', (req: IncomingMessage, socket: Socket) => this.refuseConnect(req, socket));
    this.server.on('connection', (socket: Socket) => this.onConnection(socket));
    if (tls !== null) this.server.on('secureConnection', (socket: Socket) => this.track(socket));
  }

  get openConnections(): number {
    return this.connections.size;
  }

  /** A TCP connection accepted (before any TLS handshake): admitted, or closed at once. */
  private onConnection(socket: Socket): void {
    if (!this.admission.admit(socket)) return;
    if (this.options.protection.tls === null) this.track(socket);
  }

  /** The socket Node's HTTP server reads requests from (with TLS, the TLS socket). */
  private track(socket: Socket): void {
    const { limiter, limits } = this.options.protection;
    const retryAfter = limiter.retryAfterSeconds(socket.remoteAddress);
    if (retryAfter > 0) {
      // A client over its failure budget gets its 429 before it has sent anything, and nothing
      // of what it sends is parsed: a reconnecting flood costs an accept and a write.
      limits.authFailureLimit.inc();
      socket.pause();
      socket.on('error', () => undefined);
      socket.end(
        rawResponse(429, 'Too Many Requests', { 'retry-after': String(retryAfter) }, TOO_MANY_FAILURES_TEXT),
        () => socket.destroy(),
      );
      return;
    }
    const connection = new Http1Connection(
      socket,
      (request) => this.serve(request),
      () => {
        limits.pipeliningLimit.inc();
        // A connection cut for flooding counts against its address like a failed credential:
        // past AUTH_FAILURE_LIMIT of them, it gets its 429 at accept and nothing it sends is parsed.
        limiter.recordFailure(socket.remoteAddress);
      },
    );
    this.connections.set(socket, connection);
    socket.once('close', () => this.connections.delete(socket));
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
    const request = {
      req,
      res,
      expectsContinue,
      startedAt: performance.now(),
      client: clientAddress(req.socket.remoteAddress),
    };
    this.admission.inUse(req.socket);
    const connection = this.connections.get(req.socket);
    if (connection === undefined) this.serve(request);
    else connection.admit(request);
  }

  private serve(request: Http1Request): void {
    const { req } = request;
    if (req.rawHeaders.length >= 2 * MAX_HEADER_FIELDS) {
      this.options.protection.limits.headerSizeLimit.inc();
      this.closeAfter(request);
      this.answerText(request, 431, 'too many header fields', {});
      return;
    }
    // A client over its failure budget is refused before any credential work (bcrypt included).
    this.door.admit(
      req.socket.remoteAddress,
      req.method ?? '',
      originFormPath(req.url),
      req.rawHeaders,
      (admission) => this.afterAdmission(request, admission),
      declaredBodyBytes(req),
    );
  }

  private afterAdmission(request: Http1Request, admission: Admission): void {
    switch (admission.kind) {
      case 'over-limit':
        this.refuseOverLimit(request, admission.retryAfterSeconds, admission.failures);
        return;
      case 'refused':
        this.reject(request, admission.reason);
        return;
      case 'bad-target':
        this.answerText(request, 400, admission.text, { identity: admission.principal.identity });
        return;
      case 'forbidden':
        this.answerText(request, 403, admission.text, {
          identity: admission.principal.identity,
          error: `scope_denied:${admission.scope}`,
        });
        return;
      case 'limited':
        this.refuseOverCredentialLimit(
          request,
          admission.refusal,
          admission.principal.identity,
          admission.limit,
        );
        return;
      case 'admitted':
        break;
    }
    const { req, res } = request;
    const { identity } = admission.principal;
    const { release } = admission;
    if (!framingIsPlain(req)) {
      // Node's parser rejects most ambiguous framing itself; what it lets through to here
      // (a Transfer-Encoding that is not just "chunked") is refused before reaching the upstream.
      this.answerText(request, 400, 'bad request framing', { identity, release });
      return;
    }
    if (this.upstreamBusy >= HTTP1_UPSTREAM_CONNECTIONS) {
      // A request that waited for a connection would hang behind the slowest exchanges (a key
      // holder's 1 byte/s uploads): answered at once instead, for the client to retry.
      this.options.protection.limits.upstreamPoolLimit.inc();
      this.answerText(
        request,
        503,
        upstreamBusyText(this.upstreamName),
        { identity, error: 'upstream pool exhausted', release },
        { 'retry-after': '1' },
      );
      return;
    }
    if (!this.server.listening) this.closeAfter(request);
    if (request.expectsContinue) res.writeContinue();
    this.upstreamBusy++;
    new ProxyExchange(this, request, admission).start();
  }

  /** An exchange gave its upstream connection back. */
  upstreamReleased(): void {
    this.upstreamBusy--;
  }

  private reject(request: Http1Request, reason: AuthFailureReason): void {
    const { req, res } = request;
    const { http401 } = this.options.auth.current;
    const status = reason === 'overloaded' ? 503 : 401;
    // Do not read an unauthenticated body: answer and close the connection instead.
    if (hasRequestBody(req) && !req.complete) this.closeAfter(request);
    if (status === 401) {
      res.writeHead(401, http401.headers);
      res.end(http401.body);
    } else {
      res.writeHead(503, textHeaders(OVERLOADED_TEXT, { 'retry-after': '1' }));
      res.end(OVERLOADED_TEXT);
    }
    this.finish(request, status, { authFailure: reason });
  }

  /**
   * CONNECT (authority-form, `CONNECT host:port`) would make the gateway a tunnel to anywhere: it
   * is never served. Without valid credentials it gets the usual 401, with them 405; either way
   * the connection is closed and nothing reaches an upstream.
   */
  private refuseConnect(req: IncomingMessage, socket: Socket): void {
    const request = {
      req,
      startedAt: performance.now(),
      client: clientAddress(socket.remoteAddress),
    };
    socket.on('error', () => undefined);
    const over = this.door.overLimit(socket.remoteAddress);
    if (over?.kind === 'over-limit') {
      socket.end(
        rawResponse(
          429,
          'Too Many Requests',
          { 'retry-after': String(over.retryAfterSeconds) },
          TOO_MANY_FAILURES_TEXT,
        ),
      );
      this.finish(request, 429, { error: 'auth_failure_limit', authFailures: over.failures });
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
        this.finish(request, 405, { identity: outcome.identity });
        return;
      }
      const { http401 } = this.options.auth.current;
      socket.end(rawResponse(401, 'Unauthorized', http401.headers, http401.body));
      this.finish(request, 401, { authFailure: outcome.reason });
    };
    this.door.authenticate(socket.remoteAddress, req.rawHeaders, answer);
  }

  /** This response ends the connection (an unread body, a drain): nothing after it is served. */
  private closeAfter({ req, res }: Http1Request): void {
    res.shouldKeepAlive = false;
    const connection = req.socket === null ? undefined : this.connections.get(req.socket);
    if (connection !== undefined) connection.closing = true;
  }

  private refuseOverLimit(request: Http1Request, retryAfterSeconds: number, failures: number): void {
    const { res } = request;
    // Not kept alive: a client over its limit has no use for the connection.
    this.closeAfter(request);
    res.writeHead(429, textHeaders(TOO_MANY_FAILURES_TEXT, { 'retry-after': String(retryAfterSeconds) }));
    res.end(TOO_MANY_FAILURES_TEXT);
    this.finish(request, 429, { error: 'auth_failure_limit', authFailures: failures });
  }

  /** 429 for a credential over its rate=, bytes= or inflight= (issue 14), with the RateLimit headers. */
  refuseOverCredentialLimit(
    request: Http1Request,
    refusal: RateRefusal,
    identity: string,
    limit: CredentialLimit,
    ending: Omit<Http1Ending, 'identity' | 'error'> = {},
  ): void {
    this.answerText(
      request,
      429,
      refusal.text,
      { ...ending, identity, error: `credential_limit:${limit}` },
      {
        'retry-after': String(refusal.retryAfterSeconds),
        'ratelimit-policy': refusal.policy,
        ratelimit: refusal.state,
      },
    );
  }

  /**
   * A one-line answer of the gateway's own; a response already under way is cut instead. A
   * request whose body is still arriving ends its connection with it.
   */
  answerText(
    request: Http1Request,
    status: number,
    text: string,
    ending: Http1Ending,
    extraHeaders: Readonly<Record<string, string>> = {},
  ): void {
    const { req, res } = request;
    let bytesOut = 0;
    if (!res.headersSent) {
      if (hasRequestBody(req) && !req.complete) this.closeAfter(request);
      res.writeHead(status, textHeaders(text, extraHeaders));
      res.end(text);
      bytesOut = Buffer.byteLength(text);
    } else {
      res.destroy();
    }
    this.finish(request, status, { ...ending, bytesOut });
  }

  /** Records the end of `request`'s exchange: metrics and its access-log line. */
  finish(
    request: Pick<Http1Request, 'req' | 'startedAt' | 'client'>,
    status: number,
    ending: Http1Ending,
  ): void {
    const { req } = request;
    this.recorder.record({
      method: req.method ?? '',
      url: req.url ?? '',
      status,
      startedAt: request.startedAt,
      identity: ending.identity,
      bytesIn: ending.bytesIn ?? 0,
      bytesOut: ending.bytesOut ?? 0,
      client: request.client,
      authFailure: ending.authFailure,
      error: ending.error,
      authFailures: ending.authFailures,
      release: ending.release,
    });
  }

  private onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    // Malformed requests (smuggling attempts, bad framing, oversize headers) never reach the upstream.
    // Node's own default handler makes the same check (on the same internal field): a response
    // already under way must not get a second status line spliced into it.
    const connection = this.connections.get(socket);
    // Bytes after a request that ended its connection (HTTP/1.0, `Connection: close`) are not a
    // request: its answer, still in progress, goes out and then the connection closes.
    if (error.code === 'HPE_CLOSED_CONNECTION' && connection?.current != null) return;
    if (error.code === 'ECONNRESET' || !socket.writable || connection?.current?.headersSent === true) {
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
    const answer =
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      `content-type: text/plain\r\ncontent-length: ${text.length}\r\nconnection: close\r\n\r\n${text}`;
    // Behind an answer still in progress, so that the client reads its answers in order.
    if (connection === undefined) socket.end(answer);
    else connection.answerErrorAfterCurrent(answer);
    this.options.logger.debug(
      { listener: this.options.config.name, code: error.code },
      'rejected malformed request',
    );
  }
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

/** The body length a request declares (its Content-Length), 0 when it declares none. */
function declaredBodyBytes(req: IncomingMessage): number {
  const declared = Number(req.headers['content-length']);
  return Number.isFinite(declared) && declared > 0 ? declared : 0;
}
