import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { grpcProbe } from '../../bench/probe.js';
import { exportSpans } from '../support/otel-client.js';
import { type OtlpReceiver, startOtlpReceiver, TRACE_EXPORT_PATH } from '../support/otlp-receiver.js';
import { freePort } from '../support/ports.js';
import { spawnTracked, type TrackedProcess, waitUntilReady } from '../support/processes.js';

/**
 * The HTTP/2 frame-relay prototype (bench/prototypes/h2-frame-relay.ts) relays real OTel gRPC
 * exports whole to a receiver that decodes them, and refuses a wrong key with UNAUTHENTICATED:
 * so its benchmark figures are those of a working relay, not of one that drops the work.
 */

const KEY = 'frame-relay-test-key-7c1e';
let receiver: OtlpReceiver;
let relay: TrackedProcess;
let url = '';

before(async () => {
  receiver = await startOtlpReceiver();
  const port = await freePort();
  relay = spawnTracked(
    process.execPath,
    [
      '--import',
      'tsx',
      join(import.meta.dirname, '../../bench/prototypes/h2-frame-relay.ts'),
      String(port),
      '127.0.0.1',
      String(receiver.grpcPort),
      KEY,
    ],
    { env: { PATH: process.env.PATH } },
  );
  await waitUntilReady(
    'the frame relay',
    async () => relay.output.text().includes('listening'),
    relay,
    20_000,
  );
  url = `http://127.0.0.1:${port}`;
});

after(async () => {
  await relay?.stop();
  await receiver?.stop();
});

describe('HTTP/2 frame-relay prototype', () => {
  test('exports with the key arrive whole, span for span, gzip or not', async () => {
    for (const compression of ['none', 'gzip'] as const) {
      const names = Array.from({ length: 200 }, (_v, i) => `span-${compression}-${i}`);
      const result = await exportSpans({
        transport: 'grpc',
        url,
        headers: { 'x-api-key': KEY },
        spans: names.map((name) => ({ name, attributes: { pad: 'x'.repeat(500) } })),
        compression,
      });
      assert.equal(result.code, 0, String(result.error));
      const received = new Set(receiver.spans.map((span) => span.name));
      for (const name of names) assert.ok(received.has(name), `${name} did not arrive`);
    }
  });

  test('a wrong key and no key: UNAUTHENTICATED (16), nothing reaches the receiver', async () => {
    const before = receiver.requests.grpc;
    const attempts: Record<string, string>[] = [{ 'x-api-key': 'wrong' }, {}];
    for (const headers of attempts) {
      const result = await exportSpans({ transport: 'grpc', url, headers, spans: [{ name: 'refused' }] });
      assert.equal(result.code, 1);
      assert.equal(result.grpcCode, 16);
    }
    assert.equal(receiver.requests.grpc, before);
    assert.ok(!receiver.spans.some((span) => span.name === 'refused'));
  });

  test('a refusal on a fresh connection follows the server preface (node:http2 calls anything earlier a protocol error)', async () => {
    const target = { host: '127.0.0.1', port: Number(new URL(url).port) };
    for (let i = 0; i < 5; i++) {
      const answer = await grpcProbe(target, TRACE_EXPORT_PATH, {}, new Uint8Array(5));
      assert.equal(answer.rejected, true, answer.summary);
    }
  });
});
