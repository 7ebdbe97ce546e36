import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadGatewayConfig } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'load-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function envFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('loadGatewayConfig', () => {
  test('no env file: process environment and defaults', () => {
    const result = loadGatewayConfig({ GATEWAY_ENV_FILE: join(dir, 'missing.env'), ENVOY_API_KEYS: 'pk' });
    assert.ok(result.ok, JSON.stringify(result));
    assert.deepEqual(result.config.apiKeys, ['pk']);
    assert.equal(result.config.envFile, join(dir, 'missing.env'));
  });

  test('GATEWAY_ENV_FILE is read and its values win over the process environment', () => {
    const file = envFile(
      'gw.env',
      'ENVOY_API_KEYS=" file-key-1 , file-key-2 "\nENVOY_AUTH_METHOD=any # both kinds\n',
    );
    const result = loadGatewayConfig({
      GATEWAY_ENV_FILE: file,
      ENVOY_API_KEYS: 'process-key',
      ENVOY_AUTH_METHOD: 'basic-auth',
      UPSTREAM_TIMEOUT: '10s',
    });
    assert.ok(result.ok, JSON.stringify(result));
    assert.deepEqual(result.config.apiKeys, ['file-key-1', 'file-key-2']);
    assert.equal(result.config.authMethod, 'any');
    assert.equal(result.config.upstreamTimeoutMs, 10_000);
    assert.equal(result.config.envFile, file);
  });

  test('an explicit file wins over GATEWAY_ENV_FILE', () => {
    const chosen = envFile('chosen.env', 'ENVOY_API_KEYS=chosen\n');
    const ignored = envFile('ignored.env', 'ENVOY_API_KEYS=ignored\n');
    const result = loadGatewayConfig({ GATEWAY_ENV_FILE: ignored }, chosen);
    assert.ok(result.ok);
    assert.deepEqual(result.config.apiKeys, ['chosen']);
  });

  test('a bad value in the file is reported naming the variable', () => {
    const file = envFile('bad.env', 'UPSTREAM_CONNECT_TIMEOUT=soon\n');
    const result = loadGatewayConfig({ GATEWAY_ENV_FILE: file });
    assert.equal(result.ok, false);
    if (!result.ok) {
      assert.equal(result.errors.length, 1);
      assert.match(result.errors[0] ?? '', /^UPSTREAM_CONNECT_TIMEOUT: /);
    }
  });

  test('an unreadable env file is an error value, not an exception', () => {
    const result = loadGatewayConfig({ GATEWAY_ENV_FILE: dir });
    assert.equal(result.ok, false);
    if (!result.ok) assert.deepEqual(result.errors, [`cannot read env file ${dir}: EISDIR`]);
  });
});
