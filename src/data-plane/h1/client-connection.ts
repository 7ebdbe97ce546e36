import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { clientAddress } from '../core/forwarding.js';
import { writeBodyChunk } from './framing.js';
import { ERROR, type ExecuteResult, PAUSE, Parser, type ParserEvents } from './llhttp.js';
import type { BodyStream } from './upstream-pool.js';

/**
 * The client leg of the HTTP/1.1 data path (issue 13): one client connection read with llhttp
 * (./llhttp.ts, strict: CL + TE, two Content-Lengths, bare LF, obs-fold, NUL and other control
 * bytes in values are errors), its requests handed to the listener one at a time, their bodies
 * streamed as views of the socket's own reads, their answers written with one write per head (and
 * first chunk). It replaces node:http's server on this path, with node:http's defences rebuilt and
 * proved by test/hostile: the 16 KiB head limit counted as Node counts it (target, names and
 * values), the header-field count, the header timeout from the accept or the request's first byte,
 * the idle timeout between requests, the silence timeout inside a body, a bound on requests
 * pipelined behind unanswered ones, Host required on HTTP/1.1, 100-continue, 417 for other
 * expectations, HEAD and bodyless statuses, keep-alive as HTTP/1.0 and 1.1 define it.
 *
 * Pipelining: after each request the parser pauses until its answer is out; bytes that arrive
 * meanwhile wait behind it (the socket stops reading past MAX_HELD_BYTES), and more than
 * `maxPipelined` requests parsed without the connection ever catching up is a flood: cut.
 */

export interface ClientLimits {
  /** Bytes of a request head: its target, field names and values (Node's --max-http-header-size). */
  readonly maxHeadBytes: number;
  /** Header fields a request may carry; reaching this many is refused with 431. */
  readonly maxHeaderFields: number;
  /** Requests parsed behind unanswered ones before the connection ever caught up. */
  readonly maxPipelined: number;
  /** From the accept (first request) or a request's first byte to the end of its head. */
  readonly headerTimeoutMs: number;
  /** A keep-alive connection between requests. */
  readonly idleTimeoutMs: number;
  /** Silence inside a request body while the gateway is reading it. */
  readonly bodyTimeoutMs: number;
}

/** Why a request was refused before it was a request: the status and text it gets. */
export type HeadRefusal = 'head-too-large' | 'too-many-fields' | 'head-timeout' | 'malformed';

const REFUSALS: Readonly<Record<HeadRefusal, { readonly status: number; readonly text: string }>> = {
  'head-too-large': { status: 431, text: 'request header fields too large' },
  'too-many-fields': { status: 431, text: 'too many header fields' },
  'head-timeout': { status: 408, text: 'request timeout' },
  malformed: { status: 400, text: 'bad request' },
};

/** What a connection asks of its listener. */
export interface ClientConnectionOwner {
  /** A request's head is complete: the listener answers it through `request.answer`. */
  onRequest(request: ClientRequest): void;
  /** A CONNECT request: answered raw through `request.answer.raw`, then the connection closes. */
  onConnect(request: ClientRequest): void;
  /** A head refused (answered and the connection closed by the connection itself), for metrics and logs. */
  onRefused(refusal: HeadRefusal, reason: string): void;
  /** A connection cut for pipelining past `maxPipelined` (from `address`). */
  onPipeliningLimit(address: string | undefined): void;
  /** The port is draining: every answer ends its connection. */
  readonly draining: boolean;
}

const CRLF = '\r\n';
const CONTINUE = `HTTP/1.1 100 Continue${CRLF}${CRLF}`;
/** Bytes read ahead of the request being answered (pipelined, or a body nobody takes yet) before the socket stops reading. */
const MAX_HELD_BYTES = 64 * 1024;
/** A connection closing after its answer is destroyed if the client has not closed it within this. */
const CLOSE_GRACE_MS = 5_000;
/** What a closing connection reads and drops (see linger) before it is destroyed instead. */
const LINGER_BYTES = 64 * 1024;

let dateText = '';
let dateSecond = 0;
/** The Date header's value, computed once a second. */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/**
 * A request body as the upstream pool reads it (BodyStream): the parser's body views, delivered
 * as they are parsed while the reader flows, queued while it is paused or not yet attached.
 */
