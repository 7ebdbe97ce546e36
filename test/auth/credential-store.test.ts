import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import bcrypt from 'bcrypt';
import fc from 'fast-check';
import { BcryptVerifier } from '../../src/auth/bcrypt-verifier.js';
import { type AuthOutcome, CredentialStore, keyIdentity } from '../../src/auth/credential-store.js';
import { readPresentedCredential } from '../../src/auth/presented-credential.js';
import { NO_LIMITS } from '../../src/config/credential-limits.js';
import type { AuthMethod, BasicCredential } from '../../src/config/types.js';

const verifier = (overrides: Partial<ConstructorParameters<typeof BcryptVerifier>[0]> = {}) =>
  new BcryptVerifier({
    cacheSize: 1000,
    cacheTtlMs: 60_000,
    maxConcurrent: 2,
    maxQueued: 1000,
    ...overrides,
  });

const BCRYPT_PASSWORD = 'bcrypt-pass:with:colons';
const BCRYPT_HASH = bcrypt.hashSync(BCRYPT_PASSWORD, 4);

const KEYS = ['key-one-123', 'key-two-456'];
const USERS: BasicCredential[] = [
  { user: 'admin', kind: 'plain', password: 'secretpassword' },
  { user: 'grafana', kind: 'plain', password: 'pw:with:colons' },
  { user: 'ops', kind: 'bcrypt', hash: BCRYPT_HASH },
];

function store(method: AuthMethod, apiKeys = KEYS, basicCredentials = USERS, bcryptVerifier = verifier()) {
  return new CredentialStore({ authMethod: method, apiKeys, basicCredentials }, bcryptVerifier);
}

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const xApiKey = (key: string) => ['X-API-Key', key];
const bearer = (key: string) => ['Authorization', `Bearer ${key}`];
const basic = (user: string, password: string) => ['Authorization', `Basic ${b64(`${user}:${password}`)}`];

async function auth(s: CredentialStore, rawHeaders: string[]): Promise<AuthOutcome> {
  return await s.authenticate(readPresentedCredential(rawHeaders));
}

const accepted = (identity: string): AuthOutcome => ({
  ok: true,
  identity,
  scopes: 7,
  expiresAt: null,
  limits: NO_LIMITS,
});
const rejected = (reason: string) => ({ ok: false, reason });

describe('keyIdentity', () => {
  test('is key- plus the first 8 hex digits of sha256(key), never the key', () => {
    const expected = `key-${createHash('sha256').update('placeholder_api_key').digest('hex').slice(0, 8)}`;
    assert.equal(keyIdentity('placeholder_api_key'), expected);
    assert.match(keyIdentity('x'), /^key-[0-9a-f]{8}$/);
  });
});

describe('CredentialStore in api-key mode', () => {
  const s = store('api-key');

  test('counts', () => {
    assert.equal(s.keyCount, 2);
    assert.equal(s.userCount, 3);
    assert.equal(s.method, 'api-key');
  });

  test('X-API-Key, Bearer, and Basic with the key as password (any user name) are accepted', async () => {
    for (const key of KEYS) {
      const identity = accepted(keyIdentity(key));
      assert.deepEqual(await auth(s, xApiKey(key)), identity);
      assert.deepEqual(await auth(s, bearer(key)), identity);
      assert.deepEqual(await auth(s, basic('anyone', key)), identity);
      assert.deepEqual(await auth(s, basic('admin', key)), identity);
      assert.deepEqual(await auth(s, [...xApiKey(key), ...bearer(key)]), identity);
    }
  });

  test('accepting a key is synchronous', () => {
    const outcome = s.authenticate(readPresentedCredential(xApiKey(KEYS[0]!)));
    assert.ok(!(outcome instanceof Promise));
  });

  test('wrong keys, near misses and Basic users are invalid_key', async () => {
    for (const key of [
      'nope',
      'key-one-12',
      'key-one-1234',
      'KEY-ONE-123',
      'key-one-123\u0000',
      '\tkey-one-123',
    ]) {
      assert.deepEqual(await auth(s, xApiKey(key)), rejected('invalid_key'), JSON.stringify(key));
      assert.deepEqual(await auth(s, bearer(key)), rejected('invalid_key'), JSON.stringify(key));
    }
    assert.deepEqual(await auth(s, basic('admin', 'secretpassword')), rejected('invalid_key'));
    assert.deepEqual(await auth(s, basic('ops', BCRYPT_PASSWORD)), rejected('invalid_key'));
  });

  test('missing, malformed, conflicting', async () => {
    assert.deepEqual(await auth(s, []), rejected('missing'));
    assert.deepEqual(await auth(s, ['Authorization', 'Basic !!!']), rejected('malformed'));
    assert.deepEqual(await auth(s, xApiKey('')), rejected('malformed'));
    assert.deepEqual(await auth(s, [...xApiKey(KEYS[0]!), ...xApiKey('bad')]), rejected('conflict'));
    assert.deepEqual(await auth(s, [...xApiKey(KEYS[0]!), ...bearer(KEYS[1]!)]), rejected('conflict'));
  });

  test('an X-API-Key next to a Basic credential for the upstream is judged by the key', async () => {
    assert.deepEqual(
      await auth(s, [...xApiKey(KEYS[0]!), ...basic('prom', 'native-pw')]),
      accepted(keyIdentity(KEYS[0]!)),
    );
    assert.deepEqual(await auth(s, [...xApiKey('bad'), ...basic('x', KEYS[0]!)]), rejected('invalid_key'));
  });
});

