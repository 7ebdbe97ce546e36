import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { retryDelayOf } from '../../src/limits/grpc-retry-info.js';
import type { RunningGateway } from '../support/gateway.js';
import { exportSpans } from '../support/otel-client.js';
import { type OtlpReceiver, startOtlpReceiver } from '../support/otlp-receiver.js';
import { registerSecret } from '../support/secrets.js';
import { metricValue, startGatewayFor } from './fixtures.js';
import { grpcClient } from './operations/helpers.js';

/*
 * Issue 14 §2-3 against a real OTLP receiver and the real SDK exporters: a credential over its
 * rate= gets 429 with Retry-After and the RateLimit headers, or RESOURCE_EXHAUSTED with a
 * google.rpc.RetryInfo; nothing limited reaches the upstream, nothing counts as an auth failure.
 */

const RUN = randomBytes(4).toString('hex');
const secret = (name: string): string => `${name}-${RUN}-${randomBytes(16).toString('base64url')}`;
const HTTP_KEY = secret('http');
const GRPC_KEY = secret('grpc');
const EXPORTER_KEY = secret('exporter');
const FREE_KEY = secret('free');
const BYTES_KEY = secret('bytes');

const envFile = [
  `GATEWAY_KEY_LIMITED_HTTP=${HTTP_KEY}; scopes=ingest; rate=2/min; burst=2`,
  `GATEWAY_KEY_LIMITED_GRPC=${GRPC_KEY}; scopes=ingest; rate=2/min; burst=2`,
  `GATEWAY_KEY_EXPORTER=${EXPORTER_KEY}; scopes=ingest; rate=1/s; burst=1`,
  `GATEWAY_KEY_FREE=${FREE_KEY}; scopes=ingest`,
  `GATEWAY_KEY_LIMITED_BYTES=${BYTES_KEY}; scopes=ingest; bytes=1KiB/min`,
  '',
].join('\n');

const EMPTY_EXPORT = Buffer.alloc(0);

function grpcCall(
  client: grpc.Client,
  key: string,
): Promise<{
  code: number;
  details: string;
  statusDetails: Buffer | undefined;
  retryAfter: string | undefined;
}> {
  const metadata = new grpc.Metadata();
  metadata.set('x-api-key', key);
  return new Promise((resolve) => {
    const call = client.makeUnaryRequest(
      '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      (value: Buffer) => value,
      (value: Buffer) => value,
      EMPTY_EXPORT,
      metadata,
      { deadline: Date.now() + 10_000 },
      () => undefined,
    );
    call.on('status', (status: grpc.StatusObject) =>
      resolve({
        code: status.code,
        details: status.details,
        statusDetails: status.metadata.get('grpc-status-details-bin')[0] as Buffer | undefined,
        retryAfter: status.metadata.get('retry-after')[0] as string | undefined,
      }),
    );
  });
}

