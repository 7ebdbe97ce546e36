import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import type { RunningGateway } from '../../support/gateway.js';
import { type OtlpReceiver, startOtlpReceiver } from '../../support/otlp-receiver.js';
import { startGatewayFor } from '../fixtures.js';
import { grpcClient, grpcExport, metric, until, waitForLogLines } from './helpers.js';

/**
 * Graceful drain: SIGTERM turns /ready 503 at once, stops accepting connections, lets the
 * requests in flight finish and exits 0; DRAIN_TIMEOUT cuts what takes longer. The operator's
 * /healthcheck/fail takes the instance out of a load balancer without stopping traffic.
 */

const KEY = `drain-suite-${randomBytes(12).toString('hex')}`;
const withKey = { 'x-api-key': KEY };

interface HttpOutcome {
  readonly status: number | string;
  readonly doneAt: number;
}

/** POST /v1/traces on 4318; resolves with the status, or the client error's code. */
async function postTraces(gateway: RunningGateway): Promise<HttpOutcome> {
  try {
    const response = await fetch(`${gateway.url('http')}/v1/traces`, {
      method: 'POST',
      headers: { ...withKey, 'content-type': 'application/json' },
      body: '{"resourceSpans":[]}',
    });
    await response.arrayBuffer();
    return { status: response.status, doneAt: performance.now() };
  } catch (error) {
    const cause = (error as { cause?: NodeJS.ErrnoException }).cause;
    return {
      status: `fetch failed: ${cause?.code ?? cause?.message ?? String(error)}`,
      doneAt: performance.now(),
    };
  }
}

/** Whether a new TCP connection to `port` is accepted (true) or refused (the error code). */
function tcpConnect(port: number): Promise<true | string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

async function ready(gateway: RunningGateway): Promise<{ status: number; body: string }> {
  const response = await fetch(`${gateway.url('admin')}/ready`);
  return { status: response.status, body: await response.text() };
}

describe('operator health check: /healthcheck/fail and /healthcheck/ok', () => {
  let receiver: OtlpReceiver;
  let gateway: RunningGateway;
  let client: grpc.Client;

  before(async () => {
    receiver = await startOtlpReceiver();
    gateway = await startGatewayFor(
      { grpc: receiver.grpcUrl, http: receiver.httpUrl },
      { ENVOY_API_KEYS: KEY },
    );
    client = grpcClient(gateway);
  });
  after(async () => {
    client?.close();
    await gateway?.stop();
    await receiver?.stop();
  });

  test('/ready turns 503 while traffic still flows, and 200 again after /healthcheck/ok', async () => {
    assert.deepEqual(await ready(gateway), { status: 200, body: 'LIVE' });
    const offset = gateway.output().length;
    const failed = await fetch(`${gateway.url('admin')}/healthcheck/fail`, { method: 'POST' });
    assert.equal(failed.status, 200);
    assert.deepEqual(await ready(gateway), { status: 503, body: 'NOT READY' });
    assert.equal(await metric(gateway, 'gateway_ready'), 0);
    const [line] = await waitForLogLines(gateway, offset, (l) => l.msg === 'health check failed by operator');
    assert.equal(line?.level, 40);

    // Out of the load balancer, not out of service: requests and new connections still work.
    assert.equal((await postTraces(gateway)).status, 200);
    assert.equal((await grpcExport(client, withKey)).code, 0);
    assert.equal(await tcpConnect(gateway.ports.http), true);
    assert.equal(await tcpConnect(gateway.ports.grpc), true);

    const restored = await fetch(`${gateway.url('admin')}/healthcheck/ok`, { method: 'POST' });
    assert.equal(restored.status, 200);
    assert.deepEqual(await ready(gateway), { status: 200, body: 'LIVE' });
    assert.equal(await metric(gateway, 'gateway_ready'), 1);
  });
});

/**
 * Both in one process and with workers (the production default): there the primary turns /ready
 * 503 and tells every worker to drain.
 */
