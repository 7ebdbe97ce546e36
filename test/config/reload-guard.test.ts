import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { EnvVars } from '../../src/config/env-source.js';
import { parseGatewayConfig } from '../../src/config/parse.js';
import { type LoadedConfig, reloadRefusal } from '../../src/config/reload-guard.js';

/** A configuration as the reloader holds it: parsed from these variables. */
function loaded(vars: EnvVars): LoadedConfig {
  const result = parseGatewayConfig(vars, '/test/.env');
  assert.ok(result.ok, JSON.stringify(result));
  return { config: result.config, vars };
}

const KEY = { ENVOY_API_KEYS: 'key-one' };
const USERS = { ENVOY_BASIC_AUTH_CREDENTIALS: 'alice:pw' };

describe('reloadRefusal: a reload never lowers the gate (issue 10 §3)', () => {
  const f = (running: EnvVars, next: EnvVars, want: RegExp | null): void => {
    const refusal = reloadRefusal(loaded(running), loaded(next));
    if (want === null) assert.equal(refusal, null);
    else assert.match(refusal ?? '(allowed)', want);
  };

  test('refused', () => {
    // The file emptied (or missing): the placeholder key would be accepted.
    f(
      KEY,
      {},
      /^ENVOY_API_KEYS: the public placeholder_api_key would be accepted \(the new env file sets no ENVOY_API_KEYS\)/,
    );
    f(KEY, { ENVOY_API_KEYS: '  ' }, /^ENVOY_API_KEYS: .*sets no ENVOY_API_KEYS/);
    f(
      { ...KEY, ENVOY_AUTH_METHOD: 'any', ...USERS },
      { ENVOY_AUTH_METHOD: 'any', ...USERS },
      /^ENVOY_API_KEYS: the public placeholder_api_key/,
    );
    f(KEY, { ENVOY_API_KEYS: 'placeholder_api_key' }, /^ENVOY_API_KEYS: .*lists it in ENVOY_API_KEYS/);
    // The ENVOY_AUTH_METHOD line vanished (cut before it, or emptied): the method would change.
    f(
      { ENVOY_AUTH_METHOD: 'basic-auth', ...USERS },
      { ...USERS },
      /^ENVOY_AUTH_METHOD: the new env file no longer sets it, which would switch authentication from basic-auth to the default api-key/,
    );
    f({ ENVOY_AUTH_METHOD: 'basic-auth', ...USERS }, {}, /^ENVOY_AUTH_METHOD: /);
    f(
      { ENVOY_AUTH_METHOD: 'any', ...KEY, ...USERS },
      { ENVOY_AUTH_METHOD: '', ...KEY, ...USERS },
      /^ENVOY_AUTH_METHOD: .*from any to the default api-key/,
    );
    // No credential left for the method but the public placeholder (a list with no key at all is
    // already a parse error: test/config/empty-and-misspelt-settings.test.ts).
    f(
      { ENVOY_AUTH_METHOD: 'any', ...USERS },
      { ENVOY_AUTH_METHOD: 'any' },
      /^ENVOY_API_KEYS, ENVOY_BASIC_AUTH_CREDENTIALS: .*no credential/,
    );
  });

  test('allowed', () => {
    f(KEY, KEY, null);
    // A rotation that replaces every key at once (a leaked key) is the operator's to make.
    f(KEY, { ENVOY_API_KEYS: 'key-two' }, null);
    f(KEY, { ENVOY_API_KEYS: 'key-one,key-two' }, null);
    // An explicit change of the method, in either direction.
    f({ ENVOY_AUTH_METHOD: 'basic-auth', ...USERS }, { ENVOY_AUTH_METHOD: 'api-key', ...KEY }, null);
    f(KEY, { ENVOY_AUTH_METHOD: 'basic-auth', ...USERS }, null);
    // The line vanished but the default is the method in force: nothing changes.
    f({ ENVOY_AUTH_METHOD: 'api-key', ...KEY }, KEY, null);
    // Set in the process environment, the method cannot vanish with the file.
    f(
      { ENVOY_AUTH_METHOD: 'basic-auth', ...USERS },
      { ENVOY_AUTH_METHOD: 'basic-auth', ENVOY_BASIC_AUTH_CREDENTIALS: 'bob:pw' },
      null,
    );
    // Running on the placeholder already (the stock defaults): any edit may follow, even an empty file.
    f({}, {}, null);
    f({}, KEY, null);
    // basic-auth ignores the placeholder in ENVOY_API_KEYS.
    f(
      { ENVOY_AUTH_METHOD: 'basic-auth', ...USERS },
      { ENVOY_AUTH_METHOD: 'basic-auth', ENVOY_BASIC_AUTH_CREDENTIALS: 'bob:pw' },
      null,
    );
    // Dropping the users in `any` mode keeps the keys.
    f({ ENVOY_AUTH_METHOD: 'any', ...KEY, ...USERS }, { ENVOY_AUTH_METHOD: 'any', ...KEY }, null);
  });
});
