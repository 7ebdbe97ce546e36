import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, test } from 'node:test';
import { envFilePath, fingerprintOf, readEnvSnapshot } from '../../src/config/env-source.js';

const dir = mkdtempSync(join(tmpdir(), 'env-source-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function envFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('envFilePath', () => {
  test('defaults to ./.env, resolved against the working directory', () => {
    assert.equal(envFilePath({}), resolve('.env'));
  });

  test('GATEWAY_ENV_FILE chooses the file', () => {
    assert.equal(envFilePath({ GATEWAY_ENV_FILE: '/srv/gw.env' }), '/srv/gw.env');
    assert.equal(envFilePath({ GATEWAY_ENV_FILE: 'conf/gw.env' }), resolve('conf/gw.env'));
  });

  test('an explicit path (the -f / --env option) wins over GATEWAY_ENV_FILE', () => {
    assert.equal(envFilePath({ GATEWAY_ENV_FILE: '/srv/gw.env' }, '/other.env'), '/other.env');
  });
});

describe('readEnvSnapshot', () => {
  test('a missing file is fine: the process environment alone', () => {
    const file = join(dir, 'does-not-exist.env');
    const snapshot = readEnvSnapshot({ ENVOY_API_KEYS: 'from-process' }, file);
    assert.equal(snapshot.file, file);
    assert.equal(snapshot.fileFound, false);
    assert.deepEqual(snapshot.vars, { ENVOY_API_KEYS: 'from-process' });
    assert.equal(snapshot.fingerprint, fingerprintOf(null));
  });

  test('the fingerprint follows the file bytes, so the reloader sees every edit', () => {
    const file = envFile('fingerprint.env', 'ENVOY_API_KEYS=one\n');
    const first = readEnvSnapshot({}, file).fingerprint;
    assert.equal(readEnvSnapshot({ OTHER: 'x' }, file).fingerprint, first);
    writeFileSync(file, 'ENVOY_API_KEYS=two\n');
    const second = readEnvSnapshot({}, file).fingerprint;
    assert.notEqual(second, first);
    assert.notEqual(second, fingerprintOf(null));
    assert.equal(second, fingerprintOf(Buffer.from('ENVOY_API_KEYS=two\n')));
  });

  test('the env file overlays the process environment, and wins', () => {
    const file = envFile('wins.env', 'ENVOY_API_KEYS=from-file\nENVOY_AUTH_METHOD=any\n');
    const snapshot = readEnvSnapshot({ ENVOY_API_KEYS: 'from-process', PROMETHEUS_UPSTREAM: 'off' }, file);
    assert.equal(snapshot.fileFound, true);
    assert.deepEqual(snapshot.vars, {
      ENVOY_API_KEYS: 'from-file',
      ENVOY_AUTH_METHOD: 'any',
      PROMETHEUS_UPSTREAM: 'off',
    });
  });

  test('the process environment object is not modified', () => {
    const file = envFile('nomutate.env', 'A=1\n');
    const processEnv = { B: '2' };
    readEnvSnapshot(processEnv, file);
    assert.deepEqual(processEnv, { B: '2' });
  });

  test("dotenv's syntax: quotes, comments, export, blank lines, CRLF", () => {
    const file = envFile(
      'syntax.env',
      [
        '# a comment line',
        '',
        'PLAIN=plain value',
        "SINGLE='single # not a comment'",
        'DOUBLE="double, with comma"',
        'ESCAPED="line1\\nline2"',
        'TRAILING=value # trailing comment',
        'export EXPORTED=yes',
        '  SPACED  =  spaced  ',
        'EMPTY=',
        'CRLF=crlf\r',
        'ENVOY_BASIC_AUTH_CREDENTIALS="admin:pa#ss:word,bob:$2b$04$abc"',
      ].join('\n'),
    );
    const { vars } = readEnvSnapshot({}, file);
    assert.equal(vars.PLAIN, 'plain value');
    assert.equal(vars.SINGLE, 'single # not a comment');
    assert.equal(vars.DOUBLE, 'double, with comma');
    assert.equal(vars.ESCAPED, 'line1\nline2');
    assert.equal(vars.TRAILING, 'value');
    assert.equal(vars.EXPORTED, 'yes');
    assert.equal(vars.SPACED, 'spaced');
    assert.equal(vars.EMPTY, '');
    assert.equal(vars.CRLF, 'crlf');
    // Quoted, a '#' or '$' in a password survives; dotenv does not expand variables.
    assert.equal(vars.ENVOY_BASIC_AUTH_CREDENTIALS, 'admin:pa#ss:word,bob:$2b$04$abc');
  });

  test('an unquoted # starts a comment (operators must quote passwords containing #)', () => {
    const file = envFile('hash.env', 'ENVOY_BASIC_AUTH_CREDENTIALS=admin:pa #ss\n');
    assert.equal(readEnvSnapshot({}, file).vars.ENVOY_BASIC_AUTH_CREDENTIALS, 'admin:pa');
  });

  test('an empty value in the file still overrides the process environment', () => {
    const file = envFile('empty.env', 'ENVOY_API_KEYS=\n');
    assert.equal(readEnvSnapshot({ ENVOY_API_KEYS: 'k' }, file).vars.ENVOY_API_KEYS, '');
  });

  test('an unreadable path (a directory) is an error naming the file, not a crash', () => {
    assert.throws(() => readEnvSnapshot({}, dir), {
      message: `cannot read env file ${dir}: EISDIR`,
    });
  });
});
