import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';
import { type ExecuteResult, PAUSE, Parser, type ParserEvents } from '../../src/data-plane/h1/llhttp.js';

/**
 * PROTOTYPE of issue 13's HTTP/1.1 design, for the benchmark only (`--contenders h1-llhttp-relay`):
 * heads parsed by llhttp (src/data-plane/h1/llhttp.ts), bodies written on as views into the socket's
 * own chunks, one write per socket read on each leg (cork/uncork around a read), keep-alive
 * upstream connections, pipelined requests answered in order (the parser pauses after each
 * message until its answer is out). Per request it does what a gateway must: the X-API-Key's
 * SHA-256 compared in constant time, hop-by-hop headers and the key dropped, X-Forwarded-For
 * added, framing re-encoded (Content-Length kept, chunked re-chunked), the answer's head rebuilt.
 * Not done (what src/listeners would still need): metrics, access log, limits, timeouts, 100-continue,
 * upgrade refusal, error answers beyond a bare 502/400, and every test in test/hostile.
 *
 * Mode `node-server` (an A/B of one leg): the client leg is node:http's server instead, the
 * upstream leg the same llhttp one, to tell which leg's machinery costs what.
 *
 *   node --import tsx bench/prototypes/h1-llhttp-relay.ts <listen port> <upstream host> <upstream port> <key> [raw|node-server]
 */

const [listenPort, upstreamHost, upstreamPortText, key, mode = 'raw'] = process.argv.slice(2);
if (!listenPort || !upstreamHost || !upstreamPortText || !key || (mode !== 'raw' && mode !== 'node-server')) {
  process.stderr.write(
    'usage: h1-llhttp-relay.ts <listen port> <upstream host> <upstream port> <key> [raw|node-server]\n',
  );
  process.exit(2);
}
const upstreamPort = Number(upstreamPortText);
const keyDigest = createHash('sha256').update(key).digest();

/** Hop-by-hop headers (RFC 9110 7.6.1), the framing (re-encoded) and the credential. */
const DROPPED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'content-length',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'x-api-key',
]);

const CRLF = '\r\n';
const LAST_CHUNK = Buffer.from('0\r\n\r\n');

/** Collects one message's head from llhttp's callbacks. */
class Head {
  url = '';
  status = '';
  readonly names: string[] = [];
  readonly values: string[] = [];
  private inValue = false;

  reset(): void {
    this.url = '';
    this.status = '';
    this.names.length = 0;
    this.values.length = 0;
    this.inValue = false;
  }

  field(part: Buffer): void {
    if (this.inValue || this.names.length === 0) {
      this.names.push(part.toString('latin1').toLowerCase());
      this.values.push('');
    } else this.names[this.names.length - 1] += part.toString('latin1').toLowerCase();
    this.inValue = false;
  }

  value(part: Buffer): void {
    this.values[this.values.length - 1] += part.toString('latin1');
    this.inValue = true;
  }

  get(name: string): string | undefined {
    const at = this.names.indexOf(name);
    return at === -1 ? undefined : this.values[at];
  }

  /** The end-to-end headers as head lines. */
  forwarded(): string {
    let lines = '';
    for (let i = 0; i < this.names.length; i++) {
      const name = this.names[i]!;
      if (!DROPPED.has(name)) lines += `${name}: ${this.values[i]}${CRLF}`;
    }
    return lines;
  }
}

/** The head callbacks both legs share: url or status line and header fields into a Head. */
abstract class HeadReader {
  protected readonly head = new Head();

  onUrl(part: Buffer): number {
    this.head.url += part.toString('latin1');
    return 0;
  }
  onStatus(part: Buffer): number {
    this.head.status += part.toString('latin1');
    return 0;
  }
  onHeaderField(part: Buffer): number {
    this.head.field(part);
    return 0;
  }
  onHeaderValue(part: Buffer): number {
    this.head.value(part);
    return 0;
  }
}