for (const workers of [1, 2]) {
  describe(`SIGTERM drains: in-flight requests finish, then exit 0, WORKERS=${workers}`, () => {
    let receiver: OtlpReceiver;
    let gateway: RunningGateway;
    const clients: grpc.Client[] = [];

    before(async () => {
      receiver = await startOtlpReceiver();
      gateway = await startGatewayFor(
        { grpc: receiver.grpcUrl, http: receiver.httpUrl },
        { ENVOY_API_KEYS: KEY, WORKERS: String(workers) },
      );
    });
    after(async () => {
      for (const client of clients) client.close();
      await gateway?.stop();
      await receiver?.stop();
    });

    test('requests in flight when SIGTERM arrives complete; /ready 503 at once; new connections refused', async () => {
      // Slow enough that the drain provably waits for them (the upstream answers after 1.5 s).
      receiver.httpBehaviour = { delayMs: 1500 };
      receiver.grpcBehaviour = { delayMs: 1500 };
      const first = grpcClient(gateway);
      const second = grpcClient(gateway);
      clients.push(first, second);
      const grpcDone: number[] = [];
      const inFlightHttp = [postTraces(gateway), postTraces(gateway), postTraces(gateway)];
      // Three calls multiplexed on one HTTP/2 session, one on another.
      const inFlightGrpc = [first, first, first, second].map((client) =>
        grpcExport(client, withKey).then((outcome) => {
          grpcDone.push(performance.now());
          return outcome;
        }),
      );
      await until('7 requests at the upstream', () => (receiver.requestLog.length >= 7 ? true : undefined));

      const offset = gateway.output().length;
      gateway.child.kill('SIGTERM');
      const [draining] = await waitForLogLines(gateway, offset, (line) => line.msg === 'draining');
      assert.equal(draining?.drain_timeout_ms, 15_000, 'the default DRAIN_TIMEOUT');

      const readyDuringDrain = await ready(gateway);
      const readyAnsweredAt = performance.now();
      assert.deepEqual(readyDuringDrain, { status: 503, body: 'NOT READY' });
      // With workers, the primary closes the shared listening socket once every worker has
      // stopped accepting, a moment after its own 'draining' line.
      for (const port of [gateway.ports.http, gateway.ports.grpc]) {
        await until(`port ${port} to refuse connections`, async () =>
          (await tcpConnect(port)) === 'ECONNREFUSED' ? true : undefined,
        );
      }
      // The session got GOAWAY: a new call on it does not reach the upstream.
      const late = await grpcExport(first, withKey, 5000);
      assert.equal(late.code, 14, `a call after GOAWAY: ${late.code} ${late.details}`);

      const http = await Promise.all(inFlightHttp);
      const grpcOutcomes = await Promise.all(inFlightGrpc);
      assert.deepEqual(
        http.map((outcome) => outcome.status),
        [200, 200, 200],
      );
      assert.deepEqual(
        grpcOutcomes.map((outcome) => outcome.code),
        [0, 0, 0, 0],
      );
      const firstCompletion = Math.min(...http.map((outcome) => outcome.doneAt), ...grpcDone);
      assert.ok(readyAnsweredAt < firstCompletion, '/ready said 503 while the requests were still in flight');
      assert.equal(receiver.requestLog.length, 7, 'nothing new reached the upstream during the drain');

      const exit = await gateway.exited;
      assert.deepEqual(exit, { code: 0, signal: null });
      await waitForLogLines(gateway, offset, (line) => line.msg === 'drained, exiting');
    });
  });

  describe(`DRAIN_TIMEOUT cuts a request that takes too long, WORKERS=${workers}`, () => {
    let receiver: OtlpReceiver;
    let gateway: RunningGateway;
    let client: grpc.Client;

    before(async () => {
      receiver = await startOtlpReceiver();
      gateway = await startGatewayFor(
        { grpc: receiver.grpcUrl, http: receiver.httpUrl },
        { ENVOY_API_KEYS: KEY, DRAIN_TIMEOUT: '1s', WORKERS: String(workers) },
      );
      client = grpcClient(gateway);
    });
    after(async () => {
      client?.close();
      await gateway?.stop();
      await receiver?.stop();
    });

    test('the upstream would answer after 8 s: the drain cuts at 1 s and exits 0', async () => {
      receiver.httpBehaviour = { delayMs: 8000 };
      receiver.grpcBehaviour = { delayMs: 8000 };
      const http = postTraces(gateway);
      const call = grpcExport(client, withKey, 20_000);
      await until('both requests at the upstream', () =>
        receiver.requestLog.length >= 2 ? true : undefined,
      );

      const offset = gateway.output().length;
      gateway.child.kill('SIGTERM');
      const [draining] = await waitForLogLines(gateway, offset, (line) => line.msg === 'draining');
      assert.equal(draining?.drain_timeout_ms, 1000);

      const exit = await gateway.exited;
      assert.deepEqual(exit, { code: 0, signal: null });
      // Cut, not answered: the clients see a failure, and the upstream saw its callers go away
      // before it could answer.
      const httpOutcome = await http;
      assert.notEqual(httpOutcome.status, 200, 'the HTTP request was cut');
      assert.match(String(httpOutcome.status), /^fetch failed/);
      const grpcOutcome = await call;
      assert.notEqual(grpcOutcome.code, 0, 'the gRPC call was cut');
      await until('the upstream to see both callers gone', () =>
        receiver.abandoned.http >= 1 && receiver.abandoned.grpc >= 1 ? true : undefined,
      );
    });
  });
}
