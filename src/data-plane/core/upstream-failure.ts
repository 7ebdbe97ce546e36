/** How an upstream failure is answered: HTTP status for the HTTP ports, gRPC status on 4317. */
export interface UpstreamFailure {
  readonly kind: 'unavailable' | 'timeout' | 'bad_response';
  readonly httpStatus: 502 | 503 | 504;
  readonly grpcStatus: 4 | 14;
}

const UNAVAILABLE: UpstreamFailure = { kind: 'unavailable', httpStatus: 503, grpcStatus: 14 };
/** It did not answer in time (or went silent between messages for UPSTREAM_TIMEOUT). */
export const TIMEOUT: UpstreamFailure = { kind: 'timeout', httpStatus: 504, grpcStatus: 4 };
/** It broke the exchange: reset, closed, garbage, or ended a call without its status. */
export const BAD_RESPONSE: UpstreamFailure = { kind: 'bad_response', httpStatus: 502, grpcStatus: 14 };

const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'ERR_GATEWAY_CONNECT_TIMEOUT',
  'ERR_GATEWAY_POOL_CLOSED',
]);

// A body timeout reaches classification only before the first body byte went to the client.
const TIMEOUT_ERRORS = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ERR_GATEWAY_HEADERS_TIMEOUT',
  'ERR_GATEWAY_BODY_TIMEOUT',
]);

/**
 * Classifies an error raised before the upstream's response headers arrived: it could not be
 * reached (503 / UNAVAILABLE), it did not answer in time (504 / DEADLINE_EXCEEDED), or it broke the
 * exchange (reset, closed, garbage: 502 / UNAVAILABLE).
 */
export function classifyUpstreamError(error: unknown): UpstreamFailure {
  const code = errorCode(error);
  if (code !== undefined && CONNECT_ERRORS.has(code)) return UNAVAILABLE;
  if (code !== undefined && TIMEOUT_ERRORS.has(code)) return TIMEOUT;
  return BAD_RESPONSE;
}

function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 3 && current !== null && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (CONNECT_ERRORS.has(code) || TIMEOUT_ERRORS.has(code))) return code;
    current = (current as { cause?: unknown }).cause;
  }
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The short text a client gets: the upstream and what happened, never the upstream's own words. */
export function upstreamFailureText(failure: UpstreamFailure, upstreamName: string): string {
  switch (failure.kind) {
    case 'unavailable':
      return `upstream ${upstreamName} unavailable`;
    case 'timeout':
      return `upstream ${upstreamName} did not answer in time`;
    case 'bad_response':
      return `upstream ${upstreamName} failed to answer`;
  }
}

/**
 * The access log's name for an exchange's failure: the root cause's code when a client library
 * wrapped it (node:http2's connect errors carry the socket's ECONNREFUSED as their cause), else
 * the error's own code, else its class name.
 */
export function failureLabel(error: unknown): string {
  if (!(error instanceof Error)) return 'error';
  const cause = (error as { cause?: { code?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  return (error as NodeJS.ErrnoException).code ?? error.name;
}

/** An upstream whose answer headers cannot be relayed (a name or value the client side refuses). */
export function badHeadersError(): Error {
  return Object.assign(new Error('invalid response headers'), { code: 'ERR_BAD_UPSTREAM_HEADERS' });
}
