import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { exportSpans } from './otel-client.js';
import { encodeTraceRequest } from './otlp-codec.js';
import { type OtlpReceiver, startOtlpReceiver, TRACE_EXPORT_PATH } from './otlp-receiver.js';

let receiver: OtlpReceiver;
before(async () => {
  receiver = await startOtlpReceiver();
});
after(() => receiver.stop());
beforeEach(() => receiver.reset());

const urlFor = (transport: 'grpc' | 'http-protobuf' | 'http-json'): string =>
  transport === 'grpc' ? receiver.grpcUrl : receiver.httpUrl;

const attributes = {
  'llm.model': 'gpt-x',
  'llm.tokens': 1234,
  'llm.temperature': 0.25,
  'llm.cached': true,
  'llm.tags': ['a', 'b'],
};

for (const transport of ['grpc', 'http-protobuf', 'http-json'] as const) {
  for (const compression of ['none', 'gzip'] as const) {
    test(`${transport} (${compression}): the real exporter's spans arrive intact with their headers`, async () => {
      const result = await exportSpans({
        transport,
        url: urlFor(transport),
        headers: { 'x-api-key': 'selftest-key', 'x-authenticated-user': 'alice' },
        serviceName: `svc-${transport}`,
        compression,
        spans: [{ name: 'chat completion', attributes }, { name: 'embedding' }],
      });
      assert.equal(result.code, 0, result.error?.message);
      const spans = await receiver.waitForSpans(2, 5000);
      assert.deepEqual(
        spans.map(({ traceId, spanId, name, serviceName, via }) => ({
          traceId,
          spanId,
          name,
          serviceName,
          via,
        })),
        [
          {
            traceId: result.traceIds[0],
            spanId: result.spanIds[0],
            name: 'chat completion',
            serviceName: `svc-${transport}`,
            via: transport,
          },
          {
            traceId: result.traceIds[1],
            spanId: result.spanIds[1],
            name: 'embedding',
            serviceName: `svc-${transport}`,
            via: transport,
          },
        ],
      );
      assert.match(spans[0]!.traceId, /^[0-9a-f]{32}$/);
      assert.match(spans[0]!.spanId, /^[0-9a-f]{16}$/);
      assert.deepEqual(spans[0]!.attributes, attributes);
      assert.deepEqual(spans[1]!.attributes, {});
      assert.equal(receiver.requests[transport], 1);
      assert.equal(receiver.lastRequest?.via, transport);
      assert.equal(receiver.lastRequest?.headers['x-api-key'], 'selftest-key');
      assert.equal(receiver.lastRequest?.headers['x-authenticated-user'], 'alice');
      if (transport !== 'grpc') {
        assert.equal(
          receiver.lastRequest?.headers['content-encoding'],
          compression === 'gzip' ? 'gzip' : undefined,
        );
        assert.deepEqual(result.httpStatuses, [200]);
      }
    });
  }
}

test('grpc: an injected status reaches the exporter with its message and trailers', async () => {
  receiver.grpcBehaviour = {
    status: grpc.status.UNAVAILABLE,
    message: 'collector is down',
    trailers: { 'x-upstream': 'receiver' },
  };
  const result = await exportSpans({ transport: 'grpc', url: receiver.grpcUrl, spans: [{ name: 'lost' }] });
  assert.equal(result.code, 1);
  assert.equal(result.grpcCode, grpc.status.UNAVAILABLE);
  assert.match(result.error?.message ?? '', /collector is down/);
  assert.equal(result.grpcTrailers?.['x-upstream'], 'receiver');
  assert.equal(receiver.spans.length, 1, 'the request was still decoded and recorded');
});

