import type { OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } from '../upstream/http2-upstream.js';

/** The gRPC statuses the gateway answers with itself (grpc/doc/statuscodes.md). */
export const GRPC_UNAUTHENTICATED = 16;
export const GRPC_PERMISSION_DENIED = 7;
export const GRPC_INVALID_ARGUMENT = 3;
export const GRPC_UNAVAILABLE = 14;
export const GRPC_RESOURCE_EXHAUSTED = 8;
export const GRPC_DEADLINE_EXCEEDED = 4;

/** gRPC's percent-encoding: only bytes outside printable ASCII, and '%' itself, are escaped. */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out +=
      byte >= 0x20 && byte <= 0x7e && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A gRPC answer without a body: status and message in the (only) HEADERS frame. */
export function respondTrailersOnly(
  stream: ServerHttp2Stream,
  grpcStatus: number,
  message: string,
  retryAfterSeconds?: number,
  details?: string,
): void {
  if (stream.headersSent || stream.destroyed) {
    stream.close(NGHTTP2_INTERNAL_ERROR);
    return;
  }
  const headers: OutgoingHttpHeaders = {
    ':status': 200,
    'content-type': 'application/grpc',
    'grpc-status': String(grpcStatus),
    'grpc-message': encodeGrpcMessage(message),
  };
  if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
  if (details !== undefined) headers['grpc-status-details-bin'] = details;
  stream.respond(headers, { endStream: true });
  // Still sending after the grace period (see answerWhenRequestEnds): nothing more is read.
  if (!stream.readableEnded) stream.close(NGHTTP2_NO_ERROR);
}

/** How long a client may go on sending a request that was already answered (or refused). */
export const UNWANTED_BODY_GRACE_MS = 1000;

/**
 * Answers a call without forwarding it (refused, or its upstream failed) once the client has
 * finished sending it, reading and dropping its body, or after UNWANTED_BODY_GRACE_MS, whichever
 * comes first; in the second case the stream is reset (RST_STREAM NO_ERROR) right after the
 * answer. Answering first and resetting is allowed by RFC 9113 8.1, but curl 7.88 either reports
 * the call as failed when the reset overtakes its own END_STREAM, or, without a reset, waits
 * forever for a stream that the answer already ended. A unary gRPC client (every OTLP exporter)
 * half-closes at once, so the answer is not delayed. `then` runs once the call is over (answered,
 * or reset by the client first).
 */
export function answerWhenRequestEnds(
  stream: ServerHttp2Stream,
  answer: { grpcStatus: number; message: string; retryAfterSeconds?: number; details?: string },
  then: () => void,
): void {
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  const settle = (): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    if (!stream.destroyed && !stream.closed)
      respondTrailersOnly(
        stream,
        answer.grpcStatus,
        answer.message,
        answer.retryAfterSeconds,
        answer.details,
      );
    then();
  };
  if (stream.readableEnded) {
    settle();
    return;
  }
  timer = setTimeout(settle, UNWANTED_BODY_GRACE_MS);
  stream.once('end', settle);
  // Reset by the client meanwhile: nothing to answer, but the call still ends (and is logged).
  stream.once('close', settle);
  stream.resume();
}
