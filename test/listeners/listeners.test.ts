import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect as connectHttp2, createServer as createHttp2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type InProcessListener, startListener } from './in-process.js';

/*
 * Issue 13: the listeners in the test's own process (port 0, local upstreams), and what their
 * shared core promises: one forwarded-header policy, one failure classification and label, one
 * exchange record, whatever the protocol.
 */

const KEY = `in-process-${randomBytes(16).toString('base64url')}`;
const ENV = { GATEWAY_KEY_CHECKOUT: `${KEY}; scopes=ingest` };
const FORWARDED = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-authenticated-user'];

function forwardedOf(headers: IncomingHttpHeaders): Record<string, unknown> {
  return Object.fromEntries(FORWARDED.map((name) => [name, headers[name]]));
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function grpcExport(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: string | undefined; message: string | undefined }> {
  return new Promise((resolve, reject) => {
    const session = connectHttp2(url);
    session.on('error', reject);
    const stream = session.request({
      ':method': 'POST',
      ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    let trailers: Record<string, unknown> = {};
    stream.on('response', (head) => {
      if (head['grpc-status'] !== undefined) trailers = head;
    });
    stream.on('trailers', (received) => {
      trailers = received;
    });
    stream.on('error', reject);
    stream.resume();
    stream.on('close', () => {
      session.close();
      resolve({
        status: trailers['grpc-status'] as string | undefined,
        message: trailers['grpc-message'] as string | undefined,
      });
    });
    // An empty export: a 5-byte gRPC message prefix of length 0.
    stream.end(Buffer.alloc(5));
  });
}

describe('the listeners in process, on one core (issue 13)', () => {
  let httpUpstream: Server;
  let grpcUpstream: Http2Server;
  const seen: { http: IncomingHttpHeaders[]; grpc: IncomingHttpHeaders[] } = { http: [], grpc: [] };
  let http: InProcessListener;
  let grpc: InProcessListener;
  let deadPort: number;

  before(async () => {
    httpUpstream = createServer((req, res) => {
      seen.http.push(req.headers);
      req.resume();
      req.on('end', () => res.end('accepted'));
    });
    grpcUpstream = createHttp2Server();
    grpcUpstream.on('stream', (stream, headers) => {
      seen.grpc.push(headers);
      stream.resume();
      stream.on('end', () => {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
        stream.end(Buffer.alloc(5));
      });
    });
    await new Promise<void>((resolve) => httpUpstream.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => grpcUpstream.listen(0, '127.0.0.1', resolve));
    const port = (server: Server | Http2Server): number => (server.address() as AddressInfo).port;
    http = await startListener('http1', `http://127.0.0.1:${port(httpUpstream)}`, ENV);
    grpc = await startListener('h2c', `http://127.0.0.1:${port(grpcUpstream)}`, ENV);
    deadPort = await closedPort();
  });

  after(async () => {
    await http?.close();
    await grpc?.close();
    await new Promise((resolve) => httpUpstream?.close(resolve));
    await new Promise((resolve) => grpcUpstream?.close(resolve));
  });

  test('HTTP/1.1: forwarded with the credential named, and one access-log record of named fields', async () => {
    const response = await fetch(`${http.url}/v1/traces`, {
      method: 'POST',
      headers: { 'x-api-key': KEY, 'content-type': 'application/x-protobuf', 'x-forwarded-for': '192.0.2.1' },
      body: 'abc',
    });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'accepted');
    assert.deepEqual(forwardedOf(seen.http.at(-1) ?? {}), {
      'x-forwarded-for': '192.0.2.1, 127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': `127.0.0.1:${http.port}`,
      'x-authenticated-user': 'checkout',
    });
    const line = http.accessLog.at(-1) ?? {};
    assert.equal(line.msg, 'request');
    assert.deepEqual(
      [
        line.listener,
        line.method,
        line.path,
        line.status,
        line.bytes_in,
        line.bytes_out,
        line.identity,
        line.client,
      ],
      ['otlp-http', 'POST', '/v1/traces', 200, 3, 8, 'checkout', '127.0.0.1'],
    );
  });

  test('gRPC: the same forwarded-header policy as HTTP/1.1, with trailers relayed', async () => {
    const answer = await grpcExport(grpc.url, { 'x-api-key': KEY, 'x-forwarded-for': '192.0.2.1' });
    assert.equal(answer.status, '0');
    const forwarded = forwardedOf(seen.grpc.at(-1) ?? {});
    assert.deepEqual(forwarded, {
      'x-forwarded-for': '192.0.2.1, 127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': `127.0.0.1:${grpc.port}`,
      'x-authenticated-user': 'checkout',
    });
    const line = grpc.accessLog.at(-1) ?? {};
    assert.deepEqual(
      [line.listener, line.status, line.grpc_status, line.bytes_in, line.identity, line.client],
      ['otlp-grpc', 200, '0', 5, 'checkout', '127.0.0.1'],
    );
  });

  test('no credential: 401 / UNAUTHENTICATED, nothing upstream, the record names the failure', async () => {
    const before = { http: seen.http.length, grpc: seen.grpc.length };
    const response = await fetch(`${http.url}/v1/traces`, { method: 'POST', body: 'abc' });
    assert.equal(response.status, 401);
    await response.arrayBuffer();
    const answer = await grpcExport(grpc.url, {});
    assert.equal(answer.status, '16');
    assert.deepEqual({ http: seen.http.length, grpc: seen.grpc.length }, before);
    assert.equal(http.accessLog.at(-1)?.auth_failure, 'missing');
    assert.equal(grpc.accessLog.at(-1)?.auth_failure, 'missing');
  });

  test('an unreachable upstream: one classification and one label on both protocols', async () => {
    const deadHttp = await startListener('http1', `http://127.0.0.1:${deadPort}`, ENV);
    const deadGrpc = await startListener('h2c', `http://127.0.0.1:${deadPort}`, ENV);
    try {
      const response = await fetch(`${deadHttp.url}/v1/traces`, {
        method: 'POST',
        headers: { 'x-api-key': KEY, 'content-type': 'application/x-protobuf' },
        body: 'abc',
      });
      assert.equal(response.status, 503);
      assert.equal(await response.text(), `upstream 127.0.0.1:${deadPort} unavailable`);
      const answer = await grpcExport(deadGrpc.url, { 'x-api-key': KEY });
      assert.equal(answer.status, '14');
      assert.equal(answer.message, `upstream 127.0.0.1:${deadPort} unavailable`);
      assert.equal(deadHttp.accessLog.at(-1)?.error, 'ECONNREFUSED');
      assert.equal(deadGrpc.accessLog.at(-1)?.error, 'ECONNREFUSED');
    } finally {
      await deadHttp.close();
      await deadGrpc.close();
    }
  });
});
