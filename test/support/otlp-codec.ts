import otlpRoot from '@opentelemetry/otlp-transformer/build/src/generated/root.js';

/**
 * OTLP trace messages, decoded with the protobufjs static code that the OpenTelemetry JS
 * exporters themselves use to encode them (shipped untyped in `@opentelemetry/otlp-transformer`),
 * and normalised to one plain shape whichever encoding carried them.
 */

export type OtlpTransport = 'grpc' | 'http-protobuf' | 'http-json';

export interface ReceivedSpan {
  /** Lower-case hex, 32 characters. */
  readonly traceId: string;
  /** Lower-case hex, 16 characters. */
  readonly spanId: string;
  /** Lower-case hex, or undefined for a root span. */
  readonly parentSpanId: string | undefined;
  readonly name: string;
  /** The resource's `service.name`, if any. */
  readonly serviceName: string | undefined;
  readonly attributes: Record<string, unknown>;
  readonly resourceAttributes: Record<string, unknown>;
  readonly via: OtlpTransport;
}

/** The protobuf-JSON-like shape shared by protobufjs `toObject` output and OTLP/JSON. */
interface OtlpAnyValue {
  readonly stringValue?: string;
  readonly boolValue?: boolean;
  readonly intValue?: string | number;
  readonly doubleValue?: number | string;
  readonly arrayValue?: { readonly values?: readonly OtlpAnyValue[] };
  readonly kvlistValue?: { readonly values?: readonly OtlpKeyValue[] };
  readonly bytesValue?: Uint8Array | string;
}
interface OtlpKeyValue {
  readonly key?: string;
  readonly value?: OtlpAnyValue;
}
interface OtlpSpan {
  readonly traceId?: Uint8Array | string;
  readonly spanId?: Uint8Array | string;
  readonly parentSpanId?: Uint8Array | string;
  readonly name?: string;
  readonly attributes?: readonly OtlpKeyValue[];
}
export interface OtlpTraceRequest {
  readonly resourceSpans?: ReadonlyArray<{
    readonly resource?: { readonly attributes?: readonly OtlpKeyValue[] };
    readonly scopeSpans?: ReadonlyArray<{ readonly spans?: readonly OtlpSpan[] }>;
  }>;
}

interface StaticMessage {
  decode(bytes: Uint8Array): object;
  encode(message: object): { finish(): Uint8Array };
  fromObject(object: object): object;
  toObject(message: object, options: { longs: StringConstructor; defaults: boolean }): unknown;
}

// The generated root is typed only as a protobufjs Root; these are the two messages used here.
const traceService = (
  otlpRoot as unknown as {
    opentelemetry: {
      proto: {
        collector: {
          trace: {
            v1: { ExportTraceServiceRequest: StaticMessage; ExportTraceServiceResponse: StaticMessage };
          };
        };
      };
    };
  }
).opentelemetry.proto.collector.trace.v1;

/** Decodes a binary `ExportTraceServiceRequest`; throws on malformed input. */
export function decodeTraceRequest(bytes: Uint8Array): OtlpTraceRequest {
  const message = traceService.ExportTraceServiceRequest.decode(bytes);
  return traceService.ExportTraceServiceRequest.toObject(message, {
    longs: String,
    defaults: false,
  }) as OtlpTraceRequest;
}

/**
 * Encodes an `ExportTraceServiceRequest` from its protobuf-object form (ids as bytes), e.g. to
 * send a hand-made body with fetch the way `curl --data-binary @trace.pb` does.
 */
export function encodeTraceRequest(request: OtlpTraceRequest): Uint8Array {
  const message = traceService.ExportTraceServiceRequest.fromObject(request);
  return traceService.ExportTraceServiceRequest.encode(message).finish();
}

/** An empty `ExportTraceServiceResponse` (full success), as the collector answers. */
export function encodeTraceResponse(): Uint8Array {
  return traceService.ExportTraceServiceResponse.encode(
    traceService.ExportTraceServiceResponse.fromObject({}),
  ).finish();
}

/** Parses an OTLP/JSON request body; throws with a reason when it is not one. */
export function parseJsonTraceRequest(text: string): OtlpTraceRequest {
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new Error('OTLP/JSON body must be an object');
  }
  const { resourceSpans } = parsed as { resourceSpans?: unknown };
  if (resourceSpans !== undefined && !Array.isArray(resourceSpans)) {
    throw new Error('resourceSpans must be an array');
  }
  return parsed as OtlpTraceRequest;
}

function idToHex(id: Uint8Array | string | undefined, bytes: number, field: string): string | undefined {
  if (id === undefined || id.length === 0) return undefined;
  // OTLP/JSON carries ids as hex (unlike other bytes fields, which are base64).
  const hex = typeof id === 'string' ? id.toLowerCase() : Buffer.from(id).toString('hex');
  if (!new RegExp(`^[0-9a-f]{${bytes * 2}}$`).test(hex)) {
    throw new Error(`${field} must be ${bytes} bytes (hex in JSON), got ${JSON.stringify(id)}`);
  }
  return hex;
}

function anyValue(value: OtlpAnyValue | undefined): unknown {
  if (value === undefined) return undefined;
  if (value.stringValue !== undefined) return value.stringValue;
  if (value.boolValue !== undefined) return value.boolValue;
  if (value.intValue !== undefined) {
    const big = BigInt(value.intValue);
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
      ? Number(big)
      : big;
  }
  if (value.doubleValue !== undefined) return Number(value.doubleValue);
  if (value.arrayValue !== undefined) return (value.arrayValue.values ?? []).map(anyValue);
  if (value.kvlistValue !== undefined) return keyValues(value.kvlistValue.values);
  if (value.bytesValue !== undefined) {
    return typeof value.bytesValue === 'string'
      ? Buffer.from(value.bytesValue, 'base64')
      : Buffer.from(value.bytesValue);
  }
  return undefined;
}

function keyValues(list: readonly OtlpKeyValue[] | undefined): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const { key, value } of list ?? []) if (key !== undefined) result[key] = anyValue(value);
  return result;
}

/** Flattens a request into its spans; throws when an id is malformed. */
export function normaliseTraceRequest(request: OtlpTraceRequest, via: OtlpTransport): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const resourceSpans of request.resourceSpans ?? []) {
    const resourceAttributes = keyValues(resourceSpans.resource?.attributes);
    const serviceName = resourceAttributes['service.name'];
    for (const scopeSpans of resourceSpans.scopeSpans ?? []) {
      for (const span of scopeSpans.spans ?? []) {
        const traceId = idToHex(span.traceId, 16, 'traceId');
        const spanId = idToHex(span.spanId, 8, 'spanId');
        if (traceId === undefined || spanId === undefined) throw new Error('span without traceId or spanId');
        spans.push({
          traceId,
          spanId,
          parentSpanId: idToHex(span.parentSpanId, 8, 'parentSpanId'),
          name: span.name ?? '',
          serviceName: typeof serviceName === 'string' ? serviceName : undefined,
          attributes: keyValues(span.attributes),
          resourceAttributes,
          via,
        });
      }
    }
  }
  return spans;
}
