import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningGateway } from '../support/gateway.js';
import { type OtlpReceiver, startOtlpReceiver } from '../support/otlp-receiver.js';
import { basic, startGatewayFor } from './fixtures.js';

const KEY = 'admin-suite-key-Zq';
const PASSWORD = 'admin-suite-password-Xw';

describe('the admin port', () => {
  let receiver: OtlpReceiver;
  let gateway: RunningGateway;

  before(async () => {
    receiver = await startOtlpReceiver();
    gateway = await startGatewayFor(
      { grpc: receiver.grpcUrl, http: receiver.httpUrl },
      { ENVOY_AUTH_METHOD: 'any', ENVOY_API_KEYS: KEY, ENVOY_BASIC_AUTH_CREDENTIALS: `ops:${PASSWORD}` },
    );
  });
  after(async () => {
    await gateway?.stop();
    await receiver?.stop();
  });

  test('GET /ready answers 200 LIVE once every enabled listener is bound', async () => {
    const response = await fetch(`${gateway.url('admin')}/ready`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'LIVE');
  });

  test('GET /metrics and /stats/prometheus: requests, auth failures, upstream latency, in-flight', async () => {
    await fetch(`${gateway.url('http')}/v1/traces`, { method: 'POST', headers: { 'x-api-key': 'nope' } });
    await fetch(`${gateway.url('http')}/v1/traces`, {
      method: 'POST',
      headers: { authorization: basic('ops', PASSWORD), 'content-type': 'application/json' },
      body: '{"resourceSpans":[]}',
    });
    for (const path of ['/metrics', '/stats/prometheus']) {
      const response = await fetch(`${gateway.url('admin')}${path}`);
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
      const text = await response.text();
      assert.match(text, /^gateway_requests_total\{listener="otlp-http",code="401",grpc_status=""\} 1$/m);
      assert.match(text, /^gateway_requests_total\{listener="otlp-http",code="200",grpc_status=""\} 1$/m);
      assert.match(text, /^gateway_auth_failures_total\{listener="otlp-http",reason="invalid_key"\} 1$/m);
      assert.match(
        text,
        /^gateway_upstream_response_seconds_count\{listener="otlp-http",upstream="127\.0\.0\.1:\d+"\} 1$/m,
      );
      assert.match(text, /^gateway_requests_in_flight\{listener="otlp-http"\} 0$/m);
      assert.match(text, /^process_resident_memory_bytes \d+/m);
      assert.ok(!text.includes(KEY) && !text.includes(PASSWORD), 'no secret in metrics');
    }
  });

  test('GET /config_dump: the effective configuration, every secret replaced by [redacted]', async () => {
    const response = await fetch(`${gateway.url('admin')}/config_dump`);
    assert.equal(response.status, 200);
    const text = await response.text();
    const dump = JSON.parse(text) as {
      auth: {
        method: string;
        api_keys: Array<{ identity: string; key: string }>;
        basic_users: Array<{ user: string; password: string }>;
      };
      listeners: Array<{ name: string; upstream: string }>;
    };
    assert.equal(dump.auth.method, 'any');
    assert.deepEqual(
      dump.auth.api_keys.map((key) => key.key),
      ['[redacted]'],
    );
    assert.match(dump.auth.api_keys[0]?.identity ?? '', /^key-[0-9a-f]{8}$/);
    assert.deepEqual(dump.auth.basic_users, [{ user: 'ops', password: '[redacted]' }]);
    assert.deepEqual(
      dump.listeners.map((listener) => [listener.name, listener.upstream]),
      [
        ['otlp-grpc', receiver.grpcUrl],
        ['otlp-http', receiver.httpUrl],
        ['prometheus', 'off'],
        ['victoriametrics', 'off'],
      ],
    );
    assert.ok(!text.includes(KEY) && !text.includes(PASSWORD));
    assert.ok(!text.includes(Buffer.from(`ops:${PASSWORD}`).toString('base64')));
  });

  test('the admin port is not a data port: it does not proxy', async () => {
    const response = await fetch(`${gateway.url('admin')}/v1/traces`, {
      method: 'POST',
      headers: { 'x-api-key': KEY },
    });
    assert.equal(response.status, 404);
  });

  // Issue 11 item 8: `/` was a bare framework 404.
  test('GET / lists every endpoint: text for curl, HTML for a browser', async () => {
    const text = await fetch(`${gateway.url('admin')}/`);
    assert.match(text.headers.get('content-type') ?? '', /^text\/plain/);
    const body = await text.text();
    for (const path of [
      '/ready',
      '/metrics',
      '/config_dump',
      '/reload',
      '/healthcheck/fail',
      '/healthcheck/ok',
    ])
      assert.ok(body.includes(path), `${path} missing from:\n${body}`);
    const html = await fetch(`${gateway.url('admin')}/`, {
      headers: { accept: 'text/html,application/xhtml+xml' },
    });
    assert.match(html.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(await html.text(), /<a href="\/config_dump">\/config_dump<\/a>/);
  });

  test('an unknown admin path: a plain 404 that points to /', async () => {
    const response = await fetch(`${gateway.url('admin')}/stats?x=1`);
    assert.equal(response.status, 404);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    assert.equal(await response.text(), 'no admin endpoint GET /stats; GET / lists them\n');
  });
});
