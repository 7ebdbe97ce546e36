import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import bcrypt from 'bcrypt';
import fc from 'fast-check';
import type { EnvVars } from '../../src/config/env-source.js';
import { type ConfigResult, parseGatewayConfig } from '../../src/config/parse.js';
import { LISTENER_SPECS } from '../../src/config/settings.js';
import type { GatewayConfig } from '../../src/config/types.js';

const ENV_FILE = '/etc/edge-gateway/.env';

function parsed(vars: EnvVars): GatewayConfig {
  const result = parseGatewayConfig(vars, ENV_FILE);
  assert.ok(result.ok, `expected a valid config, got ${JSON.stringify(result)}`);
  return result.config;
}

function errorsOf(vars: EnvVars): readonly string[] {
  const result = parseGatewayConfig(vars, ENV_FILE);
  assert.equal(result.ok, false, `expected errors for ${JSON.stringify(vars)}`);
  return result.ok ? [] : result.errors;
}

function listener(config: GatewayConfig, name: string) {
  const found = config.listeners.find((candidate) => candidate.name === name);
  assert.ok(found, `listener ${name}`);
  return found;
}

describe("parseGatewayConfig defaults (the issue's table)", () => {
  test('an empty environment gives the stock defaults', () => {
    const config = parsed({});
    assert.equal(config.authMethod, 'api-key');
    assert.deepEqual(config.apiKeys, ['placeholder_api_key']);
    assert.deepEqual(config.basicCredentials, []);
    assert.equal(config.placeholderKeyInUse, true);
    assert.deepEqual(config.admin, { host: '127.0.0.1', port: 9901 });
    assert.equal(config.upstreamConnectTimeoutMs, 5000);
    assert.equal(config.upstreamTimeoutMs, 300_000);
    assert.equal(config.envFile, ENV_FILE);

    const expected = [
      ['otlp-grpc', 'h2c', 4317, 'http://otel-collector:4317'],
      ['otlp-http', 'http1', 4318, 'http://otel-collector:4318'],
      ['prometheus', 'http1', 9090, 'http://prometheus:9090'],
      ['victoriametrics', 'http1', 8428, 'http://victoriametrics:8428'],
    ] as const;
    assert.deepEqual(
      config.listeners.map((l) => l.name),
      expected.map(([name]) => name),
    );
    for (const [name, protocol, port, upstream] of expected) {
      const l = listener(config, name);
      assert.equal(l.protocol, protocol, name);
      assert.deepEqual(l.listen, { host: '0.0.0.0', port }, name);
      assert.equal(l.upstream?.origin, upstream, name);
    }
  });

  test('blank values count as unset, as compose treats VAR:-default', () => {
    const config = parsed({
      ENVOY_AUTH_METHOD: '',
      ENVOY_API_KEYS: '   ',
      OTLP_HTTP_LISTEN: '',
      PROMETHEUS_UPSTREAM: ' ',
      UPSTREAM_TIMEOUT: '',
    });
    assert.equal(config.authMethod, 'api-key');
    assert.deepEqual(config.apiKeys, ['placeholder_api_key']);
    assert.deepEqual(listener(config, 'otlp-http').listen, { host: '0.0.0.0', port: 4318 });
    assert.equal(listener(config, 'prometheus').upstream?.origin, 'http://prometheus:9090');
    assert.equal(config.upstreamTimeoutMs, 300_000);
  });

  test("the listener specs carry the contract's variable names", () => {
    assert.deepEqual(
      LISTENER_SPECS.map((spec) => spec.prefix),
      ['OTLP_GRPC', 'OTLP_HTTP', 'PROMETHEUS', 'VICTORIAMETRICS'],
    );
  });
});

