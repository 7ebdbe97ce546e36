import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { parse } from 'dotenv';
import type { EnvVars } from '../../src/config/env-source.js';
import { parseGatewayConfig } from '../../src/config/parse.js';
import { SETTINGS } from '../../src/config/settings.js';
import {
  editDistance,
  NOT_GATEWAY_SETTINGS,
  unknownSettingWarnings,
} from '../../src/config/unknown-settings.js';
import { readRepoFile } from '../deploy/support.js';
import { startGatewayFor } from '../e2e/fixtures.js';
import { waitForLogLines, waitForReloads, writeEnvFile } from '../e2e/operations/helpers.js';
import { metricSum } from '../hostile/support.js';

/**
 * Issue 11 item 3: `ENVOY_API_KEYS= , ,` started a gateway nobody could get into and `check`
 * said it was fine; `ENVOY_API_KEY=`, `ENVOY_AUTH_METOD=`, `OTLP_GRPC_UPSTREM=` were ignored
 * without a word.
 */

function errorsOf(vars: EnvVars): readonly string[] {
  const result = parseGatewayConfig(vars, '/test/.env');
  assert.equal(result.ok, false, `expected errors for ${JSON.stringify(vars)}`);
  return result.ok ? [] : result.errors;
}

function warningsOf(vars: EnvVars): readonly string[] {
  const result = parseGatewayConfig(vars, '/test/.env');
  assert.ok(result.ok, JSON.stringify(result));
  return result.warnings;
}

describe('zero credentials for the active method is an error (issue 11 item 3)', () => {
  test('api-key: a list of only commas and spaces names ENVOY_API_KEYS', () => {
    for (const keys of [' , ,', ',', ' ,\t, ']) {
      assert.deepEqual(errorsOf({ ENVOY_API_KEYS: keys }), [
        'ENVOY_API_KEYS: ENVOY_AUTH_METHOD is api-key but the list holds no key (only commas and spaces) and no GATEWAY_KEY_<NAME> is set: nobody could authenticate',
      ]);
    }
    // Users do not help: api-key does not accept them.
    assert.equal(errorsOf({ ENVOY_API_KEYS: ' , ,', ENVOY_BASIC_AUTH_CREDENTIALS: 'alice:pw' }).length, 1);
  });

  test('any: an error only when there is neither a key nor a user', () => {
    assert.match(
      errorsOf({ ENVOY_AUTH_METHOD: 'any', ENVOY_API_KEYS: ' , ,' })[0] ?? '',
      /^ENVOY_API_KEYS: ENVOY_AUTH_METHOD is any but the list holds no key and ENVOY_BASIC_AUTH_CREDENTIALS no user/,
    );
    const config = parseGatewayConfig(
      { ENVOY_AUTH_METHOD: 'any', ENVOY_API_KEYS: ',', ENVOY_BASIC_AUTH_CREDENTIALS: 'alice:pw' },
      '/test/.env',
    );
    assert.ok(config.ok, JSON.stringify(config));
    assert.deepEqual(config.config.apiKeys, []);
  });

  test('basic-auth: an empty user list names ENVOY_BASIC_AUTH_CREDENTIALS; its keys may be empty', () => {
    assert.match(
      errorsOf({ ENVOY_AUTH_METHOD: 'basic-auth', ENVOY_BASIC_AUTH_CREDENTIALS: ' , ,' })[0] ?? '',
      /^ENVOY_BASIC_AUTH_CREDENTIALS: ENVOY_AUTH_METHOD is basic-auth but no user/,
    );
    warningsOf({
      ENVOY_AUTH_METHOD: 'basic-auth',
      ENVOY_API_KEYS: ' , ',
      ENVOY_BASIC_AUTH_CREDENTIALS: 'a:b',
    });
  });

  test('a blank value is unset, as before: the default (the placeholder key) applies', () => {
    const result = parseGatewayConfig({ ENVOY_API_KEYS: '   ' }, '/test/.env');
    assert.ok(result.ok);
    assert.deepEqual(result.config.apiKeys, ['placeholder_api_key']);
  });
});

