import type { IncomingHttpHeaders } from 'node:http';
import { addForwardedHeaders, type ForwardedContext } from '../data-plane/core/forwarding.js';

/** Connection-specific request headers (RFC 9110 §7.6.1): they never cross a proxy. */
const HOP_BY_HOP_REQUEST = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
] as const;

/**
 * Headers the gateway sets itself: `x-api-key` (our credential, not the upstream's), `host`
 * (the upstream's), `expect` (the gateway answers 100-continue itself), `x-authenticated-user` and
 * `x-forwarded-*` (a client must not forge them; X-Forwarded-For is appended to, not copied).
 */
const GATEWAY_OWNED = [
  'host',
  'expect',
  'x-api-key',
  'x-authenticated-user',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
] as const;

/** Request headers never copied to the upstream as they came (HTTP/1.1 and HTTP/2 alike). */
export const DROPPED_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  ...HOP_BY_HOP_REQUEST,
  ...GATEWAY_OWNED,
]);

export const DROPPED_RESPONSE_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** Header names listed in a `Connection` header are hop-by-hop too. */
function connectionTokens(value: string | string[] | undefined): Set<string> | null {
  if (value === undefined) return null;
  const joined = Array.isArray(value) ? value.join(',') : value;
  const tokens = new Set<string>();
  for (const token of joined.split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '' && name !== 'close' && name !== 'keep-alive') tokens.add(name);
  }
  return tokens.size === 0 ? null : tokens;
}

/** What an HTTP/1.1 upstream request is built from: the forwarding context and the upstream's Host. */
export interface UpstreamRequestContext extends ForwardedContext {
  readonly upstreamHost: string;
}

/**
 * Builds the upstream request's header list from the client's raw headers, as a flat
 * [name, value, ...] array (what the upstream pool writes as it is).
 */
export function upstreamRequestHeaders(
  rawHeaders: readonly string[],
  parsed: IncomingHttpHeaders,
  context: UpstreamRequestContext,
): string[] {
  const extraDropped = connectionTokens(parsed.connection);
  const out: string[] = [];
  let forwardedFor: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (lower === 'x-forwarded-for') {
      forwardedFor =
        forwardedFor === undefined ? rawHeaders[i + 1]! : `${forwardedFor}, ${rawHeaders[i + 1]!}`;
      continue;
    }
    if (DROPPED_REQUEST_HEADERS.has(lower) || extraDropped?.has(lower)) continue;
    out.push(name, rawHeaders[i + 1]!);
  }
  out.push('host', context.upstreamHost);
  addForwardedHeaders(forwardedFor, context, (name, value) => out.push(name, value));
  return out;
}

const latin1 = (field: Buffer | string): string =>
  typeof field === 'string' ? field : field.toString('latin1');

/**
 * The upstream's raw response headers (a flat [name, value, ...] list, as strings or latin1
 * buffers) minus the hop-by-hop ones, as the flat list `writeHead` takes: names keep their case,
 * repeats stay repeated.
 */
export function downstreamResponseHeaders(raw: readonly (Buffer | string)[]): string[] {
  const out: string[] = [];
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = latin1(raw[i]!);
    const lower = name.toLowerCase();
    const value = latin1(raw[i + 1]!);
    // Every Connection header counts: a second one must not hide the first one's tokens.
    if (lower === 'connection') connection = connection === undefined ? value : `${connection},${value}`;
    if (DROPPED_RESPONSE_HEADERS.has(lower)) continue;
    out.push(name, value);
  }
  const extraDropped = connectionTokens(connection);
  if (extraDropped === null) return out;
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) {
    if (!extraDropped.has(out[i]!.toLowerCase())) kept.push(out[i]!, out[i + 1]!);
  }
  return kept;
}
