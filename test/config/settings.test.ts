import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { EnvVars } from '../../src/config/env-source.js';
import { parseGatewayConfig } from '../../src/config/parse.js';
import { mergeReloadable, settingsNeedingRestart } from '../../src/config/restart-needed.js';
import { GATEWAY_ENV_FILE, SETTINGS } from '../../src/config/settings.js';
import { SETTINGS_BEGIN, SETTINGS_END, settingsMarkdownTable } from '../../src/config/settings-doc.js';
import type { GatewayConfig } from '../../src/config/types.js';
import { SETTING_PREFIXES } from '../../src/config/unknown-settings.js';

/**
 * Issue 11 item 3: one table of settings drives parsing, the reload's restart decisions and
 * merge, `check`, the unknown-variable warning and the README's table. These tests hold the
 * table and everything it drives together, so a setting added to the table is everywhere.
 */

const ENV_FILE = '/etc/edge-gateway/.env';

function parsed(vars: EnvVars): GatewayConfig {
  const result = parseGatewayConfig(vars, ENV_FILE);
  assert.ok(result.ok, JSON.stringify(result));
  return result.config;
}

/** A valid value other than the default, for every setting (with what it needs beside it). */
const OTHER_VALUE: Readonly<Record<string, EnvVars>> = {
  ENVOY_AUTH_METHOD: { ENVOY_AUTH_METHOD: 'any' },
  ENVOY_API_KEYS: { ENVOY_API_KEYS: 'key-one,key-two' },
  ENVOY_BASIC_AUTH_CREDENTIALS: { ENVOY_BASIC_AUTH_CREDENTIALS: 'alice:pw' },
  OTLP_GRPC_LISTEN: { OTLP_GRPC_LISTEN: '127.0.0.1:14317' },
  OTLP_GRPC_UPSTREAM: { OTLP_GRPC_UPSTREAM: 'off' },
  OTLP_HTTP_LISTEN: { OTLP_HTTP_LISTEN: '127.0.0.1:14318' },
  OTLP_HTTP_UPSTREAM: { OTLP_HTTP_UPSTREAM: 'http://127.0.0.1:24318' },
  PROMETHEUS_LISTEN: { PROMETHEUS_LISTEN: '[::1]:19090' },
  PROMETHEUS_UPSTREAM: { PROMETHEUS_UPSTREAM: 'http://[::1]:29090' },
  VICTORIAMETRICS_LISTEN: { VICTORIAMETRICS_LISTEN: ':18428' },
  VICTORIAMETRICS_UPSTREAM: { VICTORIAMETRICS_UPSTREAM: 'https://vm.example.com' },
  ADMIN_LISTEN: { ADMIN_LISTEN: '127.0.0.1:19901' },
  METRICS_LISTEN: { METRICS_LISTEN: '127.0.0.1:19902' },
  UPSTREAM_CONNECT_TIMEOUT: { UPSTREAM_CONNECT_TIMEOUT: '250ms' },
  UPSTREAM_TIMEOUT: { UPSTREAM_TIMEOUT: '2m' },
  UPSTREAM_ERROR_BODIES: { UPSTREAM_ERROR_BODIES: 'pass' },
  CLIENT_HEADER_TIMEOUT: { CLIENT_HEADER_TIMEOUT: '5s' },
  CLIENT_BODY_TIMEOUT: { CLIENT_BODY_TIMEOUT: '2m' },
  CLIENT_IDLE_TIMEOUT: { CLIENT_IDLE_TIMEOUT: '500ms' },
  CLIENT_SEND_TIMEOUT: { CLIENT_SEND_TIMEOUT: '90s' },
  MAX_CONNECTIONS_PER_CLIENT: { MAX_CONNECTIONS_PER_CLIENT: '0' },
  AUTH_FAILURE_LIMIT: { AUTH_FAILURE_LIMIT: '5' },
  AUTH_FAILURE_WINDOW: { AUTH_FAILURE_WINDOW: '10m' },
  AUTH_FAILURE_LIMIT_EXEMPT: { AUTH_FAILURE_LIMIT_EXEMPT: '10.0.0.0/8, ::1' },
  TLS_CERT_FILE: { TLS_CERT_FILE: '/tls/cert.pem', TLS_KEY_FILE: '/tls/key.pem' },
  TLS_KEY_FILE: { TLS_CERT_FILE: '/tls/cert.pem', TLS_KEY_FILE: '/tls/key.pem' },
  DRAIN_TIMEOUT: { DRAIN_TIMEOUT: '1m' },
  WORKERS: { WORKERS: '255' },
  LIMIT_STORE: { LIMIT_STORE: 'redis://redis:6379' },
  LOG_LEVEL: { LOG_LEVEL: 'debug' },
  LOG_FORMAT: { LOG_FORMAT: 'json' },
  ACCESS_LOG: { ACCESS_LOG: 'off' },
};