describe('parseGatewayConfig values', () => {
  test('every variable of the contract is read', () => {
    const config = parsed({
      ENVOY_AUTH_METHOD: 'any',
      ENVOY_API_KEYS: 'k1, k2',
      ENVOY_BASIC_AUTH_CREDENTIALS: 'admin:pw',
      OTLP_GRPC_LISTEN: '127.0.0.1:14317',
      OTLP_GRPC_UPSTREAM: 'http://127.0.0.1:24317',
      OTLP_HTTP_LISTEN: ':14318',
      OTLP_HTTP_UPSTREAM: 'http://127.0.0.1:24318',
      PROMETHEUS_LISTEN: '[::1]:19090',
      PROMETHEUS_UPSTREAM: 'http://[::1]:29090',
      VICTORIAMETRICS_LISTEN: 'localhost:18428',
      VICTORIAMETRICS_UPSTREAM: 'https://vm.example.com:443',
      ADMIN_LISTEN: '127.0.0.1:19901',
      UPSTREAM_CONNECT_TIMEOUT: '250ms',
      UPSTREAM_TIMEOUT: '2m',
    });
    assert.equal(config.authMethod, 'any');
    assert.deepEqual(config.apiKeys, ['k1', 'k2']);
    assert.deepEqual(config.basicCredentials, [{ user: 'admin', kind: 'plain', password: 'pw' }]);
    assert.equal(config.placeholderKeyInUse, false);
    assert.deepEqual(listener(config, 'otlp-grpc').listen, { host: '127.0.0.1', port: 14317 });
    assert.equal(listener(config, 'otlp-grpc').upstream?.origin, 'http://127.0.0.1:24317');
    assert.deepEqual(listener(config, 'otlp-http').listen, { host: '0.0.0.0', port: 14318 });
    assert.equal(listener(config, 'otlp-http').upstream?.origin, 'http://127.0.0.1:24318');
    assert.deepEqual(listener(config, 'prometheus').listen, { host: '::1', port: 19090 });
    assert.equal(listener(config, 'prometheus').upstream?.origin, 'http://[::1]:29090');
    assert.deepEqual(listener(config, 'victoriametrics').listen, { host: 'localhost', port: 18428 });
    assert.equal(listener(config, 'victoriametrics').upstream?.origin, 'https://vm.example.com');
    assert.deepEqual(config.admin, { host: '127.0.0.1', port: 19901 });
    assert.equal(config.upstreamConnectTimeoutMs, 250);
    assert.equal(config.upstreamTimeoutMs, 120_000);
  });

  test('auth method is case-insensitive and trimmed', () => {
    assert.equal(parsed({ ENVOY_AUTH_METHOD: ' API-KEY ' }).authMethod, 'api-key');
    assert.equal(
      parsed({ ENVOY_AUTH_METHOD: 'Basic-Auth', ENVOY_BASIC_AUTH_CREDENTIALS: 'a:b' }).authMethod,
      'basic-auth',
    );
    assert.equal(parsed({ ENVOY_AUTH_METHOD: 'ANY' }).authMethod, 'any');
  });

  test('an _UPSTREAM of off disables that listener and frees its port', () => {
    const config = parsed({
      PROMETHEUS_UPSTREAM: 'off',
      OTLP_GRPC_UPSTREAM: 'OFF',
      ADMIN_LISTEN: '127.0.0.1:9090',
    });
    assert.equal(listener(config, 'prometheus').upstream, null);
    assert.equal(listener(config, 'otlp-grpc').upstream, null);
    assert.notEqual(listener(config, 'otlp-http').upstream, null);
  });

  test('bcrypt users are kept as hashes', () => {
    const hash = bcrypt.hashSync('pw', 4);
    const config = parsed({ ENVOY_AUTH_METHOD: 'basic-auth', ENVOY_BASIC_AUTH_CREDENTIALS: `admin:${hash}` });
    assert.deepEqual(config.basicCredentials, [{ user: 'admin', kind: 'bcrypt', hash }]);
  });

  test('placeholder key flag', () => {
    assert.equal(parsed({}).placeholderKeyInUse, true);
    assert.equal(parsed({ ENVOY_API_KEYS: 'real,placeholder_api_key' }).placeholderKeyInUse, true);
    assert.equal(parsed({ ENVOY_AUTH_METHOD: 'any' }).placeholderKeyInUse, true);
    assert.equal(parsed({ ENVOY_API_KEYS: 'real' }).placeholderKeyInUse, false);
    // In basic-auth mode keys are not accepted, so the placeholder is no risk.
    assert.equal(
      parsed({ ENVOY_AUTH_METHOD: 'basic-auth', ENVOY_BASIC_AUTH_CREDENTIALS: 'a:b' }).placeholderKeyInUse,
      false,
    );
  });

  test('the config is deeply frozen', () => {
    const config = parsed({ ENVOY_BASIC_AUTH_CREDENTIALS: 'a:b' });
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.apiKeys));
    assert.ok(Object.isFrozen(config.basicCredentials));
    assert.ok(Object.isFrozen(config.basicCredentials[0]));
    assert.ok(Object.isFrozen(config.listeners));
    assert.ok(Object.isFrozen(config.listeners[0]));
    assert.ok(Object.isFrozen(config.listeners[0]?.listen));
    assert.ok(Object.isFrozen(config.admin));
    assert.throws(() => {
      (config.apiKeys as string[]).push('sneaky');
    }, TypeError);
    assert.throws(() => {
      (config as { authMethod: string }).authMethod = 'any';
    }, TypeError);
  });
});

