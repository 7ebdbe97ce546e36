import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  ClientConnection,
  type ClientConnectionOwner,
  type ClientLimits,
  type ClientRequest,
  type HeadRefusal,
} from '../../src/data-plane/h1/client-connection.js';
import { sleep, until } from '../support/wait.js';

/**
 * The HTTP/1.1 client leg (src/data-plane/h1/client-connection.ts) in process: a net server on
 * 127.0.0.1 whose sockets are read by ClientConnection, an owner that answers as each test says,
 * and raw TCP clients that send exactly the bytes under test. test/hostile drives the same code
 * through a spawned gateway; these pin the leg's own semantics: framing of answers, keep-alive,
 * pipelining one request at a time and its flood bound, the limits and clocks, bodies with
 * backpressure, and what a closing connection still reads.
 */

const LIMITS: ClientLimits = {
  maxHeadBytes: 1024,
  maxHeaderFields: 16,
  maxPipelined: 8,
  headerTimeoutMs: 400,
  idleTimeoutMs: 400,
  bodyTimeoutMs: 400,
};

type Answerer = (request: ClientRequest) => void;

class Harness implements ClientConnectionOwner {
  server!: Server;
  port = 0;
  draining = false;
  answer: Answerer = (request) => {
    request.answer.writeHead(200, { 'content-length': '2' });
    request.answer.end('ok');
  };
  readonly requests: ClientRequest[] = [];
  readonly refusals: HeadRefusal[] = [];
  readonly connects: ClientRequest[] = [];
  pipeliningCuts: Array<string | undefined> = [];
  private readonly connections = new Set<ClientConnection>();
  private sweeper: NodeJS.Timeout | null = null;

