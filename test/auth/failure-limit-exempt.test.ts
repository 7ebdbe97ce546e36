import assert from 'node:assert/strict';
import { connect as connectHttp2 } from 'node:http2';
import { connect as connectTcp } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startGatewayFor } from '../e2e/fixtures.js';
import { type LogLine, waitForLogLines, waitForReloads, writeEnvFile } from '../e2e/operations/helpers.js';
import {
  type CountingGrpcUpstream,
  type CountingUpstream,
  grpcCallStatus,
  metricSum,
  rawExchange,
  startCountingGrpcUpstream,
  startCountingUpstream,
} from '../hostile/support.js';
import type { RunningGateway } from '../support/gateway.js';

/**
 * Issue 11 item 9: a Prometheus still sending a rotated key tripped AUTH_FAILURE_LIMIT for the
 * address every client shared, and every request from it, valid ones included, got 429.
 * AUTH_FAILURE_LIMIT_EXEMPT names addresses the limit never refuses (their failures still
 * counted in the metrics), and the 429's access-log line says which address and how many
 * failures, so the cause is found in one look. Clients act from distinct loopback addresses.
 */

const KEY = 'failure-limit-exempt-key-5d1f0c2a9b';
const LIMIT = 3;
const EXEMPT = '127.0.0.5';
const CROWD = '127.0.1.0/24';

let upstream: CountingUpstream;
let grpcUpstream: CountingGrpcUpstream;
let gateway: RunningGateway;

const envFile = (exempt: string): string =>
  `ENVOY_API_KEYS=${KEY}\nAUTH_FAILURE_LIMIT=${LIMIT}\nAUTH_FAILURE_LIMIT_EXEMPT=${exempt}\n`;

before(async () => {
  upstream = await startCountingUpstream();
  grpcUpstream = await startCountingGrpcUpstream();
  gateway = await startGatewayFor(
    { http: upstream.url, grpc: grpcUpstream.url },
    {},
    envFile(`${EXEMPT}, ${CROWD}`),
  );
});

after(async () => {
  await gateway?.stop();
  await upstream?.stop();
  await grpcUpstream?.stop();
});

async function status(from: string, key: string): Promise<number | undefined> {
  const answer = await rawExchange(
    gateway.ports.http,
    `GET /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${key}\r\n\r\n`,
    { localAddress: from, untilComplete: true },
  );
  return answer.status;
}

async function grpcStatus(from: string, key: string): Promise<string | undefined> {
  const session = connectHttp2(`http://127.0.0.1:${gateway.ports.grpc}`, {
    createConnection: () => connectTcp({ port: gateway.ports.grpc, host: '127.0.0.1', localAddress: from }),
  });
  session.on('error', () => undefined);
  try {
    return await grpcCallStatus(session, key);
  } finally {
    session.destroy();
  }
}

const refusedFrom =
  (client: string) =>
  (line: LogLine): boolean =>
    line.error === 'auth_failure_limit' && line.client === client;

describe('AUTH_FAILURE_LIMIT_EXEMPT and the 429 log line (issue 11 item 9)', () => {
  test('an exempt address keeps getting 401 for bad keys and 200 for the good one; failures still counted', async () => {
    const failuresBefore = await metricSum(gateway, 'gateway_auth_failures_total');
    for (const from of [EXEMPT, '127.0.1.77']) {
      for (let i = 0; i < LIMIT * 4; i++)
        assert.equal(await status(from, 'rotated-away'), 401, `${from} ${i}`);
      assert.equal(await status(from, KEY), 200, from);
      assert.equal(await grpcStatus(from, KEY), '0', from);
    }
    assert.equal((await metricSum(gateway, 'gateway_auth_failures_total')) - failuresBefore, 2 * LIMIT * 4);
  });

  test('any other address is still limited; the log says which address and how many failures', async () => {
    const offset = gateway.output().length;
    // On one keep-alive connection the refusal is a request, and its access-log line has the count.
    const request = (key: string): string =>
      `GET /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${key}\r\n\r\n`;
    const keepAlive = await rawExchange(
      gateway.ports.http,
      `${request('guess').repeat(LIMIT)}${request(KEY)}`,
      { localAddress: '127.0.0.6' },
    );
    assert.equal([...keepAlive.text.matchAll(/HTTP\/1\.1 401 /g)].length, LIMIT, keepAlive.text);
    assert.match(keepAlive.text, /HTTP\/1\.1 429 /);
    const [line] = await waitForLogLines(gateway, offset, refusedFrom('127.0.0.6'));
    assert.equal(line?.status, 429);
    assert.equal(line?.auth_failures, LIMIT);
    // A new connection is refused at accept, before any request: the line written when the
    // address reached the limit (once per window) says why.
    assert.equal(await status('127.0.0.6', KEY), 429);
    const reached = await waitForLogLines(gateway, offset, (candidate) =>
      /AUTH_FAILURE_LIMIT/.test(candidate.msg),
    );
    assert.deepEqual(
      reached.map((candidate) => [candidate.level, candidate.client, candidate.auth_failures]),
      [[40, '127.0.0.6', LIMIT]],
    );

    const grpcAttacker = '127.0.0.7';
    for (let i = 0; i < LIMIT; i++) assert.equal(await grpcStatus(grpcAttacker, 'guess'), '16');
    assert.equal(await grpcStatus(grpcAttacker, KEY), '8', 'RESOURCE_EXHAUSTED');
    const [grpcLine] = await waitForLogLines(gateway, offset, refusedFrom(grpcAttacker));
    assert.equal(grpcLine?.listener, 'otlp-grpc');
    assert.equal(grpcLine?.auth_failures, LIMIT);
  });

  test('the list applies live: a reload that exempts a blocked address lets it in at once', async () => {
    const blocked = '127.0.0.8';
    for (let i = 0; i < LIMIT; i++) await status(blocked, 'guess');
    assert.equal(await status(blocked, KEY), 429);
    const reloads = await metricSum(gateway, 'gateway_config_reloads_total');
    await writeEnvFile(gateway.envFile, envFile(`${EXEMPT},${blocked}`));
    await waitForReloads(gateway, reloads + 1, 10_000);
    assert.equal(await status(blocked, KEY), 200);
  });
});