describe('CredentialStore in basic-auth mode', () => {
  const s = store('basic-auth');

  test('plaintext users', async () => {
    assert.deepEqual(await auth(s, basic('admin', 'secretpassword')), accepted('admin'));
    assert.deepEqual(await auth(s, basic('grafana', 'pw:with:colons')), accepted('grafana'));
    assert.deepEqual(
      await auth(s, ['authorization', `bAsIc   ${b64('admin:secretpassword')}`]),
      accepted('admin'),
    );
  });

  test('wrong password, unknown user', async () => {
    assert.deepEqual(await auth(s, basic('admin', 'secretpassword ')), rejected('invalid_password'));
    assert.deepEqual(await auth(s, basic('admin', 'pw:with:colons')), rejected('invalid_password'));
    assert.deepEqual(await auth(s, basic('Admin', 'secretpassword')), rejected('unknown_user'));
    assert.deepEqual(await auth(s, basic('nobody', KEYS[0]!)), rejected('unknown_user'));
  });

  test('keys are the wrong scheme', async () => {
    assert.deepEqual(await auth(s, xApiKey(KEYS[0]!)), rejected('wrong_scheme'));
    assert.deepEqual(await auth(s, bearer(KEYS[0]!)), rejected('wrong_scheme'));
    assert.deepEqual(await auth(s, bearer('secretpassword')), rejected('wrong_scheme'));
  });

  test('an X-API-Key next to Basic: the Basic credential decides', async () => {
    assert.deepEqual(
      await auth(s, [...xApiKey('whatever'), ...basic('admin', 'secretpassword')]),
      accepted('admin'),
    );
    assert.deepEqual(
      await auth(s, [...xApiKey(KEYS[0]!), ...basic('admin', 'wrong')]),
      rejected('invalid_password'),
    );
  });

  test('bcrypt user: verified once, then answered synchronously from the cache', async () => {
    const v = verifier();
    const bs = store('basic-auth', KEYS, USERS, v);
    const first = bs.authenticate(readPresentedCredential(basic('ops', BCRYPT_PASSWORD)));
    assert.ok(first instanceof Promise);
    assert.deepEqual(await first, accepted('ops'));
    const second = bs.authenticate(readPresentedCredential(basic('ops', BCRYPT_PASSWORD)));
    assert.deepEqual(second, accepted('ops'));
    assert.equal(v.cacheMisses, 1);
    assert.equal(v.cacheHits, 1);
  });

  test('bcrypt user: wrong password is invalid_password, and is not cached as good', async () => {
    const bs = store('basic-auth');
    assert.deepEqual(await auth(bs, basic('ops', 'wrong')), rejected('invalid_password'));
    assert.deepEqual(await auth(bs, basic('ops', 'wrong')), rejected('invalid_password'));
    assert.deepEqual(await auth(bs, basic('ops', BCRYPT_PASSWORD)), accepted('ops'));
  });

  test('bcrypt user: a verified password does not unlock another user with the same hash', async () => {
    const v = verifier();
    const users: BasicCredential[] = [
      { user: 'a', kind: 'bcrypt', hash: BCRYPT_HASH },
      { user: 'b', kind: 'bcrypt', hash: BCRYPT_HASH },
    ];
    const bs = store('basic-auth', [], users, v);
    assert.deepEqual(await auth(bs, basic('a', BCRYPT_PASSWORD)), accepted('a'));
    assert.deepEqual(await auth(bs, basic('b', BCRYPT_PASSWORD)), accepted('b'));
    assert.deepEqual(await auth(bs, basic('b', 'other')), rejected('invalid_password'));
  });

  test('check() answers a known outcome at once, a first bcrypt check when it settles', async () => {
    const bs = store('basic-auth');
    const seen: AuthOutcome[] = [];
    bs.check(readPresentedCredential(basic('admin', 'secretpassword')), (outcome) => seen.push(outcome));
    assert.deepEqual(seen, [accepted('admin')]);
    const settled = new Promise<void>((resolve) =>
      bs.check(readPresentedCredential(basic('ops', BCRYPT_PASSWORD)), (outcome) => {
        seen.push(outcome);
        resolve();
      }),
    );
    assert.equal(seen.length, 1, 'a first bcrypt check is answered later, not at once');
    await settled;
    assert.deepEqual(seen, [accepted('admin'), accepted('ops')]);
  });

  test('check(): a bcrypt check that fails to run is overloaded, never a pass', async () => {
    const failing = Object.assign(verifier(), {
      cached: () => false,
      verify: () => Promise.reject(new Error('worker gone')),
    });
    const bs = store('basic-auth', [], USERS, failing);
    const outcome = await new Promise<AuthOutcome>((resolve) =>
      bs.check(readPresentedCredential(basic('ops', BCRYPT_PASSWORD)), resolve),
    );
    assert.deepEqual(outcome, rejected('overloaded'));
  });

  test('bcrypt user: beyond the verifier queue the answer is overloaded', async () => {
    const v = verifier({ maxConcurrent: 1, maxQueued: 0 });
    const bs = store('basic-auth', [], USERS, v);
    const outcomes = await Promise.all(
      ['w1', 'w2', 'w3'].map((pw) => bs.authenticate(readPresentedCredential(basic('ops', pw)))),
    );
    assert.deepEqual(outcomes, [
      rejected('invalid_password'),
      rejected('overloaded'),
      rejected('overloaded'),
    ]);
  });
});

