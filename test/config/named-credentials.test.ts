import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import bcrypt from 'bcrypt';
import { credentialSummaries } from '../../src/config/credential-summary.js';
import { parseExpiry } from '../../src/config/named-credentials.js';
import { parseGatewayConfig } from '../../src/config/parse.js';
import { redactedConfig } from '../../src/config/redact.js';
import type { GatewayConfig } from '../../src/config/types.js';

const OFF = {
  OTLP_GRPC_UPSTREAM: 'off',
  OTLP_HTTP_UPSTREAM: 'off',
  PROMETHEUS_UPSTREAM: 'off',
  VICTORIAMETRICS_UPSTREAM: 'off',
};

function parsed(vars: Record<string, string>): GatewayConfig {
  const result = parseGatewayConfig({ ...OFF, ...vars }, '/etc/gw/.env');
  assert.ok(result.ok, JSON.stringify(result));
  return result.config;
}

function errorsOf(vars: Record<string, string>): readonly string[] {
  const result = parseGatewayConfig({ ...OFF, ...vars }, '/etc/gw/.env');
  assert.ok(!result.ok, 'expected the configuration to be refused');
  return result.errors;
}

const sha = (key: string): string => createHash('sha256').update(key).digest('hex');
const HASH = bcrypt.hashSync('grafana;pass', 4);

