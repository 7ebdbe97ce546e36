import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { startGatewayFor } from '../e2e/fixtures.js';
import type { RunningGateway } from '../support/gateway.js';
import { H2Wire, headerBlockFrames, indexed, literal, literalIndexed, requestBlock } from './h2-wire.js';
import {
  type CountingGrpcUpstream,
  type CountingUpstream,
  metricSum,
  NGHTTP2_ENHANCE_YOUR_CALM,
  rawExchange,
  startCountingGrpcUpstream,
  startCountingUpstream,
} from './support.js';

/**
 * Header floods: an HTTP/1.1 header section beyond 16 KiB gets 431 before any credential work;
 * an HTTP/2 header list beyond 16 KiB (also one inflated through the HPACK dynamic table) or
 * beyond 128 fields is refused; nothing reaches an upstream, and the next client is served.
 */

const KEY = 'hostile-headers-key-0c77';
let upstream: CountingUpstream;
let grpcUpstream: CountingGrpcUpstream;
let gateway: RunningGateway;

before(async () => {
  upstream = await startCountingUpstream();
  grpcUpstream = await startCountingGrpcUpstream();
  gateway = await startGatewayFor(
    { http: upstream.url, grpc: grpcUpstream.url },
    { ENVOY_API_KEYS: KEY, AUTH_FAILURE_LIMIT: '0' },
  );
});

after(async () => {
  await gateway?.stop();
  await upstream?.stop();
  await grpcUpstream?.stop();
});

const request = (headers: string): string => `GET /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`;

describe('HTTP/1.1 header floods', () => {
  test('a 64 KiB header gets 431 and a closed connection, with or without a valid key', async () => {
    const before = upstream.seen.length;
    const limitBefore = await metricSum(gateway, 'gateway_header_size_limit_reached_total', {
      listener: 'otlp-http',
    });
    for (const headers of [
      `X-Big: ${'a'.repeat(64 * 1024)}\r\n`,
      `X-API-Key: ${KEY}\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n`,
      `X-API-Key: ${'k'.repeat(64 * 1024)}\r\n`,
      `Cookie: ${'c=1; '.repeat(13_000)}\r\n`,
    ]) {
      const answer = await rawExchange(gateway.ports.http, request(headers), { waitMs: 3000 });
      assert.equal(answer.status, 431, answer.text.slice(0, 200));
      assert.ok(answer.closed, 'connection left open after 431');
    }
    assert.equal(upstream.seen.length, before);
    const limitAfter = await metricSum(gateway, 'gateway_header_size_limit_reached_total', {
      listener: 'otlp-http',
    });
    assert.equal(limitAfter - limitBefore, 4);
  });

  test('64 KiB spread over 4 000 small headers gets 431 too', async () => {
    const many = Array.from({ length: 4000 }, (_, i) => `X-H${i}: ${'v'.repeat(10)}\r\n`).join('');
    const answer = await rawExchange(gateway.ports.http, request(`X-API-Key: ${KEY}\r\n${many}`), {
      waitMs: 3000,
    });
    assert.equal(answer.status, 431);
  });

  test('just under the 16 KiB limit is served; just over is 431', async () => {
    const under = await rawExchange(
      gateway.ports.http,
      request(`X-API-Key: ${KEY}\r\nX-Pad: ${'p'.repeat(15 * 1024)}\r\n`),
      { untilComplete: true },
    );
    assert.equal(under.status, 200);
    const over = await rawExchange(
      gateway.ports.http,
      request(`X-API-Key: ${KEY}\r\nX-Pad: ${'p'.repeat(17 * 1024)}\r\n`),
      { waitMs: 3000 },
    );
    assert.equal(over.status, 431);
  });

  test('a header section sent after a 431 is never parsed as a request', async () => {
    const before = upstream.seen.length;
    const smuggled = `GET /after-431 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${KEY}\r\n\r\n`;
    const answer = await rawExchange(
      gateway.ports.http,
      `${request(`X-Big: ${'a'.repeat(32 * 1024)}\r\n`)}${smuggled}`,
      { waitMs: 3000 },
    );
    assert.equal(answer.status, 431);
    assert.equal((answer.text.match(/HTTP\/1\.1 \d{3}/g) ?? []).length, 1);
    assert.equal(upstream.seen.length, before);
  });
});

