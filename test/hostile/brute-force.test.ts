import assert from 'node:assert/strict';
import { connect as connectHttp2, type OutgoingHttpHeaders } from 'node:http2';
import { connect as connectTcp } from 'node:net';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcrypt';
import { basic, startGatewayFor } from '../e2e/fixtures.js';
import type { RunningGateway } from '../support/gateway.js';
import {
  type CountingGrpcUpstream,
  type CountingUpstream,
  eventually,
  metricSum,
  rawExchange,
  startCountingGrpcUpstream,
  startCountingUpstream,
} from './support.js';

/**
 * Brute force: an address that fails authentication more than AUTH_FAILURE_LIMIT (default 20)
 * times within AUTH_FAILURE_WINDOW gets 429 with Retry-After (gRPC: RESOURCE_EXHAUSTED) on every
 * data port, even with a valid credential, until its window ends; other addresses are not
 * affected. Clients act from distinct loopback addresses (127.0.0.0/8 all reaches 127.0.0.1).
 */

const KEY = 'hostile-brute-key-9b1e';
const USER = 'ops';
const PASSWORD = 'bcrypt-protected-password';
const WINDOW_SECONDS = 3;

let upstream: CountingUpstream;
let grpcUpstream: CountingGrpcUpstream;
let gateway: RunningGateway;

before(async () => {
  upstream = await startCountingUpstream();
  grpcUpstream = await startCountingGrpcUpstream();
  const hash = await bcrypt.hash(PASSWORD, 4);
  // AUTH_FAILURE_LIMIT is left at its default (20); the window is shortened to keep the test fast.
  gateway = await startGatewayFor(
    { http: upstream.url, prometheus: upstream.url, grpc: grpcUpstream.url },
    {
      ENVOY_AUTH_METHOD: 'any',
      ENVOY_API_KEYS: KEY,
      ENVOY_BASIC_AUTH_CREDENTIALS: `${USER}:${hash}`,
      AUTH_FAILURE_WINDOW: `${WINDOW_SECONDS}s`,
    },
  );
});

after(async () => {
  await gateway?.stop();
  await upstream?.stop();
  await grpcUpstream?.stop();
});

function get(port: number, from: string, headers: string): ReturnType<typeof rawExchange> {
  return rawExchange(port, `GET /api/v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`, {
    localAddress: from,
    untilComplete: true,
  });
}

const withKey = `X-API-Key: ${KEY}\r\n`;
const wrongKey = 'X-API-Key: guess\r\n';

/** One gRPC call from `from`; answers its grpc-status and retry-after. */
async function grpcCall(
  from: string,
  headers: OutgoingHttpHeaders,
): Promise<{ status: string; retryAfter: string }> {
  const session = connectHttp2(`http://127.0.0.1:${gateway.ports.grpc}`, {
    createConnection: () => connectTcp({ port: gateway.ports.grpc, host: '127.0.0.1', localAddress: from }),
  });
  session.on('error', () => undefined);
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no gRPC answer in 3 s')), 3000);
      const stream = session.request({
        ':method': 'POST',
        ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
        'content-type': 'application/grpc',
        te: 'trailers',
        ...headers,
      });
      let status = '';
      let retryAfter = '';
      const read = (received: OutgoingHttpHeaders): void => {
        if (received['grpc-status'] !== undefined) status = String(received['grpc-status']);
        if (received['retry-after'] !== undefined) retryAfter = String(received['retry-after']);
      };
      stream.on('response', read);
      stream.on('trailers', read);
      stream.on('error', () => undefined);
      stream.on('close', () => {
        clearTimeout(timer);
        resolve({ status, retryAfter });
      });
      stream.resume();
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  } finally {
    session.destroy();
  }
}