/** Where an upstream's answer goes: the raw client connection, or (hybrid mode) a node:http response. */
interface Answer {
  readonly method: string;
  readonly keepAlive: boolean;
  cork(): void;
  uncork(): void;
  writeHead(status: number, head: Head, length: string | undefined, chunked: boolean): void;
  /** False when the client's buffer is full: `whenDrained` then says when to go on. */
  body(part: Buffer, chunked: boolean): boolean;
  whenDrained(go: () => void): void;
  end(chunked: boolean): void;
  answered(): void;
  upstreamFailed(error: Error): void;
}

const idle: Upstream[] = [];

/** One keep-alive connection to the upstream and the answer it is reading. */
class Upstream extends HeadReader implements ParserEvents {
  readonly socket: Socket;
  private readonly parser = new Parser('response', this);
  exchange: Answer | null = null;
  private chunked = false;
  private keepAlive = true;

  constructor() {
    super();
    this.socket = connect({ host: upstreamHost!, port: upstreamPort, noDelay: true });
    this.socket.on('data', (chunk: Buffer) => {
      const client = this.exchange;
      if (!client) {
        this.fail(new Error('bytes from the upstream with no request in flight'));
        return;
      }
      // Everything one read produces for the client leaves in one write.
      client.cork();
      const result = this.parser.execute(chunk);
      client.uncork();
      if (result.kind === 'error') this.fail(new Error(result.reason));
    });
    this.socket.on('error', (error) => this.fail(error));
    this.socket.on('close', () => this.fail(new Error('upstream closed')));
  }

  private fail(error: Error): void {
    const index = idle.indexOf(this);
    if (index !== -1) idle.splice(index, 1);
    this.parser.free();
    this.socket.destroy();
    const exchange = this.exchange;
    this.exchange = null;
    exchange?.upstreamFailed(error);
  }

  onMessageBegin(): number {
    this.head.reset();
    return 0;
  }
  onHeadersComplete(status: number, _upgrade: boolean, keepAlive: boolean): number {
    const exchange = this.exchange!;
    this.keepAlive = keepAlive;
    const length = this.head.get('content-length');
    const noBody = exchange.method === 'HEAD' || status === 204 || status === 304 || status < 200;
    this.chunked = !noBody && length === undefined;
    exchange.writeHead(status, this.head, length, this.chunked);
    return exchange.method === 'HEAD' ? 1 : 0;
  }
  onBody(part: Buffer): number {
    if (!this.exchange!.body(part, this.chunked)) {
      this.socket.pause();
      this.exchange!.whenDrained(() => this.socket.resume());
    }
    return 0;
  }
  onMessageComplete(): number {
    const exchange = this.exchange!;
    exchange.end(this.chunked);
    this.exchange = null;
    if (this.keepAlive) idle.push(this);
    else this.socket.end();
    exchange.answered();
    return 0;
  }
}

/** One client connection: its parser and the exchange in flight. */
class ClientConnection extends HeadReader implements ParserEvents, Answer {
  private readonly parser = new Parser('request', this);
  private upstream: Upstream | null = null;
  private rejected = false;
  private chunked = false;
  private requestDone = false;
  private responseDone = false;
  private pending: Buffer | null = null;
  private corked: Upstream | null = null;
  method = 'GET';
  keepAlive = true;

