import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import bcrypt from 'bcrypt';
import { Pool } from 'undici';
import type { RunningGateway } from '../../support/gateway.js';
import { encodeTraceResponse } from '../../support/otlp-codec.js';
import { type OtlpReceiver, startOtlpReceiver } from '../../support/otlp-receiver.js';
import { freePort } from '../../support/ports.js';
import { registerSecret } from '../../support/secrets.js';
import { basic, startGatewayFor } from '../fixtures.js';
import {
  EXPORT_BODY,
  grpcClient,
  grpcExport,
  type LogLine,
  logLines,
  logLinesSince,
  Metrics,
  metric,
  sleep,
  startOkServer,
  until,
  waitForLogLines,
  waitForReloads,
  writeEnvFile,
} from './helpers.js';

/**
 * What an operator reads: one JSON access-log line per request with every field, the log
 * settings, and the admin port's metrics, which must exist and move with the traffic.
 */

const RUN = randomBytes(4).toString('hex');
const KEY = `logs-suite-${RUN}-${randomBytes(10).toString('hex')}`;
const EVE = `eve-pw-${randomBytes(8).toString('hex')}`;
const DORA = `dora-pw-${randomBytes(8).toString('hex')}`;
const JSON_BODY = '{"resourceSpans":[]}';
const JSON_ANSWER = '{"partialSuccess":{}}';
/** gRPC frames each message with a 5-byte prefix (compression flag, length). */
const GRPC_PREFIX = 5;

const keyIdentity = (key: string): string =>
  `key-${createHash('sha256').update(key).digest('hex').slice(0, 8)}`;
const isAccess = (line: LogLine): boolean => line.log === 'access';

