import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseBasicCredentials } from '../../src/config/credentials.js';
import { parseGatewayConfig } from '../../src/config/parse.js';

/**
 * Issue 11 item 2: a password hash the gateway cannot verify (htpasswd's default `$apr1$`,
 * `{SHA}`, crypt's `$1$`/`$5$`/`$6$`, `$2x$`, argon2...) was taken as a plaintext password, so
 * the user could never log in and nothing said why. It is refused, naming the user (never the
 * hash) and saying how to make a hash the gateway takes.
 */

const VARIABLE = 'ENVOY_BASIC_AUTH_CREDENTIALS';

// Real hashes of "s3cret" as the tools print them (htpasswd -m / -s, mkpasswd, argon2).
const UNSUPPORTED: ReadonlyArray<readonly [scheme: string, hash: string]> = [
  ['$apr1$', '$apr1$ZAQ6Y0Ot$1Qw0bLkX5L7ZzjMsVNaXs1'],
  ['{SHA}', '{SHA}qnY6mNvF2iOPLI5MqwqBsBb3hK4='],
  ['{SSHA}', '{SSHA}Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6'],
  ['$1$', '$1$saltsalt$HXQ4kJZ9ahNKqQvPGp2EB/'],
  ['$5$', '$5$rounds=5000$saltsalt$Gbrx3Jqbk5xqIT4Kc3pV9Df0dU2SxBvsNTzDo8ntuW0'],
  [
    '$6$',
    '$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/',
  ],
  ['$2x$', '$2x$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy'],
  ['$y$', '$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7'],
  ['$argon2id$', '$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG'],
];

function errorsFor(text: string): string[] {
  const errors: string[] = [];
  parseBasicCredentials(text, VARIABLE, errors);
  return errors;
}

describe('unsupported password hashes are refused (issue 11 item 2)', () => {
  for (const [scheme, hash] of UNSUPPORTED) {
    test(`${scheme}: one error naming the entry and the user, saying what to do, without the hash`, () => {
      const errors = errorsFor(`alice:plain-ok,bob:${hash}`);
      // An argon2 hash has commas in it, so the list splits it: its pieces are bad entries too.
      assert.equal(errors.length, 1 + (hash.split(',').length - 1), JSON.stringify(errors));
      const [error = ''] = errors;
      assert.ok(error.startsWith(`${VARIABLE} entry 2: `), error);
      assert.ok(error.includes('user "bob"'), error);
      assert.ok(error.includes(`a ${scheme} hash`), error);
      assert.ok(error.includes('edge-gateway hash-password bob'), error);
      assert.ok(error.includes('htpasswd -nB bob'), error);
      // The scheme prefix is public; everything after it is the hash.
      for (const line of errors)
        assert.ok(!line.includes(hash.slice(scheme.length, scheme.length + 6)), line);
    });
  }

  test('the whole configuration is invalid, so serve and check refuse it (exit 2)', () => {
    const result = parseGatewayConfig(
      { ENVOY_AUTH_METHOD: 'basic-auth', [VARIABLE]: `admin:${UNSUPPORTED[0]?.[1]}` },
      '/test/.env',
    );
    assert.equal(result.ok, false);
    assert.deepEqual(result.ok ? [] : result.errors.map((error) => error.slice(0, error.indexOf(':'))), [
      `${VARIABLE} entry 1`,
    ]);
  });

  test('bcrypt and plaintext passwords are still taken, a "$" or "{" inside a password too', () => {
    const bcrypt = '$2b$04$XZYoNCHZkaSQbvWZXNyn9.WyHbFh3BZCvJWjPcDUrSPWana7XJsUW';
    const errors: string[] = [];
    const credentials = parseBasicCredentials(
      `a:${bcrypt},b:pa$$word,c:{not-a-scheme,d:$ 1$,e:price$5$`,
      VARIABLE,
      errors,
    );
    assert.deepEqual(errors, []);
    assert.deepEqual(
      credentials.map((credential) => credential.kind),
      ['bcrypt', 'plain', 'plain', 'plain', 'plain'],
    );
  });
});
