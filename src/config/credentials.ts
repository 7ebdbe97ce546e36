import type { BasicCredential } from './types.js';
import { splitList } from './values.js';

/** Characters a client can send in a header value without quoting or trimming changing them. */
const HEADER_SAFE = /^[\x21-\x7e]+$/;
/** The modular-crypt form bcrypt produces: `$2b$` + two-digit cost + 53 characters of salt and hash. */
const BCRYPT_HASH = /^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$/;
const BCRYPT_PREFIX = /^\$2[aby]\$/;
/**
 * Other password hashes an operator may paste from htpasswd, /etc/shadow or an LDAP export:
 * the modular-crypt `$id$` forms (`$apr1$`, `$1$`, `$5$`, `$6$`, `$2x$`, `$y$`, `$argon2id$`,
 * ...) and the `{SCHEME}` forms (`{SHA}`, `{SSHA}`, ...). Taken as plaintext, such a user could
 * never log in and nothing would say why.
 */
const OTHER_HASH_SCHEME =
  /^(\$(1|2|2x|3|5|6|7|y|gy|md5|sha1|apr1|argon2i|argon2d|argon2id|scrypt|pbkdf2(-sha\d+)?)\$|\{(S?SHA(256|384|512)?|S?MD5|CRYPT|BCRYPT|PBKDF2(-SHA\d+)?|ARGON2|PLAIN|CLEARTEXT)\})/i;

export function parseApiKeys(text: string, variable: string, errors: string[]): string[] {
  const keys = splitList(text);
  const seen = new Set<string>();
  keys.forEach((key, index) => {
    if (!HEADER_SAFE.test(key)) {
      errors.push(
        `${variable} entry ${index + 1}: contains a space or a character that cannot be sent in a header`,
      );
    }
    if (seen.has(key)) errors.push(`${variable} entry ${index + 1}: duplicate key`);
    seen.add(key);
  });
  return keys;
}

/** `user:password` or `user:<bcrypt hash>` entries; the password may itself contain ':'. */
export function parseBasicCredentials(text: string, variable: string, errors: string[]): BasicCredential[] {
  const credentials: BasicCredential[] = [];
  const users = new Set<string>();
  splitList(text).forEach((entry, index) => {
    const where = `${variable} entry ${index + 1}`;
    const colon = entry.indexOf(':');
    if (colon === -1) {
      errors.push(`${where}: missing ':' between user and password`);
      return;
    }
    const user = entry.slice(0, colon);
    const secret = entry.slice(colon + 1);
    if (user === '') {
      errors.push(`${where}: empty user name`);
      return;
    }
    if (secret === '') {
      errors.push(`${where}: empty password for user "${user}"`);
      return;
    }
    if (users.has(user)) {
      errors.push(`${where}: user "${user}" is listed twice`);
      return;
    }
    users.add(user);
    const credential = userCredential(user, secret, where, errors);
    if (credential !== null) credentials.push(credential);
  });
  return credentials;
}

/**
 * A user's password as the env file gives it: a bcrypt hash (checked for form and cost),
 * another scheme's hash (refused: the gateway could never verify it), or plaintext.
 */
export function userCredential(
  user: string,
  secret: string,
  where: string,
  errors: string[],
): BasicCredential | null {
  if (BCRYPT_PREFIX.test(secret)) {
    const match = BCRYPT_HASH.exec(secret);
    if (!match) {
      errors.push(
        `${where}: malformed bcrypt hash for user "${user}" (expected $2b$<cost>$ and 53 characters)`,
      );
      return null;
    }
    const cost = Number(match[1]);
    if (cost < 4 || cost > 31) {
      errors.push(`${where}: bcrypt cost ${cost} for user "${user}" is out of range 4-31`);
      return null;
    }
    return { user, kind: 'bcrypt', hash: secret };
  }
  const scheme = OTHER_HASH_SCHEME.exec(secret)?.[1];
  if (scheme !== undefined) {
    errors.push(
      `${where}: the password of user "${user}" is a ${scheme} hash, which the gateway cannot verify ` +
        `(it takes bcrypt hashes and plaintext): make a bcrypt hash with edge-gateway hash-password ${user}, ` +
        `or htpasswd -nB ${user}`,
    );
    return null;
  }
  return { user, kind: 'plain', password: secret };
}

/** A key as a client sends it in a header: printable ASCII without spaces. */
export function isHeaderSafe(text: string): boolean {
  return HEADER_SAFE.test(text);
}
