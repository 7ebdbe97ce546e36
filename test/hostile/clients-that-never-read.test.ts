import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createHttp2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { establishedConnectionsTo, startGatewayFor } from '../e2e/fixtures.js';
import type { RunningGateway } from '../support/gateway.js';
import { H2Wire, headersFrame, requestBlock, settingsFrame } from './h2-wire.js';
import { eventually, metricSum, writeWithBackpressure } from './support.js';

/**
 * Issue 10 §4 and §6: clients that take a key holder's place and never give it back. Downloads
 * that are never read were held for ever (20 s later, with every timeout at 5 s, still
 * connected) and 257 slow uploads filled a port's 256-connection upstream pool so that honest
 * requests hung; on 4317, zero-window readers of large answers took RSS to 2.6 GB. Now an answer
 * the client does not take for CLIENT_SEND_TIMEOUT is cut and its upstream freed, and a full
 * pool answers 503 at once.
 */

const KEY = 'hostile-never-read-key-c2a7';
const BIG = Buffer.alloc(1024 * 1024, 0x61);
/** How many MiB each upstream answer has: far more than any socket buffer. */
const ANSWER_MIB = 64;
let httpUpstream: Server;
let grpcUpstream: Http2Server;
let upstreamClosedEarly = 0;
let gateway: RunningGateway;

before(async () => {
  httpUpstream = createServer((req, res) => {
    if (req.url === '/upload') {
      req.resume();
      req.on('end', () => res.end('ok'));
      return;
    }
    res.on('close', () => {
      if (!res.writableFinished) upstreamClosedEarly++;
    });
    writeWithBackpressure(res, BIG, ANSWER_MIB);
  });
  grpcUpstream = createHttp2Server({ settings: { maxConcurrentStreams: 10_000 } });
  grpcUpstream.on('stream', (stream) => {
    stream.on('error', () => undefined);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    writeWithBackpressure(stream, BIG, ANSWER_MIB);
  });
  await new Promise<void>((resolve) => httpUpstream.listen(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => grpcUpstream.listen(0, '127.0.0.1', resolve));
  const port = (server: Server | Http2Server): number => (server.address() as AddressInfo).port;
  gateway = await startGatewayFor(
    { http: `http://127.0.0.1:${port(httpUpstream)}`, grpc: `http://127.0.0.1:${port(grpcUpstream)}` },
    { ENVOY_API_KEYS: KEY, CLIENT_SEND_TIMEOUT: '1s', CLIENT_BODY_TIMEOUT: '60s', AUTH_FAILURE_LIMIT: '0' },
  );
});

after(async () => {
  await gateway?.stop();
  httpUpstream?.closeAllConnections();
  await new Promise((resolve) => httpUpstream?.close(resolve));
  await new Promise((resolve) => grpcUpstream?.close(resolve));
});

test('a download the client never reads is cut after CLIENT_SEND_TIMEOUT and its upstream freed', async () => {
  const closedBefore = upstreamClosedEarly;
  const socket = connect({ port: gateway.ports.http, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  socket.pause();
  socket.write(`GET /download HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\n\r\n`);
  await eventually(
    () => establishedConnectionsTo(gateway.ports.http) > 0,
    5000,
    () => 'never connected',
  );
  // Counted by the kernel: a paused client socket does not see its connection's end.
  await eventually(
    () => establishedConnectionsTo(gateway.ports.http) === 0,
    15_000,
    () => 'the gateway kept a connection that never reads',
  );
  socket.destroy();
  await eventually(
    () => upstreamClosedEarly > closedBefore,
    5000,
    () => 'the upstream kept sending',
  );
  assert.ok(
    (await metricSum(gateway, 'gateway_client_timeout_limit_reached_total', { timeout: 'send' })) >= 1,
  );
});

test('257 uploads at 1 byte/s hold the pool: the next request gets 503 at once, not a hang', async () => {
  const uploads = Array.from({ length: 257 }, () => {
    const socket = connect({ port: gateway.ports.http, host: '127.0.0.1' });
    socket.on('error', () => undefined);
    socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nX-API-Key: ${KEY}\r\nContent-Length: 1000\r\n\r\nx`);
    const timer = setInterval(() => socket.write('x'), 1000);
    return { socket, timer };
  });
  try {
    await eventually(
      async () => (await metricSum(gateway, 'gateway_upstream_pool_limit_reached_total')) >= 1,
      10_000,
      () => 'the 257th upload was never refused',
    );
    const response = await fetch(`${gateway.url('http')}/upload`, {
      method: 'POST',
      headers: { 'x-api-key': KEY },
      body: 'honest',
      signal: AbortSignal.timeout(5000),
    });
    assert.equal(response.status, 503);
    assert.equal(response.headers.get('retry-after'), '1');
    assert.match(await response.text(), /busy/);
  } finally {
    for (const { socket, timer } of uploads) {
      clearInterval(timer);
      socket.destroy();
    }
  }
  // Once they are gone, the pool serves again.
  await eventually(
    async () =>
      (
        await fetch(`${gateway.url('http')}/upload`, {
          method: 'POST',
          headers: { 'x-api-key': KEY },
          body: 'x',
        })
      ).status === 200,
    5000,
    () => 'the pool never recovered',
  );
});

test('4317: a stream whose client grants no window is reset after CLIENT_SEND_TIMEOUT', async () => {
  const wire = await new H2Wire(gateway.ports.grpc).open();
  // SETTINGS_INITIAL_WINDOW_SIZE 0: the gateway may send this client nothing.
  wire.write(settingsFrame([[0x4, 0]]), headersFrame(1, requestBlock({ 'x-api-key': KEY }), true));
  try {
    await eventually(
      () => wire.resets.has(1),
      15_000,
      () => 'stream 1 was never reset',
    );
  } finally {
    wire.destroy();
  }
});
