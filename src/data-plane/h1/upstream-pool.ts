import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { LAST_CHUNK, writeBodyChunk } from './framing.js';
import { type ExecuteResult, PAUSE, Parser, type ParserEvents } from './llhttp.js';

/**
 * The upstream leg of the HTTP/1.1 data path (issue 13): keep-alive connections to one upstream,
 * each carrying one exchange at a time, the answers read with llhttp (./llhttp.ts) and handed out
 * as views of the socket's own chunks. It replaces undici's Pool on this path, whose per-request
 * and per-chunk machinery (a Request object, a handler chain, a fast-timer wheel, a parser copy
 * of every chunk) cost the gateway more than everything else it does with a tiny request
 * (bench/README.md). Its handler interface is undici's original one (onConnect, onHeaders with a
 * `resume`, onData answering false to pause, onComplete, onError, onBodySent), so the exchange on
 * top of it kept its shape.
 *
 * Semantics, as the gateway had them with undici: no request is ever retried; a connection is
 * reused only after a complete answer to a completely sent request; UPSTREAM_TIMEOUT is the
 * longest wait for a head after the request (or while the upstream does not take the request's
 * body) and the longest silence inside an answer's body, never counted while the client is the
 * slow one; the upstream's `Keep-Alive: timeout=` hint shortens the idle time; response heads
 * are limited to 16 KiB as Node's own; anything malformed is an error (llhttp strict).
 */

export interface Http1UpstreamOptions {
  readonly connectTimeoutMs: number;
  /** Longest wait for response headers; also the longest silence inside a response body. */
  readonly responseTimeoutMs: number;
  /** Keep-alive connections kept per upstream, at most. */
  readonly connections: number;
  /** For an https upstream: the CAs to trust instead of Node's bundle (tests' self-signed ones). */
  readonly ca?: string;
}

/**
 * A request body as the pool reads it: the subset of a Readable it uses, so that a node stream
 * and the client leg's own body (src/data-plane/h1/client-connection.ts) both qualify.
 */
export interface BodyStream {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  once(event: 'end', listener: () => void): unknown;
  once(event: 'error', listener: (error: Error) => void): unknown;
  off(event: 'data', listener: (chunk: Buffer) => void): unknown;
  off(event: 'end', listener: () => void): unknown;
  off(event: 'error', listener: (error: Error) => void): unknown;
  pause(): unknown;
  resume(): unknown;
  isPaused(): boolean;
}

/** One request for the upstream; `headers` is a flat [name, value, ...] list, Host included. */
export interface UpstreamRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: readonly string[];
  /** The body as it streams in; without a Content-Length in `headers` it is sent chunked. */
  readonly body: BodyStream | null;
}

/** What the pool tells an exchange, in this order: connect, body sent, head, data, complete or error. */
export interface UpstreamHandler {
  /** Called first, with the exchange's abort: the upstream connection is destroyed, onError follows. */
  onConnect(abort: (error?: Error) => void): void;
  onBodySent(bytes: number): void;
  /** The answer's status and headers (flat, as received); `resume` goes on after onData said false. */
  onHeaders(status: number, headers: string[], resume: () => void): boolean;
  /** A view of the answer's body; false pauses the upstream until `resume`. */
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  onError(error: Error): void;
}

/** Node's own limit on a message head (--max-http-header-size). */
const MAX_HEAD_BYTES = 16 * 1024;
const DEFAULT_KEEP_ALIVE_MS = 30_000;
const MAX_KEEP_ALIVE_MS = 120_000;
/** Taken off the upstream's Keep-Alive hint, so the gateway stops using a socket before the upstream closes it. */
const KEEP_ALIVE_MARGIN_MS = 1_000;
const CRLF = '\r\n';
/** What undici refuses in a request target: control characters, space, DEL (an injection into the request line). */
const INVALID_PATH = /[^\u0021-\u007e\u0080-\u00ff]/;

function gatewayError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** Methods whose requests carry a body by definition: sent with `content-length: 0` when they have none. */
function expectsPayload(method: string): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS' && method !== 'TRACE';
}

