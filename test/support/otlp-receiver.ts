import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import {
  decodeTraceRequest,
  encodeTraceResponse,
  normaliseTraceRequest,
  type OtlpTransport,
  parseJsonTraceRequest,
  type ReceivedSpan,
} from './otlp-codec.js';

export type { OtlpTransport, ReceivedSpan } from './otlp-codec.js';

/**
 * The stand-in for the OpenTelemetry Collector's OTLP receivers: a real gRPC server for
 * `TraceService/Export` and a real HTTP/1.1 server for `POST /v1/traces`, which decode every
 * request and record its spans and headers. Fault tests switch their answers with
 * `grpcBehaviour` / `httpBehaviour`, which apply to every following call until changed.
 */

export const TRACE_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

export interface GrpcBehaviour {
  /** Wait this long before answering (after the request has been recorded). */
  readonly delayMs?: number;
  /** Answer with this status instead of OK. */
  readonly status?: grpc.status;
  /** grpc-message of a non-OK status. */
  readonly message?: string;
  /** Custom trailers sent with the status. */
  readonly trailers?: Readonly<Record<string, string>>;
  /** Response headers (initial metadata) sent before the answer. */
  readonly responseMetadata?: Readonly<Record<string, string>>;
}

export interface HttpBehaviour {
  readonly delayMs?: number;
  /** Answer with this status (and `body`, default `injected failure`) instead of success. */
  readonly status?: number;
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface ReceivedRequest {
  readonly via: OtlpTransport;
  /** Lower-case names; repeated HTTP headers joined with ", ", binary metadata in base64. */
  readonly headers: Readonly<Record<string, string>>;
  readonly spanCount: number;
  /**
   * gRPC only: the call's deadline as the server saw it (grpc-js turns the `grpc-timeout`
   * header into this and removes it from the metadata); Infinity when none was sent.
   */
  readonly deadline?: number;
}

export interface OtlpReceiverOptions {
  /** Ports to bind (e.g. to restart a receiver where a gateway expects it); default: any free port. */
  readonly grpcPort?: number;
  readonly httpPort?: number;
}

export interface OtlpReceiver {
  readonly grpcPort: number;
  readonly httpPort: number;
  /** `http://127.0.0.1:PORT`, the collector's 4317 (gRPC, h2c). */
  readonly grpcUrl: string;
  /** `http://127.0.0.1:PORT`, the collector's 4318 (POST /v1/traces). */
  readonly httpUrl: string;
  /** Every span received, in arrival order (also from calls answered with an injected failure). */
  readonly spans: ReceivedSpan[];
  /** Requests that reached the handler, per transport (including rejected and failed ones). */
  readonly requests: Record<OtlpTransport, number>;
  /** Every request that was decoded, in arrival order. */
  readonly requestLog: ReceivedRequest[];
  /** The last request decoded, whichever transport carried it. */
  lastRequest: ReceivedRequest | undefined;
  /** Calls the client cancelled (gRPC) or connections closed before the answer (HTTP). */
  readonly abandoned: { grpc: number; http: number };
  grpcBehaviour: GrpcBehaviour;
  httpBehaviour: HttpBehaviour;
  /** Resolves with all spans once at least `count` arrived; rejects after `timeoutMs`. */
  waitForSpans(count: number, timeoutMs?: number): Promise<ReceivedSpan[]>;
  /** Forgets everything received and restores the default behaviours. */
  reset(): void;
  stop(): Promise<void>;
}

const MAX_HTTP_BODY_BYTES = 16 * 1024 * 1024;
const gunzipAsync = promisify(gunzip);

function metadataToRecord(metadata: grpc.Metadata): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata.getMap())) {
    result[key] = typeof value === 'string' ? value : value.toString('base64');
  }
  return result;
}

function headersToRecord(headers: IncomingHttpHeaders): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value !== undefined) result[key] = Array.isArray(value) ? value.join(', ') : value;
  }
  return result;
}