describe('brute force: AUTH_FAILURE_LIMIT per client address', () => {
  test('20 failures get 401; the 21st request gets 429 with Retry-After, counted in a metric', async () => {
    const attacker = '127.0.0.2';
    const limitBefore = await metricSum(gateway, 'gateway_auth_failure_limit_reached_total');
    for (let i = 1; i <= 20; i++) {
      assert.equal((await get(gateway.ports.http, attacker, wrongKey)).status, 401, `failure ${i}`);
    }
    const refused = await get(gateway.ports.http, attacker, wrongKey);
    assert.equal(refused.status, 429, refused.text);
    const retryAfter = Number(/\r\nretry-after: (\d+)\r\n/i.exec(refused.text)?.[1]);
    assert.ok(retryAfter >= 1 && retryAfter <= WINDOW_SECONDS, `Retry-After ${retryAfter}`);
    assert.match(refused.text, /too many authentication failures/);
    assert.equal(
      (await metricSum(gateway, 'gateway_auth_failure_limit_reached_total', { listener: 'otlp-http' })) -
        limitBefore,
      1,
    );
  });

  test('a blocked address is refused on every port, even with a valid credential, and costs no bcrypt work', async () => {
    const attacker = '127.0.0.3';
    for (let i = 0; i < 20; i++) await get(gateway.ports.prometheus, attacker, wrongKey);
    const seenBefore = upstream.seen.length;
    const bcryptBefore = await metricSum(gateway, 'gateway_bcrypt_cache_misses_total');
    assert.equal((await get(gateway.ports.http, attacker, withKey)).status, 429);
    assert.equal((await get(gateway.ports.prometheus, attacker, withKey)).status, 429);
    for (let i = 0; i < 10; i++) {
      const guess = await get(
        gateway.ports.http,
        attacker,
        `Authorization: ${basic(USER, `guess-${i}`)}\r\n`,
      );
      assert.equal(guess.status, 429, guess.text);
    }
    const grpc = await grpcCall(attacker, { 'x-api-key': KEY });
    assert.equal(grpc.status, '8', 'gRPC: RESOURCE_EXHAUSTED');
    assert.ok(Number(grpc.retryAfter) >= 1);
    assert.equal(upstream.seen.length, seenBefore, 'a blocked request reached the upstream');
    assert.equal(
      await metricSum(gateway, 'gateway_bcrypt_cache_misses_total'),
      bcryptBefore,
      'bcrypt ran for a blocked address',
    );
  });

  test('other clients are unaffected: their valid requests pass and their failures are their own', async () => {
    const attacker = '127.0.0.4';
    for (let i = 0; i < 21; i++) await get(gateway.ports.http, attacker, wrongKey);
    assert.equal((await get(gateway.ports.http, attacker, withKey)).status, 429);
    const honest = '127.0.0.5';
    assert.equal((await get(gateway.ports.http, honest, withKey)).status, 200);
    assert.equal(
      (await get(gateway.ports.http, honest, wrongKey)).status,
      401,
      'not 429: its own first failure',
    );
    assert.equal(
      (await get(gateway.ports.http, honest, `Authorization: ${basic(USER, PASSWORD)}\r\n`)).status,
      200,
    );
    assert.equal((await grpcCall(honest, { 'x-api-key': KEY })).status, '0');
  });

  test('gRPC failures count too: the 21st call gets RESOURCE_EXHAUSTED, and the address is blocked on HTTP', async () => {
    const attacker = '127.0.0.6';
    for (let i = 1; i <= 20; i++) {
      assert.equal((await grpcCall(attacker, { 'x-api-key': `guess-${i}` })).status, '16', `failure ${i}`);
    }
    assert.equal((await grpcCall(attacker, { 'x-api-key': 'guess-21' })).status, '8');
    assert.equal((await get(gateway.ports.http, attacker, withKey)).status, 429);
  });

  test('a valid credential from the blocked address works again once the window has ended', async () => {
    const attacker = '127.0.0.7';
    const startedAt = Date.now();
    for (let i = 0; i < 21; i++) await get(gateway.ports.http, attacker, wrongKey);
    assert.equal((await get(gateway.ports.http, attacker, withKey)).status, 429);
    // Bounded wait: the window is 3 s from the first failure.
    await eventually(
      async () => (await get(gateway.ports.http, attacker, withKey)).status === 200,
      (WINDOW_SECONDS + 3) * 1000,
      () => 'the address was still blocked 3 s after its window ended',
    );
    assert.ok(Date.now() - startedAt >= WINDOW_SECONDS * 1000 - 100, 'unblocked before the window ended');
    assert.equal(
      (await get(gateway.ports.http, attacker, wrongKey)).status,
      401,
      'a fresh window: a failure is 401 again',
    );
  });
});