describe('access log and metrics', () => {
  let receiver: OtlpReceiver;
  let okServer: Awaited<ReturnType<typeof startOkServer>>;
  let gateway: RunningGateway;
  let closedPort: number;
  let client: grpc.Client;
  /** Every request to 8428 goes through this one keep-alive connection (open connections are counted). */
  let vmPool: Pool;
  let envText: string;
  let reloads = 0;

  const vmGet = async (headers: Record<string, string>): Promise<number> => {
    const response = await vmPool.request({ path: '/health', method: 'GET', headers });
    await response.body.text();
    return response.statusCode;
  };
  const postTraces = async (headers: Record<string, string>, query = ''): Promise<number> => {
    const response = await fetch(`${gateway.url('http')}/v1/traces${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON_BODY,
    });
    await response.arrayBuffer();
    return response.status;
  };
  /** Runs `action` and answers the one access line it produced. */
  const accessLineOf = async (action: () => Promise<unknown>): Promise<LogLine> => {
    const offset = gateway.output().length;
    await action();
    const [line] = await waitForLogLines(gateway, offset, isAccess);
    await sleep(50);
    assert.equal(logLinesSince(gateway, offset).filter(isAccess).length, 1, 'one line per request');
    return line as LogLine;
  };
  const reload = async (text: string): Promise<void> => {
    envText = text;
    await writeEnvFile(gateway.envFile, text);
    await waitForReloads(gateway, ++reloads, 2000);
  };

  before(async () => {
    const doraHash = await bcrypt.hash(DORA, 10);
    registerSecret({ kind: 'password', value: DORA, user: 'dora' });
    receiver = await startOtlpReceiver();
    okServer = await startOkServer();
    closedPort = await freePort();
    envText =
      `ENVOY_AUTH_METHOD=any\nENVOY_API_KEYS=${KEY}\n` +
      `ENVOY_BASIC_AUTH_CREDENTIALS=eve:${EVE},dora:${doraHash}\nAUTH_FAILURE_LIMIT=0\n`;
    gateway = await startGatewayFor(
      {
        grpc: receiver.grpcUrl,
        http: receiver.httpUrl,
        victoriametrics: okServer.url,
        prometheus: `http://127.0.0.1:${closedPort}`,
      },
      {},
      envText,
    );
    client = grpcClient(gateway);
    vmPool = new Pool(gateway.url('victoriametrics'), { connections: 1, keepAliveTimeout: 60_000 });
  });
  after(async () => {
    client?.close();
    await vmPool?.close();
    await gateway?.stop();
    await receiver?.stop();
    await okServer?.close();
  });

  test('access log: HTTP request with a key, path without its query string', async () => {
    const line = await accessLineOf(() => postTraces({ 'x-api-key': KEY }, '?tenant=query-text-not-logged'));
    assert.equal(line.level, 30);
    assert.equal(line.msg, 'request');
    assert.ok(!Number.isNaN(Date.parse(line.time as string)), `time ${line.time}`);
    const { duration_ms: duration, time: _time, ...rest } = line;
    assert.equal(typeof duration, 'number');
    assert.ok((duration as number) >= 0);
    assert.deepEqual(rest, {
      level: 30,
      service: 'edge-gateway',
      log: 'access',
      listener: 'otlp-http',
      method: 'POST',
      path: '/v1/traces',
      status: 200,
      bytes_in: JSON_BODY.length,
      bytes_out: JSON_ANSWER.length,
      identity: keyIdentity(KEY),
      client: '127.0.0.1',
      upstream: `127.0.0.1:${receiver.httpPort}`,
      msg: 'request',
    });
    assert.ok(!gateway.output().includes('query-text-not-logged'));
  });

  test('access log: a Basic user is logged by name; auth failures carry their reason', async () => {
    const eve = await accessLineOf(() => vmGet({ authorization: basic('eve', EVE) }));
    assert.equal(eve.listener, 'victoriametrics');
    assert.equal(eve.method, 'GET');
    assert.equal(eve.path, '/health');
    assert.equal(eve.status, 200);
    assert.equal(eve.identity, 'eve');
    assert.equal(eve.bytes_out, 2);
    assert.equal(eve.upstream, okServer.url.replace('http://', ''));
    assert.equal(eve.auth_failure, undefined);

    const wrongKey = await accessLineOf(() => postTraces({ 'x-api-key': `wrong-${KEY}` }));
    assert.equal(wrongKey.status, 401);
    assert.equal(wrongKey.auth_failure, 'invalid_key');
    assert.equal(wrongKey.identity, undefined);
    assert.equal(wrongKey.bytes_in, 0, 'an unauthenticated body is not read');

    const wrongPassword = await accessLineOf(() => vmGet({ authorization: basic('eve', `not-${EVE}`) }));
    assert.equal(wrongPassword.status, 401);
    assert.equal(wrongPassword.auth_failure, 'invalid_password');

    const missing = await accessLineOf(() => vmGet({}));
    assert.equal(missing.auth_failure, 'missing');
  });

  test('access log: gRPC status on 4317, for an accepted and a rejected call', async () => {
    const accepted = await accessLineOf(() => grpcExport(client, { 'x-api-key': KEY }));
    assert.equal(accepted.listener, 'otlp-grpc');
    assert.equal(accepted.method, 'POST');
    assert.equal(accepted.path, '/opentelemetry.proto.collector.trace.v1.TraceService/Export');
    assert.equal(accepted.status, 200);
    assert.equal(accepted.grpc_status, '0');
    assert.equal(accepted.bytes_in, GRPC_PREFIX + EXPORT_BODY.length);
    assert.equal(accepted.bytes_out, GRPC_PREFIX + encodeTraceResponse().length);
    assert.equal(accepted.identity, keyIdentity(KEY));
    assert.equal(accepted.client, '127.0.0.1');
    assert.equal(accepted.upstream, `127.0.0.1:${receiver.grpcPort}`);

    const rejected = await accessLineOf(() => grpcExport(client, {}));
    assert.equal(rejected.status, 200, 'trailers-only gRPC answer');
    assert.equal(rejected.grpc_status, '16');
    assert.equal(rejected.auth_failure, 'missing');
  });

  test('access log: an upstream failure names the upstream and the error', async () => {
    const line = await accessLineOf(async () => {
      const response = await fetch(`${gateway.url('prometheus')}/api/v1/query?query=up`, {
        headers: { 'x-api-key': KEY },
      });
      await response.arrayBuffer();
    });
    assert.equal(line.listener, 'prometheus');
    assert.equal(line.status, 503);
    assert.equal(line.upstream, `127.0.0.1:${closedPort}`);
    assert.equal(line.error, 'ECONNREFUSED');
    assert.equal(line.path, '/api/v1/query');
  });

  test('metrics move with the traffic: requests, auth failures, latency, bytes, upstream errors', async () => {
    const before = await Metrics.scrape(gateway);
    const http200 = { listener: 'otlp-http', code: '200', grpc_status: '' };
    const latency = { listener: 'otlp-http', upstream: `127.0.0.1:${receiver.httpPort}` };
    for (let i = 0; i < 3; i++) assert.equal(await postTraces({ 'x-api-key': KEY }), 200);
    assert.equal(await postTraces({ 'x-api-key': `wrong-${KEY}` }), 401);
    assert.equal((await grpcExport(client, { 'x-api-key': KEY })).code, 0);
    assert.equal((await grpcExport(client, { 'x-api-key': `wrong-${KEY}` })).code, 16);
    assert.equal(await vmGet({ authorization: basic('eve', `not-${EVE}`) }), 401);
    const refused = await fetch(`${gateway.url('prometheus')}/-/ready`, { headers: { 'x-api-key': KEY } });
    assert.equal(refused.status, 503);
    await refused.arrayBuffer();
    const after = await Metrics.scrape(gateway);

    const delta = (name: string, labels: Record<string, string>): number =>
      after.get(name, labels) - before.get(name, labels, true);
    assert.equal(delta('gateway_requests_total', http200), 3);
    assert.equal(delta('gateway_requests_total', { listener: 'otlp-http', code: '401' }), 1);
    assert.equal(
      delta('gateway_requests_total', { listener: 'otlp-grpc', code: '200', grpc_status: '0' }),
      1,
    );
    assert.equal(
      delta('gateway_requests_total', { listener: 'otlp-grpc', code: '200', grpc_status: '16' }),
      1,
    );
    assert.equal(delta('gateway_requests_total', { listener: 'prometheus', code: '503' }), 1);
    assert.equal(delta('gateway_auth_failures_total', { listener: 'otlp-http', reason: 'invalid_key' }), 1);
    assert.equal(delta('gateway_auth_failures_total', { listener: 'otlp-grpc', reason: 'invalid_key' }), 1);
    assert.equal(
      delta('gateway_auth_failures_total', { listener: 'victoriametrics', reason: 'invalid_password' }),
      1,
    );
    assert.equal(delta('gateway_upstream_response_seconds_count', latency), 3);
    assert.equal(
      after.get('gateway_upstream_response_seconds_bucket', { ...latency, le: '+Inf' }),
      after.get('gateway_upstream_response_seconds_count', latency),
    );
    assert.ok(delta('gateway_upstream_response_seconds_sum', latency) > 0);
    assert.equal(delta('gateway_received_bytes_total', { listener: 'otlp-http' }), 3 * JSON_BODY.length);
    assert.equal(delta('gateway_sent_bytes_total', { listener: 'otlp-http' }), 3 * JSON_ANSWER.length);
    assert.equal(
      delta('gateway_upstream_errors_total', {
        listener: 'prometheus',
        upstream: `127.0.0.1:${closedPort}`,
        kind: 'unavailable',
      }),
      1,
    );
  });

  test('in-flight requests, open connections and HTTP/2 sessions', async () => {
    receiver.httpBehaviour = { delayMs: 1500 };
    const slow = postTraces({ 'x-api-key': KEY });
    await until('one request in flight', async () =>
      (await metric(gateway, 'gateway_requests_in_flight', { listener: 'otlp-http' })) === 1
        ? true
        : undefined,
    );
    assert.equal(await slow, 200);
    receiver.httpBehaviour = {};
    assert.equal(await metric(gateway, 'gateway_requests_in_flight', { listener: 'otlp-http' }), 0);

    // This file's only client of 8428 is vmPool (one connection); three more open, then close.
    assert.equal(await vmGet({ 'x-api-key': KEY }), 200);
    assert.equal(await metric(gateway, 'gateway_open_connections', { listener: 'victoriametrics' }), 1);
    const extra = new Pool(gateway.url('victoriametrics'), { connections: 3, keepAliveTimeout: 60_000 });
    await Promise.all(
      [1, 2, 3].map(async () => {
        const response = await extra.request({
          path: '/health',
          method: 'GET',
          headers: { 'x-api-key': KEY },
        });
        await sleep(100);
        await response.body.text();
      }),
    );
    assert.equal(await metric(gateway, 'gateway_open_connections', { listener: 'victoriametrics' }), 4);
    await extra.close();
    await until('the three connections to be counted as closed', async () =>
      (await metric(gateway, 'gateway_open_connections', { listener: 'victoriametrics' })) === 1
        ? true
        : undefined,
    );

    assert.equal((await grpcExport(client, { 'x-api-key': KEY })).code, 0);
    const metrics = await Metrics.scrape(gateway);
    assert.equal(metrics.get('gateway_open_connections', { listener: 'otlp-grpc' }), 1, 'one client session');
    assert.ok(metrics.get('gateway_upstream_http2_sessions', { listener: 'otlp-grpc' }) >= 1);
  });

  test('bcrypt cache hits and misses, for a bcrypt user', async () => {
    const before = await Metrics.scrape(gateway);
    assert.equal(await vmGet({ authorization: basic('dora', DORA) }), 200);
    assert.equal(await vmGet({ authorization: basic('dora', DORA) }), 200);
    assert.equal(await vmGet({ authorization: basic('dora', DORA) }), 200);
    const after = await Metrics.scrape(gateway);
    assert.equal(
      after.get('gateway_bcrypt_cache_misses_total') - before.get('gateway_bcrypt_cache_misses_total'),
      1,
    );
    assert.equal(
      after.get('gateway_bcrypt_cache_hits_total') - before.get('gateway_bcrypt_cache_hits_total'),
      2,
    );
  });

  test('process metrics and the placeholder-key gauge (0: keys are configured)', async () => {
    const metrics = await Metrics.scrape(gateway);
    assert.ok(metrics.get('process_resident_memory_bytes') > 10_000_000);
    assert.ok(metrics.get('process_cpu_user_seconds_total') > 0);
    assert.ok(metrics.get('process_start_time_seconds') > 1_600_000_000);
    assert.ok(metrics.get('nodejs_heap_size_used_bytes') > 0);
    assert.ok(metrics.has('nodejs_eventloop_lag_seconds'));
    assert.ok(metrics.get('process_open_fds') > 0);
    assert.equal(metrics.get('gateway_placeholder_key_in_use'), 0);
    assert.equal(metrics.get('gateway_ready'), 1);
  });

  test('counters survive a reload, and the reload is counted', async () => {
    const http200 = { listener: 'otlp-http', code: '200', grpc_status: '' };
    const before = await Metrics.scrape(gateway);
    assert.ok(before.get('gateway_requests_total', http200) >= 4);
    await reload(`${envText}# edited\n`);
    const after = await Metrics.scrape(gateway);
    for (const [name, labels] of [
      ['gateway_requests_total', http200],
      ['gateway_auth_failures_total', { listener: 'otlp-http', reason: 'invalid_key' }],
      ['gateway_received_bytes_total', { listener: 'otlp-http' }],
      ['gateway_upstream_response_seconds_count', { listener: 'otlp-http' }],
      ['gateway_bcrypt_cache_misses_total', {}],
      ['gateway_bcrypt_cache_hits_total', {}],
    ] as const) {
      assert.equal(after.get(name, labels), before.get(name, labels), `${name} after the reload`);
    }
    assert.equal(after.get('gateway_config_reloads_total'), before.get('gateway_config_reloads_total') + 1);
    assert.equal(await postTraces({ 'x-api-key': KEY }), 200);
    assert.equal(
      await metric(gateway, 'gateway_requests_total', http200),
      before.get('gateway_requests_total', http200) + 1,
    );
  });

  test('ACCESS_LOG=off through a reload silences the access log, =on brings it back', async () => {
    const offset = gateway.output().length;
    await reload(`${envText}ACCESS_LOG=off\n`);
    assert.equal(await postTraces({ 'x-api-key': KEY }), 200);
    assert.equal((await grpcExport(client, { 'x-api-key': KEY })).code, 0);
    assert.equal(await vmGet({}), 401);
    await sleep(200);
    const lines = logLinesSince(gateway, offset);
    assert.ok(
      lines.some((line) => line.msg === 'configuration reloaded'),
      'other info lines still print',
    );
    assert.deepEqual(lines.filter(isAccess), []);

    const back = gateway.output().length;
    await reload(envText.replace('ACCESS_LOG=off\n', ''));
    assert.equal(await postTraces({ 'x-api-key': KEY }), 200);
    await waitForLogLines(gateway, back, isAccess);
  });
});

