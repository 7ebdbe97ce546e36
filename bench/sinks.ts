import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createH2Server, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';

/**
 * The fast upstreams of workloads 1, 2 and 5: they read and discard request bodies, never decode
 * them, and answer the smallest valid success, so that "direct" measures the transport and
 * nothing else. They count what they received, so the harness can check that every request a
 * load generator reported as successful really reached the upstream (a gRPC error travels in an
 * HTTP 200, which h2load counts as a success).
 */
export interface SinkCounters {
  grpcRequests: number;
  grpcBytes: number;
  httpRequests: number;
  httpBytes: number;
}

export interface SinkPorts {
  readonly grpc: number;
  readonly http: number;
  /** Answers `GET /stats` with the counters as JSON; never reached through a proxy. */
  readonly control: number;
}

/** An empty `ExportTraceServiceResponse` as one gRPC message: flag 0, length 0. */
const EMPTY_GRPC_MESSAGE = Buffer.alloc(5);
const GRPC_RESPONSE_HEADERS = { ':status': 200, 'content-type': 'application/grpc' } as const;
const GRPC_OK_TRAILERS = { 'grpc-status': '0' } as const;
/** HTTP/2 flow-control windows large enough that a 190 KB batch never waits for a WINDOW_UPDATE. */
const H2_WINDOW = 16 * 1024 * 1024;

export function createGrpcSink(counters: SinkCounters): Http2Server {
  const server = createH2Server({
    settings: { initialWindowSize: H2_WINDOW, maxConcurrentStreams: 1000 },
    maxSessionMemory: 256,
  });
  server.on('session', (session) => {
    session.on('localSettings', () => session.setLocalWindowSize(H2_WINDOW * 4));
  });
  server.on('stream', (stream: ServerHttp2Stream) => {
    stream.on('data', (chunk: Buffer) => {
      counters.grpcBytes += chunk.length;
    });
    stream.on('end', () => {
      counters.grpcRequests++;
      if (stream.destroyed || stream.closed) return;
      stream.respond(GRPC_RESPONSE_HEADERS, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers(GRPC_OK_TRAILERS));
      stream.end(EMPTY_GRPC_MESSAGE);
    });
    stream.on('error', () => {});
  });
  return server;
}

/**
 * OTLP/HTTP (`/v1/traces`: 200 with an empty protobuf response) and VictoriaMetrics import
 * (`/api/v1/import*`: 204, as VictoriaMetrics answers); anything else 200 with no body.
 */
export function createHttpSink(counters: SinkCounters): Server {
  const server = createHttpServer({ keepAlive: true, keepAliveTimeout: 120_000, requestTimeout: 0 });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    req.on('data', (chunk: Buffer) => {
      counters.httpBytes += chunk.length;
    });
    req.on('end', () => {
      counters.httpRequests++;
      if (req.url?.startsWith('/api/v1/import') === true) {
        res.writeHead(204);
        res.end();
      } else {
        res.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': '0' });
        res.end();
      }
    });
    req.on('error', () => {});
  });
  return server;
}

function createControlServer(counters: SinkCounters): Server {
  return createHttpServer((_req, res) => {
    const body = JSON.stringify(counters);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

function listenOnLoopback(server: Server | Http2Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

/** Starts the three servers on ports the OS picks (no race with other processes for a port). */
export async function startSinks(): Promise<SinkPorts> {
  const counters: SinkCounters = { grpcRequests: 0, grpcBytes: 0, httpRequests: 0, httpBytes: 0 };
  const [grpc, http, control] = await Promise.all([
    listenOnLoopback(createGrpcSink(counters)),
    listenOnLoopback(createHttpSink(counters)),
    listenOnLoopback(createControlServer(counters)),
  ]);
  return { grpc, http, control };
}
