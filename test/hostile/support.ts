import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import {
  type ClientHttp2Session,
  constants,
  createServer as createHttp2Server,
  type Http2Server,
  type Http2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { type AddressInfo, connect, type Socket } from 'node:net';
import type { RunningGateway } from '../support/gateway.js';
import { until } from '../support/wait.js';

/** Hostile-input test support: upstreams that count what reaches them, raw sockets, /proc views. */

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
}

export interface CountingUpstream {
  readonly url: string;
  readonly port: number;
  /** Every request that reached the upstream, in order. */
  readonly seen: SeenRequest[];
  /** TCP connections the gateway opened to it. */
  readonly connections: number;
  /** Bytes of request bodies received, in total. */
  readonly bodyBytes: number;
  /** Wait this long after a request's body before answering. */
  delayMs: number;
  stop(): Promise<void>;
}

/**
 * An HTTP/1.1 upstream that answers every request `200 upstream ok` (after reading its body)
 * and records it: the "upstream that counts requests" of the auth-bypass and smuggling tests.
 */
export async function startCountingUpstream(): Promise<CountingUpstream> {
  const seen: SeenRequest[] = [];
  let connections = 0;
  let bodyBytes = 0;
  const timers = new Set<NodeJS.Timeout>();
  const server: Server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.on('data', (chunk: Buffer) => {
      bodyBytes += chunk.length;
    });
    req.on('end', () => {
      if (upstream.delayMs <= 0) {
        res.end('upstream ok');
        return;
      }
      const timer = setTimeout(() => {
        timers.delete(timer);
        res.end('upstream ok');
      }, upstream.delayMs);
      timers.add(timer);
    });
    req.on('error', () => undefined);
  });
  server.on('connection', () => {
    connections++;
  });
  server.on('clientError', (_error, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const upstream: CountingUpstream = {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    get connections() {
      return connections;
    },
    get bodyBytes() {
      return bodyBytes;
    },
    delayMs: 0,
    stop: () =>
      new Promise((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return upstream;
}

export interface CountingGrpcUpstream {
  readonly url: string;
  readonly port: number;
  /** Streams (calls) that reached the upstream, by :path. */
  readonly paths: string[];
  /** Delay before answering, for attacks that should find calls in flight. */
  delayMs: number;
  stop(): Promise<void>;
}

/** An h2c upstream that answers every stream as a gRPC server would (OK, empty message) and counts it. */
export async function startCountingGrpcUpstream(): Promise<CountingGrpcUpstream> {
  const paths: string[] = [];
  const server: Http2Server = createHttp2Server({ settings: { maxConcurrentStreams: 10_000 } });
  const answer = (stream: ServerHttp2Stream): void => {
    if (stream.destroyed) return;
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
  };
  const timers = new Set<NodeJS.Timeout>();
  server.on('stream', (stream, headers) => {
    paths.push(String(headers[':path']));
    stream.on('error', () => undefined);
    stream.resume();
    if (upstream.delayMs <= 0) {
      stream.on('end', () => answer(stream));
      return;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      answer(stream);
    }, upstream.delayMs);
    timers.add(timer);
    stream.on('close', () => {
      clearTimeout(timer);
      timers.delete(timer);
    });
  });
  server.on('session', (session) => session.on('error', () => undefined));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const sessions = new Set<Http2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  const upstream: CountingGrpcUpstream = {
    url: `http://127.0.0.1:${port}`,
    port,
    paths,
    delayMs: 0,
    stop: () =>
      new Promise((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        for (const session of sessions) session.destroy();
        server.close(() => resolve());
      }),
  };
  return upstream;
}

export interface RawAnswer {
  /** Everything the gateway sent, as latin1 text. */
  readonly text: string;
  /** Status code of the first status line, or 0 when none came. */
  readonly status: number;
  /** True when the gateway closed the connection within the wait. */
  readonly closed: boolean;
}

export interface RawOptions {
  /** How long to wait for the gateway to close the connection (default 2000 ms). */
  readonly waitMs?: number;
  /** Source address on the loopback network (127.0.0.0/8), to act as another client. */
  readonly localAddress?: string;
  /** Resolve as soon as this many bytes arrived and the answer looks complete (keep-alive). */
  readonly untilComplete?: boolean;
}

/** Sends `bytes` on a fresh TCP connection and collects the answer until close (or the wait ends). */
export function rawExchange(
  port: number,
  bytes: string | Buffer,
  options: RawOptions = {},
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket: Socket = connect({ port, host: '127.0.0.1', localAddress: options.localAddress });
    let settled = false;
    const finish = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ text, status: match ? Number(match[1]) : 0, closed });
    };
    const timer = setTimeout(() => finish(false), options.waitMs ?? 2000);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      if (options.untilComplete === true && looksComplete(Buffer.concat(chunks).toString('latin1')))
        finish(false);
    });
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
  });
}

