import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  decodeBasicToken,
  type PresentedCredential,
  readPresentedCredential,
} from '../../src/auth/presented-credential.js';

const NONE = { kind: 'none' };
const MALFORMED = { kind: 'malformed' };
const CONFLICT = { kind: 'conflict' };

const b64 = (text: string | Buffer): string => Buffer.from(text).toString('base64');
const basic = (user: string, password: string): string => `Basic ${b64(`${user}:${password}`)}`;
const read = (...rawHeaders: string[]): PresentedCredential => readPresentedCredential(rawHeaders);
const apiKey = (key: string, pair: { user: string; password: string } | null = null) => ({
  kind: 'api-key',
  key,
  basic: pair,
});

/** Randomises the letter case of a header name or scheme. */
const anyCase = (word: string) =>
  fc
    .array(fc.boolean(), { minLength: word.length, maxLength: word.length })
    .map((flags) => [...word].map((c, i) => (flags[i] ? c.toUpperCase() : c.toLowerCase())).join(''));

describe('readPresentedCredential: nothing presented', () => {
  test('no headers, or only unrelated ones', () => {
    assert.deepEqual(read(), NONE);
    assert.deepEqual(
      read('Host', 'x', 'X-API-Key-Extra', 'k', 'Proxy-Authorization', basic('a', 'b'), 'X-Api', 'k'),
      NONE,
    );
  });
});

describe('readPresentedCredential: X-API-Key', () => {
  test('the key is read as is', () => {
    assert.deepEqual(read('X-API-Key', 'placeholder_api_key'), apiKey('placeholder_api_key'));
  });

  test('the header name in any letter case', () => {
    for (const name of ['x-api-key', 'X-API-KEY', 'X-Api-Key', 'x-API-key']) {
      assert.deepEqual(read(name, 'k1'), apiKey('k1'), name);
    }
  });

  test('an empty X-API-Key is malformed', () => {
    assert.deepEqual(read('X-API-Key', ''), MALFORMED);
  });

  test('NUL, tab and no-break space are not trimmed away: they make a different key', () => {
    for (const key of [
      'k1\u0000',
      '\u0000k1',
      'k1\t',
      '\tk1',
      'k1\u00a0',
      '\u00a0k1',
      'k\u00001',
      ' k1',
      'k1 ',
    ]) {
      assert.deepEqual(read('X-API-Key', key), apiKey(key), JSON.stringify(key));
    }
  });

  test('two X-API-Key headers conflict, even when equal, in any case', () => {
    assert.deepEqual(read('X-API-Key', 'good', 'X-API-Key', 'bad'), CONFLICT);
    assert.deepEqual(read('X-API-Key', 'good', 'x-api-key', 'good'), CONFLICT);
    assert.deepEqual(read('x-api-key', 'good', 'Host', 'h', 'X-API-KEY', ''), CONFLICT);
  });
});

describe('readPresentedCredential: Authorization: Bearer', () => {
  test('the token is the key', () => {
    assert.deepEqual(read('Authorization', 'Bearer tok-123'), apiKey('tok-123'));
  });

  test('scheme in any letter case, extra spaces after the scheme', () => {
    for (const value of ['bearer tok', 'BEARER tok', 'BeArEr tok', 'Bearer   tok']) {
      assert.deepEqual(read('Authorization', value), apiKey('tok'), value);
    }
    assert.deepEqual(read('AUTHORIZATION', 'Bearer tok'), apiKey('tok'));
  });

  test('Bearer with nothing after it is malformed', () => {
    for (const value of ['Bearer', 'Bearer ', 'Bearer    ']) {
      assert.deepEqual(read('Authorization', value), MALFORMED, JSON.stringify(value));
    }
  });

  test('a tab instead of a space after the scheme is malformed', () => {
    assert.deepEqual(read('Authorization', 'Bearer\ttok'), MALFORMED);
  });

  test('X-API-Key plus an agreeing Bearer is fine; a differing one conflicts', () => {
    assert.deepEqual(read('X-API-Key', 'k', 'Authorization', 'Bearer k'), apiKey('k'));
    assert.deepEqual(read('X-API-Key', 'k', 'Authorization', 'Bearer other'), CONFLICT);
    assert.deepEqual(read('Authorization', 'Bearer other', 'X-API-Key', 'k'), CONFLICT);
  });

  test('two Authorization headers conflict', () => {
    assert.deepEqual(read('Authorization', 'Bearer a', 'Authorization', 'Bearer a'), CONFLICT);
    assert.deepEqual(read('Authorization', 'Bearer a', 'authorization', basic('u', 'p')), CONFLICT);
  });
});