  constructor(readonly socket: Socket) {
    super();
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.parser.free();
      this.upstream?.socket.destroy();
    });
  }

  private read(chunk: Buffer): void {
    // Everything one read produces for the upstream leaves in one write.
    this.corked = this.upstream;
    this.corked?.socket.cork();
    this.handle(this.parser.execute(chunk));
    this.corked?.socket.uncork();
    this.corked = null;
  }

  private handle(result: ExecuteResult): void {
    if (result.kind === 'error') {
      this.socket.end(
        `HTTP/1.1 400 Bad Request${CRLF}connection: close${CRLF}content-length: 0${CRLF}${CRLF}`,
      );
      return;
    }
    if (result.kind === 'paused') {
      // A pipelined request waits until this one is answered; an empty rest needs no pause.
      this.pending = result.rest;
      if (result.rest.length > 0) this.socket.pause();
    }
  }

  onMessageBegin(): number {
    this.head.reset();
    this.requestDone = false;
    this.responseDone = false;
    this.rejected = false;
    return 0;
  }
  onHeadersComplete(_status: number, _upgrade: boolean, keepAlive: boolean): number {
    this.method = this.parser.method;
    this.keepAlive = keepAlive;
    const presented = this.head.get('x-api-key');
    const digest = createHash('sha256')
      .update(presented ?? '')
      .digest();
    if (presented === undefined || !timingSafeEqual(digest, keyDigest)) {
      this.rejected = true;
      this.keepAlive = false;
      this.responseDone = true;
      this.socket.end(
        `HTTP/1.1 401 Unauthorized${CRLF}connection: close${CRLF}content-length: 0${CRLF}${CRLF}`,
        'latin1',
      );
      return 0;
    }
    const upstream = idle.pop() ?? new Upstream();
    upstream.exchange = this;
    this.upstream = upstream;
    if (this.corked === null) {
      this.corked = upstream;
      upstream.socket.cork();
    }
    const length = this.head.get('content-length');
    this.chunked = length === undefined && this.head.get('transfer-encoding') !== undefined;
    let head = `${this.method} ${this.head.url} HTTP/1.1${CRLF}${this.head.forwarded()}`;
    head += `x-forwarded-for: ${this.socket.remoteAddress}${CRLF}`;
    if (length !== undefined) head += `content-length: ${length}${CRLF}`;
    else if (this.chunked) head += `transfer-encoding: chunked${CRLF}`;
    upstream.socket.write(`${head}${CRLF}`, 'latin1');
    return 0;
  }
  onBody(part: Buffer): number {
    if (this.rejected || this.upstream === null) return 0;
    const upstream = this.upstream.socket;
    if (this.chunked) upstream.write(`${part.length.toString(16)}${CRLF}`, 'latin1');
    const more = upstream.write(part);
    if (this.chunked) upstream.write(CRLF, 'latin1');
    if (!more) {
      this.socket.pause();
      upstream.once('drain', () => this.socket.resume());
    }
    return 0;
  }
  onMessageComplete(): number {
    if (this.chunked && this.upstream !== null) this.upstream.socket.write(LAST_CHUNK);
    this.requestDone = true;
    return this.responseDone ? 0 : PAUSE;
  }

  cork(): void {
    this.socket.cork();
  }
  uncork(): void {
    this.socket.uncork();
  }
  writeHead(status: number, head: Head, length: string | undefined, chunked: boolean): void {
    let lines = `HTTP/1.1 ${status} ${head.status}${CRLF}${head.forwarded()}`;
    if (length !== undefined) lines += `content-length: ${length}${CRLF}`;
    else if (chunked) lines += `transfer-encoding: chunked${CRLF}`;
    if (!this.keepAlive) lines += `connection: close${CRLF}`;
    this.socket.write(`${lines}${CRLF}`, 'latin1');
  }
  body(part: Buffer, chunked: boolean): boolean {
    if (chunked) this.socket.write(`${part.length.toString(16)}${CRLF}`, 'latin1');
    const more = this.socket.write(part);
    if (chunked) this.socket.write(CRLF, 'latin1');
    return more;
  }
  whenDrained(go: () => void): void {
    this.socket.once('drain', go);
  }
  end(chunked: boolean): void {
    if (chunked) this.socket.write(LAST_CHUNK);
  }

  /** The upstream finished this request's answer. */
  answered(): void {
    this.upstream = null;
    this.responseDone = true;
    if (!this.keepAlive) {
      this.socket.end();
      return;
    }
    if (!this.requestDone) return;
    // Outside the upstream parser's callbacks: the two parsers share one llhttp instance.
    process.nextTick(() => {
      this.parser.resume();
      const rest = this.pending;
      this.pending = null;
      this.socket.resume();
      if (rest && rest.length > 0) this.read(rest);
    });
  }

  upstreamFailed(_error: Error): void {
    this.upstream = null;
    if (!this.responseDone && this.socket.writable) {
      this.socket.end(
        `HTTP/1.1 502 Bad Gateway${CRLF}connection: close${CRLF}content-length: 0${CRLF}${CRLF}`,
      );
    } else this.socket.destroy();
  }
}

