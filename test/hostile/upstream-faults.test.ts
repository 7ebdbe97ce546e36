import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import {
  connect as connectHttp2,
  createServer as createHttp2Server,
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
} from 'node:http2';
import { createServer as createTcpServer, type Socket, type Server as TcpServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startGatewayFor } from '../e2e/fixtures.js';
import type { RunningGateway } from '../support/gateway.js';
import { freePort } from '../support/ports.js';
import { eventually, gatewayPid, metricSum, openFds, rawExchange } from './support.js';

/**
 * Upstream faults: down at start, killed mid-response, resetting connections, answering
 * garbage, hanging after its headers, coming back. Each gives the documented answer (HTTP 503 /
 * 502 / 504, gRPC 14 / 4), the upstream's own bytes never reach the client, the gateway serves
 * again as soon as the upstream does, and no socket, stream or file descriptor is left behind.
 */

type Mode = 'ok' | 'reset' | 'garbage' | 'mid-response' | 'hang-after-headers';

const KEY = 'hostile-faults-key-2f90';
/** What a broken upstream says; none of it may ever reach a client. */
const LEAK = 'Traceback (most recent call last): SECRET_STACK_FRAME at /srv/app.py line 42';

/**
 * One upstream per protocol on fixed ports, whose behaviour is switched per test. It can be
 * stopped and started again on the same port (down / coming back).
 */
class FaultyUpstream {
  mode: Mode = 'ok';
  private tcp: TcpServer | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly http: HttpServer;
  private readonly h2: Http2Server;
  private readonly h2Sessions = new Set<Http2Session>();

