import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { RunningGateway } from '../support/gateway.js';
import { exportSpans } from '../support/otel-client.js';
import { type OtlpReceiver, startOtlpReceiver } from '../support/otlp-receiver.js';
import { freePort } from '../support/ports.js';
import { metricValue, startGatewayFor } from './fixtures.js';

const KEY = 'failures-suite-key';
const withKey = { 'X-API-Key': KEY };

/** Accepts TCP connections and never answers: an upstream that hangs. */
async function silentServer(): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('upstream failures', () => {
  test('refused connection: 503 naming the upstream; gRPC UNAVAILABLE (14)', async () => {
    const closedPort = await freePort();
    const upstream = `http://127.0.0.1:${closedPort}`;
    const gateway = await startGatewayFor(
      { grpc: upstream, victoriametrics: upstream },
      { ENVOY_API_KEYS: KEY },
    );
    try {
      const response = await fetch(`${gateway.url('victoriametrics')}/health`, { headers: withKey });
      assert.equal(response.status, 503);
      assert.equal(await response.text(), `upstream 127.0.0.1:${closedPort} unavailable`);
      const exported = await exportSpans({
        transport: 'grpc',
        url: gateway.url('grpc'),
        headers: { 'x-api-key': KEY },
        spans: [{ name: 'nowhere' }],
        timeoutMillis: 3000,
      });
      assert.equal(exported.grpcCode, grpc.status.UNAVAILABLE);
      assert.ok(
        (await metricValue(
          gateway,
          'gateway_upstream_errors_total',
          `listener="victoriametrics",upstream="127.0.0.1:${closedPort}",kind="unavailable"`,
        )) >= 1,
      );
    } finally {
      await gateway.stop();
    }
  });

  test('an upstream that never answers: 504 after UPSTREAM_TIMEOUT; gRPC DEADLINE_EXCEEDED (4)', async () => {
    const silent = await silentServer();
    const gateway = await startGatewayFor(
      { grpc: silent.url, victoriametrics: silent.url },
      { ENVOY_API_KEYS: KEY, UPSTREAM_TIMEOUT: '700ms' },
    );
    try {
      const response = await fetch(`${gateway.url('victoriametrics')}/api/v1/query?query=up`, {
        headers: withKey,
      });
      assert.equal(response.status, 504);
      assert.equal(await response.text(), `upstream 127.0.0.1:${silent.port} did not answer in time`);
      const exported = await exportSpans({
        transport: 'grpc',
        url: gateway.url('grpc'),
        headers: { 'x-api-key': KEY },
        spans: [{ name: 'into the void' }],
        timeoutMillis: 5000,
      });
      assert.equal(exported.grpcCode, grpc.status.DEADLINE_EXCEEDED);
    } finally {
      await gateway.stop();
      await silent.close();
    }
  });

  describe('an upstream that goes away and comes back', () => {
    let receiver: OtlpReceiver;
    let gateway: RunningGateway;
    before(async () => {
      receiver = await startOtlpReceiver();
      gateway = await startGatewayFor(
        { grpc: receiver.grpcUrl, http: receiver.httpUrl },
        { ENVOY_API_KEYS: KEY },
      );
    });
    after(async () => {
      await gateway?.stop();
      await receiver?.stop();
    });

    test('the gateway answers 503 / UNAVAILABLE while it is down and recovers by itself', async () => {
      const send = (transport: 'grpc' | 'http-protobuf') =>
        exportSpans({
          transport,
          url: transport === 'grpc' ? gateway.url('grpc') : gateway.url('http'),
          headers: { 'x-api-key': KEY },
          spans: [{ name: `${transport}-span` }],
          timeoutMillis: 2000,
        });
      assert.equal((await send('grpc')).code, 0);
      assert.equal((await send('http-protobuf')).code, 0);

      const { grpcPort, httpPort } = receiver;
      await receiver.stop();
      const grpcDown = await send('grpc');
      assert.equal(grpcDown.grpcCode, grpc.status.UNAVAILABLE);
      const httpDown = await send('http-protobuf');
      assert.equal(httpDown.code, 1);
      assert.ok(httpDown.httpStatuses.length > 0 && httpDown.httpStatuses.every((status) => status === 503));

      receiver = await startOtlpReceiver({ grpcPort, httpPort });
      const grpcBack = await send('grpc');
      assert.equal(grpcBack.code, 0, grpcBack.error?.message);
      const httpBack = await send('http-protobuf');
      assert.equal(httpBack.code, 0, httpBack.error?.message);
      assert.deepEqual((await receiver.waitForSpans(2)).map((span) => span.name).sort(), [
        'grpc-span',
        'http-protobuf-span',
      ]);
    });
  });
});
