/**
 * The gateway's own one-line answers, the same words on every port: the HTTP/1.1 body and the
 * gRPC message of a refusal name the condition and, at most, the upstream or the credential's
 * name; never a secret.
 */

/** A client over AUTH_FAILURE_LIMIT (429 / RESOURCE_EXHAUSTED). */
export const TOO_MANY_FAILURES_TEXT = 'too many authentication failures; retry later';

/** The bcrypt verifier's queue is full (503 / UNAVAILABLE): the gateway's condition, not the client's. */
export const OVERLOADED_TEXT = 'authentication temporarily overloaded';

/** The short text that stands in for an upstream's own error answer (UPSTREAM_ERROR_BODIES=hide). */
export function upstreamAnsweredText(upstreamName: string, status: number | string): string {
  return `upstream ${upstreamName} answered ${status}`;
}

/** Every upstream connection of the port is carrying an exchange (503 with Retry-After). */
export function upstreamBusyText(upstreamName: string): string {
  return `upstream ${upstreamName} is busy; retry later`;
}