test('grpc: a delay past the client deadline gives DEADLINE_EXCEEDED and counts the abandoned call', async () => {
  receiver.grpcBehaviour = { delayMs: 2000 };
  const result = await exportSpans({
    transport: 'grpc',
    url: receiver.grpcUrl,
    spans: [{ name: 'slow' }],
    timeoutMillis: 300,
  });
  assert.equal(result.grpcCode, grpc.status.DEADLINE_EXCEEDED);
  const deadline = Date.now() + 2000;
  while (receiver.abandoned.grpc === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(receiver.abandoned.grpc, 1);
});

test('grpc: response metadata is sent, and an undecodable body gets INVALID_ARGUMENT', async () => {
  receiver.grpcBehaviour = { responseMetadata: { 'x-collector': 'stand-in' } };
  const client = new grpc.Client(`127.0.0.1:${receiver.grpcPort}`, grpc.credentials.createInsecure());
  const call = (body: Buffer) =>
    new Promise<{ error: grpc.ServiceError | null; headers: grpc.Metadata | undefined }>((resolve) => {
      let headers: grpc.Metadata | undefined;
      const pending = client.makeUnaryRequest(
        TRACE_EXPORT_PATH,
        (value: Buffer) => value,
        (bytes: Buffer) => bytes,
        body,
        new grpc.Metadata(),
        (error) => resolve({ error, headers }),
      );
      pending.on('metadata', (metadata) => {
        headers = metadata;
      });
    });
  try {
    const request = encodeTraceRequest({
      resourceSpans: [
        {
          scopeSpans: [
            {
              spans: [
                {
                  traceId: Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex'),
                  spanId: Buffer.from('1112131415161718', 'hex'),
                  name: 'hand-made',
                },
              ],
            },
          ],
        },
      ],
    });
    const ok = await call(Buffer.from(request));
    assert.equal(ok.error, null);
    assert.deepEqual(ok.headers?.get('x-collector'), ['stand-in']);
    assert.equal(receiver.spans[0]?.traceId, '0102030405060708090a0b0c0d0e0f10');
    assert.equal(receiver.spans[0]?.serviceName, undefined);

    const bad = await call(Buffer.from([0xff, 0xff, 0xff]));
    assert.equal(bad.error?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(receiver.requests.grpc, 2);
  } finally {
    client.close();
  }
});

test('http: a non-retryable injected status is visible in the export result', async () => {
  receiver.httpBehaviour = { status: 400, body: 'no thanks' };
  const result = await exportSpans({
    transport: 'http-protobuf',
    url: receiver.httpUrl,
    spans: [{ name: 'x' }],
  });
  assert.equal(result.code, 1);
  assert.equal(result.httpStatus, 400);
  assert.deepEqual(result.httpStatuses, [400]);
  assert.equal((result.error as Error & { code?: number }).code, 400);
});

test('http: a retryable status is retried by the exporter until its deadline, every attempt recorded', async () => {
  receiver.httpBehaviour = { status: 503, headers: { 'retry-after': '0' } };
  const result = await exportSpans({
    transport: 'http-json',
    url: `${receiver.httpUrl}/v1/traces`,
    spans: [{ name: 'x' }],
    timeoutMillis: 1000,
  });
  assert.equal(result.code, 1);
  assert.equal(result.httpStatus, 503);
  assert.ok(result.httpStatuses.length >= 2, `attempts: ${result.httpStatuses}`);
  assert.ok(result.httpStatuses.every((status) => status === 503));
  assert.equal(receiver.requests['http-json'], result.httpStatuses.length);
});

test('http: answers like the collector to hand-made requests', async () => {
  const post = (body: string | Uint8Array, contentType: string, path = '/v1/traces') =>
    fetch(`${receiver.httpUrl}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body });

  const empty = await post('{"resourceSpans":[]}', 'application/json');
  assert.equal(empty.status, 200);
  assert.equal(empty.headers.get('content-type'), 'application/json');
  assert.equal(await empty.text(), '{"partialSuccess":{}}');

  const json = await post(
    JSON.stringify({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'curl' } }] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId: '5B8EFFF798038103D269B633813FC60C',
                  spanId: 'EEE19B7EC3C1B174',
                  name: 'from curl',
                  attributes: [{ key: 'n', value: { intValue: '7' } }],
                },
              ],
            },
          ],
        },
      ],
    }),
    'application/json; charset=utf-8',
  );
  assert.equal(json.status, 200);
  assert.deepEqual(
    { ...receiver.spans[0], resourceAttributes: undefined },
    {
      traceId: '5b8efff798038103d269b633813fc60c',
      spanId: 'eee19b7ec3c1b174',
      parentSpanId: undefined,
      name: 'from curl',
      serviceName: 'curl',
      attributes: { n: 7 },
      resourceAttributes: undefined,
      via: 'http-json',
    },
  );

  const protobuf = await post(encodeTraceRequest({}), 'application/x-protobuf');
  assert.equal(protobuf.status, 200);
  assert.equal(protobuf.headers.get('content-type'), 'application/x-protobuf');
  assert.equal((await protobuf.arrayBuffer()).byteLength, 0);

  assert.equal((await post(new Uint8Array([0xff, 0xff, 0xff]), 'application/x-protobuf')).status, 400);
  assert.equal(
    (await post('{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}', 'application/json'))
      .status,
    400,
  );
  assert.equal((await post('hello', 'text/plain')).status, 415);
  assert.equal((await post('{}', 'application/json', '/v1/metrics')).status, 404);
  assert.equal((await fetch(`${receiver.httpUrl}/v1/traces`)).status, 405);
});

test('waitForSpans fails after its timeout saying what arrived', async () => {
  await assert.rejects(receiver.waitForSpans(1, 100), /expected 1 spans within 100 ms, received 0/);
});