/** Hybrid mode: a node:http request answered from the llhttp upstream leg. */
class NodeExchange implements Answer {
  readonly method: string;
  readonly keepAlive = true;

  constructor(private readonly res: ServerResponse) {
    this.method = res.req.method ?? 'GET';
  }
  cork(): void {
    this.res.socket?.cork();
  }
  uncork(): void {
    this.res.socket?.uncork();
  }
  writeHead(status: number, head: Head, length: string | undefined): void {
    const flat: string[] = [];
    for (let i = 0; i < head.names.length; i++) {
      if (!DROPPED.has(head.names[i]!)) flat.push(head.names[i]!, head.values[i]!);
    }
    if (length !== undefined) flat.push('content-length', length);
    this.res.writeHead(status, head.status, flat);
  }
  body(part: Buffer): boolean {
    return this.res.write(part);
  }
  whenDrained(go: () => void): void {
    this.res.once('drain', go);
  }
  end(): void {
    this.res.end();
  }
  answered(): void {}
  upstreamFailed(): void {
    if (!this.res.headersSent) this.res.writeHead(502, { 'content-length': '0' }).end();
    else this.res.destroy();
  }
}

function nodeServerRequest(req: IncomingMessage, res: ServerResponse): void {
  const presented = req.headers['x-api-key'];
  const digest = createHash('sha256')
    .update(typeof presented === 'string' ? presented : '')
    .digest();
  if (typeof presented !== 'string' || !timingSafeEqual(digest, keyDigest)) {
    res.writeHead(401, { 'content-length': '0' }).end();
    return;
  }
  const upstream = idle.pop() ?? new Upstream();
  upstream.exchange = new NodeExchange(res);
  const length = req.headers['content-length'];
  const chunked = length === undefined && req.headers['transfer-encoding'] !== undefined;
  let head = `${req.method} ${req.url} HTTP/1.1${CRLF}`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (!DROPPED.has(raw[i]!.toLowerCase())) head += `${raw[i]}: ${raw[i + 1]}${CRLF}`;
  }
  head += `x-forwarded-for: ${req.socket.remoteAddress}${CRLF}`;
  if (length !== undefined) head += `content-length: ${length}${CRLF}`;
  else if (chunked) head += `transfer-encoding: chunked${CRLF}`;
  upstream.socket.write(`${head}${CRLF}`, 'latin1');
  req.on('data', (part: Buffer) => {
    if (chunked) upstream.socket.write(`${part.length.toString(16)}${CRLF}`, 'latin1');
    const more = upstream.socket.write(part);
    if (chunked) upstream.socket.write(CRLF, 'latin1');
    if (!more) {
      req.pause();
      upstream.socket.once('drain', () => req.resume());
    }
  });
  req.on('end', () => {
    if (chunked) upstream.socket.write(LAST_CHUNK);
  });
}

const server =
  mode === 'raw'
    ? createServer({ noDelay: true }, (socket) => new ClientConnection(socket))
    : createHttpServer({ noDelay: true, keepAliveTimeout: 60_000 }, nodeServerRequest);
server.listen(Number(listenPort), '127.0.0.1', () =>
  process.stdout.write(`h1 llhttp relay (${mode}) listening on ${listenPort}\n`),
);
// Exits at once (open keep-alive connections would hold a close), writing a --cpu-prof profile.
process.on('SIGTERM', () => process.exit(0));
