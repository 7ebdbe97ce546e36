import assert from 'node:assert/strict';
import { connect as connectHttp2 } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startGatewayFor } from '../e2e/fixtures.js';
import type { RunningGateway } from '../support/gateway.js';
import { H2Wire } from './h2-wire.js';
import {
  type CountingGrpcUpstream,
  type CountingUpstream,
  eventually,
  grpcCallStatus,
  metricSum,
  rawExchange,
  startCountingGrpcUpstream,
  startCountingUpstream,
} from './support.js';

/**
 * Slowloris: clients that trickle headers or bodies, or connect and say nothing, are cut by
 * CLIENT_HEADER_TIMEOUT / CLIENT_BODY_TIMEOUT / CLIENT_IDLE_TIMEOUT and never block anyone else;
 * uploads that keep sending and slow upstream answers are not cut; 1 000 idle connections do
 * not stop service. The timeouts are 1 s here so the test is quick.
 */

const KEY = 'hostile-slowloris-key-8e2b';
let upstream: CountingUpstream;
let grpcUpstream: CountingGrpcUpstream;
let gateway: RunningGateway;

before(async () => {
  upstream = await startCountingUpstream();
  grpcUpstream = await startCountingGrpcUpstream();
  gateway = await startGatewayFor(
    { http: upstream.url, grpc: grpcUpstream.url },
    {
      ENVOY_API_KEYS: KEY,
      CLIENT_HEADER_TIMEOUT: '1s',
      CLIENT_BODY_TIMEOUT: '1s',
      CLIENT_IDLE_TIMEOUT: '1s',
      AUTH_FAILURE_LIMIT: '0',
    },
  );
});

after(async () => {
  await gateway?.stop();
  await upstream?.stop();
  await grpcUpstream?.stop();
});

interface Trickler {
  readonly socket: Socket;
  /** Resolves with what the gateway sent once it closed the connection. */
  readonly closed: Promise<{ text: string; afterMs: number }>;
  stop(): void;
}

/** Sends `head` at once, then one byte of `rest` every `everyMs` until the gateway hangs up. */
function trickle(port: number, head: string, rest: string, everyMs: number): Trickler {
  const socket = connect({ port, host: '127.0.0.1' });
  const startedAt = Date.now();
  let text = '';
  let index = 0;
  let timer: NodeJS.Timeout | undefined;
  socket.on('connect', () => {
    socket.write(head);
    timer = setInterval(() => {
      if (index < rest.length && socket.writable) socket.write(rest[index++] as string);
    }, everyMs);
  });
  socket.on('data', (chunk: Buffer) => {
    text += chunk.toString('latin1');
  });
  socket.on('error', () => undefined);
  const closed = new Promise<{ text: string; afterMs: number }>((resolve) => {
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ text, afterMs: Date.now() - startedAt });
    });
  });
  return {
    socket,
    closed,
    stop: () => {
      clearInterval(timer);
      socket.destroy();
    },
  };
}