describe('per-credential rate limits (issue 14)', () => {
  let receiver: OtlpReceiver;
  let gateway: RunningGateway;

  before(async () => {
    for (const value of [HTTP_KEY, GRPC_KEY, EXPORTER_KEY, FREE_KEY, BYTES_KEY])
      registerSecret({ kind: 'api-key', value });
    receiver = await startOtlpReceiver();
    gateway = await startGatewayFor({ grpc: receiver.grpcUrl, http: receiver.httpUrl }, {}, envFile);
  });
  after(async () => {
    await gateway?.stop();
    await receiver?.stop();
  });

  test('HTTP/1.1: over the rate, 429 with Retry-After, RateLimit-Policy, RateLimit and a one-line body', async () => {
    const before = receiver.requests['http-protobuf'];
    const post = () =>
      fetch(`${gateway.url('http')}/v1/traces`, {
        method: 'POST',
        headers: { 'x-api-key': HTTP_KEY, 'content-type': 'application/x-protobuf' },
        body: EMPTY_EXPORT,
      });
    const statuses = [];
    for (let i = 0; i < 2; i++) statuses.push((await post()).status);
    assert.deepEqual(statuses, [200, 200]);
    const limited = await post();
    assert.equal(limited.status, 429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    assert.ok(retryAfter >= 29 && retryAfter <= 30, `Retry-After ${retryAfter}`);
    assert.equal(limited.headers.get('ratelimit-policy'), '"rate";q=2;w=60');
    assert.equal(limited.headers.get('ratelimit'), `"rate";r=0;t=${retryAfter}`);
    assert.equal(await limited.text(), 'rate limit of limited-http exceeded');
    assert.equal(
      receiver.requests['http-protobuf'] - before,
      2,
      'the limited request never reached the upstream',
    );
    // Another credential is not held by this one's budget.
    const free = await fetch(`${gateway.url('http')}/v1/traces`, {
      method: 'POST',
      headers: { 'x-api-key': FREE_KEY, 'content-type': 'application/x-protobuf' },
      body: EMPTY_EXPORT,
    });
    assert.equal(free.status, 200);
    assert.equal(
      await metricValue(
        gateway,
        'gateway_credential_limit_reached_total',
        'listener="otlp-http",credential="limited-http",limit="rate"',
      ),
      1,
    );
    const metrics = await (await fetch(`${gateway.url('admin')}/metrics`)).text();
    const failures = metrics
      .split('\n')
      .filter((line) => line.startsWith('gateway_auth_failures_total{'))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    assert.equal(failures, 0, 'a limited request is not an auth failure');
  });

  test('HTTP/1.1: a body whose Content-Length is over the byte budget is refused before it is read', async () => {
    // 600 bytes of an unknown field (15, length-delimited): an export request the receiver accepts.
    const body = Buffer.concat([Buffer.from([0x7a, 0xd5, 0x04]), Buffer.alloc(597)]);
    const post = () =>
      fetch(`${gateway.url('http')}/v1/traces`, {
        method: 'POST',
        headers: { 'x-api-key': BYTES_KEY, 'content-type': 'application/x-protobuf' },
        body,
      });
    const before = receiver.requests['http-protobuf'];
    const first = await post();
    assert.notEqual(first.status, 429);
    await first.arrayBuffer();
    const limited = await post();
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('ratelimit-policy'), '"bytes";q=1024;w=60');
    const retryAfter = Number(limited.headers.get('retry-after'));
    // 424 bytes left of 1024; the 176 missing come back at 1024/60 bytes a second: 10.3 s.
    assert.ok(retryAfter >= 10 && retryAfter <= 11, `Retry-After ${retryAfter}`);
    assert.match(limited.headers.get('ratelimit') ?? '', new RegExp(`^"bytes";r=42\\d;t=${retryAfter}$`));
    assert.equal(await limited.text(), 'byte limit of limited-bytes exceeded');
    assert.equal(
      receiver.requests['http-protobuf'] - before,
      1,
      'the refused body never reached the upstream',
    );
    assert.equal(
      await metricValue(
        gateway,
        'gateway_credential_limit_reached_total',
        'listener="otlp-http",credential="limited-bytes",limit="bytes"',
      ),
      1,
    );
  });

  test('gRPC: over the rate, RESOURCE_EXHAUSTED with a google.rpc.RetryInfo in grpc-status-details-bin', async () => {
    const client = grpcClient(gateway);
    try {
      const before = receiver.requests.grpc;
      const first = await grpcCall(client, GRPC_KEY);
      const second = await grpcCall(client, GRPC_KEY);
      assert.deepEqual([first.code, second.code], [0, 0]);
      const limited = await grpcCall(client, GRPC_KEY);
      assert.equal(limited.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.equal(limited.details, 'rate limit of limited-grpc exceeded');
      assert.ok(limited.statusDetails !== undefined, 'grpc-status-details-bin is sent');
      const status = retryDelayOf(limited.statusDetails.toString('base64'));
      assert.equal(status.code, 8);
      assert.equal(status.message, 'rate limit of limited-grpc exceeded');
      assert.ok(
        status.retryDelayMs !== null && status.retryDelayMs >= 29_000 && status.retryDelayMs <= 30_000,
        `retry delay ${status.retryDelayMs}`,
      );
      assert.equal(Number(limited.retryAfter) * 1000, status.retryDelayMs);
      assert.equal(receiver.requests.grpc - before, 2, 'the limited call never reached the upstream');
      assert.equal(
        await metricValue(
          gateway,
          'gateway_credential_limit_reached_total',
          'listener="otlp-grpc",credential="limited-grpc",limit="rate"',
        ),
        1,
      );
    } finally {
      client.close();
    }
  });

  test('the OTLP/HTTP protobuf exporter: a burst above the rate is throttled, retried, and every span arrives', async () => {
    const exports = 4;
    const results = await Promise.all(
      Array.from({ length: exports }, (_, i) =>
        exportSpans({
          transport: 'http-protobuf',
          url: gateway.url('http'),
          headers: { 'x-api-key': EXPORTER_KEY },
          spans: [{ name: `throttled-${RUN}-${i}` }],
          timeoutMillis: 20_000,
        }),
      ),
    );
    const refused = results
      .flatMap((result) => result.httpStatuses)
      .filter((status) => status === 429).length;
    assert.deepEqual(
      results.map((result) => result.code),
      Array(exports).fill(0),
      JSON.stringify(results.map((r) => r.httpStatuses)),
    );
    assert.ok(refused >= 1, 'the burst was throttled');
    for (let i = 0; i < exports; i++) {
      assert.ok(
        receiver.spans.some((span) => span.name === `throttled-${RUN}-${i}`),
        `span ${i} arrived`,
      );
    }
    assert.equal(
      await metricValue(
        gateway,
        'gateway_credential_limit_reached_total',
        'listener="otlp-http",credential="exporter",limit="rate"',
      ),
      refused,
    );
  });
});