describe('log settings at start-up', () => {
  test('ACCESS_LOG=off: start-up lines, no access lines', async () => {
    const okServer = await startOkServer();
    const gateway = await startGatewayFor(
      { victoriametrics: okServer.url },
      { ENVOY_API_KEYS: KEY, ACCESS_LOG: 'off' },
    );
    try {
      for (const headers of [{ 'x-api-key': KEY }, {}] as Record<string, string>[]) {
        const response = await fetch(`${gateway.url('victoriametrics')}/health`, { headers });
        await response.arrayBuffer();
      }
      await sleep(200);
      const lines = logLines(gateway.output());
      assert.ok(lines.some((line) => line.msg === 'listener ready'));
      assert.deepEqual(lines.filter(isAccess), []);
    } finally {
      await gateway.stop();
      await okServer.close();
    }
  });

  test('LOG_LEVEL=warn: no info line at all, the placeholder-key warning still shows (and its gauge is 1)', async () => {
    const okServer = await startOkServer();
    // No ENVOY_API_KEYS: the stock default, the placeholder key, is in force.
    const gateway = await startGatewayFor({ victoriametrics: okServer.url }, { LOG_LEVEL: 'warn' });
    try {
      const response = await fetch(`${gateway.url('victoriametrics')}/health`, {
        headers: { 'x-api-key': 'placeholder_api_key' },
      });
      assert.equal(response.status, 200);
      await response.arrayBuffer();
      assert.equal(await metric(gateway, 'gateway_placeholder_key_in_use'), 1);
      await sleep(200);
      const lines = logLines(gateway.output());
      assert.ok(lines.length > 0);
      assert.deepEqual(
        lines.filter((line) => line.level < 40).map((line) => line.msg),
        [],
      );
      assert.ok(lines.some((line) => line.level === 40 && /PLACEHOLDER API KEY/.test(line.msg)));
    } finally {
      await gateway.stop();
      await okServer.close();
    }
  });

  test('LOG_FORMAT=pretty: human-readable lines instead of JSON', async () => {
    const okServer = await startOkServer();
    const gateway = await startGatewayFor(
      { victoriametrics: okServer.url },
      { ENVOY_API_KEYS: KEY, LOG_FORMAT: 'pretty' },
    );
    try {
      const response = await fetch(`${gateway.url('victoriametrics')}/health`, {
        headers: { 'x-api-key': KEY },
      });
      await response.arrayBuffer();
      const [line] = await gateway.waitForOutput(/^.*INFO.*listener ready.*$/m);
      assert.ok(!line.trimStart().startsWith('{'), line);
      await gateway.waitForOutput(/INFO.*request/);
      assert.deepEqual(logLines(gateway.output()), [], 'no JSON lines');
    } finally {
      await gateway.stop();
      await okServer.close();
    }
  });
});
