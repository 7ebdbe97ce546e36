import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { startOtlpReceiver } from '../support/otlp-receiver.js';
import { type RunningService, startVictoriaMetrics } from '../support/services.js';
import { startGatewayFor } from './fixtures.js';

/** What an AWS NLB health check does: open a TCP connection, send nothing, close it; resolves once the gateway has closed its side too. */
function tcpConnectAndLeave(port: number, holdMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`port ${port}: connection not closed within 5 s`)), 5000);
    const socket = connect(port, '127.0.0.1', () => setTimeout(() => socket.end(), holdMs));
    // Read (and drop) what the server sends, such as HTTP/2 SETTINGS, so its FIN is seen.
    socket.resume();
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

test('bare TCP connects (NLB health checks) need no credentials, are closed quietly, log no error', async () => {
  const receiver = await startOtlpReceiver();
  let vm: RunningService | undefined;
  try {
    vm = await startVictoriaMetrics();
    const gateway = await startGatewayFor(
      { grpc: receiver.grpcUrl, http: receiver.httpUrl, victoriametrics: vm.url },
      { ENVOY_API_KEYS: 'tcp-check-key' },
    );
    try {
      for (let round = 0; round < 5; round++) {
        await Promise.all(
          [gateway.ports.grpc, gateway.ports.http, gateway.ports.victoriametrics].map((port) =>
            tcpConnectAndLeave(port, round * 20),
          ),
        );
      }
      const health = await fetch(`${gateway.url('victoriametrics')}/health`, {
        headers: { 'x-api-key': 'tcp-check-key' },
      });
      assert.equal(health.status, 200, 'still serving');
      const output = gateway.output();
      const loud = output
        .split('\n')
        .filter((line) => /"level":(4|5|6)\d/.test(line) && !/PLACEHOLDER/.test(line));
      assert.deepEqual(loud, [], 'no warning or error logged');
      assert.ok(
        !/"log":"access"/.test(output),
        'a connection without a request is not an access-log request',
      );
    } finally {
      await gateway.stop();
    }
  } finally {
    await vm?.stop();
    await receiver.stop();
  }
});
