import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { retryDelayOf } from '../../src/limits/grpc-retry-info.js';
import type { RunningGateway } from '../support/gateway.js';
import { exportSpans } from '../support/otel-client.js';
import { type OtlpReceiver, startOtlpReceiver } from '../support/otlp-receiver.js';
import { registerSecret } from '../support/secrets.js';
import { until } from '../support/wait.js';
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
const STREAM_HTTP_KEY = secret('stream-http');
const STREAM_GRPC_KEY = secret('stream-grpc');
const INFLIGHT_KEY = secret('inflight');
const GRPC_EXPORTER_KEY = secret('grpc-exporter');

const envFile = [
  `GATEWAY_KEY_LIMITED_HTTP=${HTTP_KEY}; scopes=ingest; rate=2/min; burst=2`,
  `GATEWAY_KEY_LIMITED_GRPC=${GRPC_KEY}; scopes=ingest; rate=2/min; burst=2`,
  `GATEWAY_KEY_EXPORTER=${EXPORTER_KEY}; scopes=ingest; rate=1/s; burst=1`,
  `GATEWAY_KEY_FREE=${FREE_KEY}; scopes=ingest`,
  `GATEWAY_KEY_LIMITED_BYTES=${BYTES_KEY}; scopes=ingest; bytes=1KiB/min`,
  `GATEWAY_KEY_STREAM_HTTP=${STREAM_HTTP_KEY}; scopes=ingest; bytes=1KiB/min`,
  `GATEWAY_KEY_STREAM_GRPC=${STREAM_GRPC_KEY}; scopes=ingest; bytes=1KiB/min`,
  `GATEWAY_KEY_INFLIGHT=${INFLIGHT_KEY}; scopes=ingest; inflight=2`,
  `GATEWAY_KEY_GRPC_EXPORTER=${GRPC_EXPORTER_KEY}; scopes=ingest; rate=1/s; burst=1`,
  '',
].join('\n');

const EMPTY_EXPORT = Buffer.alloc(0);

/** An export request of `bytes` bytes the receiver accepts: one unknown field 15 (length-delimited). */
function exportOfSize(bytes: number): Buffer {
  const length = bytes - 3;
  return Buffer.concat([Buffer.from([0x7a, (length & 0x7f) | 0x80, length >> 7]), Buffer.alloc(length)]);
}

