import { hash } from 'node:crypto';
import { LIMIT_OPTIONS, readLimits } from './credential-limits.js';
import { isHeaderSafe, userCredential } from './credentials.js';
import type { EnvVars } from './env-source.js';
import { type BasicCredential, type NamedCredential, type NamedSecret, SCOPES, type Scope } from './types.js';

/*
 * Named credentials (issue 12):
 *
 *   GATEWAY_KEY_<NAME>=<key or sha256:<64 hex>>; scopes=<scope>[+<scope>...][; expires=<date>]
 *   GATEWAY_USER_<NAME>=<user>:<password or bcrypt hash>; scopes=...[; expires=...]
 *
 * and the limit options of credential-limits.ts (issue 14): rate=, burst=, bytes=, inflight=.
 *
 * The value is `;`-separated: the secret first, then `name=value` options. A key never holds
 * `;` (gen-key keys are base64url); a password that does must be given as a bcrypt hash, whose
 * alphabet has none.
 */

export const KEY_PREFIX = 'GATEWAY_KEY_';
export const USER_PREFIX = 'GATEWAY_USER_';

/** `CHECKOUT_SERVICE`: letters and digits in `_`-separated words. */
const NAME = /^[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*$/;
const SHA256 = /^sha256:(.*)$/s;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const OPTION = /^([a-z]+)=(.*)$/s;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;
const OPTIONS = ['scopes', 'expires', ...LIMIT_OPTIONS] as const;
/** The words of scopes= (and of the CLI's --scopes). */
export const SCOPES_HELP = 'ingest, read, admin or all, joined with +';
const SEMICOLON_HINT =
  'a plaintext password containing ";" must be given as a bcrypt hash (edge-gateway hash-password <user>)';

/** `checkout-service` for GATEWAY_KEY_CHECKOUT_SERVICE. */
export function credentialName(suffix: string): string {
  return suffix.toLowerCase().replaceAll('_', '-');
}

/** The variable that holds credential `name` of `kind`: the inverse of credentialName. */
export function credentialVariable(kind: 'key' | 'user', name: string): string {
  return (kind === 'key' ? KEY_PREFIX : USER_PREFIX) + name.toUpperCase().replaceAll('-', '_');
}

/** Is `name` (as given on the command line) a credential name a variable can carry? */
export function isCredentialName(name: string): boolean {
  return NAME.test(name.replaceAll('-', '_'));
}

/** Every GATEWAY_KEY_* and GATEWAY_USER_* variable, in name order; every problem named by its variable. */
export function readNamedCredentials(vars: EnvVars, errors: string[]): NamedCredential[] {
  const credentials: NamedCredential[] = [];
  const byName = new Map<string, string>();
  const users = new Map<string, string>();
  const digests = new Map<string, string>();
  for (const variable of Object.keys(vars).sort()) {
    const kind = variable.startsWith(KEY_PREFIX) ? 'key' : variable.startsWith(USER_PREFIX) ? 'user' : null;
    if (kind === null) continue;
    const value = vars[variable] ?? '';
    const suffix = variable.slice((kind === 'key' ? KEY_PREFIX : USER_PREFIX).length);
    if (!NAME.test(suffix)) {
      errors.push(
        `${variable}: the credential name "${suffix}" must be letters and digits in words separated by single "_" (GATEWAY_${kind.toUpperCase()}_CHECKOUT_SERVICE)`,
      );
      continue;
    }
    const name = credentialName(suffix);
    const other = byName.get(name);
    if (other !== undefined) {
      errors.push(
        `${variable}: the name "${name}" is already used by ${other} (names are unique across keys and users)`,
      );
      continue;
    }
    byName.set(name, variable);
    const credential = readOne(variable, kind, name, value, errors);
    if (credential === null) continue;
    if (credential.secret.kind === 'user') {
      const { user } = credential.secret.credential;
      const holder = users.get(user);
      if (holder !== undefined) {
        errors.push(`${variable}: user "${user}" is already defined by ${holder}`);
        continue;
      }
      users.set(user, variable);
    } else {
      const holder = digests.get(credential.secret.sha256Hex);
      if (holder !== undefined) {
        errors.push(
          `${variable}: the same key is already given to ${holder} (each credential needs its own key)`,
        );
        continue;
      }
      digests.set(credential.secret.sha256Hex, variable);
    }
    credentials.push(credential);
  }
  return credentials;
}

/**
 * Named credentials that clash with the legacy variables: a key that is also in ENVOY_API_KEYS,
 * a user also in ENVOY_BASIC_AUTH_CREDENTIALS. Either would leave one secret with two scopes.
 */
export function legacyClashes(
  named: readonly NamedCredential[],
  apiKeys: readonly string[],
  basicCredentials: readonly BasicCredential[],
): string[] {
  const legacyDigests = new Set(apiKeys.map(sha256Hex));
  const legacyUsers = new Set(basicCredentials.map(({ user }) => user));
  const errors: string[] = [];
  for (const credential of named) {
    if (credential.secret.kind === 'key' && legacyDigests.has(credential.secret.sha256Hex)) {
      errors.push(
        `${credential.variable}: the same key is also listed in ENVOY_API_KEYS (scope all); list it in one place`,
      );
    }
    if (credential.secret.kind === 'user' && legacyUsers.has(credential.secret.credential.user)) {
      errors.push(
        `${credential.variable}: user "${credential.secret.credential.user}" is also defined in ENVOY_BASIC_AUTH_CREDENTIALS; define it in one place`,
      );
    }
  }
  return errors;
}

export function sha256Hex(key: string): string {
  return hash('sha256', key, 'hex');
}

function readOne(
  variable: string,
  kind: 'key' | 'user',
  name: string,
  value: string,
  errors: string[],
): NamedCredential | null {
  const parts = value.split(';').map((part) => part.trim());
  const secretText = parts[0] ?? '';
  const before = errors.length;
  const hint = kind === 'user' ? ` (${SEMICOLON_HINT})` : '';
  const options = new Map<string, string>();
  // A part that is no option is never echoed: it may be the rest of a secret that held a ';'.
  parts.slice(1).forEach((part, index) => {
    const match = OPTION.exec(part);
    const [, option, optionValue] = (match ?? []) as unknown as [string, string | undefined, string];
    if (option === undefined || !(OPTIONS as readonly string[]).includes(option)) {
      errors.push(
        `${variable}: part ${index + 2} (after ${ordinal(index + 1)} ";") is not an option: the options are scopes=, expires=, rate=, burst=, bytes= and inflight=${hint}`,
      );
    } else if (options.has(option)) {
      errors.push(`${variable}: option ${option}= is given twice`);
    } else {
      options.set(option, optionValue.trim());
    }
  });
  const scopesText = options.get('scopes');
  const scopes = scopesText === undefined ? null : readScopes(variable, scopesText, errors);
  if (scopesText === undefined) {
    errors.push(`${variable}: scopes= is required (${SCOPES_HELP})`);
  }
  const expiresText = options.get('expires');
  const expiresAt = expiresText === undefined ? null : readExpiry(variable, expiresText, errors);
  const limits = readLimits(variable, options, errors);
  const secret = readSecret(variable, kind, secretText, errors);
  if (errors.length > before || secret === null || scopes === null) return null;
  return { name, variable, secret, scopes, expiresAt, limits };
}

function readSecret(
  variable: string,
  kind: 'key' | 'user',
  text: string,
  errors: string[],
): NamedSecret | null {
  if (text === '') {
    errors.push(
      `${variable}: the value must start with the ${kind === 'key' ? 'key (or sha256:<digest>)' : 'user:password'}, then ; scopes=...`,
    );
    return null;
  }
  if (kind === 'key') {
    const digest = SHA256.exec(text);
    if (digest !== null) {
      if (!SHA256_HEX.test(digest[1] ?? '')) {
        errors.push(
          `${variable}: sha256: must be followed by 64 lowercase hex digits (edge-gateway gen-key prints it)`,
        );
        return null;
      }
      return { kind: 'key', sha256Hex: digest[1] as string };
    }
    if (!isHeaderSafe(text)) {
      errors.push(`${variable}: the key contains a space or a character that cannot be sent in a header`);
      return null;
    }
    return { kind: 'key', sha256Hex: sha256Hex(text) };
  }
  const colon = text.indexOf(':');
  if (colon <= 0 || colon === text.length - 1) {
    errors.push(`${variable}: expected <user>:<password or bcrypt hash> before the options`);
    return null;
  }
  const user = text.slice(0, colon);
  const credential = userCredential(user, text.slice(colon + 1), variable, errors);
  return credential === null ? null : { kind: 'user', credential };
}

function ordinal(n: number): string {
  return n === 1 ? 'the first' : n === 2 ? 'the second' : n === 3 ? 'the third' : `the ${n}th`;
}

/** `read+ingest` as scopes in the order of SCOPES, or the first word that is no scope. */
export function parseScopes(text: string): { ok: true; scopes: Scope[] } | { ok: false; unknown: string } {
  const granted = new Set<Scope>();
  for (const word of text.split('+').map((part) => part.trim())) {
    if (word === 'all') {
      for (const scope of SCOPES) granted.add(scope);
    } else if ((SCOPES as readonly string[]).includes(word)) {
      granted.add(word as Scope);
    } else {
      return { ok: false, unknown: word };
    }
  }
  return { ok: true, scopes: SCOPES.filter((scope) => granted.has(scope)) };
}

function readScopes(variable: string, text: string, errors: string[]): Scope[] | null {
  const parsed = parseScopes(text);
  if (parsed.ok) return parsed.scopes;
  errors.push(`${variable}: unknown scope "${parsed.unknown}" in scopes= (expected ${SCOPES_HELP})`);
  return null;
}

/** An RFC 3339 date-time, or a date (00:00:00 UTC of that day), as milliseconds since the epoch. */
export function parseExpiry(text: string): number | null {
  const date = DATE.exec(text);
  const dateTime = date === null ? DATE_TIME.exec(text) : null;
  const fields = date ?? dateTime;
  if (fields === null) return null;
  const [year, month, day] = [Number(fields[1]), Number(fields[2]), Number(fields[3])];
  // Date.parse accepts 2027-02-30 (as March 2nd): the calendar is checked here.
  const midnight = Date.UTC(year, month - 1, day);
  const check = new Date(midnight);
  if (check.getUTCFullYear() !== year || check.getUTCMonth() !== month - 1 || check.getUTCDate() !== day) {
    return null;
  }
  if (dateTime === null) return midnight;
  const [hour, minute, second] = [Number(dateTime[4]), Number(dateTime[5]), Number(dateTime[6])];
  if (hour > 23 || minute > 59 || second > 59) return null;
  if (dateTime[7] !== undefined && (Number(dateTime[8]) > 23 || Number(dateTime[9]) > 59)) return null;
  const parsed = Date.parse(text.replace(/^(.{10})t/, '$1T').replace(/z$/, 'Z'));
  return Number.isFinite(parsed) ? parsed : null;
}

function readExpiry(variable: string, text: string, errors: string[]): number | null {
  const parsed = parseExpiry(text);
  if (parsed === null) {
    errors.push(
      `${variable}: expires= must be an RFC 3339 date-time (2027-03-31T18:00:00Z) or a date (2027-03-31)`,
    );
  }
  return parsed;
}
