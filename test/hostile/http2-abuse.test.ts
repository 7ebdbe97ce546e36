import assert from 'node:assert/strict';
import { type ClientHttp2Session, connect as connectHttp2 } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { startGatewayFor } from '../e2e/fixtures.js';
import type { RunningGateway } from '../support/gateway.js';
import {
  emptyGrpcMessage,
  FRAME,
  frame,
  H2Wire,
  headersFrame,
  pingFrame,
  requestBlock,
  rstStreamFrame,
  settingsFrame,
} from './h2-wire.js';
import {
  type CountingGrpcUpstream,
  eventually,
  gatewayPid,
  grpcCallStatus,
  metricSum,
  NGHTTP2_CANCEL,
  NGHTTP2_ENHANCE_YOUR_CALM,
  rssKiB,
  startCountingGrpcUpstream,
} from './support.js';

/**
 * HTTP/2 abuse on the gRPC port: rapid reset (CVE-2023-44487), SETTINGS and PING floods, a
 * stream flood beyond maxConcurrentStreams, a CONTINUATION flood. Each abusive session is closed
 * with GOAWAY, an honest client keeps being served while the attack runs, and the gateway's
 * memory and in-flight counts come back down. Attackers use their own loopback addresses.
 */

const KEY = 'hostile-h2-key-d41c';
/** Attackers call this path, so the upstream tells their calls from the honest client's. */
const ATTACK_PATH = '/attack.Service/Export';
const attackCalls = (): number => upstream.paths.filter((path) => path === ATTACK_PATH).length;
let upstream: CountingGrpcUpstream;
let gateway: RunningGateway;
let honestSession: ClientHttp2Session;
let rssAtStart = 0;

before(async () => {
  upstream = await startCountingGrpcUpstream();
  gateway = await startGatewayFor({ grpc: upstream.url }, { ENVOY_API_KEYS: KEY });
  honestSession = connectHttp2(gateway.url('grpc'));
  honestSession.on('error', () => undefined);
  assert.equal(await honestCall(), '0');
  rssAtStart = rssKiB(gatewayPid(gateway));
});

after(async () => {
  honestSession?.destroy();
  await gateway?.stop();
  await upstream?.stop();
});

/** One honest gRPC call on the honest client's own session; answers its grpc-status. */
function honestCall(): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    grpcCallStatus(honestSession, KEY).then((status) => status ?? 'none'),
    new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), 5000);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Runs honest calls back to back while `attack` runs; answers the attack's result and the calls' statuses. */
async function whileHonest<T>(attack: () => Promise<T>): Promise<{ result: T; statuses: string[] }> {
  const statuses: string[] = [];
  let attacking = true;
  const honest = (async () => {
    while (attacking || statuses.length < 5) statuses.push(await honestCall());
  })();
  try {
    return { result: await attack(), statuses };
  } finally {
    attacking = false;
    await honest;
  }
}

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Opens and cancels streams on one raw session until the gateway closes it or `streams` were tried. */
async function rapidReset(
  from: string,
  streams: number,
  key: string,
): Promise<{ wire: H2Wire; tried: number }> {
  const wire = await new H2Wire(gateway.ports.grpc, { localAddress: from }).open();
  const block = requestBlock({ 'x-api-key': key }, [], ATTACK_PATH);
  let tried = 0;
  for (let id = 1; tried < streams && !wire.closed; id += 2) {
    if (!wire.write(headersFrame(id, block, false), rstStreamFrame(id, NGHTTP2_CANCEL))) break;
    tried++;
    // Paced by the gateway's own reading: see H2Wire.pinged.
    if (tried % 100 === 0) await wire.pinged();
  }
  await wire.waitClosed(3000);
  return { wire, tried };
}

async function expectRecovered(): Promise<void> {
  await eventually(
    async () => (await metricSum(gateway, 'gateway_requests_in_flight', { listener: 'otlp-grpc' })) === 0,
    5000,
    () => 'calls of closed sessions stayed in flight',
  );
  assert.ok(
    (await metricSum(gateway, 'gateway_upstream_http2_sessions')) <= 4,
    'more upstream sessions than the pool allows',
  );
  const grown = rssKiB(gatewayPid(gateway)) - rssAtStart;
  assert.ok(grown < 150 * 1024, `the gateway grew by ${grown} KiB during the attacks`);
}