describe('GATEWAY_KEY_<NAME> and GATEWAY_USER_<NAME> (issue 12)', () => {
  test('the name comes from the variable: lower case, _ becomes -', () => {
    const config = parsed({
      ENVOY_AUTH_METHOD: 'any',
      GATEWAY_KEY_CHECKOUT_SERVICE: 'k-checkout-0123456789; scopes=ingest',
      GATEWAY_USER_GRAFANA: `grafana:${HASH}; scopes=read; expires=2027-03-31`,
      GATEWAY_KEY_OPS: `sha256:${sha('ops-key-0123456789')}; scopes=all; expires=2027-01-15T12:30:00+01:00`,
    });
    assert.deepEqual(
      config.namedCredentials.map(({ name, variable, scopes, expiresAt }) => ({
        name,
        variable,
        scopes,
        expiresAt,
      })),
      [
        {
          name: 'checkout-service',
          variable: 'GATEWAY_KEY_CHECKOUT_SERVICE',
          scopes: ['ingest'],
          expiresAt: null,
        },
        {
          name: 'ops',
          variable: 'GATEWAY_KEY_OPS',
          scopes: ['ingest', 'read', 'admin'],
          expiresAt: Date.UTC(2027, 0, 15, 11, 30),
        },
        {
          name: 'grafana',
          variable: 'GATEWAY_USER_GRAFANA',
          scopes: ['read'],
          expiresAt: Date.UTC(2027, 2, 31),
        },
      ],
    );
    // A plain key is kept only as its digest, like a sha256: one.
    assert.deepEqual(config.namedCredentials[0]?.secret, {
      kind: 'key',
      sha256Hex: sha('k-checkout-0123456789'),
    });
    assert.deepEqual(config.namedCredentials[1]?.secret, {
      kind: 'key',
      sha256Hex: sha('ops-key-0123456789'),
    });
    assert.deepEqual(config.namedCredentials[2]?.secret, {
      kind: 'user',
      credential: { user: 'grafana', kind: 'bcrypt', hash: HASH },
    });
  });

  test('scopes: + joins them, all is the three, repeats fold, the order is ingest, read, admin', () => {
    const config = parsed({ GATEWAY_KEY_A: 'key-a-0123456789; scopes=admin+ingest+admin' });
    assert.deepEqual(config.namedCredentials[0]?.scopes, ['ingest', 'admin']);
    assert.deepEqual(
      parsed({ GATEWAY_KEY_A: 'key-a-0123456789;scopes=read+all' }).namedCredentials[0]?.scopes,
      ['ingest', 'read', 'admin'],
    );
  });

  test('with named credentials and no ENVOY_API_KEYS, the placeholder key is not accepted', () => {
    const config = parsed({ GATEWAY_KEY_APP: 'key-app-0123456789; scopes=ingest' });
    assert.deepEqual(config.apiKeys, []);
    assert.equal(config.placeholderKeyInUse, false);
    // Without any, the stock default stays (drop-in).
    assert.equal(parsed({}).placeholderKeyInUse, true);
    // Set on purpose next to named ones, legacy keys stay.
    assert.deepEqual(
      parsed({ ENVOY_API_KEYS: 'legacy-0123456789', GATEWAY_KEY_APP: 'key-app-0123456789; scopes=ingest' })
        .apiKeys,
      ['legacy-0123456789'],
    );
  });

  test('every mistake is an error naming its variable', () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [
        { GATEWAY_KEY_APP: 'key-app-0123456789' },
        /^GATEWAY_KEY_APP: scopes= is required \(ingest, read, admin or all/,
      ],
      [{ GATEWAY_KEY_APP: 'key-app-0123456789; scopes=' }, /^GATEWAY_KEY_APP: unknown scope ""/],
      [{ GATEWAY_KEY_APP: 'key-app-0123456789; scopes=write' }, /^GATEWAY_KEY_APP: unknown scope "write"/],
      [
        { GATEWAY_KEY_APP: 'key-app-0123456789; scopes=read; scopes=admin' },
        /^GATEWAY_KEY_APP: option scopes= is given twice/,
      ],
      [
        { GATEWAY_KEY_APP: 'key-app-0123456789; scopes=read; expiry=2027-01-01' },
        /^GATEWAY_KEY_APP: part 3 .* is not an option/,
      ],
      [
        { GATEWAY_KEY_APP: 'key-app-0123456789; scopes=read; expires=2027-02-30' },
        /^GATEWAY_KEY_APP: expires= must be an RFC 3339/,
      ],
      [
        { GATEWAY_KEY_APP: 'key-app-0123456789; scopes=read; expires=2027-01-01T25:00:00Z' },
        /^GATEWAY_KEY_APP: expires=/,
      ],
      [
        { GATEWAY_KEY_APP: 'key-app-0123456789; scopes=read; expires=31.03.2027' },
        /^GATEWAY_KEY_APP: expires=/,
      ],
      [
        { GATEWAY_KEY_APP: 'sha256:ABC; scopes=read' },
        /^GATEWAY_KEY_APP: sha256: must be followed by 64 lowercase hex/,
      ],
      [{ GATEWAY_KEY_APP: `sha256:${sha('x').toUpperCase()}; scopes=read` }, /64 lowercase hex/],
      [{ GATEWAY_KEY_APP: '; scopes=read' }, /^GATEWAY_KEY_APP: the value must start with the key/],
      [{ GATEWAY_KEY_APP: 'two words; scopes=read' }, /^GATEWAY_KEY_APP: the key contains a space/],
      [
        { GATEWAY_KEY__APP: 'key-app-0123456789; scopes=read' },
        /^GATEWAY_KEY__APP: the credential name "_APP"/,
      ],
      [
        { GATEWAY_USER_X: 'nocolon; scopes=read' },
        /^GATEWAY_USER_X: expected <user>:<password or bcrypt hash>/,
      ],
      [{ GATEWAY_USER_X: 'x:$2b$04$short; scopes=read' }, /^GATEWAY_USER_X: malformed bcrypt hash/],
      [
        { GATEWAY_USER_X: 'x:{SHA}abc; scopes=read' },
        /^GATEWAY_USER_X: the password of user "x" is a \{SHA\} hash/,
      ],
    ];
    for (const [vars, expected] of cases) {
      const errors = errorsOf({ ENVOY_AUTH_METHOD: 'any', ...vars });
      assert.ok(
        errors.some((error) => expected.test(error)),
        `${JSON.stringify(vars)}: ${JSON.stringify(errors)}`,
      );
    }
  });

  test('a password with ";" gets the hint to use a bcrypt hash, and no part of it is echoed', () => {
    const errors = errorsOf({
      ENVOY_AUTH_METHOD: 'basic-auth',
      GATEWAY_USER_GRAFANA: 'grafana:pa;ss=wo;rd; scopes=read',
    });
    assert.ok(
      errors.some((error) =>
        error.includes('a plaintext password containing ";" must be given as a bcrypt hash'),
      ),
      JSON.stringify(errors),
    );
    for (const fragment of ['pa', 'ss=wo', 'wo', 'rd']) {
      assert.ok(!errors.some((error) => error.includes(`"${fragment}"`)), JSON.stringify(errors));
    }
    assert.ok(!JSON.stringify(errors).includes('ss=wo'));
    // The same password as a bcrypt hash is fine.
    assert.equal(
      parsed({ ENVOY_AUTH_METHOD: 'basic-auth', GATEWAY_USER_GRAFANA: `grafana:${HASH}; scopes=read` })
        .namedCredentials.length,
      1,
    );
  });

  test('names are unique across keys and users; users and keys are unique, also against the legacy variables', () => {
    assert.match(
      errorsOf({
        ENVOY_AUTH_METHOD: 'any',
        GATEWAY_KEY_APP: 'key-app-0123456789; scopes=read',
        GATEWAY_USER_APP: 'u:p4ssword; scopes=read',
      }).join('\n'),
      /GATEWAY_USER_APP: the name "app" is already used by GATEWAY_KEY_APP/,
    );
    assert.match(
      errorsOf({
        GATEWAY_KEY_A: 'same-key-0123456789; scopes=read',
        GATEWAY_KEY_B: `sha256:${sha('same-key-0123456789')}; scopes=admin`,
      }).join('\n'),
      /GATEWAY_KEY_B: the same key is already given to GATEWAY_KEY_A/,
    );
    assert.match(
      errorsOf({
        ENVOY_API_KEYS: 'same-key-0123456789',
        GATEWAY_KEY_A: 'same-key-0123456789; scopes=read',
      }).join('\n'),
      /GATEWAY_KEY_A: the same key is also listed in ENVOY_API_KEYS/,
    );
    assert.match(
      errorsOf({
        ENVOY_AUTH_METHOD: 'basic-auth',
        ENVOY_BASIC_AUTH_CREDENTIALS: 'grafana:other-pass',
        GATEWAY_USER_G: 'grafana:p4ssword; scopes=read',
      }).join('\n'),
      /GATEWAY_USER_G: user "grafana" is also defined in ENVOY_BASIC_AUTH_CREDENTIALS/,
    );
    assert.match(
      errorsOf({
        ENVOY_AUTH_METHOD: 'basic-auth',
        GATEWAY_USER_A: 'u:p1; scopes=read',
        GATEWAY_USER_B: 'u:p2; scopes=admin',
      }).join('\n'),
      /GATEWAY_USER_B: user "u" is already defined by GATEWAY_USER_A/,
    );
  });

  test('no error and no summary holds a secret or a digest', () => {
    const key = 'k-secret-abcdefghijkl';
    const vars = {
      ENVOY_AUTH_METHOD: 'any',
      GATEWAY_KEY_APP: `${key}; scopes=ingest`,
      GATEWAY_KEY_OPS: `sha256:${sha('ops-secret-abcdefghij')}; scopes=admin; expires=2027-01-01`,
      GATEWAY_USER_GRAFANA: `grafana:${HASH}; scopes=read`,
      GATEWAY_USER_PLAIN: 'plain:plain-secret-pass; scopes=read',
    };
    const text = JSON.stringify([credentialSummaries(parsed(vars)), redactedConfig(parsed(vars))]);
    for (const secret of [
      key,
      sha(key),
      sha('ops-secret-abcdefghij'),
      HASH,
      HASH.slice(7),
      'plain-secret-pass',
    ]) {
      assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    }
    const broken = JSON.stringify(
      errorsOf({
        ENVOY_AUTH_METHOD: 'any',
        GATEWAY_KEY_APP: `${key}; scopes=bogus`,
        GATEWAY_KEY_OPS: `sha256:${sha('ops-secret-abcdefghij')}; expires=never`,
        GATEWAY_USER_PLAIN: 'plain:plain-secret-pass; scope=read',
      }),
    );
    for (const secret of [key, sha('ops-secret-abcdefghij'), 'plain-secret-pass']) {
      assert.ok(!broken.includes(secret), `${secret} leaked: ${broken}`);
    }
  });

  test('the summary lists what the auth method accepts, legacy ones as scope all', () => {
    const config = parsed({
      ENVOY_AUTH_METHOD: 'api-key',
      ENVOY_API_KEYS: 'legacy-0123456789',
      GATEWAY_KEY_APP: 'key-app-0123456789; scopes=ingest; expires=2027-06-01',
      GATEWAY_USER_GRAFANA: 'grafana:p4ssword; scopes=read',
    });
    assert.deepEqual(
      credentialSummaries(config).map(({ name, kind, scopes, expires, legacy }) => ({
        name,
        kind,
        scopes,
        expires,
        legacy,
      })),
      [
        {
          name: `key-${sha('legacy-0123456789').slice(0, 8)}`,
          kind: 'key',
          scopes: ['ingest', 'read', 'admin'],
          expires: null,
          legacy: true,
        },
        { name: 'app', kind: 'key', scopes: ['ingest'], expires: '2027-06-01T00:00:00.000Z', legacy: false },
      ],
    );
  });
});

describe('parseExpiry', () => {
  test('dates are 00:00:00 UTC; date-times take their offset; the calendar is checked', () => {
    assert.equal(parseExpiry('2027-03-31'), Date.UTC(2027, 2, 31));
    assert.equal(parseExpiry('2027-03-31T18:00:00Z'), Date.UTC(2027, 2, 31, 18));
    assert.equal(parseExpiry('2027-03-31t18:00:00z'), Date.UTC(2027, 2, 31, 18));
    assert.equal(parseExpiry('2027-03-31T18:00:00.250-02:30'), Date.UTC(2027, 2, 31, 20, 30, 0, 250));
    assert.equal(parseExpiry('2028-02-29'), Date.UTC(2028, 1, 29));
    for (const bad of [
      '2027-02-29',
      '2027-02-30',
      '2027-13-01',
      '2027-00-10',
      '2027-03-31T24:00:00Z',
      '2027-03-31T18:00:00',
      '2027-03-31 18:00',
      'tomorrow',
      '',
      '2027-3-1',
      '2027-03-31T18:00:00+25:00',
    ]) {
      assert.equal(parseExpiry(bad), null, bad);
    }
  });
});
