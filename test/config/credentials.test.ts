import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import bcrypt from 'bcrypt';
import fc from 'fast-check';
import { parseApiKeys, parseBasicCredentials } from '../../src/config/credentials.js';
import { splitList } from '../../src/config/values.js';

const KEYS = 'ENVOY_API_KEYS';
const CREDS = 'ENVOY_BASIC_AUTH_CREDENTIALS';

function keys(text: string): { keys: string[]; errors: string[] } {
  const errors: string[] = [];
  return { keys: parseApiKeys(text, KEYS, errors), errors };
}

function creds(text: string): { credentials: ReturnType<typeof parseBasicCredentials>; errors: string[] } {
  const errors: string[] = [];
  return { credentials: parseBasicCredentials(text, CREDS, errors), errors };
}

const HASH_2B = bcrypt.hashSync('s3cret', 4);
const HASH_2A = HASH_2B.replace(/^\$2b\$/, '$2a$');
const HASH_2Y = HASH_2B.replace(/^\$2b\$/, '$2y$');

describe('splitList', () => {
  test('trims items and drops empty ones', () => {
    assert.deepEqual(splitList(' a , b,,c ,  , '), ['a', 'b', 'c']);
    assert.deepEqual(splitList(''), []);
    assert.deepEqual(splitList(' , ,'), []);
  });
});

describe('parseApiKeys', () => {
  test('comma-separated keys, whitespace trimmed, empties dropped (stock rule)', () => {
    assert.deepEqual(keys('key1,key2'), { keys: ['key1', 'key2'], errors: [] });
    assert.deepEqual(keys('  key1 ,\tkey2\t, ,,key3  '), { keys: ['key1', 'key2', 'key3'], errors: [] });
    assert.deepEqual(keys('placeholder_api_key'), { keys: ['placeholder_api_key'], errors: [] });
  });

  test('an empty list parses to no keys without an error', () => {
    assert.deepEqual(keys(''), { keys: [], errors: [] });
    assert.deepEqual(keys(' , '), { keys: [], errors: [] });
  });

  test('a key with a character that cannot be sent in a header is reported with its entry number', () => {
    assert.deepEqual(keys('good,has space').errors, [
      `${KEYS} entry 2: contains a space or a character that cannot be sent in a header`,
    ]);
    assert.equal(keys('a\u0000b').errors.length, 1);
    assert.equal(keys('caf\u00e9').errors.length, 1);
    assert.equal(keys('no\u00a0break').errors.length, 1);
  });

  test('a duplicate key is reported', () => {
    assert.deepEqual(keys('k1,k2, k1').errors, [`${KEYS} entry 3: duplicate key`]);
  });

  test('error messages never contain the key', () => {
    const { errors } = keys('sekrit-one,sekrit one,sekrit-one');
    assert.equal(errors.length, 2);
    for (const error of errors) assert.ok(!error.includes('sekrit'), error);
  });

  test('property: never throws; accepted keys are trimmed, non-empty and comma-free', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (text) => {
        const { keys: parsed, errors } = keys(text);
        for (const key of parsed) {
          assert.notEqual(key, '');
          assert.equal(key, key.trim());
          assert.ok(!key.includes(','));
        }
        for (const error of errors) assert.ok(error.startsWith(`${KEYS} entry `), error);
      }),
      { numRuns: 200 },
    );
  });

  test('property: any list of header-safe keys round-trips, whatever the padding', () => {
    const key = fc.stringMatching(/^[\x21-\x2b\x2d-\x7e]{1,30}$/);
    const pad = fc.constantFrom('', ' ', '  ', '\t', ' \t ');
    fc.assert(
      fc.property(fc.uniqueArray(key, { minLength: 1, maxLength: 5 }), pad, pad, (list, before, after) => {
        const text = list.map((k) => `${before}${k}${after}`).join(',');
        assert.deepEqual(keys(text), { keys: list, errors: [] });
      }),
      { numRuns: 200 },
    );
  });
});