/** Rejects when `promise` has not settled within `ms` (bounds every wait in this file). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
    }),
  ]);
}

const honestGet = async (): Promise<number> =>
  (
    await rawExchange(
      gateway.ports.http,
      `GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${KEY}\r\n\r\n`,
      {
        untilComplete: true,
      },
    )
  ).status;

describe('slowloris: trickled headers and bodies', () => {
  test('headers trickled a byte at a time are cut with 408 after CLIENT_HEADER_TIMEOUT; others are served meanwhile', async () => {
    const before = await metricSum(gateway, 'gateway_client_timeout_limit_reached_total', {
      timeout: 'headers',
    });
    const rest = `X-API-Key: ${KEY}\r\n${'X-Pad: y\r\n'.repeat(100)}\r\n`;
    const tricklers = Array.from({ length: 50 }, () =>
      trickle(gateway.ports.http, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n', rest, 100),
    );
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(await honestGet(), 200, 'an honest client was not served while headers trickled');
      const results = await within(Promise.all(tricklers.map((t) => t.closed)), 6000, 'tricklers cut');
      for (const { text, afterMs } of results) {
        assert.match(text, /^HTTP\/1\.1 408 /, text.slice(0, 80));
        assert.ok(afterMs >= 900, `cut after ${afterMs} ms, before the 1 s timeout`);
      }
    } finally {
      for (const t of tricklers) t.stop();
    }
    const after = await metricSum(gateway, 'gateway_client_timeout_limit_reached_total', {
      timeout: 'headers',
    });
    assert.ok(after - before >= 50, `headers timeouts counted: ${after - before}`);
  });

  test('a connection that sends nothing at all is closed after CLIENT_HEADER_TIMEOUT', async () => {
    const silent = trickle(gateway.ports.http, '', '', 1000);
    const { afterMs } = await within(silent.closed, 6000, 'silent connection closed');
    assert.ok(afterMs >= 900, `closed after ${afterMs} ms`);
  });

  test('a body that stops arriving is cut with 408 after CLIENT_BODY_TIMEOUT; the upstream request is aborted', async () => {
    const before = await metricSum(gateway, 'gateway_client_timeout_limit_reached_total', {
      timeout: 'body',
    });
    const head = `POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${KEY}\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(10)}`;
    const stalled = trickle(gateway.ports.http, head, '', 60_000);
    const { text, afterMs } = await within(stalled.closed, 6000, 'stalled body cut');
    assert.match(text, /^HTTP\/1\.1 408 /);
    assert.ok(afterMs >= 900, `cut after ${afterMs} ms`);
    assert.equal(
      (await metricSum(gateway, 'gateway_client_timeout_limit_reached_total', { timeout: 'body' })) - before,
      1,
    );
    await eventually(
      async () => (await metricSum(gateway, 'gateway_requests_in_flight', { listener: 'otlp-http' })) === 0,
      3000,
      () => 'the stalled request stayed in flight',
    );
  });

  test('an unauthenticated body is never read: 401 and the connection is closed at once', async () => {
    const head = `POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(10)}`;
    const unauthenticated = trickle(gateway.ports.http, head, 'y'.repeat(100), 50);
    const { text, afterMs } = await within(unauthenticated.closed, 3000, 'unauthenticated body cut');
    assert.match(text, /^HTTP\/1\.1 401 /);
    assert.ok(afterMs < 900, `took ${afterMs} ms: the gateway waited for the body`);
  });

  test('an upload that keeps sending is never cut, however long it takes', async () => {
    const chunks = 8;
    const chunk = 'z'.repeat(100);
    const before = upstream.bodyBytes;
    const head = `POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${KEY}\r\nContent-Length: ${chunks * chunk.length}\r\n\r\n`;
    const socket = connect({ port: gateway.ports.http, host: '127.0.0.1' });
    let text = '';
    socket.on('data', (data: Buffer) => {
      text += data.toString('latin1');
    });
    socket.on('error', () => undefined);
    try {
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(head);
      // 8 pieces 250 ms apart: 2 s in all, twice CLIENT_BODY_TIMEOUT, never 1 s silent.
      for (let i = 0; i < chunks; i++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        assert.ok(!socket.destroyed, `the upload was cut after ${i} pieces: ${text}`);
        socket.write(chunk);
      }
      await eventually(
        () => text.includes('upstream ok'),
        3000,
        () => `no answer: ${JSON.stringify(text)}`,
      );
      assert.match(text, /^HTTP\/1\.1 200 /);
      assert.equal(upstream.bodyBytes - before, chunks * chunk.length);
    } finally {
      socket.destroy();
    }
  });

  test('a slow upstream answer after the body is not cut by CLIENT_BODY_TIMEOUT', async () => {
    upstream.delayMs = 1600;
    try {
      const answer = await rawExchange(
        gateway.ports.http,
        `POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${KEY}\r\nContent-Length: 5\r\n\r\nhello`,
        { untilComplete: true, waitMs: 6000 },
      );
      assert.equal(answer.status, 200, answer.text);
    } finally {
      upstream.delayMs = 0;
    }
  });

  test('an idle keep-alive connection is closed after CLIENT_IDLE_TIMEOUT', async () => {
    const socket = trickle(
      gateway.ports.http,
      `GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${KEY}\r\n\r\n`,
      '',
      60_000,
    );
    const { text, afterMs } = await within(socket.closed, 6000, 'idle keep-alive connection closed');
    assert.match(text, /^HTTP\/1\.1 200 /);
    assert.ok(afterMs >= 900, `closed after ${afterMs} ms`);
  });
});

describe('slowloris on the gRPC port', () => {
  test('a connection that never sends the HTTP/2 preface is closed after CLIENT_IDLE_TIMEOUT', async () => {
    const silent = trickle(gateway.ports.grpc, '', '', 60_000);
    const { afterMs } = await within(silent.closed, 6000, 'silent h2 connection closed');
    assert.ok(afterMs >= 900, `closed after ${afterMs} ms`);
  });

  test('an idle HTTP/2 session gets GOAWAY after CLIENT_IDLE_TIMEOUT, counted', async () => {
    const before = await metricSum(gateway, 'gateway_client_timeout_limit_reached_total', {
      timeout: 'idle',
    });
    const wire = await new H2Wire(gateway.ports.grpc).open();
    try {
      assert.ok(await wire.waitClosed(6000), 'the idle session stayed open');
      assert.equal(wire.goaway?.code, 0, 'GOAWAY NO_ERROR');
    } finally {
      wire.destroy();
    }
    assert.ok(
      (await metricSum(gateway, 'gateway_client_timeout_limit_reached_total', { timeout: 'idle' })) > before,
    );
  });

  test('a call waiting on a slow upstream longer than CLIENT_IDLE_TIMEOUT is not cut', async () => {
    grpcUpstream.delayMs = 1600;
    const session = connectHttp2(gateway.url('grpc'));
    session.on('error', () => undefined);
    try {
      const status = await within(grpcCallStatus(session, KEY), 8000, 'slow gRPC call');
      assert.equal(status, '0');
    } finally {
      grpcUpstream.delayMs = 0;
      session.destroy();
    }
  });
});

describe('1 000 idle connections', () => {
  test('do not stop service, on any port; the gateway counts them and lets them go', async () => {
    // Default timeouts here: the idle connections must stay open while service is checked.
    const busy = await startGatewayFor(
      { http: upstream.url, grpc: grpcUpstream.url },
      { ENVOY_API_KEYS: KEY },
    );
    const sockets: Socket[] = [];
    try {
      await within(
        Promise.all(
          Array.from(
            { length: 1000 },
            (_, i) =>
              new Promise<void>((resolve, reject) => {
                const socket = connect({
                  port: i % 2 === 0 ? busy.ports.http : busy.ports.grpc,
                  host: '127.0.0.1',
                });
                socket.on('error', reject);
                socket.once('connect', () => resolve());
                sockets.push(socket);
              }),
          ),
        ),
        15_000,
        '1000 connections opened',
      );
      await eventually(
        async () =>
          (await metricSum(busy, 'gateway_open_connections', { listener: 'otlp-http' })) +
            (await metricSum(busy, 'gateway_open_connections', { listener: 'otlp-grpc' })) >=
          1000,
        5000,
        () => 'the gateway does not see the 1000 connections',
      );
      const http = await rawExchange(
        busy.ports.http,
        `GET /ok HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${KEY}\r\n\r\n`,
        { untilComplete: true },
      );
      assert.equal(http.status, 200);
      const session = connectHttp2(busy.url('grpc'));
      session.on('error', () => undefined);
      try {
        const status = await within(
          grpcCallStatus(session, KEY),
          5000,
          'gRPC call beside 1000 idle connections',
        );
        assert.equal(status, '0');
      } finally {
        session.destroy();
      }
      assert.equal((await fetch(`${busy.url('admin')}/ready`)).status, 200);
      for (const socket of sockets) socket.destroy();
      await eventually(
        async () =>
          (await metricSum(busy, 'gateway_open_connections', { listener: 'otlp-http' })) +
            (await metricSum(busy, 'gateway_open_connections', { listener: 'otlp-grpc' })) ===
          0,
        5000,
        () => 'the gateway kept connections its clients closed',
      );
    } finally {
      for (const socket of sockets) socket.destroy();
      await busy.stop();
    }
  });
});