describe('CredentialStore in any mode', () => {
  const s = store('any');

  test('keys in every spelling and users are accepted', async () => {
    const identity = accepted(keyIdentity(KEYS[1]!));
    assert.deepEqual(await auth(s, xApiKey(KEYS[1]!)), identity);
    assert.deepEqual(await auth(s, bearer(KEYS[1]!)), identity);
    assert.deepEqual(await auth(s, basic('browser', KEYS[1]!)), identity);
    assert.deepEqual(await auth(s, basic('admin', 'secretpassword')), accepted('admin'));
    assert.deepEqual(await auth(s, basic('ops', BCRYPT_PASSWORD)), accepted('ops'));
  });

  test('a configured user name is checked as that user, not as a key', async () => {
    assert.deepEqual(await auth(s, basic('admin', KEYS[0]!)), rejected('invalid_password'));
  });

  test('unknown credentials are rejected', async () => {
    assert.deepEqual(await auth(s, xApiKey('secretpassword')), rejected('invalid_key'));
    assert.deepEqual(await auth(s, basic('nobody', 'secretpassword')), rejected('invalid_key'));
    assert.deepEqual(await auth(s, basic('admin', 'wrong')), rejected('invalid_password'));
  });
});

describe('CredentialStore with nothing configured', () => {
  test('rejects everything', async () => {
    for (const method of ['api-key', 'basic-auth', 'any'] as const) {
      const empty = store(method, [], []);
      for (const headers of [xApiKey('k'), bearer('k'), basic('u', 'p')]) {
        const outcome = await auth(empty, headers);
        assert.equal(outcome.ok, false, `${method} ${headers.join(' ')}`);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Properties: accepted exactly when configured, in every valid spelling.

const anyCase = (word: string) =>
  fc
    .array(fc.boolean(), { minLength: word.length, maxLength: word.length })
    .map((flags) => [...word].map((c, i) => (flags[i] ? c.toUpperCase() : c.toLowerCase())).join(''));
const spaces = fc.integer({ min: 1, max: 3 }).map((n) => ' '.repeat(n));
const method = fc.constantFrom<AuthMethod>('api-key', 'basic-auth', 'any');
const secretText = fc.stringMatching(/^[\x21-\x2b\x2d-\x7e]{1,16}$/);
const userName = fc.stringMatching(/^[A-Za-z0-9._-]{1,10}$/);
const plainUsers = fc.uniqueArray(
  fc
    .tuple(userName, secretText)
    .map(([user, password]): BasicCredential => ({ user, kind: 'plain', password })),
  { maxLength: 4, selector: (c) => c.user },
);
const keyList = fc.uniqueArray(secretText, { maxLength: 4 });

/** Arbitrary presented credentials, biased towards near misses of the configured ones. */
function presentedFor(keys: readonly string[], users: readonly BasicCredential[]) {
  const known = [
    ...keys,
    ...users.map((u) => u.user),
    ...users.map((u) => (u.kind === 'plain' ? u.password : '')),
  ];
  const tweak = (text: string) =>
    fc.oneof(
      fc.constant(text),
      fc.constantFrom(
        `${text} `,
        ` ${text}`,
        `${text}\u0000`,
        `${text}\t`,
        text.toUpperCase(),
        text.slice(1),
        `${text}x`,
      ),
    );
  const secret =
    known.length === 0
      ? fc.string({ maxLength: 16 })
      : fc.oneof(fc.string({ maxLength: 16 }), fc.constantFrom(...known).chain(tweak));
  return fc.oneof(
    fc.tuple(anyCase('x-api-key'), secret).map(([name, value]) => [name, value]),
    fc
      .tuple(anyCase('authorization'), anyCase('bearer'), spaces, secret)
      .map(([n, s, sp, v]) => [n, `${s}${sp}${v}`]),
    fc
      .tuple(anyCase('authorization'), anyCase('basic'), spaces, secret, secret)
      .map(([n, s, sp, u, p]) => [n, `${s}${sp}${b64(`${u}:${p}`)}`]),
    fc
      .tuple(secret, secret, secret)
      .map(([k, u, p]) => ['X-API-Key', k, 'Authorization', `Basic ${b64(`${u}:${p}`)}`]),
  );
}

/** What the contract says should be accepted, computed independently of the store. */
function expectedIdentity(
  mode: AuthMethod,
  keys: readonly string[],
  users: readonly BasicCredential[],
  rawHeaders: readonly string[],
): string | null {
  const presented = readPresentedCredential(rawHeaders);
  const userMatch = (user: string, password: string) =>
    users.some((u) => u.user === user && u.kind === 'plain' && u.password === password) ? user : null;
  const keyMatch = (key: string) => (keys.includes(key) ? keyIdentity(key) : null);
  switch (presented.kind) {
    case 'api-key':
      if (mode === 'basic-auth')
        return presented.basic ? userMatch(presented.basic.user, presented.basic.password) : null;
      return keyMatch(presented.key);
    case 'basic': {
      const { user, password } = presented.pair;
      if (mode === 'basic-auth') return userMatch(user, password);
      if (mode === 'any' && users.some((u) => u.user === user)) return userMatch(user, password);
      return keyMatch(password);
    }
    default:
      return null;
  }
}

describe('CredentialStore properties', () => {
  test('accepts a presented credential exactly when it is configured (never anything else)', async () => {
    await fc.assert(
      fc.asyncProperty(
        method,
        keyList,
        plainUsers,
        fc.integer({ min: 0, max: 1_000_000 }),
        async (mode, keys, users, seed) => {
          const s = store(mode, keys, users);
          const samples = fc.sample(presentedFor(keys, users), { numRuns: 10, seed });
          for (const rawHeaders of samples) {
            const outcome = await s.authenticate(readPresentedCredential(rawHeaders));
            const expected = expectedIdentity(mode, keys, users, rawHeaders);
            assert.deepEqual(
              outcome.ok ? outcome.identity : null,
              expected,
              `${mode} keys=${JSON.stringify(keys)} users=${JSON.stringify(users)} headers=${JSON.stringify(rawHeaders)}`,
            );
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  test('never accepts a credential built from text that is not configured', async () => {
    const foreign = fc.stringMatching(/^[a-z]{1,12}$/).map((s) => `zz${s}`);
    await fc.assert(
      fc.asyncProperty(
        method,
        fc.uniqueArray(fc.stringMatching(/^[A-Y0-9]{1,12}$/), { maxLength: 3 }),
        fc.uniqueArray(
          fc
            .tuple(fc.stringMatching(/^[A-Y]{1,8}$/), fc.stringMatching(/^[A-Y0-9]{1,12}$/))
            .map(([user, password]): BasicCredential => ({ user, kind: 'plain', password })),
          { maxLength: 3, selector: (c) => c.user },
        ),
        foreign,
        foreign,
        async (mode, keys, users, u, secret) => {
          const s = store(mode, keys, users);
          for (const headers of [
            xApiKey(secret),
            bearer(secret),
            basic(u, secret),
            basic(users[0]?.user ?? u, secret),
          ]) {
            const outcome = await s.authenticate(readPresentedCredential(headers));
            assert.equal(outcome.ok, false, `${mode} ${JSON.stringify(headers)}`);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  test('every configured key is accepted in every spelling (api-key and any mode)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<AuthMethod>('api-key', 'any'),
        keyList.filter((k) => k.length > 0),
        plainUsers,
        fc.nat(),
        anyCase('x-api-key'),
        anyCase('authorization'),
        anyCase('bearer'),
        anyCase('basic'),
        spaces,
        fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }).filter((u) => !u.includes(':')),
        (mode, keys, users, pick, keyHeader, authHeader, bearerScheme, basicScheme, sp, browserUser) => {
          const key = keys[pick % keys.length]!;
          const s = store(mode, keys, users);
          const identity = accepted(keyIdentity(key));
          const spellings = [
            [keyHeader, key],
            [authHeader, `${bearerScheme}${sp}${key}`],
            [keyHeader, key, authHeader, `${bearerScheme}${sp}${key}`],
          ];
          // In any mode a configured user name means "check this user", so the browser's user is free only when unknown.
          if (mode === 'api-key' || !users.some((u) => u.user === browserUser)) {
            spellings.push([authHeader, `${basicScheme}${sp}${b64(`${browserUser}:${key}`)}`]);
          }
          for (const headers of spellings) {
            assert.deepEqual(
              s.authenticate(readPresentedCredential(headers)),
              identity,
              JSON.stringify(headers),
            );
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  test('every configured plaintext user is accepted in every spelling (basic-auth and any mode)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<AuthMethod>('basic-auth', 'any'),
        keyList,
        plainUsers.filter((u) => u.length > 0),
        fc.nat(),
        anyCase('authorization'),
        anyCase('basic'),
        spaces,
        (mode, keys, users, pick, authHeader, scheme, sp) => {
          const credential = users[pick % users.length]!;
          assert.equal(credential.kind, 'plain');
          if (credential.kind !== 'plain') return;
          const s = store(mode, keys, users);
          const headers = [authHeader, `${scheme}${sp}${b64(`${credential.user}:${credential.password}`)}`];
          assert.deepEqual(s.authenticate(readPresentedCredential(headers)), accepted(credential.user));
        },
      ),
      { numRuns: 200 },
    );
  });

  test('bcrypt users: accepted with their password in any spelling, rejected with any other (few runs)', async () => {
    const hashes = new Map<string, string>();
    const hashFor = (password: string) => {
      let hash = hashes.get(password);
      if (hash === undefined) {
        hash = bcrypt.hashSync(password, 4);
        hashes.set(password, hash);
      }
      return hash;
    };
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<AuthMethod>('basic-auth', 'any'),
        userName,
        secretText,
        secretText,
        anyCase('basic'),
        spaces,
        async (mode, user, password, other, scheme, sp) => {
          const s = store(mode, [], [{ user, kind: 'bcrypt', hash: hashFor(password) }]);
          const spell = (pw: string) => ['Authorization', `${scheme}${sp}${b64(`${user}:${pw}`)}`];
          assert.deepEqual(await s.authenticate(readPresentedCredential(spell(password))), accepted(user));
          assert.deepEqual(s.authenticate(readPresentedCredential(spell(password))), accepted(user));
          if (other !== password) {
            assert.deepEqual(
              await s.authenticate(readPresentedCredential(spell(other))),
              rejected('invalid_password'),
            );
          }
        },
      ),
      { numRuns: 8 },
    );
  });
});
