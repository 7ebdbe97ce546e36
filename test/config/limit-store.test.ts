import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { limitStoreText, parseLimitStore, redactedStoreText } from '../../src/config/limit-store.js';
import { parseGatewayConfig } from '../../src/config/parse.js';
import { redactedConfig } from '../../src/config/redact.js';
import { settingsNeedingRestart } from '../../src/config/restart-needed.js';
import type { GatewayConfig } from '../../src/config/types.js';

/* LIMIT_STORE (issue 14): memory or a Redis URL whose password never shows. */

const PASSWORD = 'pa:ss/w@rd-Secret';
const ENCODED = encodeURIComponent(PASSWORD);

function config(vars: Record<string, string>): GatewayConfig {
  const result = parseGatewayConfig({ ENVOY_API_KEYS: 'k', ...vars }, '/nonexistent/.env');
  assert.ok(result.ok, JSON.stringify(result));
  return result.config;
}

describe('LIMIT_STORE (issue 14)', () => {
  test('memory is the default; Redis URLs parse to their parts', () => {
    assert.deepEqual(config({}).limitStore, { kind: 'memory' });
    const f = (text: string, want: object) => {
      const parsed = parseLimitStore(text);
      assert.ok(parsed.ok, text);
      assert.deepEqual({ ...parsed.value }, want, text);
    };
    f(' Memory ', { kind: 'memory' });
    const plain = {
      kind: 'redis',
      tls: false,
      host: 'redis',
      port: 6379,
      username: null,
      password: null,
      db: 0,
    };
    f('redis://redis:6379', plain);
    f('redis://redis', plain);
    f(`rediss://gateway:${ENCODED}@10.0.0.5:6380/3`, {
      kind: 'redis',
      tls: true,
      host: '10.0.0.5',
      port: 6380,
      username: 'gateway',
      password: PASSWORD,
      db: 3,
    });
    f(`redis://:${ENCODED}@[::1]:7000/`, {
      kind: 'redis',
      tls: false,
      host: '::1',
      port: 7000,
      username: null,
      password: PASSWORD,
      db: 0,
    });
  });

  test('bad values are errors naming the variable that never repeat the password', () => {
    const f = (text: string, message: RegExp) => {
      const result = parseGatewayConfig({ ENVOY_API_KEYS: 'k', LIMIT_STORE: text }, '/nonexistent/.env');
      assert.ok(!result.ok, text);
      const errors = result.errors.join('\n');
      assert.match(errors, /^LIMIT_STORE: /, text);
      assert.match(errors, message, text);
      assert.ok(!errors.includes('Secret'), `${text}: ${errors}`);
    };
    f('redis-on-the-corner', /expected memory or redis:\/\//);
    f('http://redis:6379', /expected memory or redis:\/\//);
    f(`redis://u:${ENCODED}@redis:6379/zero`, /database .* whole number.*\[redacted\]/);
    f(`redis://u:${ENCODED}@redis:99999`, /expected memory/);
    f(`redis://u:${PASSWORD}@redis:6379`, /LIMIT_STORE/);
    f(`redis://u:${ENCODED}@redis:6379/0?tls=true`, /no query/);
    f(`redis://u:%E0%A4%A@redis:6379/0`, /percent-encoded/);
  });

  test('the text shown by check, /config_dump and logs hides the password', () => {
    const store = config({ LIMIT_STORE: `rediss://gateway:${ENCODED}@redis:6380/2` });
    assert.equal(limitStoreText(store.limitStore), 'rediss://gateway:[redacted]@redis:6380/2');
    assert.equal(redactedConfig(store).limit_store, 'rediss://gateway:[redacted]@redis:6380/2');
    assert.ok(!JSON.stringify(redactedConfig(store)).includes('Secret'));
    assert.equal(limitStoreText(config({ LIMIT_STORE: 'redis://redis' }).limitStore), 'redis://redis:6379/0');
    assert.equal(redactedStoreText(`redis://u:${PASSWORD}@h:1/0`), 'redis://u:[redacted]@h:1/0');
    assert.equal(redactedStoreText('redis://h:1/0'), 'redis://h:1/0');
  });

  test('a new password alone needs a restart, though the text in force is the same', () => {
    const running = config({ LIMIT_STORE: 'redis://u:one@redis:6379' });
    const next = config({ LIMIT_STORE: 'redis://u:two@redis:6379' });
    assert.deepEqual(settingsNeedingRestart(running, next), ['LIMIT_STORE']);
    assert.deepEqual(settingsNeedingRestart(running, running), []);
    assert.deepEqual(settingsNeedingRestart(running, config({})), ['LIMIT_STORE']);
  });
});
