import assert from 'node:assert/strict';
import { connect, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { basic, startGatewayFor } from '../e2e/fixtures.js';
import type { RunningGateway } from '../support/gateway.js';
import {
  type CountingGrpcUpstream,
  type CountingUpstream,
  rawExchange,
  startCountingGrpcUpstream,
  startCountingUpstream,
} from './support.js';

/**
 * Advisory-style regression tests: every way of asking without a valid credential gets 401 (or
 * 400 when the request cannot even be parsed) and nothing reaches the upstream, which counts
 * every request it sees. Each family also has a control showing the same request with the
 * right credential does reach the upstream, so the count can fail.
 */

const KEY = 'hostile-bypass-key-7f3a9c';
const USER = 'alice';
const PASSWORD = 'correct-horse-battery';

let upstream: CountingUpstream;
let grpcUpstream: CountingGrpcUpstream;
let apiKeyGateway: RunningGateway;
let basicGateway: RunningGateway;

before(async () => {
  upstream = await startCountingUpstream();
  grpcUpstream = await startCountingGrpcUpstream();
  // The brute-force limit is off here: this suite makes hundreds of deliberate failures.
  apiKeyGateway = await startGatewayFor(
    { http: upstream.url, grpc: grpcUpstream.url },
    { ENVOY_API_KEYS: KEY, ENVOY_BASIC_AUTH_CREDENTIALS: `${USER}:${PASSWORD}`, AUTH_FAILURE_LIMIT: '0' },
  );
  basicGateway = await startGatewayFor(
    { http: upstream.url },
    {
      ENVOY_AUTH_METHOD: 'basic-auth',
      ENVOY_API_KEYS: KEY,
      ENVOY_BASIC_AUTH_CREDENTIALS: `${USER}:${PASSWORD}`,
      AUTH_FAILURE_LIMIT: '0',
    },
  );
});

after(async () => {
  await apiKeyGateway?.stop();
  await basicGateway?.stop();
  await upstream?.stop();
  await grpcUpstream?.stop();
});

const host = 'Host: 127.0.0.1\r\n';

/** Sends raw requests one per connection; each must get `expected` and none may reach the upstream. */
async function expectRefused(
  gateway: RunningGateway,
  requests: ReadonlyArray<readonly [label: string, bytes: string | Buffer, expected?: number]>,
): Promise<void> {
  const before = upstream.seen.length;
  for (const [label, bytes, expected = 401] of requests) {
    const answer = await rawExchange(gateway.ports.http, bytes, { untilComplete: true });
    assert.equal(answer.status, expected, `${label}: got ${JSON.stringify(answer.text.slice(0, 200))}`);
  }
  assert.deepEqual(
    upstream.seen.slice(before).map((seen) => `${seen.method} ${seen.url}`),
    [],
    'requests reached the upstream',
  );
}

/** The control: the same request with the key does reach the upstream. */
async function expectForwarded(gateway: RunningGateway, label: string, bytes: string): Promise<void> {
  const before = upstream.seen.length;
  const answer = await rawExchange(gateway.ports.http, bytes, { untilComplete: true });
  assert.equal(answer.status, 200, `${label}: ${answer.text.slice(0, 200)}`);
  assert.equal(upstream.seen.length, before + 1, `${label} did not reach the upstream`);
}

describe('auth bypass: odd request targets', () => {
  test('//, /%2e%2e/, /./, /..;/, encoded slashes, * and an 8 KiB path all get 401', async () => {
    const targets = [
      '//',
      '//v1/traces',
      '/%2e%2e/',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/./',
      '/./v1/traces',
      '/..;/v1/traces',
      '/v1%2ftraces',
      '/%00',
      `/${'a'.repeat(8 * 1024)}`,
    ];
    await expectRefused(
      apiKeyGateway,
      targets.map((target) => [target.slice(0, 40), `GET ${target} HTTP/1.1\r\n${host}\r\n`] as const),
    );
    await expectRefused(apiKeyGateway, [['OPTIONS *', `OPTIONS * HTTP/1.1\r\n${host}\r\n`]]);
    await expectForwarded(
      apiKeyGateway,
      '// with the key',
      `GET // HTTP/1.1\r\n${host}X-API-Key: ${KEY}\r\n\r\n`,
    );
  });

  test('absolute-form and authority-form targets get 401; with the key they go to the configured upstream only', async () => {
    await expectRefused(apiKeyGateway, [
      ['absolute-form', `GET http://127.0.0.1:${upstream.port}/v1/traces HTTP/1.1\r\n${host}\r\n`],
      ['absolute-form, other host', `GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\n${host}\r\n`],
      [
        'authority-form CONNECT',
        `CONNECT 127.0.0.1:${upstream.port} HTTP/1.1\r\nHost: 127.0.0.1:${upstream.port}\r\n\r\n`,
      ],
      ['authority-form GET (malformed)', `GET 127.0.0.1:${upstream.port} HTTP/1.1\r\n${host}\r\n`, 400],
    ]);
    // With a valid key: CONNECT is still refused (the gateway is no tunnel) ...
    const connect = await rawExchange(
      apiKeyGateway.ports.http,
      `CONNECT 127.0.0.1:${upstream.port} HTTP/1.1\r\nHost: 127.0.0.1:${upstream.port}\r\nX-API-Key: ${KEY}\r\n\r\n`,
    );
    assert.equal(connect.status, 405);
    assert.ok(connect.closed);
    // ... and an absolute-form target naming another host reaches the configured upstream, path only.
    const before = upstream.seen.length;
    const answer = await rawExchange(
      apiKeyGateway.ports.http,
      `GET http://169.254.169.254/latest/meta-data/?x=1 HTTP/1.1\r\n${host}X-API-Key: ${KEY}\r\n\r\n`,
      { untilComplete: true },
    );
    assert.equal(answer.status, 200);
    assert.equal(upstream.seen.length, before + 1);
    assert.equal(upstream.seen.at(-1)?.url, '/latest/meta-data/?x=1');
    assert.equal(upstream.seen.at(-1)?.headers.host, `127.0.0.1:${upstream.port}`);
  });
});

describe('auth bypass: methods, Expect, upgrades, HTTP versions', () => {
  test('every method (OPTIONS, HEAD, TRACE, CONNECT, PATCH, WebDAV, unknown) gets 401', async () => {
    const methods = [
      'GET',
      'POST',
      'PUT',
      'DELETE',
      'OPTIONS',
      'HEAD',
      'TRACE',
      'PATCH',
      'PROPFIND',
      'MKCOL',
      'PURGE',
    ];
    await expectRefused(
      apiKeyGateway,
      methods.map(
        (method) => [method, `${method} /v1/traces HTTP/1.1\r\n${host}Content-Length: 0\r\n\r\n`] as const,
      ),
    );
    // Methods llhttp does not know at all are malformed requests: 400, and still nothing forwarded.
    await expectRefused(apiKeyGateway, [['FOO', `FOO /v1/traces HTTP/1.1\r\n${host}\r\n`, 400]]);
  });

  test('Expect: 100-continue: 401 without 100 Continue, the body is never read and the connection closes', async () => {
    const before = upstream.seen.length;
    const answer = await rawExchange(
      apiKeyGateway.ports.http,
      `POST /v1/traces HTTP/1.1\r\n${host}Expect: 100-continue\r\nContent-Length: 1048576\r\nX-API-Key: wrong\r\n\r\n`,
    );
    assert.equal(answer.status, 401, answer.text);
    assert.doesNotMatch(answer.text, /100 Continue/i);
    assert.ok(answer.closed, 'the connection stays open for an unauthenticated body');
    assert.equal(upstream.seen.length, before);
    const allowed = await rawExchange(
      apiKeyGateway.ports.http,
      `POST /v1/traces HTTP/1.1\r\n${host}Expect: 100-continue\r\nContent-Length: 2\r\nX-API-Key: ${KEY}\r\n\r\n`,
      { waitMs: 500 },
    );
    assert.match(allowed.text, /^HTTP\/1\.1 100 Continue/, 'control: the key gets 100 Continue');
  });

  test('upgrade requests (websocket, h2c with HTTP2-Settings) get 401', async () => {
    await expectRefused(apiKeyGateway, [
      [
        'websocket',
        `GET /v1/traces HTTP/1.1\r\n${host}Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ],
      [
        'h2c',
        `GET / HTTP/1.1\r\n${host}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`,
      ],
    ]);
  });

  test('HTTP/1.0 (with and without Host) and a version-less request line get 401', async () => {
    await expectRefused(apiKeyGateway, [
      ['HTTP/1.0', 'GET /v1/traces HTTP/1.0\r\n\r\n'],
      ['HTTP/1.0 with Host', `GET /v1/traces HTTP/1.0\r\n${host}\r\n`],
      ['HTTP/1.0 keep-alive', `GET /v1/traces HTTP/1.0\r\n${host}Connection: keep-alive\r\n\r\n`],
      ['no version', 'GET /v1/traces\r\n\r\n'],
    ]);
    // HTTP/1.1 without Host is malformed.
    await expectRefused(apiKeyGateway, [['HTTP/1.1 without Host', 'GET /v1/traces HTTP/1.1\r\n\r\n', 400]]);
  });
});

describe('auth bypass: credential spellings', () => {
  test('header name case: a wrong key is wrong in every case; the right key is right in every case', async () => {
    await expectRefused(
      apiKeyGateway,
      ['x-api-key', 'X-API-KEY', 'X-Api-Key', 'x-ApI-kEy'].map(
        (name) => [name, `GET / HTTP/1.1\r\n${host}${name}: ${KEY.toUpperCase()}\r\n\r\n`] as const,
      ),
    );
    for (const name of ['x-api-key', 'X-API-KEY', 'x-ApI-kEy']) {
      await expectForwarded(apiKeyGateway, name, `GET / HTTP/1.1\r\n${host}${name}: ${KEY}\r\n\r\n`);
    }
  });

  test('a valid key plus an invalid one, in any order or spelling, gets 401', async () => {
    await expectRefused(apiKeyGateway, [
      ['valid then invalid', `GET / HTTP/1.1\r\n${host}X-API-Key: ${KEY}\r\nX-API-Key: wrong\r\n\r\n`],
      ['invalid then valid', `GET / HTTP/1.1\r\n${host}X-API-Key: wrong\r\nx-api-key: ${KEY}\r\n\r\n`],
      ['the same key twice', `GET / HTTP/1.1\r\n${host}X-API-Key: ${KEY}\r\nX-API-Key: ${KEY}\r\n\r\n`],
      ['comma-joined', `GET / HTTP/1.1\r\n${host}X-API-Key: ${KEY}, wrong\r\n\r\n`],
      [
        'key and another Bearer',
        `GET / HTTP/1.1\r\n${host}X-API-Key: ${KEY}\r\nAuthorization: Bearer wrong\r\n\r\n`,
      ],
      [
        'Bearer and another key',
        `GET / HTTP/1.1\r\n${host}Authorization: Bearer ${KEY}\r\nX-API-Key: wrong\r\n\r\n`,
      ],
      [
        'two Authorization headers',
        `GET / HTTP/1.1\r\n${host}Authorization: Bearer ${KEY}\r\nAuthorization: Bearer wrong\r\n\r\n`,
      ],
    ]);
  });

  test('keys with added whitespace, NBSP, control bytes or NUL are not the key', async () => {
    await expectRefused(apiKeyGateway, [
      ['inner space', `GET / HTTP/1.1\r\n${host}X-API-Key: ${KEY.slice(0, 5)} ${KEY.slice(5)}\r\n\r\n`],
      ['inner tab', `GET / HTTP/1.1\r\n${host}X-API-Key: ${KEY.slice(0, 5)}\t${KEY.slice(5)}\r\n\r\n`],
      [
        'trailing NBSP',
        Buffer.concat([
          Buffer.from(`GET / HTTP/1.1\r\n${host}X-API-Key: ${KEY}`),
          Buffer.from([0xc2, 0xa0]),
          Buffer.from('\r\n\r\n'),
        ]),
      ],
      [
        'leading NBSP',
        Buffer.concat([
          Buffer.from(`GET / HTTP/1.1\r\n${host}X-API-Key: `),
          Buffer.from([0xa0]),
          Buffer.from(`${KEY}\r\n\r\n`),
        ]),
      ],
      [
        'non-UTF-8 byte',
        Buffer.concat([
          Buffer.from(`GET / HTTP/1.1\r\n${host}X-API-Key: ${KEY}`),
          Buffer.from([0xff]),
          Buffer.from('\r\n\r\n'),
        ]),
      ],
      ['trailing NUL', `GET / HTTP/1.1\r\n${host}X-API-Key: ${KEY}\0\r\n\r\n`, 400],
      ['inner NUL', `GET / HTTP/1.1\r\n${host}X-API-Key: ${KEY.slice(0, 3)}\0${KEY.slice(3)}\r\n\r\n`, 400],
      ['vertical tab', `GET / HTTP/1.1\r\n${host}X-API-Key: ${KEY}\v\r\n\r\n`, 400],
      ['empty key', `GET / HTTP/1.1\r\n${host}X-API-Key: \r\n\r\n`],
      ['prefix of the key', `GET / HTTP/1.1\r\n${host}X-API-Key: ${KEY.slice(0, -1)}\r\n\r\n`],
      ['key plus a character', `GET / HTTP/1.1\r\n${host}X-API-Key: ${KEY}x\r\n\r\n`],
    ]);
    // Spaces and tabs around a header value are not part of it (RFC 9110 §5.5): the HTTP parser
    // removes them before the gateway sees the value, exactly as Envoy's codec does.
    await expectForwarded(
      apiKeyGateway,
      'optional whitespace',
      `GET / HTTP/1.1\r\n${host}X-API-Key: \t ${KEY} \t\r\n\r\n`,
    );
  });

  test('Basic: bad base64, no colon, empty user, empty password, non-UTF-8, wrong password', async () => {
    const b64 = (bytes: string | Buffer): string => Buffer.from(bytes).toString('base64');
    const cases: Array<readonly [string, string]> = [
      ['bad base64', 'Basic !!!not-base64!!!'],
      ['base64 without padding', `Basic ${b64(`${USER}:${PASSWORD}x`).replace(/=+$/, '')}`],
      ['no colon', `Basic ${b64(`${USER}${PASSWORD}`)}`],
      ['empty user', `Basic ${b64(`:${PASSWORD}`)}`],
      ['empty password', `Basic ${b64(`${USER}:`)}`],
      ['empty token', 'Basic '],
      ['non-UTF-8', `Basic ${b64(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`:${PASSWORD}`)]))}`],
      ['wrong password', `Basic ${b64(`${USER}:${PASSWORD}!`)}`],
      ['user with trailing space', `Basic ${b64(`${USER} :${PASSWORD}`)}`],
      ['scheme only', 'Basic'],
    ];
    for (const gateway of [basicGateway, apiKeyGateway]) {
      await expectRefused(
        gateway,
        cases.map(
          ([label, value]) => [label, `GET / HTTP/1.1\r\n${host}Authorization: ${value}\r\n\r\n`] as const,
        ),
      );
    }
    await expectForwarded(
      basicGateway,
      'the right password',
      `GET / HTTP/1.1\r\n${host}Authorization: ${basic(USER, PASSWORD)}\r\n\r\n`,
    );
  });

  test('Bearer with nothing after it, or an unknown scheme, gets 401', async () => {
    await expectRefused(
      apiKeyGateway,
      ['Bearer', 'Bearer ', 'Bearer    ', 'bearer', `Token ${KEY}`, `Digest username="${USER}"`, KEY].map(
        (value) =>
          [JSON.stringify(value), `GET / HTTP/1.1\r\n${host}Authorization: ${value}\r\n\r\n`] as const,
      ),
    );
    await expectForwarded(
      apiKeyGateway,
      'Bearer key',
      `GET / HTTP/1.1\r\n${host}Authorization: Bearer ${KEY}\r\n\r\n`,
    );
  });

  test('a credential for another mode: keys in basic-auth mode, users in api-key mode', async () => {
    await expectRefused(basicGateway, [
      ['X-API-Key', `GET / HTTP/1.1\r\n${host}X-API-Key: ${KEY}\r\n\r\n`],
      ['Bearer key', `GET / HTTP/1.1\r\n${host}Authorization: Bearer ${KEY}\r\n\r\n`],
      ['key as the Basic password', `GET / HTTP/1.1\r\n${host}Authorization: ${basic(USER, KEY)}\r\n\r\n`],
    ]);
    await expectRefused(apiKeyGateway, [
      ['Basic user', `GET / HTTP/1.1\r\n${host}Authorization: ${basic(USER, PASSWORD)}\r\n\r\n`],
      ['password as X-API-Key', `GET / HTTP/1.1\r\n${host}X-API-Key: ${PASSWORD}\r\n\r\n`],
    ]);
  });
});

interface GrpcAnswer {
  readonly headers: IncomingHttpHeaders;
  readonly trailers: IncomingHttpHeaders | null;
}

/** One HTTP/2 request on its own session; answers the response headers and trailers. */
async function h2Call(port: number, headers: OutgoingHttpHeaders): Promise<GrpcAnswer> {
  const session = connect(`http://127.0.0.1:${port}`);
  session.on('error', () => undefined);
  try {
    return await new Promise<GrpcAnswer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer within 3 s')), 3000);
      const stream = session.request(headers, { endStream: false });
      let responseHeaders: IncomingHttpHeaders = {};
      let trailers: IncomingHttpHeaders | null = null;
      stream.on('response', (received) => {
        responseHeaders = received;
      });
      stream.on('trailers', (received) => {
        trailers = received;
      });
      stream.on('error', () => undefined);
      stream.on('close', () => {
        clearTimeout(timer);
        resolve({ headers: responseHeaders, trailers });
      });
      stream.resume();
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
    });
  } finally {
    session.destroy();
  }
}

describe('auth bypass: the gRPC port', () => {
  const grpcHeaders = (
    extra: OutgoingHttpHeaders,
    path = '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  ): OutgoingHttpHeaders => ({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...extra,
  });

  test('missing, wrong, duplicated, conflicting and malformed credentials and odd paths: UNAUTHENTICATED, no call upstream', async () => {
    const before = grpcUpstream.paths.length;
    const attempts: Array<readonly [string, OutgoingHttpHeaders]> = [
      ['no credential', grpcHeaders({})],
      ['wrong key', grpcHeaders({ 'x-api-key': 'wrong' })],
      ['valid plus invalid', grpcHeaders({ 'x-api-key': [KEY, 'wrong'] })],
      ['the key twice', grpcHeaders({ 'x-api-key': [KEY, KEY] })],
      ['key and another Bearer', grpcHeaders({ 'x-api-key': KEY, authorization: 'Bearer wrong' })],
      ['empty Bearer', grpcHeaders({ authorization: 'Bearer ' })],
      ['bad base64', grpcHeaders({ authorization: 'Basic %%%' })],
      ['user of another mode', grpcHeaders({ authorization: basic(USER, PASSWORD) })],
      ['binary metadata', grpcHeaders({ 'x-api-key-bin': Buffer.from(KEY).toString('base64') })],
      ['path //', grpcHeaders({}, '//')],
      ['path /../', grpcHeaders({}, '/../opentelemetry.proto.collector.trace.v1.TraceService/Export')],
      ['GET', grpcHeaders({ ':method': 'GET' })],
      ['OPTIONS', grpcHeaders({ ':method': 'OPTIONS' })],
    ];
    for (const [label, headers] of attempts) {
      const answer = await h2Call(apiKeyGateway.ports.grpc, headers);
      assert.equal(answer.headers[':status'], 200, label);
      assert.equal(answer.headers['grpc-status'], '16', `${label}: ${JSON.stringify(answer)}`);
    }
    assert.deepEqual(grpcUpstream.paths.slice(before), []);
    const control = await h2Call(apiKeyGateway.ports.grpc, grpcHeaders({ 'x-api-key': KEY }));
    assert.equal(control.trailers?.['grpc-status'], '0', JSON.stringify(control));
    assert.equal(grpcUpstream.paths.length, before + 1);
  });

  test('HTTP/2 CONNECT (no :path) is refused, nothing upstream', async () => {
    const before = grpcUpstream.paths.length;
    const answer: GrpcAnswer = await h2Call(apiKeyGateway.ports.grpc, {
      ':method': 'CONNECT',
      ':authority': `127.0.0.1:${upstream.port}`,
    }).catch(() => ({ headers: {}, trailers: null }));
    const status = answer.headers[':status'];
    const grpcStatus = answer.headers['grpc-status'];
    assert.ok(
      status === undefined || grpcStatus === '16',
      `CONNECT answered ${JSON.stringify(answer.headers)}`,
    );
    assert.equal(grpcUpstream.paths.length, before);
  });
});