/** Settings that a GatewayConfig built from the same file always shares (read before the file). */
const SAME_FOR_EVERY_FILE = new Set([GATEWAY_ENV_FILE.name]);

describe('the settings table (issue 11 item 3)', () => {
  test('names are unique, every default parses, every line of doc is one line', () => {
    assert.equal(new Set(SETTINGS.map((setting) => setting.name)).size, SETTINGS.length);
    for (const setting of SETTINGS) {
      assert.ok(setting.parse(setting.default, setting.name).ok, `${setting.name} default`);
      assert.doesNotMatch(setting.doc, /\n|\|/, `${setting.name} doc`);
    }
  });

  test('every setting has a prefix the unknown-variable warning knows', () => {
    for (const setting of SETTINGS) {
      assert.ok(
        SETTING_PREFIXES.some((prefix) => setting.name.startsWith(prefix)),
        `${setting.name}: a misspelling of it would not be warned about`,
      );
    }
  });

  test('every config field comes from the table; no field mixes live and restart settings', () => {
    const fields = new Map<string, Set<string>>();
    for (const setting of SETTINGS) {
      fields.set(setting.field, (fields.get(setting.field) ?? new Set()).add(setting.applies));
    }
    for (const [field, applies] of fields) assert.equal(applies.size, 1, `${field}: ${[...applies]}`);
    // Derived from two settings (ENVOY_AUTH_METHOD and ENVOY_API_KEYS), both live; and the
    // GATEWAY_KEY_<NAME> / GATEWAY_USER_<NAME> variables, live too (named-credentials.ts).
    const derived = ['placeholderKeyInUse', 'namedCredentials'];
    for (const field of Object.keys(parsed({}))) {
      assert.ok(fields.has(field) || derived.includes(field), `${field} is set by no setting of the table`);
    }
  });

  test('an edit of a restart setting is reported by its name and kept out; a live one applies', () => {
    assert.deepEqual(
      Object.keys(OTHER_VALUE).sort(),
      SETTINGS.filter((setting) => !SAME_FOR_EVERY_FILE.has(setting.name))
        .map((setting) => setting.name)
        .sort(),
      'a sample value for every setting',
    );
    const running = parsed({});
    for (const setting of SETTINGS.filter((candidate) => !SAME_FOR_EVERY_FILE.has(candidate.name))) {
      const next = parsed(OTHER_VALUE[setting.name] ?? {});
      assert.notEqual(setting.inForce(next), setting.inForce(running), `${setting.name} sample differs`);
      const merged = mergeReloadable(running, next);
      const restart = settingsNeedingRestart(running, next);
      if (setting.applies === 'restart') {
        assert.ok(restart.includes(setting.name), `${setting.name} needs a restart: ${restart}`);
        assert.equal(setting.inForce(merged), setting.inForce(running), `${setting.name} kept`);
      } else {
        assert.deepEqual(restart, [], `${setting.name} applies live`);
        assert.equal(setting.inForce(merged), setting.inForce(next), `${setting.name} applied`);
      }
    }
  });

  test('an unchanged configuration needs no restart and merges to itself', () => {
    const config = parsed({ TLS_CERT_FILE: '/c.pem', TLS_KEY_FILE: '/k.pem', WORKERS: '3' });
    assert.deepEqual(settingsNeedingRestart(config, config), []);
    assert.deepEqual(mergeReloadable(config, config), config);
  });

  test("README's configuration table is the generated one (npm run docs:settings rewrites it)", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const begin = readme.indexOf(SETTINGS_BEGIN);
    const end = readme.indexOf(SETTINGS_END);
    assert.ok(begin !== -1 && end > begin, 'README has the settings markers');
    assert.equal(
      readme.slice(begin + SETTINGS_BEGIN.length, end).trim(),
      settingsMarkdownTable(),
      'README is out of date: run npm run docs:settings',
    );
  });
});