describe('unknown variables with the gateway prefixes get a warning (issue 11 item 3)', () => {
  test("the issue's misspellings: the closest setting is named", () => {
    assert.deepEqual(
      warningsOf({
        ENVOY_API_KEY: 'secret-key-value',
        ENVOY_AUTH_METOD: 'basic-auth',
        OTLP_GRPC_UPSTREM: 'http://collector:4317',
        AUTH_FAILURE_LIMIT_EXEMTP: '10.0.0.0/8',
      }),
      [
        'AUTH_FAILURE_LIMIT_EXEMTP: unknown setting; did you mean AUTH_FAILURE_LIMIT_EXEMPT?',
        'ENVOY_API_KEY: unknown setting; did you mean ENVOY_API_KEYS?',
        'ENVOY_AUTH_METOD: unknown setting; did you mean ENVOY_AUTH_METHOD?',
        'OTLP_GRPC_UPSTREM: unknown setting; did you mean OTLP_GRPC_UPSTREAM?',
      ],
    );
  });

  test('a name far from every setting is warned about without a guess', () => {
    assert.deepEqual(warningsOf({ LOG_DESTINATION: 'syslog' }), [
      'LOG_DESTINATION: unknown setting (every setting is listed in .env.example)',
    ]);
  });

  test('a warning names the variable, never its value', () => {
    const [warning = ''] = warningsOf({ ENVOY_API_KEY: 'k-4f1c9e-must-not-appear' });
    assert.doesNotMatch(warning, /must-not-appear/);
  });

  test('no warning for settings, reserved named credentials, the compose variables, or other programs', () => {
    const vars: Record<string, string> = Object.fromEntries(SETTINGS.map((setting) => [setting.name, '']));
    Object.assign(vars, {
      GATEWAY_KEY_CHECKOUT_SERVICE: 'x',
      GATEWAY_USER_GRAFANA: 'x',
      GATEWAY_ENV_FILE: '/etc/edge-gateway/.env',
      PATH: '/usr/bin',
      HOME: '/root',
      NODE_ENV: 'production',
      COMPOSE_PROFILES: 'full',
      HOSTNAME: 'gw',
    });
    for (const name of NOT_GATEWAY_SETTINGS) vars[name] = 'x';
    assert.deepEqual(unknownSettingWarnings(vars), []);
  });

  test('the variables docker compose and the preflight read beside the gateway are exactly the ones exempted', () => {
    const compose = readRepoFile('docker-compose.yaml');
    const others = new Set([...compose.matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)].map((match) => match[1] ?? ''));
    for (const profile of ['full', 'no-prometheus', 'no-collector', 'no-vm', 'vm-only', 'prom-only']) {
      for (const name of Object.keys(parse(readRepoFile(`config/gateway/${profile}.env`)))) others.add(name);
    }
    for (const match of compose.matchAll(/^ {6}([A-Z][A-Z0-9_]*): /gm)) others.add(match[1] ?? '');
    const settings = new Set(SETTINGS.map((setting) => setting.name));
    assert.deepEqual(
      [...others].filter((name) => !settings.has(name)).sort(),
      [...NOT_GATEWAY_SETTINGS].sort(),
    );
  });

  test('prototype names and odd keys neither throw nor warn', () => {
    const vars = JSON.parse('{"__proto__": "x", "constructor": "y", "toString": "z"}') as EnvVars;
    assert.deepEqual(unknownSettingWarnings(vars), []);
  });

  test('editDistance', () => {
    const f = (a: string, b: string, want: number): void =>
      assert.equal(editDistance(a, b), want, `${a} ${b}`);
    f('', '', 0);
    f('abc', '', 3);
    f('', 'abc', 3);
    f('kitten', 'sitting', 3);
    f('ENVOY_API_KEY', 'ENVOY_API_KEYS', 1);
    f('METOD', 'METHOD', 1);
    f('ab', 'ba', 2);
  });
});

const WARNINGS = 'configuration warnings';

for (const workers of ['1', '2']) {
  describe(`WORKERS=${workers}: the gateway logs the warnings at start and at each reload (issue 11 item 3)`, () => {
    const key = `misspelt-settings-key-${workers}-8f2c41d9e7`;
    const started = startGatewayFor(
      {},
      { WORKERS: workers, OTLP_HTTP_UPSTREAM: 'http://127.0.0.1:9' },
      [`ENVOY_API_KEYS=${key}`, `ENVOY_API_KEY=${key}`, ''].join('\n'),
    );
    after(async () => (await started).stop());

    test('at start: one warning line naming the misspelt variable, not its value', async () => {
      const gateway = await started;
      const [line] = await waitForLogLines(gateway, 0, (candidate) => candidate.msg === WARNINGS);
      assert.equal(line?.level, 40);
      assert.deepEqual(line?.warnings, ['ENVOY_API_KEY: unknown setting; did you mean ENVOY_API_KEYS?']);
      assert.ok(!JSON.stringify(line).includes(key));
    });

    test("at reload: the new file's warnings", async () => {
      const gateway = await started;
      const offset = gateway.output().length;
      const reloads = await metricSum(gateway, 'gateway_config_reloads_total');
      await writeEnvFile(gateway.envFile, `ENVOY_API_KEYS=${key}\nOTLP_GRPC_UPSTREM=off\n`);
      await waitForReloads(gateway, reloads + 1, 10_000);
      const [line] = await waitForLogLines(gateway, offset, (candidate) => candidate.msg === WARNINGS);
      assert.deepEqual(line?.warnings, [
        'OTLP_GRPC_UPSTREM: unknown setting; did you mean OTLP_GRPC_UPSTREAM?',
      ]);
    });
  });
}
