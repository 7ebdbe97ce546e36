import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { emptyGrpcMessage, H2Wire, headersFrame, requestBlock } from '../hostile/h2-wire.js';
import { eventually } from '../hostile/support.js';
import type { RunningGateway } from '../support/gateway.js';
import { exportSpans } from '../support/otel-client.js';
import { encodeTraceRequest } from '../support/otlp-codec.js';
import { type OtlpReceiver, startOtlpReceiver, TRACE_EXPORT_PATH } from '../support/otlp-receiver.js';
import { basic, establishedConnectionsTo, metricValue, startGatewayFor } from './fixtures.js';

const run = promisify(execFile);

const KEY = 'grpc-suite-key-1';
const USER = 'grpc-user';
const PASSWORD = 'grpc:pass word';

/** A raw gRPC client of the collector's Export method, to see statuses, metadata and trailers. */
const exportMethod = {
  export: {
    path: TRACE_EXPORT_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: Buffer) => value,
    requestDeserialize: (value: Buffer) => value,
    responseSerialize: (value: Buffer) => value,
    responseDeserialize: (value: Buffer) => value,
  },
} as const;
const ExportClient = grpc.makeGenericClientConstructor(exportMethod, 'TraceService');

interface CallResult {
  readonly code: number;
  readonly details: string;
  readonly trailers: Record<string, unknown>;
  readonly headers: Record<string, unknown>;
}

function rawExport(
  client: grpc.Client,
  metadata: Record<string, string>,
  options: { deadlineMs?: number; onCall?: (call: grpc.ClientUnaryCall) => void } = {},
): Promise<CallResult> {
  const md = new grpc.Metadata();
  for (const [key, value] of Object.entries(metadata)) md.set(key, value);
  const body = Buffer.from(
    encodeTraceRequest({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'raw-client' } }] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId: Buffer.alloc(16, 7),
                  spanId: Buffer.alloc(8, 9),
                  name: 'raw-span',
                },
              ],
            },
          ],
        },
      ],
    }),
  );
  return new Promise((resolve) => {
    let headers: Record<string, unknown> = {};
    const callOptions: grpc.CallOptions =
      options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs };
    const call = client.makeUnaryRequest(
      TRACE_EXPORT_PATH,
      (value: Buffer) => value,
      (value: Buffer) => value,
      body,
      md,
      callOptions,
      () => undefined,
    );
    call.on('metadata', (metadataReceived: grpc.Metadata) => {
      headers = metadataReceived.getMap();
    });
    call.on('status', (status: grpc.StatusObject) =>
      resolve({ code: status.code, details: status.details, trailers: status.metadata.getMap(), headers }),
    );
    options.onCall?.(call);
  });
}