/** A response whose body has fully arrived (Content-Length, or the last chunk of a chunked body). */
function looksComplete(text: string): boolean {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const head = text.slice(0, end);
  if (/\r\ntransfer-encoding: *chunked/i.test(head)) return text.endsWith('\r\n0\r\n\r\n');
  const length = /\r\ncontent-length: *(\d+)/i.exec(head);
  return length !== null && text.length >= end + 4 + Number(length[1]);
}

/** Open file descriptors of a process (sockets included), from /proc. */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident set size of a process in KiB, from /proc. */
export function rssKiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

export function gatewayPid(gateway: RunningGateway): number {
  const { pid } = gateway.child;
  if (pid === undefined) throw new Error('the gateway process has no pid');
  return pid;
}

/** Every sample of every metric, as `name{labels} value` lines, from the admin port. */
export async function metricsText(gateway: RunningGateway): Promise<string> {
  return (await fetch(`${gateway.url('admin')}/metrics`)).text();
}

/** Sum of all samples of `name` whose label set contains every `labels` pair. */
export async function metricSum(
  gateway: RunningGateway,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Promise<number> {
  let sum = 0;
  for (const line of (await metricsText(gateway)).split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = line.startsWith(`${name}{`) ? line.slice(name.length + 1, line.indexOf('}')) : '';
    if (Object.entries(labels).every(([key, value]) => labelText.includes(`${key}="${value}"`))) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}

/** Polls `check` every 50 ms until it holds or `timeoutMs` passes (then fails with `message()`). */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  message: () => string,
): Promise<void> {
  await until(message, check, timeoutMs, 50, false);
}

/**
 * One unary Export call with an empty message on `session`: resolves, once the stream closes, with
 * its grpc-status (from the trailers, or from the headers of a trailers-only answer), or
 * undefined when the call ended without one.
 */
export function grpcCallStatus(session: ClientHttp2Session, key: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const stream = session.request({
      ':method': 'POST',
      ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      'content-type': 'application/grpc',
      te: 'trailers',
      'x-api-key': key,
    });
    let status: string | undefined;
    stream.on('response', (headers) => {
      if (headers['grpc-status'] !== undefined) status = String(headers['grpc-status']);
    });
    stream.on('trailers', (trailers) => {
      status = String(trailers['grpc-status']);
    });
    stream.on('error', () => undefined);
    stream.on('close', () => resolve(status));
    stream.resume();
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}

/** Fails (never skips) when a command the test needs is missing, naming the Debian package. */
export function requireCommand(command: string, debianPackage: string): string {
  try {
    return execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(
      `"${command}" is not installed: this test needs the Debian package "${debianPackage}" (apt-get install ${debianPackage})`,
    );
  }
}

export const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM } = constants;

/**
 * Writes `chunk` `times` times into a writable, waiting for 'drain' whenever it is full, then ends
 * it: the upstream side of the tests that measure what a gateway buffers.
 */
export function writeWithBackpressure(
  out: NodeJS.WritableStream & { destroyed: boolean },
  chunk: Buffer,
  times: number,
): void {
  let sent = 0;
  const more = (): void => {
    while (sent < times && !out.destroyed) {
      sent++;
      if (!out.write(chunk)) return void out.once('drain', more);
    }
    if (!out.destroyed) out.end();
  };
  more();
}
