import { createHash, timingSafeEqual } from 'node:crypto';
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
 *   node --import tsx bench/prototypes/h1-llhttp-relay.ts <listen port> <upstream host> <upstream port> <key>
 */

const [listenPort, upstreamHost, upstreamPortText, key] = process.argv.slice(2);
if (!listenPort || !upstreamHost || !upstreamPortText || !key) {
  process.stderr.write('usage: h1-llhttp-relay.ts <listen port> <upstream host> <upstream port> <key>\n');
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

const idle: Upstream[] = [];

/** One keep-alive connection to the upstream and the answer it is reading. */
class Upstream extends HeadReader implements ParserEvents {
  readonly socket: Socket;
  private readonly parser = new Parser('response', this);
  exchange: ClientConnection | null = null;
  private chunked = false;
  private keepAlive = true;

  constructor() {
    super();
    this.socket = connect({ host: upstreamHost!, port: upstreamPort, noDelay: true });
    this.socket.on('data', (chunk: Buffer) => {
      const client = this.exchange?.socket;
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
    let head = `HTTP/1.1 ${status} ${this.head.status}${CRLF}${this.head.forwarded()}`;
    if (length !== undefined) head += `content-length: ${length}${CRLF}`;
    else if (this.chunked) head += `transfer-encoding: chunked${CRLF}`;
    if (!exchange.keepAlive) head += `connection: close${CRLF}`;
    exchange.socket.write(`${head}${CRLF}`, 'latin1');
    return exchange.method === 'HEAD' ? 1 : 0;
  }
  onBody(part: Buffer): number {
    const client = this.exchange!.socket;
    if (this.chunked) client.write(`${part.length.toString(16)}${CRLF}`, 'latin1');
    const more = client.write(part);
    if (this.chunked) client.write(CRLF, 'latin1');
    if (!more) {
      this.socket.pause();
      client.once('drain', () => this.socket.resume());
    }
    return 0;
  }
  onMessageComplete(): number {
    const exchange = this.exchange!;
    if (this.chunked) exchange.socket.write(LAST_CHUNK);
    this.exchange = null;
    if (this.keepAlive) idle.push(this);
    else this.socket.end();
    exchange.answered();
    return 0;
  }
}

/** One client connection: its parser and the exchange in flight. */
class ClientConnection extends HeadReader implements ParserEvents {
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

const server = createServer({ noDelay: true }, (socket) => new ClientConnection(socket));
server.listen(Number(listenPort), '127.0.0.1', () =>
  process.stdout.write(`h1 llhttp relay listening on ${listenPort}\n`),
);
// Exits at once (open keep-alive connections would hold a close), writing a --cpu-prof profile.
process.on('SIGTERM', () => process.exit(0));
