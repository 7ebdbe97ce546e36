import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';

/** Spans in the export batch of workloads 1 and 2 (issue 5). */
export const SPANS_PER_BATCH = 512;

/** The gRPC method the OTLP trace exporter calls. */
export const OTLP_GRPC_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

/**
 * A real `ExportTraceServiceRequest` of `spanCount` spans, serialized by the OpenTelemetry SDK's
 * own serializer, with the attributes a typical HTTP server span carries so the size is realistic.
 */
export async function exportTraceRequest(spanCount = SPANS_PER_BATCH): Promise<Uint8Array> {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'bench-checkout',
      'service.version': '1.4.2',
      'deployment.environment': 'bench',
      'host.name': 'bench-host-01',
    }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('edge-gateway-bench', '1.0.0');
  for (let i = 0; i < spanCount; i++) {
    const span = tracer.startSpan(`GET /api/items/${i % 32}`, {
      attributes: {
        'http.request.method': 'GET',
        'http.route': '/api/items/:id',
        'url.path': `/api/items/${i}`,
        'http.response.status_code': 200,
        'server.address': 'shop.example.internal',
        'user_agent.original': 'bench-client/1.0',
        'bench.sequence': i,
      },
    });
    span.addEvent('cache.lookup', { 'cache.hit': i % 3 === 0 });
    span.end();
  }
  await provider.forceFlush();
  const spans: ReadableSpan[] = exporter.getFinishedSpans();
  const bytes = ProtobufTraceSerializer.serializeRequest(spans);
  await provider.shutdown();
  if (bytes === undefined) throw new Error('the OTLP serializer produced no bytes');
  return bytes;
}

/** `message` as one gRPC length-prefixed message (uncompressed flag + 4-byte big-endian length). */
export function grpcFrame(message: Uint8Array): Buffer {
  const framed = Buffer.allocUnsafe(5 + message.length);
  framed[0] = 0;
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, 5);
  return framed;
}
