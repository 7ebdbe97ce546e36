import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import bcrypt from 'bcrypt';
import fc from 'fast-check';
import { keyIdentity } from '../../src/auth/credential-store.js';
import { parseGatewayConfig } from '../../src/config/parse.js';
import { formatAddress, REDACTED, redactedConfig } from '../../src/config/redact.js';
import type { GatewayConfig } from '../../src/config/types.js';

function config(vars: Record<string, string>): GatewayConfig {
  const result = parseGatewayConfig(vars, '/etc/gw/.env');
  assert.ok(result.ok, JSON.stringify(result));
  return result.config;
}

const HASHES = [bcrypt.hashSync('first', 4), bcrypt.hashSync('second', 4)];

describe('redactedConfig', () => {
  test('keys appear only as identities, passwords and hashes as [redacted]', () => {
    const hash = HASHES[0]!;
    const view = redactedConfig(
      config({
        ENVOY_AUTH_METHOD: 'any',
        ENVOY_API_KEYS: 'alpha-key-123,beta-key-456',
        ENVOY_BASIC_AUTH_CREDENTIALS: `admin:plainpass:with:colons,ops:${hash}`,
        PROMETHEUS_UPSTREAM: 'off',
        VICTORIAMETRICS_LISTEN: '[::1]:18428',
      }),
    );
    assert.deepEqual(view.auth, {
      method: 'any',
      api_keys: [
        { identity: keyIdentity('alpha-key-123'), key: REDACTED },
        { identity: keyIdentity('beta-key-456'), key: REDACTED },
      ],
      basic_users: [
        { user: 'admin', password: REDACTED },
        { user: 'ops', password: 'bcrypt hash [redacted]' },
      ],
      placeholder_key_in_use: false,
      credentials: [
        {
          name: keyIdentity('alpha-key-123'),
          kind: 'key',
          scopes: 'all',
          expires: null,
          source: 'ENVOY_API_KEYS',
        },
        {
          name: keyIdentity('beta-key-456'),
          kind: 'key',
          scopes: 'all',
          expires: null,
          source: 'ENVOY_API_KEYS',
        },
        { name: 'admin', kind: 'user', scopes: 'all', expires: null, source: 'ENVOY_BASIC_AUTH_CREDENTIALS' },
        { name: 'ops', kind: 'user', scopes: 'all', expires: null, source: 'ENVOY_BASIC_AUTH_CREDENTIALS' },
      ],
    });
    const json = JSON.stringify(view);
    for (const secret of ['alpha-key-123', 'beta-key-456', 'plainpass', 'with:colons', hash, hash.slice(7)]) {
      assert.ok(!json.includes(secret), `${secret} leaked: ${json}`);
    }
    assert.ok(!json.includes('$2'), json);
  });

  test('listeners, admin and timeouts are shown as configured', () => {
    const view = redactedConfig(
      config({ PROMETHEUS_UPSTREAM: 'off', VICTORIAMETRICS_LISTEN: '[::1]:18428' }),
    );
    assert.deepEqual(view.listeners, [
      { name: 'otlp-grpc', protocol: 'h2c', listen: '0.0.0.0:4317', upstream: 'http://otel-collector:4317' },
      {
        name: 'otlp-http',
        protocol: 'http1',
        listen: '0.0.0.0:4318',
        upstream: 'http://otel-collector:4318',
      },
      { name: 'prometheus', protocol: 'http1', listen: '0.0.0.0:9090', upstream: 'off' },
      {
        name: 'victoriametrics',
        protocol: 'http1',
        listen: '[::1]:18428',
        upstream: 'http://victoriametrics:8428',
      },
    ]);
    assert.equal(view.admin, '127.0.0.1:9901');
    assert.equal(view.upstream_connect_timeout_ms, 5000);
    assert.equal(view.upstream_timeout_ms, 300_000);
    assert.equal(view.env_file, '/etc/gw/.env');
  });

  test('the placeholder key is flagged (its identity, not the key, is shown)', () => {
    const view = redactedConfig(config({}));
    const json = JSON.stringify(view);
    assert.equal((view.auth as { placeholder_key_in_use: boolean }).placeholder_key_in_use, true);
    assert.ok(!json.includes('placeholder_api_key'), json);
  });

  test('formatAddress brackets IPv6 hosts', () => {
    assert.equal(formatAddress({ host: '::1', port: 1 }), '[::1]:1');
    assert.equal(formatAddress({ host: 'localhost', port: 2 }), 'localhost:2');
  });

  test('property: no key, password, hash or base64 credential appears anywhere in the JSON', () => {
    const secret = fc.stringMatching(/^[A-Za-z0-9_.~!@%^&*+=-]{12,40}$/);
    const user = fc.stringMatching(/^[a-z]{1,8}$/);
    fc.assert(
      fc.property(
        fc.uniqueArray(secret, { minLength: 1, maxLength: 4 }),
        fc.uniqueArray(fc.tuple(user, secret, fc.boolean()), { maxLength: 4, selector: ([u]) => u }),
        fc.constantFrom('api-key', 'basic-auth', 'any'),
        (keys, users, method) => {
          const entries = users.map(([u, password, hashed], i) => ({
            user: u,
            password,
            secret: hashed ? HASHES[i % HASHES.length]! : password,
          }));
          const vars: Record<string, string> = {
            ENVOY_AUTH_METHOD: entries.length === 0 && method === 'basic-auth' ? 'any' : method,
            ENVOY_API_KEYS: keys.join(','),
            ENVOY_BASIC_AUTH_CREDENTIALS: entries.map((e) => `${e.user}:${e.secret}`).join(','),
          };
          const json = JSON.stringify(redactedConfig(config(vars)));
          const leaks = [
            ...keys,
            ...entries.flatMap((e) => [e.secret, Buffer.from(`${e.user}:${e.password}`).toString('base64')]),
          ].filter((s) => json.includes(s));
          assert.deepEqual(leaks, [], json);
          assert.ok(!json.includes('$2b$'), json);
        },
      ),
      { numRuns: 200 },
    );
  });
});
