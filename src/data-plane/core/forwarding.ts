/**
 * The forwarded-header policy, one for every protocol: what the upstream learns of the client.
 * A client's own X-Forwarded-Proto/-Host and X-Authenticated-User are dropped before this runs
 * (DROPPED_REQUEST_HEADERS); its X-Forwarded-For is appended to, never replaced, so that a proxy
 * in front of the gateway keeps its say.
 */
export interface ForwardedContext {
  /** The client's address as the gateway saw it (see clientAddress). */
  readonly clientAddress: string;
  readonly proto: 'http' | 'https';
  /** The Host (HTTP/1.1) or :authority (HTTP/2) the client sent, if any. */
  readonly originalHost: string | undefined;
  /** The credential's name: the upstream's X-Authenticated-User. */
  readonly identity: string;
}

/**
 * Calls `set` for each header the gateway adds, in a fixed order. `previousFor` is the client's
 * X-Forwarded-For (repeats joined by ", "), or undefined.
 */
export function addForwardedHeaders(
  previousFor: string | undefined,
  context: ForwardedContext,
  set: (name: string, value: string) => void,
): void {
  set(
    'x-forwarded-for',
    previousFor === undefined ? context.clientAddress : `${previousFor}, ${context.clientAddress}`,
  );
  set('x-forwarded-proto', context.proto);
  set('x-authenticated-user', context.identity);
  if (context.originalHost !== undefined) set('x-forwarded-host', context.originalHost);
}

/** Strips an IPv4-mapped IPv6 prefix so logs and X-Forwarded-For show `1.2.3.4`. */
export function clientAddress(remoteAddress: string | undefined): string {
  if (remoteAddress === undefined) return 'unknown';
  return remoteAddress.startsWith('::ffff:') ? remoteAddress.slice(7) : remoteAddress;
}