  constructor(
    readonly port: number,
    readonly protocol: 'http1' | 'h2',
  ) {
    this.http = createHttpServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (this.mode === 'mid-response') {
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
          res.write('partial body ');
          setTimeout(() => req.socket.destroy(), 20);
        } else if (this.mode === 'hang-after-headers') {
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
          res.flushHeaders();
        } else {
          res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' }).end('upstream ok');
        }
      });
    });
    this.h2 = createHttp2Server();
    this.h2.on('session', (session) => {
      this.h2Sessions.add(session);
      session.on('error', () => undefined);
      session.once('close', () => this.h2Sessions.delete(session));
    });
    this.h2.on('stream', (stream) => {
      stream.on('error', () => undefined);
      stream.resume();
      const respond = (): void => {
        if (stream.destroyed) return;
        if (this.mode === 'mid-response') {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
          stream.write(Buffer.from([0, 0, 0, 0, 100, 1, 2, 3])); // a message cut short
          setTimeout(() => stream.session?.destroy(), 20);
        } else if (this.mode === 'hang-after-headers') {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
        } else {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
          stream.end(Buffer.from([0, 0, 0, 0, 0]));
        }
      };
      if (stream.readableEnded) respond();
      else stream.on('end', respond);
    });
  }

  async start(): Promise<void> {
    const tcp = createTcpServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.tcp = tcp;
  }

  /** Closes the port and every connection: the upstream is down. */
  async stop(): Promise<void> {
    for (const session of this.h2Sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
    const tcp = this.tcp;
    this.tcp = null;
    if (tcp !== null) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }

  /** Switches behaviour; connection-level faults need the gateway to reconnect. */
  setMode(mode: Mode): void {
    this.mode = mode;
    for (const session of this.h2Sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    if (this.mode === 'reset') {
      socket.resetAndDestroy();
      return;
    }
    if (this.mode === 'garbage') {
      socket.end(`XYZZY 999 ${LEAK}\r\n\r\n${LEAK}\r\n`);
      return;
    }
    (this.protocol === 'h2' ? this.h2 : this.http).emit('connection', socket);
  }
}

let httpUpstream: FaultyUpstream;
let grpcUpstream: FaultyUpstream;
let gateway: RunningGateway;
let baselineFds = 0;

before(async () => {
  httpUpstream = new FaultyUpstream(await freePort(), 'http1');
  grpcUpstream = new FaultyUpstream(await freePort(), 'h2');
  // Both upstreams are down when the gateway starts.
  gateway = await startGatewayFor(
    { http: `http://127.0.0.1:${httpUpstream.port}`, grpc: `http://127.0.0.1:${grpcUpstream.port}` },
    { ENVOY_API_KEYS: KEY, UPSTREAM_TIMEOUT: '1s', UPSTREAM_CONNECT_TIMEOUT: '1s' },
  );
  baselineFds = openFds(gatewayPid(gateway));
});

after(async () => {
  await gateway?.stop();
  await httpUpstream?.stop();
  await grpcUpstream?.stop();
});

async function httpCall(): Promise<{ status: number; body: string; complete: boolean; text: string }> {
  const answer = await rawExchange(
    gateway.ports.http,
    `POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${KEY}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
    { waitMs: 5000 },
  );
  const split = answer.text.indexOf('\r\n\r\n');
  const body = split === -1 ? '' : answer.text.slice(split + 4);
  const length = /\r\ncontent-length: (\d+)/i.exec(answer.text.slice(0, split));
  return {
    status: answer.status,
    body,
    complete: length !== null && Buffer.byteLength(body, 'latin1') === Number(length[1]),
    text: answer.text,
  };
}

interface GrpcAnswer {
  readonly status: string;
  readonly message: string;
  readonly headers: IncomingHttpHeaders;
}

/** One gRPC call on its own session (closed afterwards, so no client connection lingers). */
function grpcCall(): Promise<GrpcAnswer> {
  const session = connectHttp2(gateway.url('grpc'));
  session.on('error', () => undefined);
  return new Promise<GrpcAnswer>((resolve) => {
    const timer = setTimeout(() => resolve({ status: 'timeout', message: '', headers: {} }), 6000);
    const stream = session.request({
      ':method': 'POST',
      ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      'content-type': 'application/grpc',
      te: 'trailers',
      'x-api-key': KEY,
    });
    let status = 'none';
    let message = '';
    let headers: IncomingHttpHeaders = {};
    const read = (received: IncomingHttpHeaders): void => {
      if (received['grpc-status'] !== undefined) status = String(received['grpc-status']);
      if (received['grpc-message'] !== undefined)
        message = decodeURIComponent(String(received['grpc-message']));
    };
    stream.on('response', (received) => {
      headers = received;
      read(received);
    });
    stream.on('trailers', read);
    stream.on('error', () => undefined);
    stream.on('close', () => {
      clearTimeout(timer);
      resolve({ status, message, headers });
    });
    stream.resume();
    stream.end(Buffer.from([0, 0, 0, 0, 0]));
  }).finally(() => session.destroy());
}

const httpName = (): string => `127.0.0.1:${httpUpstream.port}`;
const grpcName = (): string => `127.0.0.1:${grpcUpstream.port}`;

describe('upstream faults', () => {
  test('down at start: 503 naming the upstream / UNAVAILABLE (14); served as soon as it comes up', async () => {
    const http = await httpCall();
    assert.equal(http.status, 503);
    assert.equal(http.body, `upstream ${httpName()} unavailable`);
    const grpc = await grpcCall();
    assert.equal(grpc.status, '14');
    assert.equal(grpc.message, `upstream ${grpcName()} unavailable`);
    await httpUpstream.start();
    await grpcUpstream.start();
    assert.equal((await httpCall()).status, 200);
    assert.equal((await grpcCall()).status, '0');
  });

  test('resetting connections: 502 "failed to answer" / UNAVAILABLE (14)', async () => {
    httpUpstream.setMode('reset');
    grpcUpstream.setMode('reset');
    for (let i = 0; i < 3; i++) {
      const http = await httpCall();
      assert.equal(http.status, 502, http.text);
      assert.equal(http.body, `upstream ${httpName()} failed to answer`);
      assert.equal((await grpcCall()).status, '14');
    }
  });

  test("answering garbage: 502 / UNAVAILABLE (14), and none of the upstream's bytes reach the client", async () => {
    httpUpstream.setMode('garbage');
    grpcUpstream.setMode('garbage');
    for (let i = 0; i < 3; i++) {
      const http = await httpCall();
      assert.equal(http.status, 502);
      assert.equal(http.body, `upstream ${httpName()} failed to answer`);
      assert.ok(!http.text.includes('SECRET_STACK_FRAME'), 'the upstream garbage reached the client');
      const grpc = await grpcCall();
      assert.equal(grpc.status, '14');
      assert.ok(!grpc.message.includes('SECRET_STACK_FRAME'));
    }
  });

  test('killed mid-response: the HTTP client sees a cut body, never a complete one; gRPC ends with UNAVAILABLE (14)', async () => {
    httpUpstream.setMode('mid-response');
    grpcUpstream.setMode('mid-response');
    for (let i = 0; i < 3; i++) {
      const http = await httpCall();
      assert.equal(http.status, 200, 'the status line was already sent');
      assert.equal(http.complete, false, 'a truncated body was passed off as complete');
      const grpc = await grpcCall();
      assert.equal(grpc.status, '14', JSON.stringify(grpc));
      assert.equal(grpc.message, `upstream ${grpcName()} failed to answer`);
    }
  });

  test('hanging after its headers: 504 after UPSTREAM_TIMEOUT (nothing was sent yet); gRPC DEADLINE_EXCEEDED (4)', async () => {
    httpUpstream.setMode('hang-after-headers');
    grpcUpstream.setMode('hang-after-headers');
    const http = await httpCall();
    assert.equal(http.status, 504, http.text);
    assert.equal(http.body, `upstream ${httpName()} did not answer in time`);
    const grpc = await grpcCall();
    assert.equal(grpc.status, '4', JSON.stringify(grpc));
    assert.equal(grpc.message, `upstream ${grpcName()} did not answer in time`);
  });

  test('down mid-way and coming back: 503 / 14 while down, served again at once', async () => {
    await httpUpstream.stop();
    await grpcUpstream.stop();
    assert.equal((await httpCall()).status, 503);
    assert.equal((await grpcCall()).status, '14');
    httpUpstream.mode = 'ok';
    grpcUpstream.mode = 'ok';
    await httpUpstream.start();
    await grpcUpstream.start();
    assert.equal((await httpCall()).status, 200);
    assert.equal((await grpcCall()).status, '0');
  });

  test('nothing leaks: in-flight 0, client connections closed, few upstream sessions, file descriptors back to the baseline', async () => {
    await eventually(
      async () => (await metricSum(gateway, 'gateway_requests_in_flight')) === 0,
      5000,
      () => 'requests stayed in flight',
    );
    await eventually(
      async () => (await metricSum(gateway, 'gateway_open_connections')) === 0,
      5000,
      () => 'client connections stayed open',
    );
    assert.ok((await metricSum(gateway, 'gateway_upstream_http2_sessions')) <= 4);
    const pid = gatewayPid(gateway);
    // The upstream pools may hold a keep-alive connection or two more than at the start.
    await eventually(
      () => openFds(pid) <= baselineFds + 4,
      5000,
      () => `file descriptors: ${openFds(pid)} now, ${baselineFds} at the start`,
    );
  });
});
