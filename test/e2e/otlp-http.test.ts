import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { RunningGateway } from '../support/gateway.js';
import { exportSpans } from '../support/otel-client.js';
import { type OtlpReceiver, startOtlpReceiver } from '../support/otlp-receiver.js';
import { basic, startGatewayFor } from './fixtures.js';

const KEY = 'http-suite-key';

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** A plain node:http request, so every header sent and received is under the test's control. */
function send(
  url: string,
  method: string,
  headers: Record<string, string>,
  body?: Buffer,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('OTLP/HTTP listener (4318)', () => {
  let receiver: OtlpReceiver;
  let gateway: RunningGateway;

  before(async () => {
    receiver = await startOtlpReceiver();
    gateway = await startGatewayFor({ http: receiver.httpUrl }, { ENVOY_API_KEYS: `other-key, ${KEY}` });
  });
  after(async () => {
    await gateway?.stop();
    await receiver?.stop();
  });

  for (const transport of ['http-protobuf', 'http-json'] as const) {
    test(`the real ${transport} exporter delivers spans intact`, async () => {
      receiver.reset();
      const result = await exportSpans({
        transport,
        url: gateway.url('http'),
        headers: { 'X-API-Key': KEY },
        serviceName: 'billing',
        spans: [{ name: 'charge', attributes: { env: 'prod', component: 'api', retries: 2 } }],
      });
      assert.equal(result.code, 0, result.error?.message);
      const [span] = await receiver.waitForSpans(1);
      assert.equal(span?.name, 'charge');
      assert.equal(span?.serviceName, 'billing');
      assert.equal(span?.traceId, result.traceIds[0]);
      assert.equal(span?.spanId, result.spanIds[0]);
      assert.equal(span?.via, transport);
      assert.deepEqual(span?.attributes, { env: 'prod', component: 'api', retries: 2 });
    });

    test(`${transport} with a wrong key: 401, nothing reaches the collector`, async () => {
      receiver.reset();
      const result = await exportSpans({
        transport,
        url: gateway.url('http'),
        headers: { 'X-API-Key': 'wrong' },
        spans: [{ name: 'must-not-arrive' }],
        timeoutMillis: 3000,
      });
      assert.equal(result.code, 1);
      assert.equal(result.httpStatus, 401);
      assert.equal(receiver.requests['http-protobuf'] + receiver.requests['http-json'], 0);
    });
  }

  test('gzip-compressed exports arrive intact (content-encoding passed through)', async () => {
    receiver.reset();
    const result = await exportSpans({
      transport: 'http-protobuf',
      url: gateway.url('http'),
      headers: { 'X-API-Key': KEY },
      spans: [{ name: 'zipped' }],
      compression: 'gzip',
    });
    assert.equal(result.code, 0, result.error?.message);
    assert.equal((await receiver.waitForSpans(1))[0]?.name, 'zipped');
    assert.equal(receiver.lastRequest?.headers['content-encoding'], 'gzip');
  });

  test('request headers: key and hop-by-hop removed, Authorization kept, identity and X-Forwarded-* set', async () => {
    receiver.reset();
    const body = Buffer.from('{"resourceSpans":[]}');
    const response = await send(
      `${gateway.url('http')}/v1/traces`,
      'POST',
      {
        'content-type': 'application/json',
        'x-api-key': KEY,
        authorization: basic('upstream-user', 'upstream-pass'),
        connection: 'keep-alive, x-hop',
        'x-hop': 'must go',
        'keep-alive': 'timeout=5',
        'x-forwarded-for': '203.0.113.7',
        'x-authenticated-user': 'forged',
        'x-custom': 'kept',
      },
      body,
    );
    assert.equal(response.status, 200, response.body.toString());
    const seen = receiver.lastRequest?.headers ?? {};
    assert.equal(seen['x-api-key'], undefined);
    assert.equal(seen['x-hop'], undefined);
    assert.equal(seen['keep-alive'], undefined);
    assert.equal(seen.authorization, basic('upstream-user', 'upstream-pass'));
    assert.equal(seen['x-custom'], 'kept');
    assert.equal(seen['x-authenticated-user'], `key-${createHashHex(KEY).slice(0, 8)}`);
    assert.equal(seen['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
    assert.equal(seen['x-forwarded-proto'], 'http');
    assert.equal(seen['x-forwarded-host'], `127.0.0.1:${gateway.ports.http}`);
  });

  test('response: upstream status, headers and an encoded body pass through untouched; hop-by-hop removed', async () => {
    receiver.reset();
    // The gateway must neither decode nor re-encode: the bytes and the encoding header arrive as sent.
    const payload = Buffer.from('opaque bytes labelled gzip');
    receiver.httpBehaviour = {
      status: 429,
      body: payload.toString(),
      headers: {
        'content-encoding': 'gzip',
        'retry-after': '7',
        connection: 'x-secret-hop',
        'x-secret-hop': '1',
      },
    };
    try {
      const response = await send(
        `${gateway.url('http')}/v1/traces`,
        'POST',
        {
          'content-type': 'application/json',
          'x-api-key': KEY,
        },
        Buffer.from('{"resourceSpans":[]}'),
      );
      assert.equal(response.status, 429);
      assert.equal(response.headers['retry-after'], '7');
      assert.equal(response.headers['content-encoding'], 'gzip');
      assert.equal(response.headers['x-secret-hop'], undefined);
      assert.deepEqual(response.body, payload);
    } finally {
      receiver.httpBehaviour = {};
    }
  });

  test('every path and method needs credentials', async () => {
    receiver.reset();
    for (const [method, path] of [
      ['GET', '/'],
      ['GET', '/v1/traces'],
      ['POST', '/v1/metrics'],
      ['PUT', '/anything'],
      ['DELETE', '/v1/traces'],
      ['OPTIONS', '/v1/traces'],
      ['HEAD', '/'],
    ] as const) {
      const response = await send(`${gateway.url('http')}${path}`, method, {});
      assert.equal(response.status, 401, `${method} ${path}`);
    }
    assert.equal(receiver.requests['http-protobuf'] + receiver.requests['http-json'], 0);
  });
});

function createHashHex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