describe('parseBasicCredentials', () => {
  test('user:password pairs, trimmed, empties dropped', () => {
    assert.deepEqual(creds(' admin:secretpassword , ,grafana:pw2 '), {
      credentials: [
        { user: 'admin', kind: 'plain', password: 'secretpassword' },
        { user: 'grafana', kind: 'plain', password: 'pw2' },
      ],
      errors: [],
    });
  });

  test('the password may contain ":"', () => {
    assert.deepEqual(creds('admin:pa:ss:word:').credentials, [
      { user: 'admin', kind: 'plain', password: 'pa:ss:word:' },
    ]);
    assert.deepEqual(creds('admin::').credentials, [{ user: 'admin', kind: 'plain', password: ':' }]);
  });

  test('bcrypt hashes $2a$, $2b$ and $2y$ are recognised', () => {
    assert.deepEqual(creds(`a:${HASH_2A},b:${HASH_2B},c:${HASH_2Y}`), {
      credentials: [
        { user: 'a', kind: 'bcrypt', hash: HASH_2A },
        { user: 'b', kind: 'bcrypt', hash: HASH_2B },
        { user: 'c', kind: 'bcrypt', hash: HASH_2Y },
      ],
      errors: [],
    });
  });

  test('missing colon: the stock error message, numbered from 1', () => {
    assert.deepEqual(creds('admin:pw,nocolon').errors, [
      `${CREDS} entry 2: missing ':' between user and password`,
    ]);
  });

  test('empty user, empty password, duplicate user', () => {
    assert.deepEqual(creds(':pw').errors, [`${CREDS} entry 1: empty user name`]);
    assert.deepEqual(creds('admin:').errors, [`${CREDS} entry 1: empty password for user "admin"`]);
    assert.deepEqual(creds('admin:a,admin:b').errors, [`${CREDS} entry 2: user "admin" is listed twice`]);
  });

  test('malformed bcrypt hashes are rejected with the user named and the hash withheld', () => {
    const cases = [
      HASH_2B.slice(0, -1),
      `${HASH_2B}x`,
      HASH_2B.replace(/^\$2b\$\d\d/, '$2b$4'),
      `${HASH_2B.slice(0, -1)}!`,
      '$2b$',
      '$2b$10$short',
    ];
    for (const hash of cases) {
      const { credentials, errors } = creds(`alice:${hash}`);
      assert.deepEqual(credentials, [], hash);
      assert.deepEqual(
        errors,
        [`${CREDS} entry 1: malformed bcrypt hash for user "alice" (expected $2b$<cost>$ and 53 characters)`],
        hash,
      );
    }
  });

  test('bcrypt cost out of range 4-31', () => {
    const tail = HASH_2B.slice(7);
    assert.deepEqual(creds(`u:$2b$03$${tail}`).errors, [
      `${CREDS} entry 1: bcrypt cost 3 for user "u" is out of range 4-31`,
    ]);
    assert.deepEqual(creds(`u:$2b$32$${tail}`).errors, [
      `${CREDS} entry 1: bcrypt cost 32 for user "u" is out of range 4-31`,
    ]);
    assert.deepEqual(creds(`u:$2b$31$${tail}`).errors, []);
  });

  test('every bad entry is reported, and good ones are still parsed', () => {
    const { credentials, errors } = creds('x,:y,ok:pw,z:');
    assert.deepEqual(credentials, [{ user: 'ok', kind: 'plain', password: 'pw' }]);
    assert.deepEqual(errors, [
      `${CREDS} entry 1: missing ':' between user and password`,
      `${CREDS} entry 2: empty user name`,
      `${CREDS} entry 4: empty password for user "z"`,
    ]);
  });

  test('property: never throws; every error names the variable and its entry', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (text) => {
        const { credentials, errors } = creds(text);
        for (const error of errors) assert.ok(error.startsWith(`${CREDS} entry `), error);
        for (const credential of credentials) {
          assert.notEqual(credential.user, '');
          assert.ok(!credential.user.includes(':'));
        }
      }),
      { numRuns: 200 },
    );
  });

  test('property: user:password lists round-trip (password with ":" and any printable characters but ",")', () => {
    const user = fc.stringMatching(/^[A-Za-z0-9_.@-]{1,12}$/);
    const password = fc
      .stringMatching(/^[\x21-\x2b\x2d-\x7e][\x20-\x2b\x2d-\x7e]{0,20}[\x21-\x2b\x2d-\x7e]$/)
      .filter((p) => !p.startsWith('$2'));
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(user, password), { minLength: 1, maxLength: 4, selector: ([u]) => u }),
        (pairs) => {
          const { credentials, errors } = creds(pairs.map(([u, p]) => `${u}:${p}`).join(','));
          assert.deepEqual(errors, []);
          assert.deepEqual(
            credentials,
            pairs.map(([u, p]) => ({ user: u, kind: 'plain', password: p })),
          );
        },
      ),
      { numRuns: 200 },
    );
  });

  test('property: an error for a bad entry never echoes a password', () => {
    const secret = fc.stringMatching(/^SECRET[A-Za-z0-9]{4,10}$/);
    fc.assert(
      fc.property(secret, fc.constantFrom('u:$2b$10$', '', 'dup'), (password, shape) => {
        const text =
          shape === 'dup'
            ? `u:${password},u:${password}`
            : shape === ''
              ? `:${password}`
              : `${shape}${password}`;
        const { errors } = creds(text);
        assert.ok(errors.length > 0, text);
        for (const error of errors) assert.ok(!error.includes(password), error);
      }),
      { numRuns: 50 },
    );
  });
});