export class Http1UpstreamPool {
  private readonly idle: UpstreamConnection[] = [];
  private readonly all = new Set<UpstreamConnection>();
  private readonly waiting: { request: UpstreamRequest; handler: UpstreamHandler }[] = [];
  private closed = false;
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;

  constructor(
    origin: URL,
    readonly options: Http1UpstreamOptions,
  ) {
    this.tls = origin.protocol === 'https:';
    this.host = origin.hostname.startsWith('[') ? origin.hostname.slice(1, -1) : origin.hostname;
    this.port = origin.port === '' ? (this.tls ? 443 : 80) : Number(origin.port);
  }

  /** Connections open now (idle ones included). */
  get openConnections(): number {
    return this.all.size;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): void {
    if (this.closed) {
      handler.onConnect(() => undefined);
      handler.onError(gatewayError('ERR_GATEWAY_POOL_CLOSED', 'the upstream pool is closed'));
      return;
    }
    const connection = this.idle.pop();
    if (connection !== undefined) {
      connection.run(request, handler);
      return;
    }
    if (this.all.size >= this.options.connections) {
      this.waiting.push({ request, handler });
      return;
    }
    const fresh = new UpstreamConnection(this);
    this.all.add(fresh);
    fresh.run(request, handler);
  }

  /** A connection finished an exchange and can carry another. */
  released(connection: UpstreamConnection): void {
    const next = this.waiting.shift();
    if (next !== undefined) connection.run(next.request, next.handler);
    else this.idle.push(connection);
  }

  /** A connection is gone: a waiting request gets a new one. */
  removed(connection: UpstreamConnection): void {
    this.all.delete(connection);
    const at = this.idle.indexOf(connection);
    if (at !== -1) this.idle.splice(at, 1);
    const next = this.waiting.shift();
    if (next !== undefined) this.dispatch(next.request, next.handler);
  }

  openSocket(): Socket {
    const { host, port } = this;
    if (!this.tls) return connectTcp({ host, port, noDelay: true });
    const socket = connectTls({
      host,
      port,
      ALPNProtocols: ['http/1.1'],
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ...(this.options.ca === undefined ? {} : { ca: this.options.ca }),
    });
    return socket.setNoDelay(true);
  }

  /** Closes every connection; exchanges still running fail, waiting ones too. */
  async destroy(): Promise<void> {
    this.closed = true;
    const error = gatewayError('ERR_GATEWAY_POOL_CLOSED', 'the upstream pool is closed');
    for (const { handler } of this.waiting.splice(0)) {
      handler.onConnect(() => undefined);
      handler.onError(error);
    }
    const closing = [...this.all].map((connection) => connection.destroy(error));
    await Promise.all(closing);
  }
}

/** One keep-alive connection and the exchange it carries, if any. */
class UpstreamConnection implements ParserEvents {
  private readonly socket: Socket;
  private readonly parser = new Parser('response', this);
  private handler: UpstreamHandler | null = null;
  private method = 'GET';
  private body: BodyStream | null = null;
  private chunkedBody = false;
  private requestSent = false;
  private headSeen = false;
  private informational = false;
  private responseDone = false;
  private keepAlive = false;
  private keepAliveMs = DEFAULT_KEEP_ALIVE_MS;
  private paused = false;
  private peerEnded = false;
  private pausedRest: Buffer | null = null;
  private headBytes = 0;
  private names: string[] = [];
  private values: string[] = [];
  private inValue = false;
  private connected = false;
  private dead = false;
  private timer: NodeJS.Timeout | null = null;
  private connectTimer: NodeJS.Timeout | null;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(private readonly pool: Http1UpstreamPool) {
    this.socket = pool.openSocket();
    this.connectTimer = setTimeout(
      () => this.fail(gatewayError('ERR_GATEWAY_CONNECT_TIMEOUT', 'timed out connecting to the upstream')),
      pool.options.connectTimeoutMs,
    );
    this.socket.once(pool.tls ? 'secureConnect' : 'connect', () => {
      this.connected = true;
      if (this.connectTimer !== null) clearTimeout(this.connectTimer);
      this.connectTimer = null;
      this.watch();
    });
    this.socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    this.socket.on('drain', () => this.onSocketDrain());
    this.socket.on('end', () => this.onSocketEnd());
    this.socket.on('error', (error: Error) => this.fail(error));
    this.socket.on('close', () => {
      // A closed connection whose last bytes a slow client has yet to take ends after them (resume).
      if (this.peerEnded && this.paused && !this.dead) return;
      this.fail(gatewayError('ERR_GATEWAY_UPSTREAM_CLOSED', 'the upstream closed the connection'));
    });
  }

