import { type Channel, channel } from 'node:diagnostics_channel';
import { Agent, type ClientRequest, type IncomingMessage } from 'node:http';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import type { Attributes } from '@opentelemetry/api';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import type { OtlpTransport } from './otlp-codec.js';

/**
 * Sends spans the way real applications do: through the OpenTelemetry JS SDK's own OTLP
 * exporters, so a test learns exactly what a real client would see (including the exporters'
 * retries of HTTP 429/502/503/504 until `timeoutMillis`).
 */

export interface SpanSpec {
  readonly name: string;
  readonly attributes?: Attributes;
}

export interface ExportSpansOptions {
  readonly transport: OtlpTransport;
  /**
   * gRPC: `http://127.0.0.1:PORT`. HTTP: the full endpoint, or just `http://127.0.0.1:PORT`
   * (then `/v1/traces` is appended).
   */
  readonly url: string;
  /** HTTP headers, or gRPC metadata (e.g. `{ 'x-api-key': '...' }`). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly spans: readonly SpanSpec[];
  /** Resource `service.name`; default `edge-gateway-test`. */
  readonly serviceName?: string;
  /** The exporter's deadline for the whole export, retries included; default 10 000 (the SDK's). */
  readonly timeoutMillis?: number;
  readonly compression?: 'gzip' | 'none';
}

export interface ExportSpansResult {
  /** The SDK's ExportResultCode: 0 SUCCESS, 1 FAILED. */
  readonly code: 0 | 1;
  readonly error?: Error;
  /** gRPC status code of a failed gRPC export (16 UNAUTHENTICATED, 14 UNAVAILABLE, ...). */
  readonly grpcCode?: number;
  /** Custom trailers of a failed gRPC export. */
  readonly grpcTrailers?: Readonly<Record<string, string>>;
  /** HTTP status of the last attempt (HTTP transports). */
  readonly httpStatus?: number;
  /** HTTP status of every attempt, retries included. */
  readonly httpStatuses: readonly number[];
  /** Hex ids of the exported spans, in the order of `spans`. */
  readonly traceIds: readonly string[];
  readonly spanIds: readonly string[];
}

/** Ends one root span per spec, under a resource carrying `serviceName`. */
export async function makeSpans(specs: readonly SpanSpec[], serviceName: string): Promise<ReadableSpan[]> {
  const collected = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    spanProcessors: [new SimpleSpanProcessor(collected)],
  });
  const tracer = provider.getTracer('edge-gateway-test-support');
  for (const spec of specs) tracer.startSpan(spec.name, { attributes: spec.attributes ?? {} }).end();
  await provider.forceFlush();
  const spans = collected.getFinishedSpans();
  await provider.shutdown();
  return spans;
}

// Statuses are observed on Node's http client channel, for requests made through the agent
// handed to the exporter, because the exporter reports a retryable status without its code.
const responseFinished: Channel = channel('http.client.response.finish');

type GrpcExporterConfig = NonNullable<ConstructorParameters<typeof GrpcTraceExporter>[0]>;
type HttpExporterConfig = NonNullable<ConstructorParameters<typeof ProtobufTraceExporter>[0]>;

function createExporter(options: ExportSpansOptions, agent: Agent): SpanExporter {
  const timeoutMillis = options.timeoutMillis ?? 10_000;
  // The exporters type this as a string enum of the same values ('gzip' | 'none').
  const compression = (options.compression ?? 'none') as GrpcExporterConfig['compression'] &
    HttpExporterConfig['compression'];
  if (options.transport === 'grpc') {
    const metadata = new Metadata();
    for (const [key, value] of Object.entries(options.headers ?? {})) metadata.set(key, value);
    return new GrpcTraceExporter({ url: options.url, metadata, timeoutMillis, compression });
  }
  const url = new URL(options.url);
  if (url.pathname === '/') url.pathname = '/v1/traces';
  const config: HttpExporterConfig = {
    url: url.href,
    headers: { ...options.headers },
    timeoutMillis,
    compression,
    httpAgentOptions: () => agent,
  };
  return options.transport === 'http-protobuf'
    ? new ProtobufTraceExporter(config)
    : new JsonTraceExporter(config);
}

export async function exportSpans(options: ExportSpansOptions): Promise<ExportSpansResult> {
  const spans = await makeSpans(options.spans, options.serviceName ?? 'edge-gateway-test');
  const agent = new Agent({ keepAlive: false });
  const httpStatuses: number[] = [];
  const onResponse = (message: unknown): void => {
    // ClientRequest.agent exists at runtime but is missing from @types/node.
    const { request, response } = message as {
      request: ClientRequest & { agent?: unknown };
      response: IncomingMessage;
    };
    if (request.agent === agent && response.statusCode !== undefined) httpStatuses.push(response.statusCode);
  };
  responseFinished.subscribe(onResponse);
  const exporter = createExporter(options, agent);
  try {
    const result = await new Promise<{ code: number; error?: Error }>((resolve) =>
      exporter.export(spans, resolve),
    );
    const error = result.error;
    const grpcError = options.transport === 'grpc' ? (error as Partial<ServiceError> | undefined) : undefined;
    const trailers = grpcError?.metadata?.getMap();
    return {
      code: result.code === 0 ? 0 : 1,
      ...(error === undefined ? {} : { error }),
      ...(typeof grpcError?.code === 'number' ? { grpcCode: grpcError.code } : {}),
      ...(trailers === undefined
        ? {}
        : {
            grpcTrailers: Object.fromEntries(
              Object.entries(trailers).map(([key, value]) => [key, value.toString()]),
            ),
          }),
      ...(httpStatuses.length === 0 ? {} : { httpStatus: httpStatuses[httpStatuses.length - 1] }),
      httpStatuses,
      traceIds: spans.map((span) => span.spanContext().traceId),
      spanIds: spans.map((span) => span.spanContext().spanId),
    };
  } finally {
    responseFinished.unsubscribe(onResponse);
    await exporter.shutdown();
    agent.destroy();
  }
}
