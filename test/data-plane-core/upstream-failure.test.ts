import assert from 'node:assert/strict';
import { connect as http2Connect } from 'node:http2';
import { createServer, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { Agent, request } from 'undici';
import { classifyUpstreamError, upstreamFailureText } from '../../src/data-plane/core/upstream-failure.js';

const UNAVAILABLE = { kind: 'unavailable', httpStatus: 503, grpcStatus: 14 };
const TIMEOUT = { kind: 'timeout', httpStatus: 504, grpcStatus: 4 };
const BAD_RESPONSE = { kind: 'bad_response', httpStatus: 502, grpcStatus: 14 };

const withCode = (code: string, message = code): Error => Object.assign(new Error(message), { code });

describe('classifyUpstreamError', () => {
  test('cannot connect: 503 / gRPC UNAVAILABLE (14)', () => {
    for (const code of [
      'ECONNREFUSED',
      'ENOTFOUND',
      'EAI_AGAIN',
      'EHOSTUNREACH',
      'ENETUNREACH',
      'EADDRNOTAVAIL',
      'UND_ERR_CONNECT_TIMEOUT',
      'ERR_GATEWAY_CONNECT_TIMEOUT',
    ]) {
      assert.deepEqual(classifyUpstreamError(withCode(code)), UNAVAILABLE, code);
    }
  });

  test('no response headers in time: 504 / gRPC DEADLINE_EXCEEDED (4)', () => {
    for (const code of ['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ERR_GATEWAY_HEADERS_TIMEOUT']) {
      assert.deepEqual(classifyUpstreamError(withCode(code)), TIMEOUT, code);
    }
  });

  test('socket errors and garbage: 502', () => {
    for (const code of [
      'ECONNRESET',
      'EPIPE',
      'UND_ERR_SOCKET',
      'HPE_INVALID_CONSTANT',
      'ERR_HTTP2_STREAM_ERROR',
    ]) {
      assert.deepEqual(classifyUpstreamError(withCode(code)), BAD_RESPONSE, code);
    }
  });

  test('codes nested in .cause are found', () => {
    const refused = new TypeError('fetch failed', { cause: withCode('ECONNREFUSED') });
    assert.deepEqual(classifyUpstreamError(refused), UNAVAILABLE);
    const deep = new Error('outer', {
      cause: new Error('middle', { cause: withCode('UND_ERR_HEADERS_TIMEOUT') }),
    });
    assert.deepEqual(classifyUpstreamError(deep), TIMEOUT);
    const wrapped = Object.assign(new Error('wrapper'), {
      code: 'UND_ERR_SOCKET',
      cause: withCode('ECONNREFUSED'),
    });
    assert.deepEqual(classifyUpstreamError(wrapped), UNAVAILABLE);
  });

  test('anything else, including non-errors, is 502 and never throws', () => {
    for (const value of [
      undefined,
      null,
      'boom',
      42,
      {},
      { code: 7 },
      new Error('no code'),
      Object.create(null),
    ]) {
      assert.deepEqual(classifyUpstreamError(value), BAD_RESPONSE, inspect(value));
    }
  });

  test('a cyclic cause chain does not loop', () => {
    const a: { code: string; cause?: unknown } = { code: 'X' };
    const b = { code: 'Y', cause: a };
    a.cause = b;
    assert.deepEqual(classifyUpstreamError(a), BAD_RESPONSE);
  });

  test('property: never throws on arbitrary values', () => {
    fc.assert(
      fc.property(fc.anything({ withObjectString: true, withNullPrototype: true }), (value) => {
        const failure = classifyUpstreamError(value);
        assert.ok([502, 503, 504].includes(failure.httpStatus));
      }),
      { numRuns: 200 },
    );
  });
});

describe('upstreamFailureText', () => {
  test("short text naming the upstream, never the upstream's own words", () => {
    assert.equal(
      upstreamFailureText(classifyUpstreamError(withCode('ECONNREFUSED')), 'prometheus'),
      'upstream prometheus unavailable',
    );
    assert.equal(
      upstreamFailureText(classifyUpstreamError(withCode('UND_ERR_HEADERS_TIMEOUT')), 'victoriametrics'),
      'upstream victoriametrics did not answer in time',
    );
    assert.equal(
      upstreamFailureText(classifyUpstreamError(withCode('ECONNRESET', 'secret stack detail')), 'otlp-http'),
      'upstream otlp-http failed to answer',
    );
  });
});

describe('classifyUpstreamError on errors the real transports raise', () => {
  const sockets = new Set<Socket>();
  const servers: Server[] = [];
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });

  async function listen(onConnection: (socket: Socket) => void): Promise<number> {
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      onConnection(socket);
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as { port: number }).port;
  }

  async function closedPort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    return port;
  }

  async function undiciError(
    origin: string,
    options: ConstructorParameters<typeof Agent>[0] = {},
  ): Promise<unknown> {
    const dispatcher = new Agent(options);
    try {
      const response = await request(origin, { dispatcher });
      await response.body.dump();
      return undefined;
    } catch (error) {
      return error;
    } finally {
      await dispatcher.destroy();
    }
  }

  test('undici to a closed port on 127.0.0.1: 503', async () => {
    const error = await undiciError(`http://127.0.0.1:${await closedPort()}/`);
    assert.deepEqual(classifyUpstreamError(error), UNAVAILABLE, String(error));
  });

  test('undici to a closed port on localhost (both address families tried): 503', async () => {
    const error = await undiciError(`http://localhost:${await closedPort()}/`);
    assert.ok(error, 'expected an error');
    assert.deepEqual(
      classifyUpstreamError(error),
      UNAVAILABLE,
      `${String(error)} code=${(error as { code?: string }).code}`,
    );
  });

  test('undici to a silent upstream: headers timeout, 504', async () => {
    const port = await listen(() => {});
    const error = await undiciError(`http://127.0.0.1:${port}/`, { headersTimeout: 100 });
    assert.deepEqual(classifyUpstreamError(error), TIMEOUT, String(error));
  });

  test('undici to an upstream that resets the connection: 502', async () => {
    const port = await listen((socket) => socket.once('data', () => socket.resetAndDestroy()));
    const error = await undiciError(`http://127.0.0.1:${port}/`);
    assert.deepEqual(classifyUpstreamError(error), BAD_RESPONSE, String(error));
  });

  test('undici to an upstream answering garbage: 502', async () => {
    const port = await listen((socket) => socket.once('data', () => socket.end('NOT HTTP AT ALL\r\n\r\n')));
    const error = await undiciError(`http://127.0.0.1:${port}/`);
    assert.deepEqual(classifyUpstreamError(error), BAD_RESPONSE, String(error));
  });

  test('node:http2 to a closed port: 503 / gRPC 14', async () => {
    const port = await closedPort();
    const error = await new Promise<unknown>((resolve) => {
      const session = http2Connect(`http://127.0.0.1:${port}`);
      session.on('error', (e) => {
        session.destroy();
        resolve(e);
      });
    });
    assert.deepEqual(classifyUpstreamError(error), UNAVAILABLE, String(error));
  });
});
