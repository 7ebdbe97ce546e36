import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http';
import {
  connect,
  constants,
  createServer as createHttp2Server,
  type IncomingHttpHeaders as Http2Headers,
} from 'node:http2';
import { Pool } from 'undici';

/**
 * The smallest honest Node.js proxy for one route, as a reference point for the benchmark (run
 * only when `--contenders node-minimal` names it): the X-API-Key compared as a string, the key
 * header dropped, everything else passed as it is, with the libraries the gateway uses (node:http2
 * for gRPC, node:http + an undici Pool for HTTP/1.1). No metrics, logs, limits, timeouts, header
 * rules or error answers beyond a bare status. What the gateway costs beyond this is the price of
 * its features; what this costs beyond nginx is the price of Node.
 *
 *   node --import tsx bench/node-minimal-proxy.ts <grpc|http> <listen port> <upstream host:port> <key>
 */

const [protocol, listenPort, upstream, key] = process.argv.slice(2);
if ((protocol !== 'grpc' && protocol !== 'http') || !listenPort || !upstream || !key) {
  process.stderr.write('usage: node-minimal-proxy.ts <grpc|http> <listen port> <upstream host:port> <key>\n');
  process.exit(2);
}

/** Hop-by-hop headers a proxy must not forward (RFC 9110 7.6.1), plus the credential. */
const DROPPED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'expect',
  'x-api-key',
]);

function forwardable(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined && !DROPPED.has(name)) out[name] = value;
  }
  return out;
}

if (protocol === 'grpc') {
  const session = connect(`http://${upstream}`);
  session.on('error', (error) => process.stderr.write(`upstream session: ${error.message}\n`));
  const server = createHttp2Server();
  server.on('stream', (stream, headers: Http2Headers) => {
    stream.on('error', () => undefined);
    if (headers['x-api-key'] !== key) {
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '16' },
        { endStream: true },
      );
      return;
    }
    const forwarded: Http2Headers = {};
    for (const name in headers) {
      if (name !== 'x-api-key' && name !== 'connection') forwarded[name] = headers[name];
    }
    forwarded.te = 'trailers';
    const call = session.request(forwarded);
    call.on('error', () => stream.close(constants.NGHTTP2_INTERNAL_ERROR));
    let trailers: Http2Headers = {};
    call.on('trailers', (received) => {
      trailers = received;
    });
    call.on('response', (responseHeaders) => {
      stream.respond(responseHeaders, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers(trailers));
      call.pipe(stream);
    });
    stream.on('close', () => {
      if (!call.closed) call.close(constants.NGHTTP2_CANCEL);
    });
    stream.pipe(call);
  });
  server.listen(Number(listenPort), '127.0.0.1');
} else {
  const pool = new Pool(`http://${upstream}`, { connections: 256, pipelining: 1 });
  const server = createHttpServer({ keepAlive: true }, (req, res) => {
    if (req.headers['x-api-key'] !== key) {
      res.writeHead(401, { 'content-length': '0' }).end();
      return;
    }
    const hasBody =
      req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
    pool
      .request({
        path: req.url ?? '/',
        method: (req.method ?? 'GET') as 'GET',
        headers: forwardable(req.headers),
        body: hasBody ? req : null,
      })
      .then(
        ({ statusCode, headers, body }) => {
          res.writeHead(statusCode, forwardable(headers as IncomingHttpHeaders));
          body.pipe(res);
          body.on('error', () => res.destroy());
        },
        () => {
          if (res.headersSent) res.destroy();
          else res.writeHead(502, { 'content-length': '0' }).end();
        },
      );
  });
  server.listen(Number(listenPort), '127.0.0.1');
}