/** POSTs `body` to /v1/traces with chunked framing (no Content-Length): status and body text. */
function postChunked(url: string, key: string, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}/v1/traces`, {
      method: 'POST',
      headers: {
        'x-api-key': key,
        'content-type': 'application/x-protobuf',
        'transfer-encoding': 'chunked',
      },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    // A cut request body may end the client's side with EPIPE once the answer is in.
    req.on('error', reject);
    req.write(body, () => req.end());
  });
}

function grpcCall(
  client: grpc.Client,
  key: string,
  message: Buffer = EMPTY_EXPORT,
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
      message,
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
    for (const value of [
      HTTP_KEY,
      GRPC_KEY,
      EXPORTER_KEY,
      FREE_KEY,
      BYTES_KEY,
      STREAM_HTTP_KEY,
      STREAM_GRPC_KEY,
      INFLIGHT_KEY,
      GRPC_EXPORTER_KEY,
    ])
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

  test('HTTP/1.1: a streamed body (chunked, no Content-Length) is cut with the same 429 when it crosses the byte budget', async () => {
    const decodedBefore = receiver.requestLog.length;
    const under = await postChunked(gateway.url('http'), STREAM_HTTP_KEY, exportOfSize(600));
    assert.equal(under.status, 200, under.text);
    assert.equal(receiver.requestLog.length - decodedBefore, 1, 'a body under the budget streams through');
    const over = await postChunked(gateway.url('http'), STREAM_HTTP_KEY, exportOfSize(3000));
    assert.equal(over.status, 429);
    assert.equal(over.text, 'byte limit of stream-http exceeded');
    assert.equal(
      receiver.requestLog.length - decodedBefore,
      1,
      'the cut body never reached the upstream as a whole request',
    );
    assert.equal(
      await metricValue(
        gateway,
        'gateway_credential_limit_reached_total',
        'listener="otlp-http",credential="stream-http",limit="bytes"',
      ),
      1,
    );
  });

  test('gRPC: a call whose messages cross the byte budget is cut with RESOURCE_EXHAUSTED and RetryInfo', async () => {
    const client = grpcClient(gateway);
    try {
      const before = receiver.requests.grpc;
      const under = await grpcCall(client, STREAM_GRPC_KEY, exportOfSize(600));
      assert.equal(under.code, 0, under.details);
      const over = await grpcCall(client, STREAM_GRPC_KEY, exportOfSize(3000));
      assert.equal(over.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.equal(over.details, 'byte limit of stream-grpc exceeded');
      assert.ok(over.statusDetails !== undefined, 'grpc-status-details-bin is sent');
      const status = retryDelayOf(over.statusDetails.toString('base64'));
      assert.ok(
        status.retryDelayMs !== null && status.retryDelayMs > 0,
        `retry delay ${status.retryDelayMs}`,
      );
      assert.equal(receiver.requests.grpc - before, 1, 'the cut call never reached the upstream handler');
      assert.equal(
        await metricValue(
          gateway,
          'gateway_credential_limit_reached_total',
          'listener="otlp-grpc",credential="stream-grpc",limit="bytes"',
        ),
        1,
      );
    } finally {
      client.close();
    }
  });

  test('inflight=: past its places a credential gets 429 / RESOURCE_EXHAUSTED on every port of the process; places come back', async () => {
    receiver.httpBehaviour = { delayMs: 1500 };
    const client = grpcClient(gateway);
    try {
      const post = () =>
        fetch(`${gateway.url('http')}/v1/traces`, {
          method: 'POST',
          headers: { 'x-api-key': INFLIGHT_KEY, 'content-type': 'application/x-protobuf' },
          body: EMPTY_EXPORT,
        });
      const before = receiver.requests['http-protobuf'];
      const held = [post(), post()];
      await until(
        'both held requests reach the receiver',
        () => receiver.requests['http-protobuf'] - before === 2,
        10_000,
      );
      const third = await post();
      assert.equal(third.status, 429);
      assert.equal(third.headers.get('retry-after'), '1');
      assert.equal(third.headers.get('ratelimit-policy'), '"inflight";q=2');
      assert.equal(await third.text(), 'inflight limit of inflight exceeded');
      const grpcThird = await grpcCall(client, INFLIGHT_KEY);
      assert.equal(grpcThird.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.equal(grpcThird.details, 'inflight limit of inflight exceeded');
      assert.deepEqual(
        (await Promise.all(held)).map((response) => response.status),
        [200, 200],
      );
      assert.equal(
        receiver.requests['http-protobuf'] - before,
        2,
        'refused requests never reached the upstream',
      );
      receiver.httpBehaviour = {};
      // Every place came back, including those of the refused requests (which never held one).
      const again = await Promise.all([post(), post()]);
      assert.deepEqual(
        again.map((response) => response.status),
        [200, 200],
      );
      assert.equal(
        await metricValue(
          gateway,
          'gateway_credential_limit_reached_total',
          'listener="otlp-http",credential="inflight",limit="inflight"',
        ),
        1,
      );
    } finally {
      receiver.httpBehaviour = {};
      client.close();
    }
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

  test('the OTLP/gRPC exporter: over the rate it gets RESOURCE_EXHAUSTED with RetryInfo; retried after that delay, every span arrives', async () => {
    const exports = 3;
    const send = (i: number) =>
      exportSpans({
        transport: 'grpc',
        url: gateway.url('grpc'),
        headers: { 'x-api-key': GRPC_EXPORTER_KEY },
        spans: [{ name: `grpc-throttled-${RUN}-${i}` }],
      });
    const first = await Promise.all(Array.from({ length: exports }, (_, i) => send(i)));
    const refused = first.flatMap((result, i) => (result.code === 0 ? [] : [i]));
    assert.ok(refused.length >= 1, 'the burst was throttled');
    let delayMs = 0;
    for (const i of refused) {
      const result = first[i]!;
      assert.equal(result.grpcCode, grpc.status.RESOURCE_EXHAUSTED, String(result.error));
      const details = (result.error as grpc.ServiceError).metadata.get('grpc-status-details-bin')[0];
      assert.ok(Buffer.isBuffer(details), 'grpc-status-details-bin is sent');
      const status = retryDelayOf(details.toString('base64'));
      assert.ok(
        status.retryDelayMs !== null && status.retryDelayMs > 0,
        `retry delay ${status.retryDelayMs}`,
      );
      delayMs = Math.max(delayMs, status.retryDelayMs);
    }
    // The JavaScript SDK's gRPC exporter reports RESOURCE_EXHAUSTED as a failure and retries
    // nothing itself (its transport has no retryable outcome): the retry the OTLP specification
    // asks of a client that gets RetryInfo is made here, one export at a time, after the delay.
    for (const i of refused) {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      let result = await send(i);
      for (let attempt = 0; result.code !== 0 && attempt < 5; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        result = await send(i);
      }
      assert.equal(result.code, 0, `export ${i} retried after the RetryInfo delay: ${String(result.error)}`);
    }
    for (let i = 0; i < exports; i++) {
      assert.ok(
        receiver.spans.some((span) => span.name === `grpc-throttled-${RUN}-${i}`),
        `span ${i} arrived`,
      );
    }
    assert.ok(
      (await metricValue(
        gateway,
        'gateway_credential_limit_reached_total',
        'listener="otlp-grpc",credential="grpc-exporter",limit="rate"',
      )) >= refused.length,
      'every RESOURCE_EXHAUSTED answer is counted',
    );
  });
});