  async start(): Promise<void> {
    this.server = createServer({ noDelay: true }, (socket) => {
      const connection = new ClientConnection(socket, LIMITS, this);
      this.connections.add(connection);
      socket.once('close', () => this.connections.delete(connection));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    this.sweeper = setInterval(() => {
      const now = performance.now();
      for (const connection of this.connections) connection.sweep(now);
    }, 25);
  }

  async stop(): Promise<void> {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    for (const connection of this.connections) connection.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  onRequest(request: ClientRequest): void {
    this.requests.push(request);
    this.answer(request);
  }

  onConnect(request: ClientRequest): void {
    this.connects.push(request);
    request.answer.raw('HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
  }

  onRefused(refusal: HeadRefusal): void {
    this.refusals.push(refusal);
  }

  onPipeliningLimit(address: string | undefined): void {
    this.pipeliningCuts.push(address);
  }

  reset(): void {
    this.requests.length = 0;
    this.refusals.length = 0;
    this.connects.length = 0;
    this.pipeliningCuts = [];
    this.draining = false;
    this.answer = (request) => {
      request.answer.writeHead(200, { 'content-length': '2' });
      request.answer.end('ok');
    };
  }
}

/** A raw client: what it received, whether the gateway closed it, and how long that took. */
class RawClient {
  readonly socket: Socket;
  text = '';
  closed = false;
  closedAfterMs = 0;
  private readonly openedAt = performance.now();

  constructor(port: number) {
    this.socket = connect({ port, host: '127.0.0.1' });
    this.socket.on('data', (chunk: Buffer) => {
      this.text += chunk.toString('latin1');
    });
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => {
      this.closed = true;
      this.closedAfterMs = performance.now() - this.openedAt;
    });
  }

  send(bytes: string | Buffer): this {
    this.socket.write(bytes);
    return this;
  }

  async waitFor(pattern: RegExp, what = String(pattern)): Promise<void> {
    await until(what, () => pattern.test(this.text), 3000);
  }

  async waitClosed(): Promise<void> {
    await until('the connection closed', () => this.closed, 3000);
  }

  /** Status codes of the answers received, in order. */
  get statuses(): number[] {
    return [...this.text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1]));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

const harness = new Harness();
before(() => harness.start());
after(() => harness.stop());

const GET = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;

describe('answers', () => {
  test('Content-Length kept, Date added, keep-alive with its timeout hint; a second request on the same connection', async () => {
    harness.reset();
    const client = new RawClient(harness.port).send(GET('/one'));
    await client.waitFor(/\r\n\r\nok$/);
    assert.match(client.text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(client.text, /\r\ncontent-length: 2\r\n/);
    assert.match(client.text, /\r\ndate: \w{3}, \d{2} \w{3} \d{4} /);
    assert.match(client.text, /\r\nkeep-alive: timeout=0\r\n/);
    assert.doesNotMatch(client.text, /connection: close/i);
    client.send(GET('/two'));
    await until('two answers', () => client.statuses.length === 2, 3000);
    assert.deepEqual(
      harness.requests.map((request) => request.url),
      ['/one', '/two'],
    );
    assert.equal(client.closed, false);
    client.destroy();
  });

  test('without a Content-Length: chunked to HTTP/1.1, delimited by the close to HTTP/1.0', async () => {
    harness.reset();
    harness.answer = (request) => {
      request.answer.writeHead(200, ['x-kind', 'stream']);
      request.answer.write(Buffer.from('hello '));
      request.answer.write(Buffer.from('world'));
      request.answer.end();
    };
    const v11 = new RawClient(harness.port).send(GET('/chunked'));
    await v11.waitFor(/\r\n0\r\n\r\n$/);
    assert.match(v11.text, /\r\ntransfer-encoding: chunked\r\n/);
    assert.match(v11.text, /\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n$/);
    assert.equal(v11.closed, false);
    v11.destroy();
    const v10 = new RawClient(harness.port).send('GET /old HTTP/1.0\r\n\r\n');
    await v10.waitClosed();
    assert.doesNotMatch(v10.text, /transfer-encoding/i);
    assert.match(v10.text, /\r\nconnection: close\r\n/);
    assert.match(v10.text, /\r\n\r\nhello world$/);
  });

  test('HTTP/1.0 with keep-alive is kept, and says so', async () => {
    harness.reset();
    const client = new RawClient(harness.port).send('GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    await client.waitFor(/\r\n\r\nok$/);
    assert.match(client.text, /\r\nconnection: keep-alive\r\n/);
    client.send('GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    await until('two answers', () => client.statuses.length === 2, 3000);
    client.destroy();
  });

  test('HEAD and 204 answers carry no body, whatever the answerer writes', async () => {
    harness.reset();
    harness.answer = (request) => {
      const status = request.url === '/nothing' ? 204 : 200;
      request.answer.writeHead(status, { 'content-length': status === 204 ? '0' : '5' });
      request.answer.write(Buffer.from('abcde'));
      request.answer.end('fghij');
    };
    const client = new RawClient(harness.port).send(
      `HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n${GET('/nothing')}${GET('/full')}`,
    );
    await until('three answers', () => client.statuses.length === 3, 3000);
    await client.waitFor(/abcdefghij$/);
    assert.deepEqual(client.statuses, [200, 204, 200]);
    // Only the last answer has a body: the HEAD's Content-Length is the GET's would-be length.
    assert.equal(client.text.match(/abcde/g)?.length, 1);
    client.destroy();
  });

  test('an answerer that ends the connection (closeAfter) gets connection: close and a FIN', async () => {
    harness.reset();
    harness.answer = (request) => {
      request.answer.closeAfter();
      request.answer.writeHead(429, { 'content-length': '4' });
      request.answer.end('slow');
    };
    const client = new RawClient(harness.port).send(GET('/x'));
    await client.waitClosed();
    assert.match(client.text, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
    assert.match(client.text, /\r\nconnection: close\r\n\r\nslow$/);
  });

  test('while draining, every answer ends its connection', async () => {
    harness.reset();
    harness.draining = true;
    const client = new RawClient(harness.port).send(GET('/last'));
    await client.waitClosed();
    assert.match(client.text, /\r\nconnection: close\r\n/);
    harness.draining = false;
  });
});

describe('pipelining', () => {
  test('requests in one write are served one at a time, in order: the next is read only after the answer before it', async () => {
    harness.reset();
    const open: ClientRequest[] = [];
    harness.answer = (request) => {
      assert.equal(open.length, 0, 'a request was handed over while another was unanswered');
      open.push(request);
      setTimeout(() => {
        open.pop();
        request.answer.writeHead(200, { 'content-length': String(request.url.length) });
        request.answer.end(request.url);
      }, 30);
    };
    const client = new RawClient(harness.port).send(GET('/1') + GET('/22') + GET('/333'));
    await client.waitFor(/\/333$/);
    assert.deepEqual(
      harness.requests.map((request) => request.url),
      ['/1', '/22', '/333'],
    );
    assert.match(client.text, /\/1HTTP\/1\.1 200 OK[\s\S]*\/22HTTP\/1\.1 200 OK[\s\S]*\/333$/);
    client.destroy();
  });

  test('more than maxPipelined requests behind unanswered ones: the connection is cut and reported with its address', async () => {
    harness.reset();
    harness.answer = (request) => {
      setTimeout(() => {
        request.answer.writeHead(200, { 'content-length': '2' });
        request.answer.end('ok');
      }, 5);
    };
    const client = new RawClient(harness.port).send(GET('/p').repeat(40));
    await client.waitClosed();
    assert.deepEqual(harness.pipeliningCuts, ['127.0.0.1']);
    assert.ok(
      harness.requests.length <= LIMITS.maxPipelined + 1,
      `${harness.requests.length} requests served`,
    );
  });

  test('also behind a last answer: the rest of that read is parsed, never served, and still counted', async () => {
    harness.reset();
    harness.answer = (request) => {
      if (harness.requests.length === 3) request.answer.closeAfter();
      request.answer.writeHead(401, { 'content-length': '0' });
      request.answer.end();
    };
    const client = new RawClient(harness.port).send(GET('/f').repeat(40));
    await client.waitClosed();
    assert.equal(harness.requests.length, 3);
    assert.deepEqual(harness.pipeliningCuts, ['127.0.0.1']);
  });

  test('honest pipelining below the bound is served whole', async () => {
    harness.reset();
    const client = new RawClient(harness.port).send(GET('/h').repeat(LIMITS.maxPipelined));
    await until('every answer', () => client.statuses.length === LIMITS.maxPipelined, 3000);
    assert.deepEqual(harness.pipeliningCuts, []);
    client.destroy();
  });
});

describe('heads', () => {
  test('a head beyond maxHeadBytes (target, names and values) gets 431, counted', async () => {
    harness.reset();
    const client = new RawClient(harness.port).send(GET('/big', `X-Big: ${'a'.repeat(1100)}\r\n`));
    await client.waitClosed();
    assert.match(client.text, /^HTTP\/1\.1 431 [\s\S]*request header fields too large$/);
    assert.deepEqual(harness.refusals, ['head-too-large']);
    assert.equal(harness.requests.length, 0);
    const under = new RawClient(harness.port).send(GET('/under', `X-Pad: ${'p'.repeat(900)}\r\n`));
    await under.waitFor(/ok$/);
    under.destroy();
  });

  test('reaching maxHeaderFields gets 431 before any request is handed over', async () => {
    harness.reset();
    let fields = '';
    for (let i = 0; i < LIMITS.maxHeaderFields; i++) fields += `a${i}: v\r\n`;
    const client = new RawClient(harness.port).send(GET('/many', fields));
    await client.waitClosed();
    assert.match(client.text, /^HTTP\/1\.1 431 [\s\S]*too many header fields$/);
    assert.equal(harness.requests.length, 0);
  });

  for (const [name, bytes] of [
    ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\n\r\n'],
    [
      'Content-Length with Transfer-Encoding',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n'],
    ['a bare LF', 'GET / HTTP/1.1\nHost: x\n\n'],
    ['HTTP/2.0 in an HTTP/1 request line', 'GET / HTTP/2.0\r\nHost: x\r\n\r\n'],
    ['the HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
  ] as const) {
    test(`${name}: 400 and closed, nothing handed over`, async () => {
      harness.reset();
      const client = new RawClient(harness.port).send(bytes);
      await client.waitClosed();
      assert.match(
        client.text,
        /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*\r\nconnection: close\r\n\r\nbad request$/,
      );
      assert.equal(harness.requests.length, 0);
      assert.deepEqual(harness.refusals, ['malformed']);
    });
  }

  test('trailing whitespace is not part of a value; repeated fields stay repeated', async () => {
    harness.reset();
    const client = new RawClient(harness.port).send(
      GET('/ows', 'X-Key: \t abc \t\r\nX-Rep: 1\r\nX-Rep: 2\r\n'),
    );
    await client.waitFor(/ok$/);
    const [request] = harness.requests;
    assert.equal(request!.header('x-key'), 'abc');
    assert.equal(request!.joinedHeader('x-rep'), '1, 2');
    client.destroy();
  });

  test('Expect: 100-continue and any other expectation are told apart', async () => {
    harness.reset();
    harness.answer = (request) => {
      if (request.expectation === 'continue') request.answer.writeContinue();
      request.answer.writeHead(200, { 'content-length': '0' });
      request.answer.end();
    };
    const client = new RawClient(harness.port).send(
      'POST /c HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n' +
        'POST /o HTTP/1.1\r\nHost: x\r\nExpect: something\r\nContent-Length: 0\r\n\r\n',
    );
    await until('two answers', () => client.statuses.length === 3, 3000);
    assert.deepEqual(client.statuses, [100, 200, 200]);
    assert.deepEqual(
      harness.requests.map((request) => request.expectation),
      ['continue', 'unsupported'],
    );
    client.destroy();
  });

  test('CONNECT goes to onConnect, and nothing after it is read as HTTP', async () => {
    harness.reset();
    const client = new RawClient(harness.port).send(
      `CONNECT example:443 HTTP/1.1\r\nHost: example\r\n\r\n${GET('/after')}`,
    );
    await client.waitClosed();
    assert.equal(harness.connects.length, 1);
    assert.equal(harness.requests.length, 0);
    assert.deepEqual(client.statuses, [405]);
  });
});

describe('clocks', () => {
  test('a head trickled past headerTimeoutMs gets 408 (counted from the accept)', async () => {
    harness.reset();
    const client = new RawClient(harness.port).send('GET / HTTP/1.1\r\n');
    const timer = setInterval(() => client.send('X-A: b\r\n'), 50);
    try {
      await client.waitClosed();
    } finally {
      clearInterval(timer);
    }
    assert.match(client.text, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    assert.ok(client.closedAfterMs >= LIMITS.headerTimeoutMs, `closed after ${client.closedAfterMs} ms`);
    assert.deepEqual(harness.refusals, ['head-timeout']);
  });

  test('an idle keep-alive connection is closed after idleTimeoutMs, without an answer', async () => {
    harness.reset();
    const client = new RawClient(harness.port).send(GET('/idle'));
    await client.waitFor(/ok$/);
    const answeredAt = client.text.length;
    await client.waitClosed();
    assert.equal(client.text.length, answeredAt);
    assert.ok(client.closedAfterMs >= LIMITS.idleTimeoutMs);
  });

  test('a body that stops arriving calls onBodySilence; one the reader pauses does not', async () => {
    harness.reset();
    let silent = 0;
    harness.answer = (request) => {
      request.watchBodySilence(() => {
        silent++;
        request.answer.writeHead(408, { 'content-length': '0' });
        request.answer.end();
      });
      if (request.url === '/paused') {
        request.body.on('data', () => undefined);
        request.body.pause();
      }
    };
    const stalled = new RawClient(harness.port).send(
      'POST /stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc',
    );
    await stalled.waitClosed();
    assert.equal(silent, 1);
    assert.match(stalled.text, /^HTTP\/1\.1 408 /);
    const paused = new RawClient(harness.port).send(
      `POST /paused HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n${'d'.repeat(100)}`,
    );
    await sleep(LIMITS.bodyTimeoutMs * 2);
    assert.equal(silent, 1, 'a body the reader paused was taken for a silent client');
    paused.destroy();
  });
});

describe('bodies', () => {
  test('a body read before its reader attaches is queued, then delivered in order with its end', async () => {
    harness.reset();
    const received: Buffer[] = [];
    let ended = false;
    harness.answer = (request) => {
      setTimeout(() => {
        request.body.on('data', (chunk) => received.push(Buffer.from(chunk)));
        request.body.once('end', () => {
          ended = true;
          request.answer.writeHead(200, { 'content-length': '0' });
          request.answer.end();
        });
      }, 50);
    };
    const client = new RawClient(harness.port).send(
      'POST /q HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n',
    );
    await client.waitFor(/^HTTP\/1\.1 200 /);
    assert.equal(Buffer.concat(received).toString(), 'abcdefg');
    assert.ok(ended);
    client.destroy();
  });

  test('a paused reader stops the socket: bytes read stay bounded until it resumes, then all arrive', async () => {
    harness.reset();
    const total = 8 * 1024 * 1024;
    let received = 0;
    let body: ClientRequest['body'] | null = null;
    harness.answer = (request) => {
      body = request.body;
      request.body.on('data', (chunk) => {
        received += chunk.length;
      });
      request.body.once('end', () => {
        request.answer.writeHead(200, { 'content-length': '0' });
        request.answer.end();
      });
      request.body.pause();
    };
    const client = new RawClient(harness.port);
    client.send(`POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: ${total}\r\n\r\n`);
    client.send(Buffer.alloc(total, 0x61));
    await until('a reader', () => body !== null, 1000);
    await sleep(300);
    assert.equal(received, 0);
    // What was read while paused: a read or two, not the 8 MiB the client sent.
    const held = (body as ClientRequest['body'] | null)!.queuedBytes;
    assert.ok(held <= 256 * 1024, `${held} bytes read while the reader was paused`);
    body!.resume();
    await client.waitFor(/^HTTP\/1\.1 200 /);
    assert.equal(received, total);
    client.destroy();
  });

  test('a client gone mid-body: the body errors and the answer is told', async () => {
    harness.reset();
    let bodyError: Error | null = null;
    let aborted = false;
    harness.answer = (request) => {
      request.body.on('data', () => undefined);
      request.body.once('error', (error) => {
        bodyError = error;
      });
      request.answer.onAbort(() => {
        aborted = true;
      });
    };
    const client = new RawClient(harness.port).send(
      'POST /gone HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc',
    );
    await until('the request', () => harness.requests.length === 1, 1000);
    client.destroy();
    await until('the abort', () => aborted && bodyError !== null, 2000);
  });

  test('a body that breaks its framing: 400 from the connection, the body errors, the answerer writes nothing', async () => {
    harness.reset();
    let bodyError: Error | null = null;
    harness.answer = (request) => {
      request.body.on('data', () => undefined);
      request.body.once('error', (error) => {
        bodyError = error;
        // What an exchange would do on its upstream's abort: answer; it must not reach the client.
        request.answer.writeHead(502, { 'content-length': '3' });
        request.answer.end('bad');
      });
    };
    const client = new RawClient(harness.port).send(
      'POST /broken HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n',
    );
    await client.waitClosed();
    assert.ok(bodyError !== null);
    assert.deepEqual(client.statuses, [400]);
    assert.doesNotMatch(client.text, /bad$/);
  });

  test('a closing connection reads and drops at most a little of what follows, then is destroyed', async () => {
    harness.reset();
    harness.answer = (request) => {
      request.answer.closeAfter();
      request.answer.writeHead(401, { 'content-length': '0' });
      request.answer.end();
    };
    // A client that reads nothing (so it never takes the answer's FIN either) and keeps sending.
    const client = new RawClient(harness.port);
    client.socket.pause();
    client.send(`POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: ${64 * 1024 * 1024}\r\n\r\n`);
    await until('the request', () => harness.requests.length === 1, 1000);
    const chunk = Buffer.alloc(256 * 1024);
    const writer = setInterval(() => {
      if (!client.closed) client.send(chunk);
    }, 5);
    try {
      await client.waitClosed();
    } finally {
      clearInterval(writer);
    }
    // Cut by the byte bound, long before the 5 s a client that sends nothing more would get.
    assert.ok(client.closedAfterMs < 2000, `closed after ${client.closedAfterMs} ms`);
  });
});