describe('OTLP/gRPC listener (4317)', () => {
  let receiver: OtlpReceiver;
  let gateway: RunningGateway;
  let client: grpc.Client;

  before(async () => {
    receiver = await startOtlpReceiver();
    gateway = await startGatewayFor(
      { grpc: receiver.grpcUrl },
      { ENVOY_AUTH_METHOD: 'any', ENVOY_API_KEYS: KEY, ENVOY_BASIC_AUTH_CREDENTIALS: `${USER}:${PASSWORD}` },
    );
    client = new ExportClient(`127.0.0.1:${gateway.ports.grpc}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    await gateway?.stop();
    await receiver?.stop();
  });

  test('the real OTel gRPC exporter delivers spans intact with a key in its headers', async () => {
    receiver.reset();
    const result = await exportSpans({
      transport: 'grpc',
      url: gateway.url('grpc'),
      headers: { 'x-api-key': KEY },
      serviceName: 'checkout',
      spans: [
        { name: 'GET /cart', attributes: { env: 'dev', component: 'web', 'http.status_code': 200 } },
        { name: 'SELECT cart', attributes: { env: 'dev', component: 'db' } },
      ],
    });
    assert.equal(result.code, 0, result.error?.message);
    const spans = await receiver.waitForSpans(2);
    assert.deepEqual(
      spans.map((span) => [span.name, span.serviceName, span.traceId, span.spanId, span.via]),
      [
        ['GET /cart', 'checkout', result.traceIds[0], result.spanIds[0], 'grpc'],
        ['SELECT cart', 'checkout', result.traceIds[1], result.spanIds[1], 'grpc'],
      ],
    );
    assert.deepEqual(spans[0]?.attributes, { env: 'dev', component: 'web', 'http.status_code': 200 });
  });

  test('a Basic credential in gRPC metadata is accepted too', async () => {
    receiver.reset();
    const result = await exportSpans({
      transport: 'grpc',
      url: gateway.url('grpc'),
      headers: { authorization: basic(USER, PASSWORD) },
      spans: [{ name: 'basic-span' }],
    });
    assert.equal(result.code, 0, result.error?.message);
    assert.equal((await receiver.waitForSpans(1))[0]?.name, 'basic-span');
  });

  for (const [label, headers] of [
    ['a wrong key', { 'x-api-key': 'not-the-key' }],
    ['no credential', {}],
  ] as const) {
    test(`with ${label} the exporter sees UNAUTHENTICATED and nothing reaches the collector`, async () => {
      receiver.reset();
      const result = await exportSpans({
        transport: 'grpc',
        url: gateway.url('grpc'),
        headers,
        spans: [{ name: 'must-not-arrive' }],
        timeoutMillis: 3000,
      });
      assert.equal(result.code, 1);
      assert.equal(result.grpcCode, grpc.status.UNAUTHENTICATED);
      assert.equal(receiver.requests.grpc, 0);
      assert.equal(receiver.spans.length, 0);
    });
  }

  test('a rejection is a gRPC answer: HTTP 200, application/grpc, trailers-only grpc-status 16', async () => {
    const http2 = await import('node:http2');
    const session = http2.connect(gateway.url('grpc'));
    try {
      const stream = session.request({
        ':method': 'POST',
        ':path': TRACE_EXPORT_PATH,
        'content-type': 'application/grpc',
        te: 'trailers',
        'x-api-key': 'wrong',
      });
      stream.end(Buffer.alloc(5));
      const [headers, flags] = await new Promise<[import('node:http2').IncomingHttpHeaders, number]>(
        (resolve) => stream.once('response', (h, f) => resolve([h, f])),
      );
      assert.equal(headers[':status'], 200);
      assert.equal(headers['content-type'], 'application/grpc');
      assert.equal(headers['grpc-status'], '16');
      assert.equal(headers['grpc-message'], 'Missing or Invalid API Key');
      assert.ok(flags & http2.constants.NGHTTP2_FLAG_END_STREAM, 'trailers-only: END_STREAM on the headers');
    } finally {
      session.close();
    }
  });

  test('a refused call is answered once its body has arrived; a client still sending after 1 s is then reset', async () => {
    const wire = await new H2Wire(gateway.ports.grpc).open();
    try {
      // Stream 1: headers, then (300 ms later) the body with END_STREAM. The answer waits for the
      // body, so a client never sees its request answered while still sending it (curl 7.88
      // hangs or fails then).
      wire.write(headersFrame(1, requestBlock({ 'x-api-key': 'wrong' }), false));
      await delay(300);
      assert.equal(wire.answered.has(1), false, 'not answered while the body is still coming');
      wire.write(emptyGrpcMessage(1));
      await eventually(
        () => wire.answered.has(1),
        5000,
        () => 'stream 1 was not answered',
      );
      // Stream 3: headers and no end. After the 1 s grace period: the answer, then RST NO_ERROR.
      wire.write(headersFrame(3, requestBlock({ 'x-api-key': 'wrong' }), false));
      await eventually(
        () => wire.resets.has(3),
        5000,
        () => 'stream 3 was not reset',
      );
      assert.ok(wire.answered.has(3), 'answered before the reset');
      assert.equal(wire.resets.get(3), 0, 'RST_STREAM NO_ERROR');
      assert.equal(wire.resets.has(1), false, 'a completed request is not reset');
      assert.equal(wire.goaway, null, 'the connection stays usable');
      assert.equal(receiver.requests.grpc, 0);
    } finally {
      wire.destroy();
    }
  });

  test('curl sending a body gets every refusal and every upstream failure as a completed call', async () => {
    // CI caught curl 7.88 hanging (exit 28) or failing (exit 92) on about 1 call in 10 when the
    // answer overtook its upload. 40 calls of each kind: a race that frequent cannot hide.
    // Its own gateway: 40 refusals from 127.0.0.1 would trip the suite gateway's failure limit.
    const deadGateway = await startGatewayFor(
      { grpc: 'http://127.0.0.1:1' },
      { ENVOY_API_KEYS: KEY, AUTH_FAILURE_LIMIT: '1000' },
    );
    try {
      const url = `${deadGateway.url('grpc')}${TRACE_EXPORT_PATH}`;
      for (const [key, status] of [
        ['wrong', '16'],
        [KEY, '14'],
      ] as const) {
        for (let i = 0; i < 40; i++) {
          const { stdout } = await run('bash', [
            '-c',
            `printf '\\0\\0\\0\\0\\0' | curl -sS -i --http2-prior-knowledge -H 'content-type: application/grpc' -H 'te: trailers' -H 'X-API-Key: ${key}' --data-binary @- --max-time 10 '${url}'`,
          ]);
          assert.match(stdout, new RegExp(`grpc-status: ${status}\\r\\n`), `call ${i}: ${stdout}`);
        }
      }
    } finally {
      await deadGateway.stop();
    }
  });

  test('metadata passes through, the key is stripped, the identity and X-Forwarded-* are added', async () => {
    receiver.reset();
    const result = await rawExport(client, {
      'x-api-key': KEY,
      'x-tenant': 'blue',
      'x-authenticated-user': 'forged',
    });
    assert.equal(result.code, grpc.status.OK, result.details);
    const seen = receiver.lastRequest?.headers ?? {};
    assert.equal(seen['x-tenant'], 'blue');
    assert.equal(seen['x-api-key'], undefined);
    assert.match(String(seen['x-authenticated-user']), /^key-[0-9a-f]{8}$/);
    assert.equal(seen['x-forwarded-for'], '127.0.0.1');
    assert.equal(seen['x-forwarded-proto'], 'http');
  });

  test('response headers, trailers, grpc-status and grpc-message of the upstream reach the client', async () => {
    receiver.reset();
    receiver.grpcBehaviour = {
      status: grpc.status.RESOURCE_EXHAUSTED,
      message: 'slow down: queue full',
      trailers: { 'x-retry-in': '5s' },
      responseMetadata: { 'x-collector': 'c1' },
    };
    try {
      const result = await rawExport(client, { 'x-api-key': KEY });
      assert.equal(result.code, grpc.status.RESOURCE_EXHAUSTED);
      assert.equal(result.details, 'slow down: queue full');
      assert.equal(result.trailers['x-retry-in'], '5s');
      assert.equal(result.headers['x-collector'], 'c1');
    } finally {
      receiver.grpcBehaviour = {};
    }
  });

  test('grpc-timeout is passed through: a deadline shorter than the collector gives DEADLINE_EXCEEDED', async () => {
    receiver.reset();
    receiver.grpcBehaviour = { delayMs: 1500 };
    try {
      const sentAt = Date.now();
      const result = await rawExport(client, { 'x-api-key': KEY }, { deadlineMs: 300 });
      assert.equal(result.code, grpc.status.DEADLINE_EXCEEDED);
      const deadline = receiver.lastRequest?.deadline ?? Number.POSITIVE_INFINITY;
      assert.ok(
        deadline >= sentAt && deadline <= sentAt + 1000,
        `collector's deadline ${deadline - sentAt} ms`,
      );
    } finally {
      receiver.grpcBehaviour = {};
    }
  });

  test('a client cancel resets the upstream stream', async () => {
    receiver.reset();
    receiver.grpcBehaviour = { delayMs: 2000 };
    try {
      const result = await rawExport(
        client,
        { 'x-api-key': KEY },
        { onCall: (call) => setTimeout(() => call.cancel(), 300) },
      );
      assert.equal(result.code, grpc.status.CANCELLED);
      const deadline = Date.now() + 5000;
      while (receiver.abandoned.grpc === 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      assert.equal(receiver.abandoned.grpc, 1, 'the collector saw the call cancelled');
    } finally {
      receiver.grpcBehaviour = {};
    }
  });

  test('200 concurrent calls multiplex over few upstream HTTP/2 sessions', async () => {
    receiver.reset();
    receiver.grpcBehaviour = { delayMs: 200 };
    try {
      const results = await Promise.all(
        Array.from({ length: 200 }, () => rawExport(client, { 'x-api-key': KEY })),
      );
      assert.deepEqual(new Set(results.map((result) => result.code)), new Set([grpc.status.OK]));
      assert.equal(receiver.requests.grpc, 200);
      const sessions = await metricValue(gateway, 'gateway_upstream_http2_sessions', 'listener="otlp-grpc"');
      assert.ok(sessions >= 1 && sessions <= 4, `upstream sessions: ${sessions}`);
      const connections = establishedConnectionsTo(receiver.grpcPort);
      assert.ok(connections >= 1 && connections <= 4, `TCP connections to the collector: ${connections}`);
    } finally {
      receiver.grpcBehaviour = {};
    }
  });
});
