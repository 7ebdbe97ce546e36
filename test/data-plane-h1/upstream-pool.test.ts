import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { classifyUpstreamError } from '../../src/data-plane/core/upstream-failure.js';
import {
  type Http1UpstreamOptions,
  Http1UpstreamPool,
  type UpstreamRequest,
} from '../../src/data-plane/h1/upstream-pool.js';
import { selfSignedCertificate } from '../support/certificates.js';
import { sleep, until } from '../support/wait.js';

/**
 * The HTTP/1.1 upstream leg (src/data-plane/h1/upstream-pool.ts) against real node:http upstreams
 * and scripted raw TCP ones on 127.0.0.1: framing both ways, keep-alive reuse, 1xx, HEAD, answers
 * framed by the connection's end, early answers, backpressure, the timeouts, and every fault an
 * upstream can commit.
 */

const OPTIONS: Http1UpstreamOptions = { connectTimeoutMs: 1000, responseTimeoutMs: 300, connections: 8 };

interface Outcome {
  status: number;
  headers: string[];
  body: Buffer;
  bodySent: number;
  completed: boolean;
  error: (Error & { code?: string }) | null;
  /** onData calls made while the handler had the upstream paused (must stay 0). */
  callsWhilePaused: number;
}

interface Behaviour {
  /** Pause on the first body chunk for this long, then resume (a slow client). */
  pauseMs?: number;
  /** Abort from onHeaders with this error (the client went away). */
  abortOnHeaders?: Error;
}

function exchange(
  pool: Http1UpstreamPool,
  request: UpstreamRequest,
  behaviour: Behaviour = {},
): Promise<Outcome> {
  return new Promise((resolve) => {
    const outcome: Outcome = {
      status: 0,
      headers: [],
      body: Buffer.alloc(0),
      bodySent: 0,
      completed: false,
      error: null,
      callsWhilePaused: 0,
    };
    const parts: Buffer[] = [];
    let abort: ((error?: Error) => void) | null = null;
    let resume: (() => void) | null = null;
    let paused = false;
    let pausedOnce = false;
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      outcome.body = Buffer.concat(parts);
      resolve(outcome);
    };
    pool.dispatch(request, {
      onConnect(abortExchange) {
        abort = abortExchange;
      },
      onBodySent(bytes) {
        outcome.bodySent += bytes;
      },
      onHeaders(status, headers, resumeUpstream) {
        outcome.status = status;
        outcome.headers = headers;
        resume = resumeUpstream;
        if (behaviour.abortOnHeaders !== undefined) abort?.(behaviour.abortOnHeaders);
        return true;
      },
      onData(chunk) {
        if (paused) outcome.callsWhilePaused++;
        parts.push(Buffer.from(chunk));
        if (behaviour.pauseMs === undefined || pausedOnce) return true;
        pausedOnce = true;
        paused = true;
        setTimeout(() => {
          paused = false;
          resume?.();
        }, behaviour.pauseMs);
        return false;
      },
      onComplete() {
        outcome.completed = true;
        end();
      },
      onError(error) {
        assert.equal(outcome.error, null, 'onError twice');
        outcome.error = error;
        end();
      },
    });
  });
}

const get = (path = '/', headers: string[] = ['host', 'upstream']): UpstreamRequest => ({
  method: 'GET',
  path,
  headers,
  body: null,
});

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** A node:http upstream: records each request (body included) and answers with `answer`. */
async function httpUpstream(
  answer: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void = (_req, res) => res.end('ok'),
) {
  const seen: Seen[] = [];
  let connections = 0;
  const server = createHttpServer({ keepAliveTimeout: 10_000 }, (req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      answer(req, res, body);
    });
  });
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  servers.push(server);
  return {
    url: new URL(`http://127.0.0.1:${port}`),
    seen,
    get connections() {
      return connections;
    },
  };
}