function recordToMetadata(record: Readonly<Record<string, string>> | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(record ?? {})) metadata.set(key, value);
  return metadata;
}

async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_HTTP_BODY_BYTES) throw new Error(`body larger than ${MAX_HTTP_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function sleep(ms: number | undefined, timers: Set<NodeJS.Timeout>): Promise<void> {
  if (ms === undefined || ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      resolve();
    }, ms);
    timers.add(timer);
  });
}

export async function startOtlpReceiver(options: OtlpReceiverOptions = {}): Promise<OtlpReceiver> {
  const timers = new Set<NodeJS.Timeout>();
  const waiters = new Set<() => void>();

  const record = (
    via: OtlpTransport,
    headers: Record<string, string>,
    spans: ReceivedSpan[],
    deadline?: number,
  ): void => {
    const entry: ReceivedRequest =
      deadline === undefined
        ? { via, headers, spanCount: spans.length }
        : { via, headers, spanCount: spans.length, deadline };
    receiver.requestLog.push(entry);
    receiver.lastRequest = entry;
    receiver.spans.push(...spans);
    for (const waiter of waiters) waiter();
  };

  const exportHandler: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    receiver.requests.grpc++;
    let answered = false;
    call.on('cancelled', () => {
      if (!answered) receiver.abandoned.grpc++;
    });
    const answer: grpc.sendUnaryData<Buffer> = (error, value, trailers) => {
      answered = true;
      callback(error, value, trailers);
    };
    let spans: ReceivedSpan[];
    try {
      spans = normaliseTraceRequest(decodeTraceRequest(call.request), 'grpc');
    } catch (error) {
      answer({
        code: grpc.status.INVALID_ARGUMENT,
        details: `cannot decode request: ${(error as Error).message}`,
      });
      return;
    }
    const deadline = call.getDeadline();
    record(
      'grpc',
      metadataToRecord(call.metadata),
      spans,
      deadline instanceof Date ? deadline.getTime() : deadline,
    );
    const behaviour = receiver.grpcBehaviour;
    if (behaviour.responseMetadata !== undefined)
      call.sendMetadata(recordToMetadata(behaviour.responseMetadata));
    void sleep(behaviour.delayMs, timers).then(() => {
      const trailers = recordToMetadata(behaviour.trailers);
      if (behaviour.status !== undefined && behaviour.status !== grpc.status.OK) {
        answer({
          code: behaviour.status,
          details: behaviour.message ?? 'injected failure',
          metadata: trailers,
        });
      } else {
        answer(null, Buffer.from(encodeTraceResponse()), trailers);
      }
    });
  };

  const grpcServer = new grpc.Server();
  grpcServer.addService(
    {
      Export: {
        path: TRACE_EXPORT_PATH,
        requestStream: false,
        responseStream: false,
        // Bytes in and out: decoding happens in the handler so that garbage gets INVALID_ARGUMENT.
        requestSerialize: (value: Buffer) => value,
        requestDeserialize: (bytes: Buffer) => bytes,
        responseSerialize: (value: Buffer) => value,
        responseDeserialize: (bytes: Buffer) => bytes,
        originalName: 'export',
      },
    },
    { Export: exportHandler },
  );

  const handleHttp = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://receiver');
    if (url.pathname !== '/v1/traces') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n');
      return;
    }
    if (request.method !== 'POST') {
      response
        .writeHead(405, { 'content-type': 'text/plain', allow: 'POST' })
        .end('405 method not allowed\n');
      return;
    }
    const contentType = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    const via: OtlpTransport | undefined =
      contentType === 'application/x-protobuf'
        ? 'http-protobuf'
        : contentType === 'application/json'
          ? 'http-json'
          : undefined;
    if (via === undefined) {
      response
        .writeHead(415, { 'content-type': 'text/plain' })
        .end(`415 unsupported media type, supported: [application/json, application/x-protobuf]`);
      return;
    }
    receiver.requests[via]++;
    response.on('close', () => {
      if (!response.writableFinished) receiver.abandoned.http++;
    });
    let spans: ReceivedSpan[];
    try {
      let body = await readBody(request);
      const encoding = (request.headers['content-encoding'] ?? '').trim().toLowerCase();
      if (encoding === 'gzip') body = await gunzipAsync(body);
      else if (encoding !== '' && encoding !== 'identity')
        throw new Error(`unsupported content-encoding ${encoding}`);
      const decoded =
        via === 'http-json' ? parseJsonTraceRequest(body.toString('utf8')) : decodeTraceRequest(body);
      spans = normaliseTraceRequest(decoded, via);
    } catch (error) {
      if (!response.headersSent) {
        response
          .writeHead(400, { 'content-type': 'text/plain' })
          .end(`bad request: ${(error as Error).message}`);
      }
      return;
    }
    record(via, headersToRecord(request.headers), spans);
    const behaviour = receiver.httpBehaviour;
    await sleep(behaviour.delayMs, timers);
    if (response.destroyed) return;
    if (behaviour.status !== undefined && (behaviour.status < 200 || behaviour.status > 299)) {
      response
        .writeHead(behaviour.status, { 'content-type': 'text/plain', ...behaviour.headers })
        .end(behaviour.body ?? 'injected failure');
    } else if (via === 'http-json') {
      response
        .writeHead(behaviour.status ?? 200, { 'content-type': 'application/json', ...behaviour.headers })
        .end('{"partialSuccess":{}}');
    } else {
      response
        .writeHead(behaviour.status ?? 200, {
          'content-type': 'application/x-protobuf',
          ...behaviour.headers,
        })
        .end(Buffer.from(encodeTraceResponse()));
    }
  };

  const httpServer = createServer((request, response) => {
    handleHttp(request, response).catch((error: unknown) => {
      response.destroy(error instanceof Error ? error : new Error(String(error)));
    });
  });

  const grpcPort = await new Promise<number>((resolve, reject) => {
    grpcServer.bindAsync(
      `127.0.0.1:${options.grpcPort ?? 0}`,
      grpc.ServerCredentials.createInsecure(),
      (error, port) => (error ? reject(error) : resolve(port)),
    );
  });
  const httpPort = await new Promise<number>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.httpPort ?? 0, '127.0.0.1', () =>
      resolve((httpServer.address() as AddressInfo).port),
    );
  }).catch((error: unknown) => {
    grpcServer.forceShutdown();
    throw error;
  });

  let stopping: Promise<void> | undefined;
  const receiver: OtlpReceiver = {
    grpcPort,
    httpPort,
    grpcUrl: `http://127.0.0.1:${grpcPort}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    spans: [],
    requests: { grpc: 0, 'http-protobuf': 0, 'http-json': 0 },
    requestLog: [],
    lastRequest: undefined,
    abandoned: { grpc: 0, http: 0 },
    grpcBehaviour: {},
    httpBehaviour: {},
    waitForSpans(count, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (receiver.spans.length < count) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(receiver.spans);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `expected ${count} spans within ${timeoutMs} ms, received ${receiver.spans.length} ` +
                `(requests: ${JSON.stringify(receiver.requests)}): ${JSON.stringify(receiver.spans.map((s) => s.name))}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    reset() {
      receiver.spans.length = 0;
      receiver.requestLog.length = 0;
      receiver.lastRequest = undefined;
      receiver.requests.grpc = 0;
      receiver.requests['http-protobuf'] = 0;
      receiver.requests['http-json'] = 0;
      receiver.abandoned.grpc = 0;
      receiver.abandoned.http = 0;
      receiver.grpcBehaviour = {};
      receiver.httpBehaviour = {};
    },
    stop() {
      stopping ??= (async () => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        grpcServer.forceShutdown();
        httpServer.closeAllConnections();
        await new Promise<void>((resolve) => httpServer.close(() => resolve()));
      })();
      return stopping;
    },
  };
  return receiver;
}
