import assert from 'node:assert/strict';
import { type ClientHttp2Session, connect as connectHttp2 } from 'node:http2';
import { after, describe, test } from 'node:test';
import { startGatewayFor } from '../e2e/fixtures.js';
import type { RunningGateway } from '../support/gateway.js';
import { gatewayRuntimes } from '../support/runtimes.js';
import { H2Wire, headersFrame, requestBlock } from './h2-wire.js';
import {
  type CountingGrpcUpstream,
  grpcCallStatus,
  metricSum,
  startCountingGrpcUpstream,
} from './support.js';

/**
 * Issue 10 §1: with AUTH_FAILURE_LIMIT on, one HTTP/2 connection that sends more wrong-key
 * HEADERS frames than the limit in ONE write made Node 20 abort with glibc heap corruption: the
 * limiter's refusal closed the session inside the `stream` callback while nghttp2 was still
 * delivering later frames of the same read. Attackers here send 22 such frames per write, on
 * fresh connections, from an address already over its limit as well as from fresh ones; the
 * gateway (every runtime we support, one process and a cluster) must stay up and keep serving.
 */

const KEY = 'hostile-teardown-key-7f3a';
const ATTACK_ROUNDS = 12;

function wrongKeyBurst(frames: number): Buffer {
  const block = requestBlock({ 'x-api-key': 'wrong-teardown-key' });
  const out: Buffer[] = [];
  for (let i = 0, id = 1; i < frames; i++, id += 2) out.push(headersFrame(id, block, true));
  return Buffer.concat(out);
}

/** One connection, the whole burst in a single write; waits until the gateway closed it (bounded). */
async function attack(gateway: RunningGateway, from: string, frames: number): Promise<void> {
  const wire = await new H2Wire(gateway.ports.grpc, { localAddress: from }).open();
  wire.write(wrongKeyBurst(frames));
  await wire.waitClosed(1500);
  wire.destroy();
}

for (const runtime of gatewayRuntimes()) {
  for (const workers of ['1', '2']) {
    describe(`HTTP/2 session teardown inside frame callbacks (Node ${runtime.version}, WORKERS=${workers})`, () => {
      let upstream: CountingGrpcUpstream;
      let gateway: RunningGateway;
      let honest: ClientHttp2Session | undefined;

      after(async () => {
        honest?.destroy();
        await gateway?.stop();
        await upstream?.stop();
      });

      test('wrong-key HEADERS beyond AUTH_FAILURE_LIMIT in one write never crash a process', async () => {
        upstream = await startCountingGrpcUpstream();
        gateway = await startGatewayFor(
          { grpc: upstream.url },
          {
            ENVOY_API_KEYS: KEY,
            WORKERS: workers,
          },
          undefined,
          runtime.binary,
        );
        // Stands apart from the attackers: the limiter counts per client address.
        honest = connectHttp2(gateway.url('grpc'));
        honest.on('error', () => undefined);
        assert.equal(await grpcCallStatus(honest, KEY), '0');

        for (let round = 0; round < ATTACK_ROUNDS; round++) {
          // Even rounds: a fresh address crosses the limit inside the write; odd rounds: the
          // address that is already over it sends more (the limiter refuses the first frame).
          const from = `127.0.0.${60 + Math.floor(round / 2)}`;
          await attack(gateway, from, 22);
          await attack(gateway, from, 2);
        }

        assert.equal(gateway.child.exitCode, null, `the gateway exited:\n${gateway.output().slice(-2000)}`);
        const crash = /.*(corrupted|malloc\(\)|double free|worker died|SIGABRT).*/i.exec(gateway.output());
        assert.equal(crash, null, `a gateway process crashed: ${crash?.[0]}`);
        if (workers !== '1') assert.equal(await metricSum(gateway, 'gateway_worker_restarts_total'), 0);
        // The honest client's session is still served, and so is a new one.
        assert.equal(await grpcCallStatus(honest, KEY), '0');
        const fresh = connectHttp2(gateway.url('grpc'));
        fresh.on('error', () => undefined);
        try {
          assert.equal(await grpcCallStatus(fresh, KEY), '0');
        } finally {
          fresh.destroy();
        }
        assert.ok(
          (await metricSum(gateway, 'gateway_auth_failure_limit_reached_total')) > 0,
          'the failure limiter never refused anything: the attack did not exercise it',
        );
      });
    });
  }
}