describe('readPresentedCredential: Authorization: Basic', () => {
  test('user and password are decoded', () => {
    assert.deepEqual(read('Authorization', basic('admin', 'secretpassword')), {
      kind: 'basic',
      pair: { user: 'admin', password: 'secretpassword' },
    });
  });

  test('scheme in any letter case, extra spaces after the scheme', () => {
    const token = b64('admin:pw');
    for (const value of [`basic ${token}`, `BASIC ${token}`, `bAsIc ${token}`, `Basic    ${token}`]) {
      assert.deepEqual(read('Authorization', value), {
        kind: 'basic',
        pair: { user: 'admin', password: 'pw' },
      });
    }
  });

  test('the password may contain ":"', () => {
    assert.deepEqual(read('Authorization', basic('admin', 'a:b::c:')), {
      kind: 'basic',
      pair: { user: 'admin', password: 'a:b::c:' },
    });
  });

  test('UTF-8 user names and passwords', () => {
    assert.deepEqual(read('Authorization', basic('jürgen', 'pässwörd✓')), {
      kind: 'basic',
      pair: { user: 'jürgen', password: 'pässwörd✓' },
    });
  });

  test('bad base64 is malformed', () => {
    for (const token of [
      'not base64!',
      'YWRtaW46cHc',
      'YWRt=aW46cHc=',
      'YWRtaW46cHc===',
      '====',
      'YW Rt',
      '-_-_',
    ]) {
      assert.deepEqual(read('Authorization', `Basic ${token}`), MALFORMED, token);
    }
  });

  test('no colon, empty user, empty password are malformed', () => {
    assert.deepEqual(read('Authorization', `Basic ${b64('adminpw')}`), MALFORMED);
    assert.deepEqual(read('Authorization', `Basic ${b64(':pw')}`), MALFORMED);
    assert.deepEqual(read('Authorization', `Basic ${b64('admin:')}`), MALFORMED);
    assert.deepEqual(read('Authorization', `Basic ${b64(':')}`), MALFORMED);
  });

  test('non-UTF-8 bytes are malformed', () => {
    for (const bytes of [
      [0xff, 0x3a, 0x70],
      [0x61, 0x3a, 0xc3],
      [0x61, 0x3a, 0xed, 0xa0, 0x80],
      [0x61, 0x3a, 0xc0, 0xaf],
    ]) {
      assert.deepEqual(read('Authorization', `Basic ${b64(Buffer.from(bytes))}`), MALFORMED, String(bytes));
    }
  });

  test('a leading byte-order mark is part of the user name, not silently dropped', () => {
    assert.deepEqual(decodeBasicToken(b64('\ufeffadmin:pw')), { user: '\ufeffadmin', password: 'pw' });
  });

  test('an unknown scheme alone is malformed; with an X-API-Key it is left for the upstream', () => {
    assert.deepEqual(read('Authorization', 'Digest username="a"'), MALFORMED);
    assert.deepEqual(read('Authorization', 'Basic'), MALFORMED);
    assert.deepEqual(read('Authorization', 'Negotiate abc', 'X-API-Key', 'k'), apiKey('k'));
  });

  test('X-API-Key plus Basic keeps both: the pair may be for an upstream with native auth', () => {
    assert.deepEqual(
      read('X-API-Key', 'k', 'Authorization', basic('prom', 'pw')),
      apiKey('k', { user: 'prom', password: 'pw' }),
    );
    assert.deepEqual(read('X-API-Key', 'k', 'Authorization', 'Basic !!!!'), apiKey('k'));
  });
});

describe('decodeBasicToken', () => {
  test('round-trips, and rejects what is not user:password', () => {
    assert.deepEqual(decodeBasicToken(b64('a:b')), { user: 'a', password: 'b' });
    assert.equal(decodeBasicToken(''), null);
    assert.equal(decodeBasicToken('YQ'), null);
    assert.equal(decodeBasicToken(b64('a')), null);
  });
});

describe('readPresentedCredential properties', () => {
  const headerName = fc.oneof(
    anyCase('x-api-key'),
    anyCase('authorization'),
    fc.constantFrom('host', 'content-type', 'x-api-keys', 'proxy-authorization'),
    fc.string({ maxLength: 15 }),
  );
  const headerValue = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 50 }),
    fc
      .tuple(anyCase('basic'), fc.string({ maxLength: 3 }), fc.base64String({ maxLength: 40 }))
      .map((p) => p.join('')),
    fc
      .tuple(anyCase('bearer'), fc.constantFrom(' ', '  ', ''), fc.string({ maxLength: 20 }))
      .map((p) => p.join('')),
    fc.uint8Array({ maxLength: 30 }).map((bytes) => `Basic ${b64(Buffer.from(bytes))}`),
  );

  test('never throws on arbitrary header lists, and answers a known kind', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(headerName, headerValue), { maxLength: 6 }), (pairs) => {
        const result = readPresentedCredential(pairs.flat());
        assert.ok(['none', 'malformed', 'conflict', 'api-key', 'basic'].includes(result.kind));
        if (result.kind === 'api-key') assert.notEqual(result.key, '');
        if (result.kind === 'basic') {
          assert.notEqual(result.pair.user, '');
          assert.notEqual(result.pair.password, '');
          assert.ok(!result.pair.user.includes(':'));
        }
      }),
      { numRuns: 200 },
    );
  });

  test('more than one X-API-Key header is always a conflict', () => {
    fc.assert(
      fc.property(
        anyCase('x-api-key'),
        anyCase('x-api-key'),
        fc.string({ maxLength: 20 }),
        fc.string({ maxLength: 20 }),
        (a, b, k1, k2) => {
          assert.deepEqual(readPresentedCredential([a, k1, 'Accept', '*/*', b, k2]), CONFLICT);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('every Basic user:password (UTF-8, ":" allowed in the password) decodes to itself', () => {
    const user = fc.oneof(
      fc.string({ unit: 'binary', minLength: 1, maxLength: 15 }),
      fc.string({ unit: 'binary', maxLength: 10 }).map((s) => `\ufeff${s}`),
    );
    fc.assert(
      fc.property(
        user.filter((u) => !u.includes(':')),
        fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }),
        anyCase('basic'),
        fc.integer({ min: 1, max: 4 }),
        (u, p, scheme, spaces) => {
          const result = readPresentedCredential([
            'Authorization',
            `${scheme}${' '.repeat(spaces)}${b64(`${u}:${p}`)}`,
          ]);
          assert.deepEqual(result, { kind: 'basic', pair: { user: u, password: p } });
        },
      ),
      { numRuns: 200 },
    );
  });
});
