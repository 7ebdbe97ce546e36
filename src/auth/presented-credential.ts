/**
 * What a request presents, read from its raw header list (name, value, name, value, ...), so that
 * duplicated headers are seen (Node's parsed `headers` silently keeps the first `Authorization`).
 */
export type PresentedCredential =
  | { readonly kind: 'none' }
  | { readonly kind: 'malformed' }
  | { readonly kind: 'conflict' }
  | { readonly kind: 'api-key'; readonly key: string; readonly basic: BasicPair | null }
  | { readonly kind: 'basic'; readonly pair: BasicPair };

export interface BasicPair {
  readonly user: string;
  readonly password: string;
}

const NONE: PresentedCredential = Object.freeze({ kind: 'none' });
const MALFORMED: PresentedCredential = Object.freeze({ kind: 'malformed' });
const CONFLICT: PresentedCredential = Object.freeze({ kind: 'conflict' });

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
// ignoreBOM: a leading U+FEFF is part of the user name; stripping it would make two byte
// sequences one credential.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Case-insensitive compare of a header name against a lower-case constant, without allocating. */
function isHeader(name: string, lower: string): boolean {
  return name.length === lower.length && (name === lower || name.toLowerCase() === lower);
}

/** Decodes `Basic <base64(user:password)>`; null when the token is not valid base64 of UTF-8 with a colon. */
export function decodeBasicToken(token: string): BasicPair | null {
  if (token.length % 4 !== 0 || !BASE64.test(token)) return null;
  let decoded: string;
  try {
    decoded = utf8.decode(Buffer.from(token, 'base64'));
  } catch {
    return null;
  }
  const colon = decoded.indexOf(':');
  if (colon <= 0 || colon === decoded.length - 1) return null;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Reads the credential a request presents:
 * - `X-API-Key: <key>`; exactly one such header;
 * - `Authorization: Bearer <key>` (vmauth, Grafana) or `Authorization: Basic ...` (scheme
 *   case-insensitive); exactly one such header.
 * With both an `X-API-Key` and a Bearer token they must agree. A Basic credential next to an
 * `X-API-Key` is kept apart: it may be meant for an upstream with native auth (Prometheus'
 * `web.config.yml`), and in `basic-auth` mode it is the credential itself.
 */
export function readPresentedCredential(rawHeaders: readonly string[]): PresentedCredential {
  let apiKey: string | undefined;
  let authorization: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (isHeader(name, 'x-api-key')) {
      if (apiKey !== undefined) return CONFLICT;
      apiKey = rawHeaders[i + 1]!;
    } else if (isHeader(name, 'authorization')) {
      if (authorization !== undefined) return CONFLICT;
      authorization = rawHeaders[i + 1]!;
    }
  }
  // No trimming here: the HTTP parser already removed optional whitespace, and anything else
  // (a tab, a NUL, a no-break space) makes the key a different key.
  if (apiKey === '') return MALFORMED;

  if (authorization === undefined)
    return apiKey === undefined ? NONE : { kind: 'api-key', key: apiKey, basic: null };

  const space = authorization.indexOf(' ');
  if (space === -1) return MALFORMED;
  const scheme = authorization.slice(0, space).toLowerCase();
  let start = space + 1;
  while (authorization.charCodeAt(start) === 32) start++;
  const token = authorization.slice(start);
  if (token === '') return MALFORMED;
  if (scheme === 'bearer') {
    if (apiKey !== undefined && apiKey !== token) return CONFLICT;
    return { kind: 'api-key', key: token, basic: null };
  }
  if (scheme === 'basic') {
    const pair = decodeBasicToken(token);
    if (pair === null)
      return apiKey === undefined ? MALFORMED : { kind: 'api-key', key: apiKey, basic: null };
    return apiKey === undefined ? { kind: 'basic', pair } : { kind: 'api-key', key: apiKey, basic: pair };
  }
  // Another scheme (Digest, ...) is not ours to judge: forward it, and rely on the X-API-Key if any.
  return apiKey === undefined ? MALFORMED : { kind: 'api-key', key: apiKey, basic: null };
}