describe('parseGatewayConfig errors', () => {
  const badValues: Array<[string, string]> = [
    ['ENVOY_AUTH_METHOD', 'oauth'],
    ['OTLP_GRPC_LISTEN', 'nonsense'],
    ['OTLP_GRPC_UPSTREAM', 'ftp://x'],
    ['OTLP_HTTP_LISTEN', ':0'],
    ['OTLP_HTTP_UPSTREAM', 'not a url'],
    ['PROMETHEUS_LISTEN', '[zz]:9090'],
    ['PROMETHEUS_UPSTREAM', 'http://prometheus:9090/path'],
    ['VICTORIAMETRICS_LISTEN', '8428'],
    ['VICTORIAMETRICS_UPSTREAM', 'http://u:p@vm:8428'],
    ['ADMIN_LISTEN', 'localhost'],
    ['UPSTREAM_CONNECT_TIMEOUT', '5 seconds'],
    ['UPSTREAM_TIMEOUT', '0'],
    ['ENVOY_API_KEYS', 'has space'],
    ['ENVOY_BASIC_AUTH_CREDENTIALS', 'nocolon'],
    ['AUTH_FAILURE_LIMIT', '-1'],
    ['AUTH_FAILURE_LIMIT', 'twenty'],
    ['AUTH_FAILURE_WINDOW', '0s'],
    ['CLIENT_HEADER_TIMEOUT', 'never'],
    ['CLIENT_BODY_TIMEOUT', '0'],
    ['CLIENT_IDLE_TIMEOUT', '1 minute'],
    ['UPSTREAM_ERROR_BODIES', 'show'],
  ];
  for (const [name, value] of badValues) {
    test(`${name}=${value} gives one message naming the variable`, () => {
      const errors = errorsOf({ [name]: value });
      assert.equal(errors.length, 1, JSON.stringify(errors));
      assert.ok(errors[0]?.startsWith(`${name}`), errors[0]);
    });
  }

  test('ENVOY_AUTH_METHOD message lists the choices', () => {
    assert.deepEqual(errorsOf({ ENVOY_AUTH_METHOD: 'oauth' }), [
      'ENVOY_AUTH_METHOD: must be one of api-key, basic-auth, any, got "oauth"',
    ]);
  });

  test('the stock credentials message', () => {
    assert.deepEqual(errorsOf({ ENVOY_BASIC_AUTH_CREDENTIALS: 'admin:pw,bob' }), [
      "ENVOY_BASIC_AUTH_CREDENTIALS entry 2: missing ':' between user and password",
    ]);
  });

  test('all errors are collected at once', () => {
    const errors = errorsOf({
      ENVOY_AUTH_METHOD: 'nope',
      OTLP_HTTP_LISTEN: 'bad',
      PROMETHEUS_UPSTREAM: 'bad',
      UPSTREAM_TIMEOUT: 'forever',
      ENVOY_BASIC_AUTH_CREDENTIALS: 'x',
    });
    assert.equal(errors.length, 5, JSON.stringify(errors));
    for (const prefix of [
      'ENVOY_AUTH_METHOD',
      'OTLP_HTTP_LISTEN',
      'PROMETHEUS_UPSTREAM',
      'UPSTREAM_TIMEOUT',
      'ENVOY_BASIC_AUTH_CREDENTIALS',
    ]) {
      assert.equal(errors.filter((e) => e.startsWith(prefix)).length, 1, prefix);
    }
  });

  test('basic-auth with no users is an error', () => {
    assert.deepEqual(errorsOf({ ENVOY_AUTH_METHOD: 'basic-auth' }), [
      'ENVOY_BASIC_AUTH_CREDENTIALS: ENVOY_AUTH_METHOD is basic-auth but no user is configured (expected user:password,... or GATEWAY_USER_<NAME>)',
    ]);
    assert.equal(
      errorsOf({ ENVOY_AUTH_METHOD: 'basic-auth', ENVOY_BASIC_AUTH_CREDENTIALS: ' , ' }).length,
      1,
    );
  });

  test('basic-auth with only bad entries reports the entries, not also "no user"', () => {
    assert.deepEqual(errorsOf({ ENVOY_AUTH_METHOD: 'basic-auth', ENVOY_BASIC_AUTH_CREDENTIALS: 'x' }), [
      "ENVOY_BASIC_AUTH_CREDENTIALS entry 1: missing ':' between user and password",
    ]);
  });

  test('two enabled listeners on one port clash', () => {
    assert.deepEqual(errorsOf({ OTLP_HTTP_LISTEN: ':9090' }), [
      'PROMETHEUS_LISTEN: port 9090 is already used by OTLP_HTTP_LISTEN',
    ]);
    assert.deepEqual(errorsOf({ ADMIN_LISTEN: '127.0.0.1:4317' }), [
      'ADMIN_LISTEN: port 4317 is already used by OTLP_GRPC_LISTEN',
    ]);
  });

  test('a disabled listener does not clash', () => {
    parsed({ OTLP_HTTP_LISTEN: ':9090', PROMETHEUS_UPSTREAM: 'off' });
  });

  test('errors never contain a key or a password', () => {
    const secrets = ['k3y-with space', 'hunter2hunter2', '$2b$10$tooShortToBeAHashhhhhhhh'];
    const errors = errorsOf({
      ENVOY_API_KEYS: `${secrets[0]},dup-key,dup-key`,
      ENVOY_BASIC_AUTH_CREDENTIALS: `:${secrets[1]},bob:${secrets[2]}`,
      ENVOY_AUTH_METHOD: 'basic-auth',
    });
    assert.equal(errors.length, 4, JSON.stringify(errors));
    for (const error of errors) {
      for (const secret of [...secrets, 'dup-key', 'hunter2']) assert.ok(!error.includes(secret), error);
    }
  });
});