export class RequestBody implements BodyStream {
  private onDataListener: ((chunk: Buffer) => void) | null = null;
  private onEndListener: (() => void) | null = null;
  private onErrorListener: ((error: Error) => void) | null = null;
  private readonly queue: Buffer[] = [];
  queuedBytes = 0;
  private ended = false;
  private failed: Error | null = null;
  private paused = false;
  private flushScheduled = false;
  /** Each chunk is offered here before it is delivered; an Error ends the body with it instead. */
  gate: ((chunk: Buffer) => Error | null) | null = null;

  constructor(private readonly connection: ClientConnection) {}

  on(_event: 'data', listener: (chunk: Buffer) => void): this {
    this.onDataListener = listener;
    // Delivered once the reader has attached its other listeners, as a Readable would.
    if (!this.flushScheduled && (this.queue.length > 0 || this.ended || this.failed !== null)) {
      this.flushScheduled = true;
      process.nextTick(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
    return this;
  }

  once(event: 'end' | 'error', listener: (() => void) | ((error: Error) => void)): this {
    if (event === 'end') this.onEndListener = listener as () => void;
    else this.onErrorListener = listener as (error: Error) => void;
    return this;
  }

  off(event: 'data' | 'end' | 'error', _listener: unknown): this {
    if (event === 'data') this.onDataListener = null;
    else if (event === 'end') this.onEndListener = null;
    else this.onErrorListener = null;
    return this;
  }

  pause(): this {
    this.paused = true;
    this.connection.bodyFlowChanged();
    return this;
  }

  resume(): this {
    if (!this.paused) return this;
    this.paused = false;
    this.flush();
    return this;
  }

  isPaused(): boolean {
    return this.paused;
  }

  /** Whether the reader takes bytes now (attached and not paused). */
  get flowing(): boolean {
    return this.onDataListener !== null && !this.paused;
  }

  push(chunk: Buffer): void {
    if (this.failed !== null || this.ended) return;
    if (this.flowing && this.queue.length === 0) this.deliver(chunk);
    else {
      this.queue.push(chunk);
      this.queuedBytes += chunk.length;
    }
  }

  end(): void {
    if (this.failed !== null || this.ended) return;
    this.ended = true;
    if (this.flowing && this.queue.length === 0) this.onEndListener?.();
  }

  /** The body broke (the client went away, its framing broke): the reader's 'error'. */
  fail(error: Error): void {
    if (this.failed !== null || this.ended) return;
    this.failed = error;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.onErrorListener?.(error);
  }

  private deliver(chunk: Buffer): void {
    if (this.gate !== null) {
      const refusal = this.gate(chunk);
      if (refusal !== null) {
        this.fail(refusal);
        return;
      }
    }
    this.onDataListener?.(chunk);
  }

  private flush(): void {
    if (this.failed !== null) {
      const error = this.failed;
      this.onErrorListener?.(error);
      return;
    }
    while (this.flowing && this.queue.length > 0) {
      const chunk = this.queue.shift()!;
      this.queuedBytes -= chunk.length;
      this.deliver(chunk);
    }
    if (this.flowing && this.queue.length === 0 && this.ended) this.onEndListener?.();
    this.connection.bodyFlowChanged();
  }
}

/** What a request's head says, read once as llhttp completes it. */
export type RequestHead = Pick<
  ClientRequest,
  | 'method'
  | 'url'
  | 'rawHeaders'
  | 'httpMajor'
  | 'httpMinor'
  | 'keepAlive'
  | 'hasBody'
  | 'expectation'
  | 'host'
  | 'contentLength'
  | 'transferEncoding'
>;

/** One request of a client connection, from its head to its answer's end. */
export class ClientRequest {
  readonly answer: ClientAnswer;
  readonly body: RequestBody;
  /** The whole request (its body included) has been read. */
  complete = false;
  /** Called when the body stops arriving for `bodyTimeoutMs` while it is read (see watchBodySilence). */
  onBodySilence: (() => void) | null = null;
  /** performance.now() at the end of its head. */
  readonly startedAt = performance.now();
  /** The client's address as the access log and X-Forwarded-For name it. */
  readonly client: string;

  readonly method: string;
  /** The target as received. */
  readonly url: string;
  /** The fields as received, a flat [name, value, ...] list (trailing whitespace trimmed). */
  readonly rawHeaders: string[];
  readonly httpMajor: number;
  readonly httpMinor: number;
  /** Whether the client keeps the connection after the answer (HTTP/1.1 without close, 1.0 with keep-alive). */
  readonly keepAlive: boolean;
  /** Chunked, or a Content-Length above 0. */
  readonly hasBody: boolean;
  /** `100-continue`, another expectation (417), or none. */
  readonly expectation: 'continue' | 'unsupported' | null;
  /** The first Host. */
  readonly host: string | undefined;
  readonly contentLength: string | undefined;
  /** Every Transfer-Encoding joined with ", ". */
  readonly transferEncoding: string | undefined;

  constructor(
    readonly connection: ClientConnection,
    head: RequestHead,
  ) {
    this.method = head.method;
    this.url = head.url;
    this.rawHeaders = head.rawHeaders;
    this.httpMajor = head.httpMajor;
    this.httpMinor = head.httpMinor;
    this.keepAlive = head.keepAlive;
    this.hasBody = head.hasBody;
    this.expectation = head.expectation;
    this.host = head.host;
    this.contentLength = head.contentLength;
    this.transferEncoding = head.transferEncoding;
    this.body = new RequestBody(connection);
    this.answer = new ClientAnswer(this);
    this.client = clientAddress(connection.remoteAddress);
  }

  /** The first value of a field, by its lower-case name. */
  header(lowerName: string): string | undefined {
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.length === lowerName.length && name.toLowerCase() === lowerName) return raw[i + 1];
    }
    return undefined;
  }

