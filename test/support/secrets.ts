import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseDotenv } from 'dotenv';

/**
 * Every secret a test hands to a gateway or presents to one, recorded in
 * `test/artifacts/secrets-used.jsonl` (one JSON line per secret, appended by every test process),
 * so that `test/zz-no-secrets-in-output.test.ts` can grep everything the gateways printed for
 * them. `startGateway` records the credential variables it is given; tests that rewrite an env
 * file or present a credential no gateway was configured with record it here themselves.
 */

export const SECRETS_USED_FILE = fileURLToPath(
  new URL('../../test/artifacts/secrets-used.jsonl', import.meta.url),
);

export type SecretKind = 'api-key' | 'key-digest' | 'password' | 'bcrypt-hash' | 'basic-credential';

export interface UsedSecret {
  readonly kind: SecretKind;
  readonly value: string;
  /** For `password` and `bcrypt-hash`: the user it belongs to (the user name itself is no secret). */
  readonly user?: string;
}

const recordedHere = new Set<string>();

export function registerSecret(secret: UsedSecret): void {
  if (secret.value === '') return;
  const line = JSON.stringify(secret);
  if (recordedHere.has(line)) return;
  recordedHere.add(line);
  mkdirSync(dirname(SECRETS_USED_FILE), { recursive: true });
  appendFileSync(SECRETS_USED_FILE, `${line}\n`);
}

/** A bcrypt hash as the config parser recognises it (any cost, `$2a$`/`$2b$`/`$2y$`). */
const BCRYPT_PREFIX = /^\$2[aby]\$/;

/**
 * Records the values of `ENVOY_API_KEYS`, `ENVOY_BASIC_AUTH_CREDENTIALS`, and every
 * `GATEWAY_KEY_<NAME>` (the key and its SHA-256 digest, or the `sha256:` digest it holds) and
 * `GATEWAY_USER_<NAME>` (password or bcrypt hash) in `vars`.
 */
export function registerCredentialVariables(vars: Readonly<Record<string, string | undefined>>): void {
  for (const key of (vars.ENVOY_API_KEYS ?? '').split(',')) {
    registerSecret({ kind: 'api-key', value: key.trim() });
  }
  for (const [name, value] of Object.entries(vars)) {
    const secret = (value ?? '').split(';')[0]?.trim() ?? '';
    if (name.startsWith('GATEWAY_KEY_')) {
      if (secret.startsWith('sha256:')) {
        registerSecret({ kind: 'key-digest', value: secret.slice('sha256:'.length) });
      } else {
        registerSecret({ kind: 'api-key', value: secret });
        registerSecret({ kind: 'key-digest', value: createHash('sha256').update(secret).digest('hex') });
      }
    } else if (name.startsWith('GATEWAY_USER_')) {
      registerUserEntry(secret);
    }
  }
  for (const entry of (vars.ENVOY_BASIC_AUTH_CREDENTIALS ?? '').split(',')) registerUserEntry(entry);
}

function registerUserEntry(entry: string): void {
  const trimmed = entry.trim();
  const colon = trimmed.indexOf(':');
  if (colon === -1) {
    // A deliberately broken entry: the whole text is what must not leak.
    registerSecret({ kind: 'password', value: trimmed });
    return;
  }
  const user = trimmed.slice(0, colon);
  const secret = trimmed.slice(colon + 1);
  if (BCRYPT_PREFIX.test(secret)) registerSecret({ kind: 'bcrypt-hash', value: secret, user });
  else registerSecret({ kind: 'password', value: secret, user });
}

/** Records the credential variables set in the text of an env file. */
export function registerEnvFileSecrets(text: string): void {
  registerCredentialVariables(parseDotenv(text));
}

export function readUsedSecrets(): UsedSecret[] {
  if (!existsSync(SECRETS_USED_FILE)) return [];
  const secrets = new Map<string, UsedSecret>();
  for (const line of readFileSync(SECRETS_USED_FILE, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    secrets.set(line, JSON.parse(line) as UsedSecret);
  }
  return [...secrets.values()];
}

/**
 * The spellings of a secret that would give it away if printed: the secret itself, its base64
 * (an `Authorization: Basic` value), for a password the base64 of `user:password`, and for a
 * bcrypt hash also its salt-and-digest part (in case the `$` separators were escaped).
 */
export function revealingForms(secret: UsedSecret): string[] {
  const forms = [secret.value, Buffer.from(secret.value).toString('base64')];
  if (secret.kind === 'password' && secret.user !== undefined) {
    forms.push(Buffer.from(`${secret.user}:${secret.value}`).toString('base64'));
  }
  if (secret.kind === 'bcrypt-hash' && secret.value.length > 53) forms.push(secret.value.slice(-53));
  return forms;
}
