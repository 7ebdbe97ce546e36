import { createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { createServer as createTlsServer, Server as TlsServer } from 'node:tls';
import { type Admission, type CredentialLimit, RequestAdmission } from '../auth/admission.js';
import type { AuthState } from '../auth/auth-state.js';
import type { AuthFailureReason, AuthOutcome } from '../auth/credential-store.js';
import type { ListenerConfig } from '../config/types.js';
import { OVERLOADED_TEXT, TOO_MANY_FAILURES_TEXT, upstreamBusyText } from '../data-plane/core/answers.js';
import { ExchangeRecorder } from '../data-plane/core/exchange-record.js';
import {
  ClientConnection,
  type ClientConnectionOwner,
  type ClientLimits,
  type ClientRequest,
  type HeadRefusal,
} from '../data-plane/h1/client-connection.js';
import { Http1UpstreamPool } from '../data-plane/h1/upstream-pool.js';
import type { RateRefusal } from '../limits/request-rate-limiter.js';
import type { AccessLog } from '../observability/access-log.js';
import type { CredentialMetrics } from '../observability/credential-metrics.js';
import type { Logger } from '../observability/logger.js';
import type { ListenerMetrics } from '../observability/metrics.js';
import { ConnectionAdmission } from './connection-admission.js';
import { type Http1Ending, ProxyExchange, textHeaders } from './http1-exchange.js';
import { listenOn } from './listen.js';
import type { ListenerProtection } from './protection.js';
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

/** A request of a client connection, as the listener and its exchanges see it. */
export type Http1Request = ClientRequest;

/**
 * Header fields a request may carry: a request that reaches the count is refused with 431 (Node's
 * server kept only the first `maxHeadersCount` while framing the body by all of them).
 */
const MAX_HEADER_FIELDS = 256;

/** Node's own limit on a request head (--max-http-header-size), counted as Node counts it. */
const MAX_HEAD_BYTES = 16 * 1024;

/**
 * Requests a connection may have parsed behind unanswered ones (issue 10 §2): nginx and Envoy
 * serve a connection's requests one at a time, and so does the client leg; more than this many
 * sent without ever waiting for an answer is no client's honest pipelining: the connection is cut.
 */
export const MAX_PIPELINED_WAITING = 32;

/**
 * An HTTP/1.1 data port (4318, 9090, 8428): authenticate every request, then stream it to the
 * upstream pool and stream the answer back. No framework and no node:http on this path: each
 * client connection is read with llhttp (src/data-plane/h1/client-connection.ts), its bodies go to
 * the upstream pool (llhttp on keep-alive sockets) as views of the socket's reads, and the
 * answers come back the same way, written with backpressure. With TLS configured the port speaks HTTPS.
 */
export class Http1Listener implements ClientConnectionOwner {
  readonly server: Server;
  readonly pool: Http1UpstreamPool;
  /** `host:port` of the upstream: its Host header, and how answers and logs name it. */
  readonly upstreamName: string;
  readonly proto: 'http' | 'https';
  private readonly connections = new Set<ClientConnection>();
  private readonly admission: ConnectionAdmission;
  /** Failure limit, credential, scope: the same door as the gRPC listener's. */
  private readonly door: RequestAdmission;
  /** Exchanges holding an upstream connection (or waiting for one): at most the pool's size. */
  private upstreamBusy = 0;
  private readonly recorder: ExchangeRecorder;
  private readonly limits: ClientLimits;
  private sweeper: NodeJS.Timeout | null = null;
  /** Set by close(): every answer ends its connection. */
  draining = false;

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
    this.limits = {
      maxHeadBytes: MAX_HEAD_BYTES,
      maxHeaderFields: MAX_HEADER_FIELDS,
      maxPipelined: MAX_PIPELINED_WAITING,
      // Counted from a connection's accept or a request's first byte: trickled headers and
      // silent connections are both cut, with 408.
      headerTimeoutMs: timeouts.headerMs,
      idleTimeoutMs: timeouts.idleMs,
      // Bodies such as a multi-GB /api/v1/import stream for as long as they need; a body that
      // stops flowing is cut by CLIENT_BODY_TIMEOUT (ProxyExchange).
      bodyTimeoutMs: timeouts.bodyMs,
    };
    const serverOptions = { noDelay: true, keepAlive: true };
    this.server =
      tls === null
        ? createServer(serverOptions)
        : createTlsServer({
            ...serverOptions,
            cert: tls.cert,
            key: tls.key,
            ALPNProtocols: ['http/1.1'],
            handshakeTimeout: timeouts.headerMs,
          });
    if (tls !== null) {
      // Failed handshakes (a load balancer's TCP check, a client that does not trust the
      // certificate, a scanner) are the client's problem, not an error of the gateway.
      this.server.on('tlsClientError', (error: NodeJS.ErrnoException, socket: Socket) => {
        socket.destroy();
        options.logger.debug({ listener: options.config.name, code: error.code }, 'TLS handshake failed');
      });
      this.server.on('secureConnection', (socket: Socket) => this.track(socket));
    }
    this.server.on('connection', (socket: Socket) => this.onConnection(socket));
  }

  get openConnections(): number {
    return this.connections.size;
  }

  /** A TCP connection accepted (before any TLS handshake): admitted, or closed at once. */
  private onConnection(socket: Socket): void {
    if (!this.admission.admit(socket)) return;
    if (this.options.protection.tls === null) this.track(socket);
  }

  /** The socket requests are read from (with TLS, the TLS socket). */
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
    const connection = new ClientConnection(socket, this.limits, this);
    this.connections.add(connection);
    socket.once('close', () => this.connections.delete(connection));
    this.sweeper ??= setInterval(() => this.sweep(), sweepInterval(this.limits));
  }

  /** The connections' clocks: header, idle and body-silence timeouts. */
  private sweep(): void {
    if (this.connections.size === 0) {
      clearInterval(this.sweeper!);
      this.sweeper = null;
      return;
    }
    const now = performance.now();
    for (const connection of this.connections) connection.sweep(now);
  }

  /** Serves a renewed certificate to new connections; open ones keep theirs. */
  setCertificate(tls: TlsMaterial): void {
    if (this.server instanceof TlsServer) this.server.setSecureContext({ cert: tls.cert, key: tls.key });
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
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const closeIdle = (): void => {
      for (const connection of this.connections) connection.closeIfIdle();
    };
    const sweep = setInterval(closeIdle, 50);
    const deadline = setTimeout(() => {
      for (const connection of this.connections) connection.socket.destroy();
    }, deadlineMs);
    closeIdle();
    try {
      await closed;
    } finally {
      clearInterval(sweep);
      clearTimeout(deadline);
      if (this.sweeper !== null) clearInterval(this.sweeper);
      this.sweeper = null;
    }
    await this.pool.destroy();
  }

  /** ClientConnectionOwner: a request's head is complete. */
  onRequest(request: ClientRequest): void {
    this.admission.inUse(request.connection.socket);
    if (request.expectation === 'unsupported') {
      // An expectation other than 100-continue cannot be met (RFC 9110 §10.1.1), as node:http answers.
      this.answerText(request, 417, 'expectation failed', {});
      return;
    }
    // A client over its failure budget is refused before any credential work (bcrypt included).
    this.door.admit(
      request.remoteAddress,
      request.method,
      originFormPath(request.url),
      request.rawHeaders,
      (admission) => this.afterAdmission(request, admission),
      declaredBodyBytes(request),
    );
  }

  /** ClientConnectionOwner: a head the connection refused itself (and answered). */
  onRefused(refusal: HeadRefusal, reason: string): void {
    const { limits } = this.options.protection;
    if (refusal === 'head-too-large' || refusal === 'too-many-fields') limits.headerSizeLimit.inc();
    else if (refusal === 'head-timeout') limits.clientTimeouts.headers.inc();
    this.options.logger.debug({ listener: this.options.config.name, reason }, 'rejected malformed request');
  }

  /** ClientConnectionOwner: a connection cut for flooding counts against its address like a failed credential. */
  onPipeliningLimit(address: string | undefined): void {
    this.options.protection.limits.pipeliningLimit.inc();
    // Past AUTH_FAILURE_LIMIT of them, the address gets its 429 at accept and nothing it sends is parsed.
    this.options.protection.limiter.recordFailure(address);
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
    const { identity } = admission.principal;
    const { release } = admission;
    if (!framingIsPlain(request)) {
      // llhttp rejects ambiguous framing itself; what it lets through to here (a
      // Transfer-Encoding that is not just "chunked") is refused before reaching the upstream.
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
    if (request.expectation === 'continue') request.answer.writeContinue();
    this.upstreamBusy++;
    new ProxyExchange(this, request, admission).start();
  }

  /** An exchange gave its upstream connection back. */
  upstreamReleased(): void {
    this.upstreamBusy--;
  }

  private reject(request: Http1Request, reason: AuthFailureReason): void {
    const { answer } = request;
    const { http401 } = this.options.auth.current;
    const status = reason === 'overloaded' ? 503 : 401;
    // Do not read an unauthenticated body: answer and close the connection instead.
    if (request.hasBody && !request.complete) answer.closeAfter();
    if (status === 401) {
      answer.writeHead(401, http401.headers);
      answer.end(http401.body);
    } else {
      answer.writeHead(503, textHeaders(OVERLOADED_TEXT, { 'retry-after': '1' }));
      answer.end(OVERLOADED_TEXT);
    }
    this.finish(request, status, { authFailure: reason });
  }

  /**
   * CONNECT (authority-form, `CONNECT host:port`) would make the gateway a tunnel to anywhere: it
   * is never served. Without valid credentials it gets the usual 401, with them 405; either way
   * the connection is closed and nothing reaches an upstream.
   */
  onConnect(request: ClientRequest): void {
    const { answer } = request;
    const address = request.remoteAddress;
    const over = this.door.overLimit(address);
    if (over?.kind === 'over-limit') {
      answer.raw(
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
    const respond = (outcome: AuthOutcome): void => {
      if (outcome.ok) {
        answer.raw(
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
      answer.raw(rawResponse(401, 'Unauthorized', http401.headers, http401.body));
      this.finish(request, 401, { authFailure: outcome.reason });
    };
    this.door.authenticate(address, request.rawHeaders, respond);
  }

  private refuseOverLimit(request: Http1Request, retryAfterSeconds: number, failures: number): void {
    const { answer } = request;
    // Not kept alive: a client over its limit has no use for the connection.
    answer.closeAfter();
    answer.writeHead(429, textHeaders(TOO_MANY_FAILURES_TEXT, { 'retry-after': String(retryAfterSeconds) }));
    answer.end(TOO_MANY_FAILURES_TEXT);
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
    const { answer } = request;
    let bytesOut = 0;
    if (!answer.headersSent) {
      if (request.hasBody && !request.complete) answer.closeAfter();
      answer.writeHead(status, textHeaders(text, extraHeaders));
      answer.end(text);
      bytesOut = Buffer.byteLength(text);
    } else {
      answer.destroy();
    }
    this.finish(request, status, { ...ending, bytesOut });
  }

  /** Records the end of `request`'s exchange: metrics and its access-log line. */
  finish(request: Http1Request, status: number, ending: Http1Ending): void {
    this.recorder.record({
      method: request.method,
      url: request.url,
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
}

/** How often the connections' clocks are read: often enough that a timeout lands close to its setting. */
function sweepInterval(limits: ClientLimits): number {
  const shortest = Math.min(limits.headerTimeoutMs, limits.idleTimeoutMs, limits.bodyTimeoutMs);
  return Math.min(1000, Math.max(50, Math.floor(shortest / 8)));
}

/** Framing an upstream reads exactly as we do: no Transfer-Encoding, or exactly `chunked`. */
function framingIsPlain(request: Http1Request): boolean {
  const te = request.transferEncoding;
  return te === undefined || te.toLowerCase() === 'chunked';
}

/** A whole HTTP/1.1 answer written raw (CONNECT, a client over its budget at accept), closing the connection. */
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
function originFormPath(url: string): string | null {
  if (url === '') return null;
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
function declaredBodyBytes(request: Http1Request): number {
  const declared = Number(request.contentLength);
  return Number.isFinite(declared) && declared > 0 ? declared : 0;
}
