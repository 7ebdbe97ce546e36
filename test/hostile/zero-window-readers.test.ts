import assert from 'node:assert/strict';
import { connect as connectHttp2, createServer as createHttp2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { startGatewayFor } from '../e2e/fixtures.js';
import type { RunningGateway } from '../support/gateway.js';
import { sleep } from '../support/wait.js';
import { H2Wire, headersFrame, requestBlock, settingsFrame } from './h2-wire.js';
import { eventually, gatewayPid, grpcCallStatus, rssKiB, writeWithBackpressure } from './support.js';

/**
 * Issue 10 §6, first finding: on 4317, 16 connections × 200 streams with a valid key whose client
 * grants no flow-control window (SETTINGS_INITIAL_WINDOW_SIZE 0), in front of an upstream that
 * answers each with 64 MiB, took RSS from 80 MB to 2.6 GB in 15 s, and it stayed there. What the
 * gateway holds toward such clients is bounded per session (4 MiB of answers waiting, shared by
 * the session's streams) and per upstream session (its flow-control windows: 1 MiB per stream,
 * 8 MiB per connection, 4 connections), so the attack costs a bounded amount whatever its size;
 * CLIENT_SEND_TIMEOUT (default 60 s, longer than this test) is not what bounds it.
 */

const KEY = 'hostile-zero-window-key-5b1e';
const CONNECTIONS = 16;
const STREAMS = 200;
const ATTACK_MS = 15_000;
const BIG = Buffer.alloc(1024 * 1024, 0x62);
const ANSWER_MIB = 64;
/**
 * Data: at most 4 MiB of answers waiting per client session (64 MiB), and per stream one 16 KiB
 * upstream window plus one chunk of it on the client side (3,200 × 32 KiB = 100 MiB); the 3,200
 * stream pairs themselves, without any data, grew RSS by 74.7 MiB (one run, upstream answering
 * nothing). Measured with data: 256 MiB at the fix on Node 20.20.2, 443 and 449 MiB on Node
 * 24.22.3 (the honest client's 3 × 64 MiB flowing meanwhile; an 8 KiB upstream window gave the
 * same), 3,341 MiB before it (per-stream upstream window of 1 MiB).
 */
const RSS_GROWTH_BOUND_MIB = 512;

let upstream: Http2Server;
let upstreamStreamsOpened = 0;
let upstreamStreamsOpen = 0;
let gateway: RunningGateway;

before(async () => {
  // A generous upstream: its own memory bound must not be what ends the attack.
  upstream = createHttp2Server({ settings: { maxConcurrentStreams: 10_000 }, maxSessionMemory: 4096 });
  upstream.on('stream', (stream) => {
    upstreamStreamsOpened++;
    upstreamStreamsOpen++;
    stream.on('close', () => {
      upstreamStreamsOpen--;
    });
    stream.on('error', () => undefined);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    writeWithBackpressure(stream, BIG, ANSWER_MIB);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  gateway = await startGatewayFor(
    { grpc: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` },
    { ENVOY_API_KEYS: KEY, AUTH_FAILURE_LIMIT: '0', WORKERS: '1' },
  );
});

after(async () => {
  await gateway?.stop();
  await new Promise((resolve) => upstream?.close(resolve));
});

test('16 connections × 200 streams that grant no window: RSS bounded, honest calls served, all released after', async () => {
  const pid = gatewayPid(gateway);
  const rssBefore = rssKiB(pid);
  const attackers: H2Wire[] = [];
  let peakKiB = rssBefore;
  const honestStatuses: Array<string | undefined> = [];
  const honest = connectHttp2(gateway.url('grpc'));
  honest.on('error', () => undefined);
  try {
    for (let c = 0; c < CONNECTIONS; c++) {
      const wire = await new H2Wire(gateway.ports.grpc).open();
      // SETTINGS_INITIAL_WINDOW_SIZE 0: no stream of this connection may receive a DATA byte.
      const frames = [settingsFrame([[0x4, 0]])];
      for (let s = 0; s < STREAMS; s++)
        frames.push(headersFrame(1 + 2 * s, requestBlock({ 'x-api-key': KEY }), true));
      wire.write(...frames);
      attackers.push(wire);
    }
    const started = Date.now();
    while (Date.now() - started < ATTACK_MS) {
      await sleep(500);
      peakKiB = Math.max(peakKiB, rssKiB(pid));
      // An honest client on its own connection is served throughout (the upstream answers it
      // with 64 MiB too; the call's status arrives once it has read them all).
      if (honestStatuses.length < 3) honestStatuses.push(await grpcCallStatus(honest, KEY));
    }
    const growthMiB = (peakKiB - rssBefore) / 1024;
    assert.ok(
      upstreamStreamsOpened >= CONNECTIONS * STREAMS * 0.9,
      `the attack was forwarded: ${upstreamStreamsOpened} upstream streams`,
    );
    assert.ok(
      growthMiB < RSS_GROWTH_BOUND_MIB,
      `RSS grew by ${growthMiB.toFixed(1)} MiB during the attack (bound ${RSS_GROWTH_BOUND_MIB} MiB)`,
    );
    assert.deepEqual(honestStatuses, ['0', '0', '0']);
  } finally {
    for (const wire of attackers) wire.destroy();
    honest.close();
  }
  // Once the attackers are gone, every upstream stream they held is released.
  await eventually(
    () => upstreamStreamsOpen === 0,
    10_000,
    () => `${upstreamStreamsOpen} upstream streams still open after the attackers left`,
  );
});