describe('HTTP/2 header lists (gRPC port)', () => {
  /**
   * Sends one request's header block on a raw connection, right after the preface (before our
   * SETTINGS are acknowledged, when nghttp2 does not apply its header list limit yet) or after
   * the settings exchange; answers what the server did with it.
   */
  async function sendBlock(block: Buffer, afterSettings = false): Promise<H2Wire> {
    const wire = await new H2Wire(gateway.ports.grpc).open();
    if (afterSettings) {
      const deadline = Date.now() + 2000;
      while (wire.settingsAcks === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.ok(wire.settingsAcks > 0, 'the gateway never acknowledged our SETTINGS');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    wire.write(headerBlockFrames(1, block, false));
    await wire.waitClosed(500);
    return wire;
  }

  for (const afterSettings of [false, true]) {
    test(`a header list beyond 16 KiB is refused and never reaches the upstream (${afterSettings ? 'after' : 'before'} the SETTINGS exchange)`, async () => {
      const before = grpcUpstream.paths.length;
      const limitBefore = await metricSum(gateway, 'gateway_header_size_limit_reached_total', {
        listener: 'otlp-grpc',
      });
      const wire = await sendBlock(
        requestBlock({ 'x-api-key': KEY, 'x-big': 'a'.repeat(20 * 1024) }),
        afterSettings,
      );
      try {
        assert.ok(!wire.answered.has(1), 'the oversized stream was answered');
        assert.equal(wire.resets.get(1), NGHTTP2_ENHANCE_YOUR_CALM, 'the oversized stream was not reset');
      } finally {
        wire.destroy();
      }
      assert.equal(grpcUpstream.paths.length, before);
      if (!afterSettings) {
        const limitAfter = await metricSum(gateway, 'gateway_header_size_limit_reached_total', {
          listener: 'otlp-grpc',
        });
        assert.equal(limitAfter - limitBefore, 1);
      }
    });
  }

  test('an HPACK bomb (one 4 KiB field referenced 100 times: 400 KiB decoded from 5 KiB) is refused', async () => {
    const before = grpcUpstream.paths.length;
    const references = Array.from({ length: 100 }, () => indexed(62));
    const wire = await sendBlock(
      requestBlock({ 'x-api-key': KEY }, [literalIndexed('x-bomb', 'b'.repeat(4000)), ...references]),
    );
    try {
      assert.ok(!wire.answered.has(1), 'the inflated stream was answered');
      assert.equal(wire.resets.get(1), NGHTTP2_ENHANCE_YOUR_CALM);
    } finally {
      wire.destroy();
    }
    assert.equal(grpcUpstream.paths.length, before);
  });

  test('more than 128 header fields are refused', async () => {
    const before = grpcUpstream.paths.length;
    const fields = Array.from({ length: 200 }, (_, i) => literal(`x-f${i}`, '1'));
    const wire = await sendBlock(requestBlock({ 'x-api-key': KEY }, fields));
    try {
      assert.ok(!wire.answered.has(1), 'the stream with 200 fields was answered');
      assert.equal(wire.resets.get(1), NGHTTP2_ENHANCE_YOUR_CALM);
    } finally {
      wire.destroy();
    }
    assert.equal(grpcUpstream.paths.length, before);
  });

  test('after the refusals, an honest gRPC call with ordinary metadata is served', async () => {
    const session = connect(gateway.url('grpc'));
    session.on('error', () => undefined);
    try {
      const status = await new Promise<string | undefined>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no answer')), 3000);
        const stream = session.request({
          ':method': 'POST',
          ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
          'content-type': 'application/grpc',
          te: 'trailers',
          'x-api-key': KEY,
          'x-pad': 'p'.repeat(8 * 1024),
        });
        let grpcStatus: string | undefined;
        stream.on('trailers', (trailers) => {
          grpcStatus = trailers['grpc-status'] as string | undefined;
        });
        stream.on('close', () => {
          clearTimeout(timer);
          resolve(grpcStatus);
        });
        stream.on('error', () => undefined);
        stream.resume();
        stream.end(Buffer.from([0, 0, 0, 0, 0]));
      });
      assert.equal(status, '0');
    } finally {
      session.destroy();
    }
  });
});
