import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { assertNoSecret, runCli, tempDir } from './run-cli.js';

const files = tempDir();
after(() => files.remove());

const KEY = /^[A-Za-z0-9_-]{43}$/;

function keysFrom(stdout: string): string[] {
  assert.ok(stdout.endsWith('\n'), 'ends with a newline');
  return stdout.slice(0, -1).split('\n');
}

describe('edge-gateway gen-key', () => {
  test('prints one URL-safe key of 256 bits', () => {
    const result = runCli(['gen-key']);

    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '');
    const keys = keysFrom(result.stdout);
    assert.equal(keys.length, 1);
    const [key = ''] = keys;
    assert.match(key, KEY);
    assert.equal(Buffer.from(key, 'base64url').length, 32);
  });

  test('--count N prints N distinct keys, and no two runs repeat one', () => {
    const first = keysFrom(runCli(['gen-key', '--count', '50']).stdout);
    const second = keysFrom(runCli(['gen-key', '--count', '50']).stdout);

    assert.equal(first.length, 50);
    for (const key of first) assert.match(key, KEY);
    assert.equal(new Set([...first, ...second]).size, 100);
  });

  test('its keys are accepted as ENVOY_API_KEYS by check, and check does not print them', () => {
    const keys = keysFrom(runCli(['gen-key', '--count', '2']).stdout);
    const envFile = files.envFile('generated.env', [`ENVOY_API_KEYS=${keys.join(',')}`]);
    const result = runCli(['check', '--env', envFile]);

    assert.equal(result.status, 0, result.stderr);
    assertNoSecret(result, keys);
    assert.match(result.stdout, /API keys\s+2 \(/);
    assert.doesNotMatch(result.stdout, /placeholder/);
  });

  test('--count outside 1..1000 is a usage error', () => {
    for (const count of ['0', '1001', 'many', '2.5']) {
      const result = runCli(['gen-key', '--count', count]);
      assert.equal(result.status, 2, count);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /error: option '--count <n>' argument .* is invalid/);
    }
  });
});