const VARIABLES = [
  'ENVOY_AUTH_METHOD',
  'ENVOY_API_KEYS',
  'ENVOY_BASIC_AUTH_CREDENTIALS',
  ...LISTENER_SPECS.flatMap((spec) => [`${spec.prefix}_LISTEN`, `${spec.prefix}_UPSTREAM`]),
  'ADMIN_LISTEN',
  'UPSTREAM_CONNECT_TIMEOUT',
  'UPSTREAM_TIMEOUT',
  'LOG_LEVEL',
  'LOG_FORMAT',
  'ACCESS_LOG',
  'AUTH_FAILURE_LIMIT',
  'AUTH_FAILURE_WINDOW',
  'CLIENT_HEADER_TIMEOUT',
  'CLIENT_BODY_TIMEOUT',
  'CLIENT_IDLE_TIMEOUT',
  'TLS_CERT_FILE',
  'TLS_KEY_FILE',
  'UPSTREAM_ERROR_BODIES',
];

describe('parseGatewayConfig properties', () => {
  const value = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.constantFrom(
      'off',
      'any',
      'basic-auth',
      ':0',
      ':4318',
      '[::1]:1',
      'http://h:1',
      '5s',
      'a:b',
      ':',
      ',',
    ),
  );
  const vars = fc.dictionary(fc.constantFrom(...VARIABLES), value, { maxKeys: VARIABLES.length });

  test('never throws, and answers either a frozen config or at least one message naming a variable', () => {
    fc.assert(
      fc.property(vars, (env) => {
        const result: ConfigResult = parseGatewayConfig(env, ENV_FILE);
        if (result.ok) {
          assert.ok(Object.isFrozen(result.config));
          assert.equal(result.config.listeners.length, 4);
        } else {
          assert.ok(result.errors.length > 0);
          for (const error of result.errors) {
            assert.ok(
              VARIABLES.some((name) => error.startsWith(name)),
              `message does not name a variable: ${error}`,
            );
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  test('unknown variables, including prototype names, are ignored', () => {
    fc.assert(
      fc.property(
        fc.dictionary(
          fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty')),
          fc.string(),
        ),
        (env) => {
          const clean = Object.fromEntries(Object.entries(env).filter(([name]) => !VARIABLES.includes(name)));
          const result = parseGatewayConfig(clean, ENV_FILE);
          assert.ok(result.ok, JSON.stringify(result));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('parseGatewayConfig: limits, client timeouts and TLS', () => {
  test('defaults: 20 failures per minute, 30s headers, 60s body silence, 65s idle, no TLS', () => {
    const config = parsed({});
    assert.equal(config.authFailureLimit, 20);
    assert.equal(config.authFailureWindowMs, 60_000);
    assert.equal(config.clientHeaderTimeoutMs, 30_000);
    assert.equal(config.clientBodyTimeoutMs, 60_000);
    assert.equal(config.clientIdleTimeoutMs, 65_000);
    assert.equal(config.tls, null);
    assert.equal(config.upstreamErrorBodies, 'hide');
    assert.equal(parsed({ UPSTREAM_ERROR_BODIES: ' Pass ' }).upstreamErrorBodies, 'pass');
  });

  test('every setting is read', () => {
    const config = parsed({
      AUTH_FAILURE_LIMIT: '0',
      AUTH_FAILURE_WINDOW: '90s',
      CLIENT_HEADER_TIMEOUT: '5s',
      CLIENT_BODY_TIMEOUT: '2m',
      CLIENT_IDLE_TIMEOUT: '500ms',
      TLS_CERT_FILE: ' /etc/tls/cert.pem ',
      TLS_KEY_FILE: '/etc/tls/key.pem',
    });
    assert.equal(config.authFailureLimit, 0);
    assert.equal(config.authFailureWindowMs, 90_000);
    assert.equal(config.clientHeaderTimeoutMs, 5000);
    assert.equal(config.clientBodyTimeoutMs, 120_000);
    assert.equal(config.clientIdleTimeoutMs, 500);
    assert.deepEqual(config.tls, { certFile: '/etc/tls/cert.pem', keyFile: '/etc/tls/key.pem' });
  });

  test('TLS files come in pairs: each half alone names the missing one', () => {
    assert.deepEqual(errorsOf({ TLS_CERT_FILE: '/c.pem' }), [
      'TLS_KEY_FILE: TLS_CERT_FILE is set, so TLS_KEY_FILE must name the private key file too (both or neither)',
    ]);
    assert.deepEqual(errorsOf({ TLS_KEY_FILE: '/k.pem', TLS_CERT_FILE: '  ' }), [
      'TLS_CERT_FILE: TLS_KEY_FILE is set, so TLS_CERT_FILE must name the certificate file too (both or neither)',
    ]);
  });

  test('AUTH_FAILURE_LIMIT message gives the range', () => {
    assert.deepEqual(errorsOf({ AUTH_FAILURE_LIMIT: '2000000' }), [
      'AUTH_FAILURE_LIMIT: must be between 0 and 1000000, got 2000000',
    ]);
  });
});