describe('HTTP/2 abuse', () => {
  test('rapid reset (CVE-2023-44487) with a valid key: GOAWAY after a bounded number of streams, honest calls keep succeeding', async (t) => {
    upstream.delayMs = 1000; // every forwarded call is still in flight when its reset arrives
    const callsBefore = attackCalls();
    const counted = await metricSum(gateway, 'gateway_http2_abuse_limit_reached_total', {
      abuse: 'rapid_reset',
    });
    try {
      const { result, statuses } = await whileHonest(() =>
        Promise.all(['127.0.0.21', '127.0.0.22', '127.0.0.23'].map((from) => rapidReset(from, 5000, KEY))),
      );
      for (const { wire, tried } of result) {
        assert.ok(wire.closed, `an attacking session survived ${tried} streams`);
        assert.equal(wire.goaway?.code, NGHTTP2_ENHANCE_YOUR_CALM, `GOAWAY ${JSON.stringify(wire.goaway)}`);
        // The GOAWAY names the last stream the gateway took on: far fewer than were sent.
        assert.ok(
          (wire.goaway?.lastStreamId ?? 0) < 2 * 1000,
          `GOAWAY after stream ${wire.goaway?.lastStreamId}`,
        );
      }
      assert.deepEqual(
        [...new Set(statuses)],
        ['0'],
        `honest calls during the attack: ${statuses.join(',')}`,
      );
      assert.equal(
        (await metricSum(gateway, 'gateway_http2_abuse_limit_reached_total', { abuse: 'rapid_reset' })) -
          counted,
        3,
      );
      // Streams reset in the same read as their HEADERS are never forwarded; at most those reset
      // later could be, within the guard's budget of 200 per session.
      const reached = attackCalls() - callsBefore;
      t.diagnostic(
        `${reached} cancelled calls reached the upstream; GOAWAY after streams ${result.map(({ wire }) => wire.goaway?.lastStreamId).join(', ')}`,
      );
      assert.ok(reached <= 3 * 200, `${reached} cancelled calls reached the upstream`);
    } finally {
      upstream.delayMs = 0;
    }
    await expectRecovered();
  });

  test('rapid reset with a wrong key (refused, never forwarded): the session is closed all the same', async () => {
    const { result, statuses } = await whileHonest(() => rapidReset('127.0.0.24', 10_000, 'wrong'));
    assert.ok(result.wire.closed, `the session survived ${result.tried} streams`);
    assert.ok(result.wire.goaway !== null, 'closed without GOAWAY');
    assert.ok(result.tried < 10_000);
    assert.deepEqual([...new Set(statuses)], ['0']);
    await expectRecovered();
  });

  test('SETTINGS flood: GOAWAY ENHANCE_YOUR_CALM, counted', async () => {
    const counted = await metricSum(gateway, 'gateway_http2_abuse_limit_reached_total', {
      abuse: 'settings_flood',
    });
    const { result, statuses } = await whileHonest(async () => {
      const wire = await new H2Wire(gateway.ports.grpc, { localAddress: '127.0.0.25' }).open();
      for (let i = 0; i < 5000 && !wire.closed; i++) {
        wire.write(settingsFrame([[0x4, 65_535 + i]]));
        if (i % 100 === 99) await yieldToLoop();
      }
      await wire.waitClosed(3000);
      return wire;
    });
    assert.ok(result.closed);
    assert.equal(result.goaway?.code, NGHTTP2_ENHANCE_YOUR_CALM);
    assert.deepEqual([...new Set(statuses)], ['0']);
    assert.equal(
      (await metricSum(gateway, 'gateway_http2_abuse_limit_reached_total', { abuse: 'settings_flood' })) -
        counted,
      1,
    );
  });

  test('PING flood: GOAWAY ENHANCE_YOUR_CALM, counted', async () => {
    const counted = await metricSum(gateway, 'gateway_http2_abuse_limit_reached_total', {
      abuse: 'ping_flood',
    });
    const { result, statuses } = await whileHonest(async () => {
      const wire = await new H2Wire(gateway.ports.grpc, { localAddress: '127.0.0.26' }).open();
      for (let i = 0; i < 10_000 && !wire.closed; i++) {
        wire.write(pingFrame(i));
        if (i % 100 === 99) await yieldToLoop();
      }
      await wire.waitClosed(3000);
      return wire;
    });
    const seen = `closed ${result.closed}, GOAWAY ${JSON.stringify(result.goaway)}, ${result.pingAcks} PING ACKs, honest statuses ${JSON.stringify(statuses)}`;
    assert.ok(result.closed, `the flooding session was not closed: ${seen}`);
    assert.equal(result.goaway?.code, NGHTTP2_ENHANCE_YOUR_CALM, seen);
    assert.ok(result.pingAcks < 10_000, seen);
    assert.deepEqual([...new Set(statuses)], ['0'], seen);
    assert.equal(
      (await metricSum(gateway, 'gateway_http2_abuse_limit_reached_total', { abuse: 'ping_flood' })) -
        counted,
      1,
      seen,
    );
  });

  test('a stream flood beyond maxConcurrentStreams: excess streams refused, then the session is closed', async () => {
    upstream.delayMs = 3000; // the first streams stay open, so the flood really exceeds the limit
    const callsBefore = attackCalls();
    try {
      const { result, statuses } = await whileHonest(async () => {
        const wire = await new H2Wire(gateway.ports.grpc, { localAddress: '127.0.0.27' }).open();
        const block = requestBlock({ 'x-api-key': KEY }, [], ATTACK_PATH);
        for (let id = 1, n = 0; n < 2000 && !wire.closed; id += 2, n++) {
          wire.write(headersFrame(id, block, false));
          if (n % 50 === 49) {
            await wire.drained();
            await yieldToLoop();
          }
        }
        await wire.waitClosed(3000);
        return wire;
      });
      assert.ok(result.closed, 'the flooding session was not closed');
      assert.ok(result.goaway !== null, 'closed without GOAWAY');
      // The stream beyond the limit is refused one of the two ways RFC 9113 §5.1.2 allows: Node
      // 20's nghttp2 resets it (REFUSED_STREAM) and closes the session after
      // maxSessionRejectedStreams of them; Node 24's treats it as a connection error at once, a
      // GOAWAY(PROTOCOL_ERROR) whose last stream is the 256th, so nothing beyond it was taken.
      const refused = [...result.resets.values()].filter((code) => code !== 0).length;
      const cutAtLimit =
        result.goaway !== null && result.goaway.code !== 0 && result.goaway.lastStreamId <= 2 * 256 - 1;
      assert.ok(
        refused > 0 || cutAtLimit,
        `no stream beyond the limit was refused: ${JSON.stringify(result.goaway)}`,
      );
      assert.ok(attackCalls() - callsBefore <= 256, `${attackCalls() - callsBefore} calls forwarded`);
      assert.deepEqual([...new Set(statuses)], ['0']);
    } finally {
      upstream.delayMs = 0;
    }
    await expectRecovered();
  });

  test('a CONTINUATION flood (one header block that never ends) is cut', async () => {
    const wire = await new H2Wire(gateway.ports.grpc, { localAddress: '127.0.0.28' }).open();
    try {
      wire.write(headersFrame(1, requestBlock({ 'x-api-key': KEY }), false, false));
      const filler = Buffer.from([0x00, 0x01, 0x78, 0x01, 0x79]); // literal "x: y"
      for (let i = 0; i < 10_000 && !wire.closed; i++) {
        wire.write(frame(FRAME.CONTINUATION, 0, 1, filler));
        if (i % 100 === 99) await yieldToLoop();
      }
      // nghttp2 ends the session after a few CONTINUATION frames (GOAWAY, which the TCP reset
      // caused by the attacker's frames still arriving may discard before it is read).
      assert.ok(await wire.waitClosed(3000), 'an endless header block was accepted');
      assert.equal(wire.answered.size, 0);
    } finally {
      wire.destroy();
    }
    assert.equal(await honestCall(), '0');
  });

  test('control: an honest raw client that opens, finishes and reads its streams is served, never closed', async () => {
    const wire = await new H2Wire(gateway.ports.grpc, { localAddress: '127.0.0.29' }).open();
    try {
      const block = requestBlock({ 'x-api-key': KEY });
      for (let id = 1; id <= 99; id += 2) wire.write(headersFrame(id, block, false), emptyGrpcMessage(id));
      await eventually(
        () => wire.answered.size === 50,
        5000,
        () => `${wire.answered.size} of 50 calls answered`,
      );
      assert.equal(wire.closed, false);
      assert.equal(wire.goaway, null);
    } finally {
      wire.destroy();
    }
  });
});