  run(request: UpstreamRequest, handler: UpstreamHandler): void {
    if (this.idleTimer !== null) {
      clearTimeout(this.idleTimer);
      this.idleTimer = null;
    }
    this.handler = handler;
    this.method = request.method;
    this.requestSent = false;
    this.headSeen = false;
    this.informational = false;
    this.responseDone = false;
    this.keepAlive = false;
    handler.onConnect((error) => this.abort(handler, error));
    if (this.handler !== handler) return;
    if (INVALID_PATH.test(request.path) || request.path === '') {
      this.abort(handler, gatewayError('ERR_GATEWAY_INVALID_PATH', 'invalid request path'));
      return;
    }
    let head = `${request.method} ${request.path} HTTP/1.1${CRLF}`;
    let hasLength = false;
    const { headers } = request;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (name.length === 14 && name.toLowerCase() === 'content-length') hasLength = true;
      head += `${name}: ${headers[i + 1]!}${CRLF}`;
    }
    this.chunkedBody = request.body !== null && !hasLength;
    if (this.chunkedBody) head += `transfer-encoding: chunked${CRLF}`;
    else if (request.body === null && !hasLength && expectsPayload(request.method)) {
      head += `content-length: 0${CRLF}`;
    }
    head += CRLF;
    if (request.body === null) {
      this.socket.write(head, 'latin1');
      this.requestSent = true;
    } else this.sendBody(handler, head, request.body);
    this.watch();
  }

  /**
   * Streams the body after the head. The head waits for the body's first bytes and leaves with
   * them (one write): a request whose body breaks before it starts (bad chunk framing from the
   * client) never reaches the upstream at all.
   */
  private sendBody(handler: UpstreamHandler, head: string, body: BodyStream): void {
    this.body = body;
    let unsentHead: string | null = head;
    const onData = (chunk: Buffer): void => {
      // An empty chunk, chunked, would be the body's end.
      if (this.handler !== handler || chunk.length === 0) return;
      const more = writeBodyChunk(this.socket, unsentHead, chunk, this.chunkedBody);
      unsentHead = null;
      handler.onBodySent(chunk.length);
      if (!more) body.pause();
      this.watch();
    };
    const onEnd = (): void => {
      detach();
      if (this.handler !== handler) return;
      if (unsentHead !== null) this.socket.write(unsentHead, 'latin1');
      if (this.chunkedBody) this.socket.write(LAST_CHUNK);
      this.requestSent = true;
      this.body = null;
      this.watch();
    };
    const onError = (error: Error): void => {
      detach();
      if (this.handler === handler) this.abort(handler, error);
    };
    const detach = (): void => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
    };
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
  }

  private onSocketDrain(): void {
    if (this.body?.isPaused()) this.body.resume();
    this.watch();
  }

  /**
   * Arms UPSTREAM_TIMEOUT while the upstream is the one to act: the request is sent (or the
   * upstream stopped taking its body) and no answer has come, or an answer's body is flowing and
   * the client is taking it. Refreshed by every byte either way.
   */
  private watch(): void {
    const upstreamsTurn =
      this.handler !== null &&
      !this.paused &&
      this.connected &&
      (this.requestSent || this.headSeen || this.socket.writableNeedDrain);
    if (!upstreamsTurn) {
      if (this.timer !== null) {
        clearTimeout(this.timer);
        this.timer = null;
      }
      return;
    }
    if (this.timer !== null) this.timer.refresh();
    else this.timer = setTimeout(this.onTimeout, this.pool.options.responseTimeoutMs);
  }

  private readonly onTimeout = (): void => {
    this.timer = null;
    if (this.headSeen) this.fail(gatewayError('ERR_GATEWAY_BODY_TIMEOUT', 'the upstream went silent'));
    else this.fail(gatewayError('ERR_GATEWAY_HEADERS_TIMEOUT', 'the upstream did not answer in time'));
  };

  private onSocketData(chunk: Buffer): void {
    if (this.dead) return;
    if (this.paused) {
      // Read before the pause took hold: kept behind what the parser has not taken yet.
      this.pausedRest = this.pausedRest === null ? chunk : Buffer.concat([this.pausedRest, chunk]);
      return;
    }
    if (this.handler === null) {
      this.fail(gatewayError('ERR_GATEWAY_BAD_RESPONSE', 'bytes from the upstream with no request'));
      return;
    }
    this.consume(this.parser.execute(chunk));
  }

  private consume(result: ExecuteResult): void {
    if (this.dead) return;
    const handler = this.handler;
    if (result.kind === 'error') {
      this.fail(gatewayError('ERR_GATEWAY_BAD_RESPONSE', `invalid upstream response: ${result.reason}`));
      return;
    }
    if (result.kind === 'upgrade') {
      // A switch of protocols was never asked for (101 is refused at its head already).
      this.fail(gatewayError('ERR_GATEWAY_BAD_RESPONSE', 'invalid upstream response: protocol switch'));
      return;
    }
    if (result.kind === 'paused') {
      if (this.responseDone) {
        // Anything after a complete answer was never asked for.
        if (result.rest.length > 0) {
          this.fail(gatewayError('ERR_GATEWAY_BAD_RESPONSE', 'bytes after the upstream response'));
          return;
        }
        this.parser.resume();
        // Answered before its request was all sent: the connection cannot carry another.
        if (!this.requestSent) this.keepAlive = false;
        if (handler !== null) this.completed(handler);
        return;
      }
      this.pausedRest = result.rest;
      this.socket.pause();
    }
    this.watch();
  }

  private readonly resume = (): void => {
    if (!this.paused || this.dead) return;
    this.paused = false;
    this.parser.resume();
    const rest = this.pausedRest;
    this.pausedRest = null;
    if (rest !== null && rest.length > 0) this.consume(this.parser.execute(rest));
    if (this.dead || this.paused) return;
    this.socket.resume();
    this.watch();
    if (this.peerEnded) this.onSocketEnd();
  };

  private onSocketEnd(): void {
    if (this.dead) return;
    if (this.paused) {
      // Bytes of the answer are still held for a slow client: the end is read after them.
      this.peerEnded = true;
      return;
    }
    this.peerEnded = false;
    if (this.handler !== null && this.headSeen && !this.responseDone) {
      // An answer framed by the connection's end completes here.
      const result = this.parser.finish();
      if (result.kind !== 'error' && this.responseDone) {
        this.keepAlive = false;
        this.parser.resume();
        this.completed(this.handler);
        return;
      }
    }
    this.fail(gatewayError('ERR_GATEWAY_UPSTREAM_CLOSED', 'the upstream closed the connection'));
  }

  /** The answer and the request are both complete: the handler hears it, the connection is reused or closed. */
  private completed(handler: UpstreamHandler): void {
    if (this.handler !== handler) return;
    this.handler = null;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.keepAlive && this.keepAliveMs > 0 && !this.dead) {
      this.idleTimer = setTimeout(() => this.close(), this.keepAliveMs);
      this.pool.released(this);
    } else this.close();
    handler.onComplete();
  }

  /** The exchange is ended by its owner (the client went away, a timeout of the client's, a bad head). */
  private abort(handler: UpstreamHandler, error: Error = new Error('aborted')): void {
    if (this.handler !== handler) return;
    this.handler = null;
    this.destroy(error);
    handler.onError(error);
  }

  /** Something failed on the connection: its exchange, if any, fails with it. */
  private fail(error: Error): void {
    const handler = this.handler;
    this.handler = null;
    this.destroy(error);
    handler?.onError(error);
  }

  private close(): void {
    this.destroy(gatewayError('ERR_GATEWAY_UPSTREAM_CLOSED', 'closed'));
  }

  destroy(_reason: Error): Promise<void> {
    if (!this.dead) {
      this.dead = true;
      for (const timer of [this.timer, this.connectTimer, this.idleTimer]) {
        if (timer !== null) clearTimeout(timer);
      }
      this.timer = this.connectTimer = this.idleTimer = null;
      this.body?.resume();
      this.body = null;
      this.parser.free();
      this.socket.destroy();
      this.pool.removed(this);
      const handler = this.handler;
      this.handler = null;
      handler?.onError(_reason);
    }
    if (this.socket.closed) return Promise.resolve();
    return new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  // ParserEvents: the answer's head into names/values, its body to the handler.

  onMessageBegin(): number {
    this.names = [];
    this.values = [];
    this.inValue = false;
    this.headBytes = 0;
    return 0;
  }

  onUrl(): number {
    return 0;
  }

  onStatus(part: Buffer): number {
    return this.countHead(part.length);
  }

  onHeaderField(part: Buffer): number {
    const text = part.toString('latin1');
    if (this.inValue || this.names.length === 0) {
      this.names.push(text);
      this.values.push('');
    } else this.names[this.names.length - 1] += text;
    this.inValue = false;
    return this.countHead(part.length);
  }

  onHeaderValue(part: Buffer): number {
    this.values[this.values.length - 1] += part.toString('latin1');
    this.inValue = true;
    return this.countHead(part.length);
  }

  /** An error (-1) once the head passes MAX_HEAD_BYTES: execute then reports it. */
  private countHead(bytes: number): number {
    this.headBytes += bytes;
    return this.headBytes > MAX_HEAD_BYTES ? -1 : 0;
  }

  onHeadersComplete(status: number, upgrade: boolean, keepAlive: boolean): number {
    const handler = this.handler;
    if (handler === null || this.dead) return -1;
    if (status < 200) {
      // 100 Continue, 103 Early Hints: the gateway answers 100-continue itself and relays no 1xx.
      if (status === 101 || upgrade) return -1;
      this.informational = true;
      return 0;
    }
    this.headSeen = true;
    this.keepAlive = keepAlive;
    this.keepAliveMs = DEFAULT_KEEP_ALIVE_MS;
    const headers: string[] = [];
    for (let i = 0; i < this.names.length; i++) {
      const name = this.names[i]!;
      const value = this.values[i]!;
      headers.push(name, value);
      if (name.length === 10 && name.toLowerCase() === 'keep-alive') this.keepAliveMs = keepAliveHint(value);
    }
    handler.onHeaders(status, headers, this.resume);
    if (this.handler !== handler) return -1;
    return this.method === 'HEAD' ? 1 : 0;
  }

  onBody(part: Buffer): number {
    const handler = this.handler;
    if (handler === null || this.dead) return -1;
    if (handler.onData(part)) return this.handler === handler ? 0 : -1;
    if (this.handler !== handler) return -1;
    this.paused = true;
    return PAUSE;
  }

  onMessageComplete(): number {
    if (this.informational) {
      this.informational = false;
      return 0;
    }
    if (this.handler === null || this.dead) return -1;
    this.responseDone = true;
    // The handler hears of it after the parser returns (see consume): nothing runs inside llhttp.
    return PAUSE;
  }
}

/** The upstream's `Keep-Alive: timeout=N` hint, less a margin, within bounds; the default without one. */
function keepAliveHint(value: string): number {
  const match = /(?:^|[\s,])timeout\s*=\s*(\d+)/i.exec(value);
  if (match === null) return DEFAULT_KEEP_ALIVE_MS;
  const ms = Number(match[1]) * 1000 - KEEP_ALIVE_MARGIN_MS;
  return ms < KEEP_ALIVE_MARGIN_MS ? 0 : Math.min(ms, MAX_KEEP_ALIVE_MS);
}