  /** Every value of a field joined with ", " (how Node reads a repeated Connection), or undefined. */
  joinedHeader(lowerName: string): string | undefined {
    const raw = this.rawHeaders;
    let joined: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.length === lowerName.length && name.toLowerCase() === lowerName) {
        joined = joined === undefined ? raw[i + 1]! : `${joined}, ${raw[i + 1]!}`;
      }
    }
    return joined;
  }

  get remoteAddress(): string | undefined {
    return this.connection.remoteAddress;
  }

  /** Arms the body-silence timeout (CLIENT_BODY_TIMEOUT): counted only while the gateway reads the body. */
  watchBodySilence(onSilence: () => void): void {
    this.onBodySilence = onSilence;
    this.connection.lastReadAt = performance.now();
  }
}

/** The answer to one request: head, body and end, with HTTP/1.1 framing of its own. */
export class ClientAnswer {
  headersSent = false;
  /** Ended (its last byte handed to the socket), or taken over by a connection-level answer. */
  finished = false;
  /** The connection closed (or was cut) before the answer ended. */
  aborted = false;
  private chunked = false;
  private bodyless = false;
  private pendingHead: string | null = null;
  private keepAlive: boolean;
  private onAbortListener: (() => void) | null = null;

  constructor(private readonly request: ClientRequest) {
    this.keepAlive = request.keepAlive;
  }

  private get socket(): Socket {
    return this.request.connection.socket;
  }

  /** Whether the connection outlives this answer. */
  get keepsAlive(): boolean {
    return this.keepAlive;
  }

  /** The connection ends after this answer (an unread body, an over-limit client). */
  closeAfter(): void {
    this.keepAlive = false;
  }

  /** Called once if the connection goes before the answer ended. */
  onAbort(listener: () => void): void {
    this.onAbortListener = listener;
  }

  /** Called by the connection when it closed first. */
  abort(): void {
    if (this.finished || this.aborted) return;
    this.aborted = true;
    this.onAbortListener?.();
  }

  get destroyed(): boolean {
    return this.aborted || this.socket.destroyed;
  }

  writeContinue(): void {
    if (!this.headersSent && !this.destroyed) this.socket.write(CONTINUE, 'latin1');
  }

