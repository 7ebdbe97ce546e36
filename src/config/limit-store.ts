import { REDACTED } from './redact.js';
import type { LimitStore } from './types.js';
import { type Parsed, parseInteger } from './values.js';

/*
 * LIMIT_STORE (issue 14): `memory`, or `redis://[user:password@]host:port[/db]` (`rediss://`
 * for TLS). The password is a secret: every text made here shows it as [redacted], and an
 * error never repeats it.
 */

export const MEMORY_STORE: LimitStore = Object.freeze({ kind: 'memory' });

const DEFAULT_REDIS_PORT = 6379;
const EXPECTED = 'expected memory or redis://[user:password@]host:port[/db] (rediss:// for TLS)';

export function parseLimitStore(text: string): Parsed<LimitStore> {
  const trimmed = text.trim();
  if (trimmed.toLowerCase() === 'memory') return { ok: true, value: MEMORY_STORE };
  const fail = (why: string): Parsed<LimitStore> => ({
    ok: false,
    error: `${why}, got "${redactedStoreText(trimmed)}"`,
  });
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    return fail(EXPECTED);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return fail(EXPECTED);
  if (url.hostname === '') return fail('the Redis URL needs a host');
  if (url.search !== '' || url.hash !== '') return fail('the Redis URL takes no query or fragment');
  const dbText = url.pathname.replace(/^\//, '');
  const db = dbText === '' ? { ok: true as const, value: 0 } : parseInteger(dbText, 0, 2 ** 31 - 1);
  if (!db.ok) return fail('the database (after the port) must be a whole number');
  let username: string | null;
  let password: string | null;
  try {
    username = url.username === '' ? null : decodeURIComponent(url.username);
    password = url.password === '' ? null : decodeURIComponent(url.password);
  } catch {
    return fail('the user and password must be percent-encoded');
  }
  return {
    ok: true,
    value: Object.freeze({
      kind: 'redis',
      tls: url.protocol === 'rediss:',
      // The WHATWG parser keeps the brackets of an IPv6 host; sockets want the bare address.
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port === '' ? DEFAULT_REDIS_PORT : Number(url.port),
      username,
      password,
      db: db.value,
    }),
  };
}

/** `redis://gateway:[redacted]@redis:6379/0`: the store as check, /config_dump and logs show it. */
export function limitStoreText(store: LimitStore): string {
  if (store.kind === 'memory') return 'memory';
  const user = store.username === null ? '' : encodeURIComponent(store.username);
  const userinfo = store.password === null ? (user === '' ? '' : `${user}@`) : `${user}:${REDACTED}@`;
  const host = store.host.includes(':') ? `[${store.host}]` : store.host;
  return `${store.tls ? 'rediss' : 'redis'}://${userinfo}${host}:${store.port}/${store.db}`;
}

/**
 * A value as written, with whatever could be a password hidden: everything between the first
 * `:` after the scheme and the last `@` (a password may hold unencoded `:`, `/` or `@`).
 */
export function redactedStoreText(text: string): string {
  const scheme = text.indexOf('://');
  const at = text.lastIndexOf('@');
  if (scheme === -1 || at < scheme) return text;
  const userinfo = text.slice(scheme + 3, at);
  const colon = userinfo.indexOf(':');
  if (colon === -1) return text;
  return `${text.slice(0, scheme + 3)}${userinfo.slice(0, colon)}:${REDACTED}${text.slice(at)}`;
}