/** A raw TCP upstream: `script` gets each connection and what it has received so far. */
async function rawUpstream(script: (socket: Socket, received: () => string) => void) {
  let connections = 0;
  const server = createNetServer((socket) => {
    connections++;
    let text = '';
    socket.on('data', (part: Buffer) => {
      text += part.toString('latin1');
    });
    socket.on('error', () => undefined);
    script(socket, () => text);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  servers.push(server);
  const { port } = server.address() as AddressInfo;
  return {
    url: new URL(`http://127.0.0.1:${port}`),
    get connections() {
      return connections;
    },
  };
}

/** Answers `reply` once the request's head has arrived. */
function onHead(reply: (socket: Socket) => void): (socket: Socket, received: () => string) => void {
  return (socket, received) => {
    let answered = false;
    socket.on('data', () => {
      if (!answered && received().includes('\r\n\r\n')) {
        answered = true;
        reply(socket);
      }
    });
  };
}

const servers: Server[] = [];
const pools: Http1UpstreamPool[] = [];
function poolFor(url: URL, options: Partial<Http1UpstreamOptions> = {}): Http1UpstreamPool {
  const pool = new Http1UpstreamPool(url, { ...OPTIONS, ...options });
  pools.push(pool);
  return pool;
}

after(async () => {
  await Promise.all(pools.map((pool) => pool.destroy()));
  for (const server of servers) {
    (server as Server & { closeAllConnections?: () => void }).closeAllConnections?.();
    server.close();
  }
});

describe('HTTP/1.1 upstream pool: framing and reuse', () => {
  test('a GET gets status, headers as sent (case and repeats kept) and body; the next one reuses the connection', async () => {
    const upstream = await httpUpstream((_req, res) => {
      res.setHeader('X-Mixed-Case', 'v');
      res.setHeader('set-cookie', ['a=1', 'b=2']);
      res.end('hello');
    });
    const pool = poolFor(upstream.url);
    const first = await exchange(pool, get('/first?x=1'));
    assert.equal(first.error, null);
    assert.equal(first.status, 200);
    assert.equal(first.body.toString(), 'hello');
    assert.ok(first.headers.includes('X-Mixed-Case'));
    assert.deepEqual(
      first.headers.filter((_v, i) => i % 2 === 1 && first.headers[i - 1] === 'set-cookie'),
      ['a=1', 'b=2'],
    );
    const second = await exchange(pool, get('/second'));
    assert.equal(second.status, 200);
    assert.deepEqual(
      upstream.seen.map((seen) => seen.url),
      ['/first?x=1', '/second'],
    );
    assert.equal(upstream.connections, 1, 'the keep-alive connection was not reused');
    assert.equal(pool.openConnections, 1);
  });

  test('a body with Content-Length goes as it is; one without goes chunked; POST without a body says content-length: 0', async () => {
    const upstream = await httpUpstream();
    const pool = poolFor(upstream.url);
    const payload = Buffer.alloc(300_000, 7);
    const sized = await exchange(pool, {
      method: 'POST',
      path: '/sized',
      headers: ['host', 'up', 'Content-Length', String(payload.length)],
      body: Readable.from([payload.subarray(0, 100_000), payload.subarray(100_000)]),
    });
    assert.equal(sized.status, 200);
    assert.equal(sized.bodySent, payload.length);
    const streamed = await exchange(pool, {
      method: 'POST',
      path: '/streamed',
      headers: ['host', 'up'],
      // An empty chunk in between must not end a chunked body early.
      body: Readable.from([Buffer.from('ab'), Buffer.alloc(0), Buffer.from('cde')]),
    });
    assert.equal(streamed.status, 200);
    const empty = await exchange(pool, {
      method: 'POST',
      path: '/empty',
      headers: ['host', 'up'],
      body: null,
    });
    assert.equal(empty.status, 200);
    const [a, b, c] = upstream.seen;
    assert.ok(a !== undefined && b !== undefined && c !== undefined);
    assert.equal(a.headers['content-length'], String(payload.length));
    assert.equal(a.headers['transfer-encoding'], undefined);
    assert.ok(a.body.equals(payload));
    assert.equal(b.headers['transfer-encoding'], 'chunked');
    assert.equal(b.body.toString(), 'abcde');
    assert.equal(c.headers['content-length'], '0');
    assert.equal(upstream.connections, 1);
  });

  test('HEAD: the answer has a Content-Length and no body, and the connection is reused at once', async () => {
    const upstream = await httpUpstream((req, res) => {
      res.setHeader('content-length', '10');
      res.end(req.method === 'HEAD' ? undefined : '0123456789');
    });
    const pool = poolFor(upstream.url);
    const head = await exchange(pool, { ...get('/h'), method: 'HEAD' });
    assert.equal(head.error, null);
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    const next = await exchange(pool, get('/after'));
    assert.equal(next.body.toString(), '0123456789');
    assert.equal(upstream.connections, 1);
  });

  test('1xx answers (100, 103) are skipped: the handler hears the final answer only', async () => {
    const upstream = await rawUpstream(
      onHead((socket) =>
        socket.write(
          'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n' +
            'HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok',
        ),
      ),
    );
    const outcome = await exchange(poolFor(upstream.url), get());
    assert.equal(outcome.error, null);
    assert.equal(outcome.status, 201);
    assert.equal(outcome.body.toString(), 'ok');
    assert.ok(!outcome.headers.includes('Link'));
  });

  test('an answer framed by the connection end completes at the FIN, even behind a paused client', async () => {
    const upstream = await rawUpstream(
      onHead((socket) => socket.end('HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end')),
    );
    const pool = poolFor(upstream.url);
    const plain = await exchange(pool, get());
    assert.equal(plain.error, null);
    assert.equal(plain.completed, true);
    assert.equal(plain.body.toString(), 'until the end');
    const paused = await exchange(pool, get(), { pauseMs: 100 });
    assert.equal(paused.error, null);
    assert.equal(paused.body.toString(), 'until the end');
    await until('the closed connection left the pool', () => pool.openConnections === 0);
  });

  test('an upstream that answers before the body is sent: the answer is delivered, the connection not reused', async () => {
    // Answers 413 at the head, never reading the body.
    const early = await rawUpstream(
      onHead((socket) => socket.write('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 3\r\n\r\nbig')),
    );
    const pool = poolFor(early.url);
    const body = new PassThrough();
    body.write(Buffer.alloc(1000, 1));
    const outcome = await exchange(pool, { method: 'POST', path: '/big', headers: ['host', 'up'], body });
    assert.equal(outcome.error, null);
    assert.equal(outcome.status, 413);
    assert.equal(outcome.body.toString(), 'big');
    await until('the connection left the pool', () => pool.openConnections === 0);
    body.end(Buffer.alloc(10));
  });
});

describe('HTTP/1.1 upstream pool: backpressure and timeouts', () => {
  test('a paused client gets no data until it resumes, and its pause longer than UPSTREAM_TIMEOUT is not a timeout', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024, 3);
    const upstream = await httpUpstream((_req, res) => res.end(big));
    const outcome = await exchange(poolFor(upstream.url), get(), { pauseMs: 3 * OPTIONS.responseTimeoutMs });
    assert.equal(outcome.error, null);
    assert.equal(outcome.callsWhilePaused, 0);
    assert.equal(outcome.body.length, big.length);
    assert.ok(outcome.body.equals(big));
  });

  test('no head within UPSTREAM_TIMEOUT after the request: ERR_GATEWAY_HEADERS_TIMEOUT, classified 504', async () => {
    const upstream = await rawUpstream(() => undefined);
    const outcome = await exchange(poolFor(upstream.url), get());
    assert.equal(outcome.error?.code, 'ERR_GATEWAY_HEADERS_TIMEOUT');
    assert.equal(classifyUpstreamError(outcome.error).httpStatus, 504);
  });

  test('silence inside a body: ERR_GATEWAY_BODY_TIMEOUT, classified 504 (before any byte went on)', async () => {
    const upstream = await rawUpstream(
      onHead((socket) => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart')),
    );
    const outcome = await exchange(poolFor(upstream.url), get());
    assert.equal(outcome.error?.code, 'ERR_GATEWAY_BODY_TIMEOUT');
    assert.equal(outcome.body.toString(), 'part');
    assert.equal(classifyUpstreamError(outcome.error).httpStatus, 504);
  });

  test('a request body the client is slow to send is not the upstream timing out', async () => {
    const upstream = await httpUpstream();
    const body = new PassThrough();
    const pending = exchange(poolFor(upstream.url), {
      method: 'POST',
      path: '/slow',
      headers: ['host', 'up'],
      body,
    });
    body.write('a');
    await sleep(2 * OPTIONS.responseTimeoutMs);
    body.write('b');
    await sleep(2 * OPTIONS.responseTimeoutMs);
    body.end('c');
    const outcome = await pending;
    assert.equal(outcome.error, null);
    assert.equal(upstream.seen.at(-1)?.body.toString(), 'abc');
  });

  test('an upstream that stops taking the request body: ERR_GATEWAY_HEADERS_TIMEOUT', async () => {
    const upstream = await rawUpstream((socket) => socket.pause());
    const body = new PassThrough();
    const pending = exchange(poolFor(upstream.url), {
      method: 'POST',
      path: '/up',
      headers: ['host', 'up'],
      body,
    });
    const chunk = Buffer.alloc(1024 * 1024);
    // Enough to fill both kernels' buffers; the pool pauses the body when its socket is full.
    for (let i = 0; i < 64; i++) body.write(chunk);
    const outcome = await pending;
    assert.equal(outcome.error?.code, 'ERR_GATEWAY_HEADERS_TIMEOUT');
    assert.ok(outcome.bodySent < 64 * chunk.length, 'the whole body was sent into a stalled upstream');
    body.destroy();
  });
});

describe('HTTP/1.1 upstream pool: faults', () => {
  test('a closed port: ECONNREFUSED, classified 503', async () => {
    const probe = createNetServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const outcome = await exchange(poolFor(new URL(`http://127.0.0.1:${port}`)), get());
    assert.equal(outcome.error?.code, 'ECONNREFUSED');
    assert.equal(classifyUpstreamError(outcome.error).httpStatus, 503);
  });

  const faults: readonly { name: string; reply: string; code: string }[] = [
    { name: 'garbage', reply: 'SSH-2.0-OpenSSH\r\n\r\n', code: 'ERR_GATEWAY_BAD_RESPONSE' },
    {
      name: 'Content-Length and Transfer-Encoding together',
      reply: 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n',
      code: 'ERR_GATEWAY_BAD_RESPONSE',
    },
    {
      name: 'two different Content-Lengths',
      reply: 'HTTP/1.1 200 OK\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\nabcd',
      code: 'ERR_GATEWAY_BAD_RESPONSE',
    },
    {
      name: 'a bad chunk size',
      reply: 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
      code: 'ERR_GATEWAY_BAD_RESPONSE',
    },
    {
      name: 'a head over 16 KiB',
      reply: `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(17 * 1024)}\r\ncontent-length: 0\r\n\r\n`,
      code: 'ERR_GATEWAY_BAD_RESPONSE',
    },
    {
      name: '101 Switching Protocols (never asked for)',
      reply: 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n',
      code: 'ERR_GATEWAY_BAD_RESPONSE',
    },
    {
      name: 'a body cut short by the connection end',
      reply: 'HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf',
      code: 'ERR_GATEWAY_UPSTREAM_CLOSED',
    },
    { name: 'closed before any answer', reply: '', code: 'ERR_GATEWAY_UPSTREAM_CLOSED' },
  ];
  for (const { name, reply, code } of faults) {
    test(`${name}: ${code}, classified 502, never complete`, async () => {
      const upstream = await rawUpstream(onHead((socket) => socket.end(reply)));
      const pool = poolFor(upstream.url);
      const outcome = await exchange(pool, get());
      assert.equal(outcome.completed, false);
      assert.equal(outcome.error?.code, code, outcome.error?.message);
      assert.equal(classifyUpstreamError(outcome.error).httpStatus, 502);
      await until('the broken connection left the pool', () => pool.openConnections === 0);
    });
  }

  test('bytes after a complete answer (an answer never asked for): that connection is dropped', async () => {
    const upstream = await rawUpstream(
      onHead((socket) => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n')),
    );
    const pool = poolFor(upstream.url);
    const outcome = await exchange(pool, get());
    assert.equal(outcome.completed, false);
    assert.equal(outcome.error?.code, 'ERR_GATEWAY_BAD_RESPONSE');
  });

  test('bytes on an idle connection: it is dropped, the next request gets a new one', async () => {
    const upstream = await rawUpstream(
      onHead((socket) => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
        setTimeout(() => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'), 50);
      }),
    );
    const pool = poolFor(upstream.url);
    assert.equal((await exchange(pool, get())).status, 200);
    await until('the connection that spoke out of turn was dropped', () => pool.openConnections === 0);
    assert.equal((await exchange(pool, get())).status, 200);
    assert.equal(upstream.connections, 2);
  });

  test('a request path with a space or a control character is refused before anything is sent', async () => {
    const upstream = await httpUpstream();
    const pool = poolFor(upstream.url);
    for (const path of ['/a b', '/a\r\nX-Injected: 1', '/a\u0000', '']) {
      const outcome = await exchange(pool, get(path));
      assert.equal(outcome.error?.code, 'ERR_GATEWAY_INVALID_PATH', JSON.stringify(path));
    }
    await sleep(50);
    assert.equal(upstream.seen.length, 0);
  });

  test('a body that fails before its first byte: the upstream never sees the request', async () => {
    let bytes = 0;
    const upstream = await rawUpstream((socket) =>
      socket.on('data', (part: Buffer) => (bytes += part.length)),
    );
    const body = new PassThrough();
    const pending = exchange(poolFor(upstream.url), {
      method: 'POST',
      path: '/x',
      headers: ['host', 'up'],
      body,
    });
    await sleep(50);
    body.destroy(new Error('client framing error'));
    const outcome = await pending;
    assert.equal(outcome.error?.message, 'client framing error');
    await sleep(50);
    assert.equal(bytes, 0);
  });

  test("the exchange's abort: onError once with its error, the upstream connection closed", async () => {
    let closed = 0;
    const upstream = await rawUpstream((socket, received) => {
      socket.on('close', () => closed++);
      onHead((s) => s.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\nabc'))(socket, received);
    });
    const pool = poolFor(upstream.url);
    const outcome = await exchange(pool, get(), { abortOnHeaders: new Error('client went away') });
    assert.equal(outcome.error?.message, 'client went away');
    await until('the upstream saw its connection closed', () => closed === 1);
    assert.equal(pool.openConnections, 0);
  });
});

describe('HTTP/1.1 upstream pool: the pool', () => {
  test('at its connection limit, a request waits and is served on the connection freed first', async () => {
    const upstream = await httpUpstream((_req, res) => setTimeout(() => res.end('late'), 50));
    const pool = poolFor(upstream.url, { connections: 1 });
    const [a, b] = await Promise.all([exchange(pool, get('/a')), exchange(pool, get('/b'))]);
    assert.equal(a.body.toString(), 'late');
    assert.equal(b.body.toString(), 'late');
    assert.equal(upstream.connections, 1);
  });

  test("the upstream's Keep-Alive: timeout= hint closes an idle connection before the upstream would", async () => {
    const upstream = await httpUpstream((_req, res) => {
      res.setHeader('keep-alive', 'timeout=2');
      res.end('ok');
    });
    const pool = poolFor(upstream.url);
    assert.equal((await exchange(pool, get())).status, 200);
    assert.equal(pool.openConnections, 1);
    await until('the idle connection was closed after the hint', () => pool.openConnections === 0, 4000);
  });

  test('destroy(): an exchange in flight fails with ERR_GATEWAY_POOL_CLOSED (503), and so does any later one', async () => {
    const upstream = await rawUpstream(() => undefined);
    const pool = new Http1UpstreamPool(upstream.url, { ...OPTIONS, responseTimeoutMs: 10_000 });
    const pending = exchange(pool, get());
    await until('connected', () => upstream.connections === 1);
    await pool.destroy();
    const outcome = await pending;
    assert.equal(outcome.error?.code, 'ERR_GATEWAY_POOL_CLOSED');
    assert.equal(classifyUpstreamError(outcome.error).httpStatus, 503);
    assert.equal((await exchange(pool, get())).error?.code, 'ERR_GATEWAY_POOL_CLOSED');
    assert.equal(pool.openConnections, 0);
  });

  test('https: verified against the CA given, refused without it (a self-signed certificate)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'upstream-pool-tls-'));
    try {
      const { cert, key } = selfSignedCertificate(dir, 'upstream');
      const server = createHttpsServer({ cert, key }, (_req, res) => res.end('secure'));
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      servers.push(server);
      const url = new URL(`https://127.0.0.1:${(server.address() as AddressInfo).port}`);
      const trusted = await exchange(poolFor(url, { ca: cert }), get());
      assert.equal(trusted.error, null);
      assert.equal(trusted.body.toString(), 'secure');
      const untrusted = await exchange(poolFor(url), get());
      assert.equal(untrusted.completed, false);
      assert.match(String(untrusted.error?.code), /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