  /**
   * The status line and fields, held until the first body bytes or the end (one write). Framing is
   * the answer's own: a Content-Length among `headers` is kept, otherwise HTTP/1.1 gets chunked and
   * HTTP/1.0 an answer delimited by the connection's end.
   */
  writeHead(status: number, headers: Readonly<Record<string, string>> | readonly string[]): void {
    if (this.headersSent || this.finished) return;
    this.headersSent = true;
    const { request } = this;
    this.bodyless = request.method === 'HEAD' || status === 204 || status === 304 || status < 200;
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}${CRLF}`;
    let hasLength = false;
    let hasDate = false;
    const line = (name: string, value: string): void => {
      if (name.length === 14 && name.toLowerCase() === 'content-length') hasLength = true;
      else if (name.length === 4 && name.toLowerCase() === 'date') hasDate = true;
      head += `${name}: ${value}${CRLF}`;
    };
    if (Array.isArray(headers)) {
      const flat = headers as readonly string[];
      for (let i = 0; i < flat.length; i += 2) line(flat[i]!, flat[i + 1]!);
    } else {
      const fields = headers as Readonly<Record<string, string>>;
      for (const name in fields) line(name, fields[name]!);
    }
    if (!hasDate) head += `date: ${httpDate()}${CRLF}`;
    if (!hasLength && !this.bodyless) {
      if (request.httpMajor === 1 && request.httpMinor === 1) {
        this.chunked = true;
        head += `transfer-encoding: chunked${CRLF}`;
      } else this.keepAlive = false;
    }
    const { connection } = request;
    if (connection.owner.draining) this.keepAlive = false;
    if (!this.keepAlive) head += `connection: close${CRLF}`;
    else {
      if (request.httpMinor === 0) head += `connection: keep-alive${CRLF}`;
      head += `keep-alive: timeout=${Math.floor(connection.limits.idleTimeoutMs / 1000)}${CRLF}`;
    }
    this.pendingHead = head + CRLF;
  }

  /** Writes a body chunk; false when the client's socket is full (`onDrain` says when to go on). */
  write(chunk: Buffer): boolean {
    if (this.finished || this.destroyed) return true;
    const { socket } = this;
    const head = this.pendingHead;
    if (this.bodyless || chunk.length === 0) {
      if (head === null) return true;
      this.pendingHead = null;
      return socket.write(head, 'latin1');
    }
    this.pendingHead = null;
    return writeBodyChunk(socket, head, chunk, this.chunked);
  }

  /** Ends the answer, with a last short text (the gateway's own answers: one write with the head). */
  end(text?: string): void {
    if (this.finished || this.destroyed) return;
    const { socket } = this;
    const body = text !== undefined && !this.bodyless ? text : '';
    const head = this.pendingHead ?? '';
    this.pendingHead = null;
    if (this.chunked) {
      const chunk = body === '' ? '' : `${Buffer.byteLength(body).toString(16)}${CRLF}${body}${CRLF}`;
      socket.write(`${head}${chunk}0${CRLF}${CRLF}`, 'latin1');
    } else if (head !== '' || body !== '') socket.write(head + body, body === '' ? 'latin1' : 'utf8');
    this.finished = true;
    this.request.connection.answerFinished(this.request);
  }

  /** Calls `go` once the client took what is written. */
  onDrain(go: () => void): void {
    this.socket.once('drain', go);
  }

  /** Cuts the connection: the only honest signal once the head is gone. */
  destroy(): void {
    this.socket.destroy();
  }

  /** Cuts the connection with a reset (its FIN would wait behind bytes the client is not taking). */
  reset(): void {
    if (!this.socket.destroyed) this.socket.resetAndDestroy();
  }

  /** A whole raw answer of the connection's own (CONNECT's), after which the connection closes. */
  raw(answer: string): void {
    if (this.finished || this.destroyed) return;
    this.finished = true;
    this.headersSent = true;
    this.keepAlive = false;
    this.request.connection.closeWith(answer);
  }

  /** Taken over by a connection-level answer (a 400 for its broken body): nothing more is written. */
  takenOver(): void {
    this.finished = true;
    this.pendingHead = null;
  }

  /** Whether no head was begun: a connection-level answer can still stand in for it. */
  get untouched(): boolean {
    return !this.headersSent;
  }
}

type Phase = 'waiting' | 'head' | 'body' | 'answering' | 'closing';

/** One client connection of an HTTP/1.1 port. */
export class ClientConnection implements ParserEvents {
  private readonly parser = new Parser('request', this);
  private phase: Phase = 'waiting';
  /** When the current phase's clock started (performance.now()). */
  private since = performance.now();
  /** The first request's head is timed from the accept; later ones from their first byte. */
  private served = 0;
  private request: ClientRequest | null = null;
  private url = '';
  private raw: string[] = [];
  private headBytes = 0;
  private inValue = false;
  /** Why a callback stopped the parser. */
  private stop: HeadRefusal | 'pipelining' | null = null;
  /** Bytes read while the parser waits for the answer in progress. */
  private held: Buffer | null = null;
  private parserPaused = false;
  /** Requests parsed since the connection last had nothing left to parse. */
  private pipelined = 0;
  private readingPaused = false;
  private closeTimer: NodeJS.Timeout | null = null;
  /** Bytes read and dropped since the connection started closing. */
  private lingered = 0;
  private freed = false;
  /** performance.now() of the last read while a body was being read (the body-silence clock). */
  lastReadAt = 0;
  readonly remoteAddress: string | undefined;

  constructor(
    readonly socket: Socket,
    readonly limits: ClientLimits,
    readonly owner: ClientConnectionOwner,
  ) {
    this.remoteAddress = socket.remoteAddress;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEnd());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.onClose());
  }

  /** No request in progress (between requests, or before the first): what a drain closes at once. */
  get idle(): boolean {
    return this.phase === 'waiting' && this.held === null;
  }

  private onData(chunk: Buffer): void {
    if (this.phase === 'closing') {
      this.lingered += chunk.length;
      if (this.lingered > LINGER_BYTES) this.socket.destroy();
      return;
    }
    if (this.phase === 'body') this.lastReadAt = performance.now();
    if (this.parserPaused) {
      this.held = this.held === null ? chunk : Buffer.concat([this.held, chunk]);
      if (this.held.length > MAX_HELD_BYTES) this.pauseReading();
      return;
    }
    this.execute(chunk);
  }

  private execute(chunk: Buffer): void {
    const result = this.parser.execute(chunk);
    this.afterExecute(result);
  }

  private afterExecute(result: ExecuteResult): void {
    if (result.kind === 'error' && this.stop === 'pipelining') {
      this.owner.onPipeliningLimit(this.remoteAddress);
      this.socket.destroy();
      return;
    }
    if (this.phase === 'closing' || this.socket.destroyed) return;
    switch (result.kind) {
      case 'ok':
        this.pipelined = 0;
        break;
      case 'paused':
        this.parserPaused = true;
        this.held = result.rest.length > 0 ? result.rest : null;
        if (this.held === null) this.pipelined = 0;
        break;
      case 'upgrade':
        // CONNECT, or a request asking for another protocol (answered as HTTP/1.1, then closed):
        // nothing after it is HTTP/1.1 this connection serves.
        this.parserPaused = true;
        this.held = null;
        this.pauseReading();
        return;
      case 'error':
        this.parseError(result.code, result.reason);
        return;
    }
    this.updateReading();
  }

  private parseError(code: number, reason: string): void {
    const refusal: HeadRefusal =
      code === ERROR.USER && this.stop !== null && this.stop !== 'pipelining' ? this.stop : 'malformed';
    this.refuse(refusal, reason);
  }

  /** Answers a request that could not be served (bad bytes, limits, timeout) and closes. */
  private refuse(refusal: HeadRefusal, reason: string): void {
    const request = this.request;
    if (request !== null && !request.complete) {
      // The error is in this request's own body: its exchange ends, and this is its answer
      // (taken over first, so that the exchange writes nothing of its own).
      const untouched = request.answer.untouched;
      request.answer.takenOver();
      request.body.fail(new Error(`bad request body: ${reason}`));
      if (!untouched) {
        this.socket.destroy();
        return;
      }
    }
    this.owner.onRefused(refusal, reason);
    const { status, text } = REFUSALS[refusal];
    this.closeWith(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}${CRLF}content-type: text/plain${CRLF}` +
        `content-length: ${text.length}${CRLF}connection: close${CRLF}${CRLF}${text}`,
    );
  }

  /** Writes a last answer and closes: nothing more is served. */
  closeWith(answer: string): void {
    if (this.phase === 'closing') return;
    this.socket.end(answer, 'latin1');
    this.linger();
  }

  /**
   * After the last answer (and the FIN behind it), what the client still sends is read and
   * dropped until it closes, for CLOSE_GRACE_MS at most: closing with unread bytes would send a
   * reset, which can destroy the answer before the client reads it.
   */
  private linger(): void {
    this.phase = 'closing';
    this.request = null;
    if (this.readingPaused) {
      this.readingPaused = false;
      this.socket.resume();
    }
    const { socket } = this;
    this.closeTimer ??= setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
    this.closeTimer.unref();
  }

  private onEnd(): void {
    // The client closed its side: a request in progress is abandoned and an answer in progress
    // cut, as node:http's server does without allowHalfOpen; what is written still goes out.
    this.abandonRequest();
    this.socket.end();
  }

  private onClose(): void {
    if (this.closeTimer !== null) clearTimeout(this.closeTimer);
    this.abandonRequest();
    if (!this.freed) {
      this.freed = true;
      // Outside any parser callback: a close can come from inside one (a destroy on refusal).
      process.nextTick(() => this.parser.free());
    }
  }

  /** The client is gone: the request in progress (if any) fails its body and aborts its answer. */
  private abandonRequest(): void {
    this.phase = 'closing';
    const request = this.request;
    this.request = null;
    if (request === null) return;
    if (!request.complete) request.body.fail(new Error('client went away'));
    request.answer.abort();
  }

  /** The reader of the current body paused or resumed: reading follows (see updateReading). */
  bodyFlowChanged(): void {
    this.updateReading();
    if (this.phase === 'body') this.lastReadAt = performance.now();
  }

  /**
   * Reads while there is somewhere for the bytes to go: a body its reader takes, or room to hold
   * what comes behind the request being answered.
   */
  private updateReading(): void {
    if (this.phase === 'closing') return;
    const request = this.request;
    let stop = false;
    if (this.phase === 'body' && request !== null) {
      const { body } = request;
      stop = (!body.flowing && body.queuedBytes > MAX_HELD_BYTES) || body.isPaused();
    } else if (this.parserPaused) stop = this.held !== null && this.held.length > MAX_HELD_BYTES;
    if (stop) this.pauseReading();
    else if (this.readingPaused) {
      this.readingPaused = false;
      this.socket.resume();
    }
  }

  private pauseReading(): void {
    if (this.readingPaused) return;
    this.readingPaused = true;
    this.socket.pause();
  }

  /** The answer to `request` is out: the next request is read, or the connection ends. */
  answerFinished(request: ClientRequest): void {
    if (this.request !== request || this.phase === 'closing') return;
    // A request without a body completes in the same parse as its head: onMessageComplete goes on.
    if (!request.complete && !request.hasBody && request.answer.keepsAlive && !this.owner.draining) return;
    if (!request.answer.keepsAlive || !request.complete || this.owner.draining) {
      // An answer before its body was all read ends the connection (the rest is not served).
      this.socket.end();
      this.linger();
      return;
    }
    this.request = null;
    this.phase = 'waiting';
    this.since = performance.now();
    if (this.parserPaused) {
      // Outside the callbacks that may have ended this answer (the upstream's parser: one
      // llhttp instance serves both legs).
      process.nextTick(() => this.resumeParsing());
    }
  }

  private resumeParsing(): void {
    if (this.phase === 'closing' || this.socket.destroyed || !this.parserPaused) return;
    this.parserPaused = false;
    this.parser.resume();
    const held = this.held;
    this.held = null;
    if (held !== null) this.execute(held);
    else this.updateReading();
  }

  /** Checks the connection's clocks (the listener calls this a few times a second). */
  sweep(now: number): void {
    const { limits } = this;
    switch (this.phase) {
      case 'waiting':
        if (this.served === 0) {
          if (now - this.since >= limits.headerTimeoutMs) this.timeOut();
        } else if (this.held === null && now - this.since >= limits.idleTimeoutMs) this.socket.destroy();
        return;
      case 'head':
        if (now - this.since >= limits.headerTimeoutMs) this.timeOut();
        return;
      case 'body': {
        const request = this.request;
        if (
          request?.onBodySilence != null &&
          !this.readingPaused &&
          now - this.lastReadAt >= limits.bodyTimeoutMs
        ) {
          const onSilence = request.onBodySilence;
          request.onBodySilence = null;
          onSilence();
        }
        return;
      }
      default:
        return;
    }
  }

  private timeOut(): void {
    this.refuse('head-timeout', 'header timeout');
  }

  /** Destroys a connection with no request in progress (a drain). */
  closeIfIdle(): void {
    if (this.idle) this.socket.destroy();
  }

  // ParserEvents

  onMessageBegin(): number {
    if (this.served > 0 && ++this.pipelined > this.limits.maxPipelined) {
      // Also counted behind a last answer: the rest of that read is parsed, never served.
      this.stop = 'pipelining';
      return ERROR.USER;
    }
    if (this.phase === 'closing') return 0;
    if (this.request !== null) {
      this.stop = 'malformed';
      return ERROR.USER;
    }
    this.phase = 'head';
    if (this.served > 0) this.since = performance.now();
    this.url = '';
    this.raw = [];
    this.headBytes = 0;
    this.inValue = false;
    return 0;
  }

  private count(bytes: number): number {
    this.headBytes += bytes;
    if (this.headBytes > this.limits.maxHeadBytes) {
      this.stop = 'head-too-large';
      return ERROR.USER;
    }
    return 0;
  }

  onUrl(part: Buffer): number {
    if (this.phase === 'closing') return 0;
    this.url += part.toString('latin1');
    return this.count(part.length);
  }

  onStatus(): number {
    return 0;
  }

  onHeaderField(part: Buffer): number {
    if (this.phase === 'closing') return 0;
    const { raw } = this;
    if (this.inValue || raw.length === 0) {
      if (raw.length >= 2 * (this.limits.maxHeaderFields - 1)) {
        this.stop = 'too-many-fields';
        return ERROR.USER;
      }
      raw.push(part.toString('latin1'), '');
    } else raw[raw.length - 2] += part.toString('latin1');
    this.inValue = false;
    return this.count(part.length);
  }

  onHeaderValue(part: Buffer): number {
    if (this.phase === 'closing') return 0;
    const { raw } = this;
    raw[raw.length - 1] += part.toString('latin1');
    this.inValue = true;
    return this.count(part.length);
  }

  onHeadersComplete(_status: number, upgrade: boolean, keepAlive: boolean): number {
    if (this.phase === 'closing') return 0;
    const { parser, raw } = this;
    // Trailing whitespace is not part of a value (RFC 9110 §5.5); llhttp leaves it there.
    for (let i = 1; i < raw.length; i += 2) {
      const value = raw[i]!;
      const last = value.charCodeAt(value.length - 1);
      if (last === 32 || last === 9) raw[i] = value.replace(/[ \t]+$/, '');
    }
    const major = parser.httpMajor;
    const minor = parser.httpMinor;
    const method = parser.method;
    if (!(major === 1 && (minor === 0 || minor === 1)) && !(major === 0 && minor === 9)) {
      this.stop = 'malformed';
      return ERROR.USER;
    }
    let host: string | undefined;
    let expect: string | undefined;
    let contentLength: string | undefined;
    let transferEncoding: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const value = raw[i + 1]!;
      switch (name.length) {
        case 4:
          if (host === undefined && name.toLowerCase() === 'host') host = value;
          break;
        case 6:
          if (name.toLowerCase() === 'expect') expect = value;
          break;
        case 14:
          if (name.toLowerCase() === 'content-length') contentLength = value;
          break;
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') {
            transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
          }
          break;
      }
    }
    // HTTP/1.1 requires Host (RFC 9112 §3.2), as node:http's server does.
    if (major === 1 && minor === 1 && host === undefined) {
      this.stop = 'malformed';
      return ERROR.USER;
    }
    const expectation =
      expect === undefined || minor !== 1
        ? null
        : expect.toLowerCase() === '100-continue'
          ? 'continue'
          : 'unsupported';
    const request = new ClientRequest(this, {
      method,
      url: this.url,
      rawHeaders: raw,
      httpMajor: major,
      httpMinor: minor,
      // A request asking for another protocol is answered as HTTP/1.1, then the connection ends.
      keepAlive: keepAlive && !upgrade,
      hasBody: transferEncoding !== undefined || (contentLength !== undefined && contentLength !== '0'),
      expectation,
      host,
      contentLength,
      transferEncoding,
    });
    this.request = request;
    this.phase = 'body';
    this.served++;
    this.lastReadAt = performance.now();
    if (method === 'CONNECT') this.owner.onConnect(request);
    else this.owner.onRequest(request);
    return 0;
  }

  onBody(part: Buffer): number {
    const request = this.request;
    if (request !== null && !request.answer.finished) request.body.push(part);
    return 0;
  }

  onMessageComplete(): number {
    const request = this.request;
    if (request === null) return 0;
    request.complete = true;
    request.body.end();
    if (request.answer.finished) {
      // Answered already (a refusal, an early answer): the next request may follow at once.
      this.request = null;
      if (this.phase === 'closing') return 0;
      this.phase = 'waiting';
      this.since = performance.now();
      return 0;
    }
    this.phase = 'answering';
    return PAUSE;
  }
}
