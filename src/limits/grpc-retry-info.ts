import protobuf from 'protobufjs';

/*
 * The grpc-status-details-bin trailer of a RESOURCE_EXHAUSTED answer: a google.rpc.Status whose
 * details carry a google.rpc.RetryInfo. The OTLP specification lets clients retry
 * RESOURCE_EXHAUSTED only when the server sends RetryInfo; without it SDKs drop the data.
 */
const root = protobuf.Root.fromJSON({
  nested: {
    google: {
      nested: {
        protobuf: {
          nested: {
            Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
            Duration: { fields: { seconds: { type: 'int64', id: 1 }, nanos: { type: 'int32', id: 2 } } },
          },
        },
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: 'int32', id: 1 },
                message: { type: 'string', id: 2 },
                details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 },
              },
            },
            RetryInfo: { fields: { retry_delay: { type: 'google.protobuf.Duration', id: 1 } } },
          },
        },
      },
    },
  },
});
const Status = root.lookupType('google.rpc.Status');
const RetryInfo = root.lookupType('google.rpc.RetryInfo');
export const RETRY_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.RetryInfo';

/** base64 of google.rpc.Status{code, message, details: [RetryInfo{retry_delay}]}. */
export function statusDetailsWithRetry(code: number, message: string, retryDelayMs: number): string {
  const nanos = (retryDelayMs % 1000) * 1_000_000;
  // Zero fields are left out, as a proto3 encoder does.
  const retryDelay =
    nanos === 0
      ? { seconds: Math.floor(retryDelayMs / 1000) }
      : { seconds: Math.floor(retryDelayMs / 1000), nanos };
  const retryInfo = RetryInfo.encode(RetryInfo.fromObject({ retry_delay: retryDelay })).finish();
  const status = Status.fromObject({
    code,
    message,
    details: [{ type_url: RETRY_INFO_TYPE_URL, value: retryInfo }],
  });
  return Buffer.from(Status.encode(status).finish()).toString('base64');
}

/** The retry delay (ms) a grpc-status-details-bin value carries, or null: for tests and tools. */
export function retryDelayOf(detailsBase64: string): {
  code: number;
  message: string;
  retryDelayMs: number | null;
} {
  const status = Status.toObject(Status.decode(Buffer.from(detailsBase64, 'base64')), { longs: Number }) as {
    code?: number;
    message?: string;
    details?: { type_url: string; value: Uint8Array }[];
  };
  const any = status.details?.find((detail) => detail.type_url === RETRY_INFO_TYPE_URL);
  let retryDelayMs: number | null = null;
  if (any !== undefined) {
    const info = RetryInfo.toObject(RetryInfo.decode(any.value), { longs: Number }) as {
      retry_delay?: { seconds?: number; nanos?: number };
    };
    retryDelayMs = (info.retry_delay?.seconds ?? 0) * 1000 + Math.round((info.retry_delay?.nanos ?? 0) / 1e6);
  }
  return { code: status.code ?? 0, message: status.message ?? '', retryDelayMs };
}
