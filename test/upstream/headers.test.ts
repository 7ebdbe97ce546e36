import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { clientAddress } from '../../src/data-plane/core/forwarding.js';
import {
  downstreamResponseHeaders,
  type UpstreamRequestContext,
  upstreamRequestHeaders,
} from '../../src/upstream/headers.js';

const CONTEXT: UpstreamRequestContext = {
  clientAddress: '203.0.113.7',
  proto: 'http',
  originalHost: 'gateway.example.com:9090',
  identity: 'key-1a2b3c4d',
  upstreamHost: 'prometheus:9090',
};

/** What Node's parser would give as `req.headers` for a raw list (enough for these tests). */
function parsedFrom(raw: readonly string[]): IncomingHttpHeaders {
  const parsed: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    parsed[name] = parsed[name] === undefined ? raw[i + 1]! : `${parsed[name]}, ${raw[i + 1]!}`;
  }
  return parsed;
}

function forward(raw: string[], context: UpstreamRequestContext = CONTEXT): string[] {
  return upstreamRequestHeaders(raw, parsedFrom(raw), context);
}

function pairs(flat: readonly string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

function values(flat: readonly string[], name: string): string[] {
  return pairs(flat)
    .filter(([n]) => n.toLowerCase() === name)
    .map(([, v]) => v);
}

describe('upstreamRequestHeaders', () => {
  test('end-to-end headers pass through in order, with their original case', () => {
    const out = forward([
      'Host',
      'gateway.example.com:9090',
      'Content-Type',
      'application/x-protobuf',
      'Content-Encoding',
      'gzip',
      'Accept',
      '*/*',
      'X-Custom',
      'a',
      'x-custom',
      'b',
    ]);
    assert.deepEqual(pairs(out).slice(0, 5), [
      ['Content-Type', 'application/x-protobuf'],
      ['Content-Encoding', 'gzip'],
      ['Accept', '*/*'],
      ['X-Custom', 'a'],
      ['x-custom', 'b'],
    ]);
  });

  test('Host is replaced by the upstream host, the original goes to X-Forwarded-Host', () => {
    const out = forward(['Host', 'gateway.example.com:9090']);
    assert.deepEqual(values(out, 'host'), ['prometheus:9090']);
    assert.deepEqual(values(out, 'x-forwarded-host'), ['gateway.example.com:9090']);
  });

  test('no X-Forwarded-Host without an original host', () => {
    const out = forward([], { ...CONTEXT, originalHost: undefined });
    assert.deepEqual(values(out, 'x-forwarded-host'), []);
  });

  test('hop-by-hop headers are removed (RFC 9110 7.6.1)', () => {
    const hopByHop = [
      'Connection',
      'keep-alive',
      'Keep-Alive',
      'timeout=5',
      'Proxy-Connection',
      'keep-alive',
      'Proxy-Authorization',
      'Basic eDp5',
      'TE',
      'trailers',
      'Trailer',
      'X-Checksum',
      'Transfer-Encoding',
      'chunked',
      'Upgrade',
      'websocket',
      'HTTP2-Settings',
      'AAMAAABkAAQCAAAAAAIAAAAA',
      'Expect',
      '100-continue',
    ];
    const out = forward([...hopByHop, 'Accept', 'text/plain']);
    for (let i = 0; i < hopByHop.length; i += 2) {
      assert.deepEqual(values(out, hopByHop[i]!.toLowerCase()), [], hopByHop[i]);
    }
    assert.deepEqual(values(out, 'accept'), ['text/plain']);
  });

  test('headers named in Connection are removed too, in any case, across several Connection headers', () => {
    const out = forward([
      'Connection',
      'X-Secret-Hop, close',
      'connection',
      'x-other-hop',
      'X-Secret-Hop',
      '1',
      'X-OTHER-HOP',
      '2',
      'X-Kept',
      '3',
    ]);
    assert.deepEqual(values(out, 'x-secret-hop'), []);
    assert.deepEqual(values(out, 'x-other-hop'), []);
    assert.deepEqual(values(out, 'x-kept'), ['3']);
  });

  test('X-API-Key is never forwarded', () => {
    const out = forward(['X-API-Key', 'k1', 'x-api-key', 'k2', 'X-API-KEY', 'k3']);
    assert.deepEqual(values(out, 'x-api-key'), []);
    assert.ok(!out.some((v) => ['k1', 'k2', 'k3'].includes(v)));
  });

  test('Authorization is forwarded (a Prometheus with native auth keeps working)', () => {
    const out = forward(['Authorization', 'Basic YWRtaW46cHc=']);
    assert.deepEqual(values(out, 'authorization'), ['Basic YWRtaW46cHc=']);
  });

  test('client-sent X-Authenticated-User, X-Forwarded-Proto and X-Forwarded-Host are replaced, not kept', () => {
    const out = forward([
      'X-Authenticated-User',
      'admin',
      'x-authenticated-user',
      'root',
      'X-Forwarded-Proto',
      'https',
      'X-Forwarded-Host',
      'evil.example',
      'Host',
      'gateway.example.com:9090',
    ]);
    assert.deepEqual(values(out, 'x-authenticated-user'), ['key-1a2b3c4d']);
    assert.deepEqual(values(out, 'x-forwarded-proto'), ['http']);
    assert.deepEqual(values(out, 'x-forwarded-host'), ['gateway.example.com:9090']);
  });

  test('X-Forwarded-For is appended to, as one header', () => {
    assert.deepEqual(values(forward([]), 'x-forwarded-for'), ['203.0.113.7']);
    assert.deepEqual(values(forward(['X-Forwarded-For', '198.51.100.1']), 'x-forwarded-for'), [
      '198.51.100.1, 203.0.113.7',
    ]);
    assert.deepEqual(
      values(
        forward(['X-Forwarded-For', '10.0.0.1, 10.0.0.2', 'x-forwarded-for', '10.0.0.3']),
        'x-forwarded-for',
      ),
      ['10.0.0.1, 10.0.0.2, 10.0.0.3, 203.0.113.7'],
    );
  });

  test('the forwarded identity and proto come from the context', () => {
    const out = forward([], { ...CONTEXT, identity: 'admin', proto: 'https' });
    assert.deepEqual(values(out, 'x-authenticated-user'), ['admin']);
    assert.deepEqual(values(out, 'x-forwarded-proto'), ['https']);
  });

  test('with a real request parsed by Node', async () => {
    let seen: string[] = [];
    const server = createServer((req, res) => {
      seen = upstreamRequestHeaders(req.rawHeaders, req.headers, CONTEXT);
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      await new Promise<void>((resolve, reject) => {
        const req = request(
          {
            port,
            host: '127.0.0.1',
            headers: {
              'X-API-Key': 'secret-key',
              Connection: 'keep-alive, X-Hop',
              'X-Hop': 'gone',
              Authorization: 'Bearer secret-key',
              'X-Forwarded-For': '192.0.2.1',
            },
          },
          (res) => {
            res.resume();
            res.on('end', resolve);
          },
        );
        req.on('error', reject);
        req.end();
      });
    } finally {
      server.close();
      server.closeAllConnections();
    }
    assert.deepEqual(values(seen, 'x-api-key'), []);
    assert.deepEqual(values(seen, 'x-hop'), []);
    assert.deepEqual(values(seen, 'connection'), []);
    assert.deepEqual(values(seen, 'authorization'), ['Bearer secret-key']);
    assert.deepEqual(values(seen, 'host'), ['prometheus:9090']);
    assert.deepEqual(values(seen, 'x-forwarded-for'), ['192.0.2.1, 203.0.113.7']);
  });

  test('property: whatever the client sends, the gateway-owned headers appear exactly once and X-API-Key never', () => {
    const name = fc.oneof(
      fc.constantFrom(
        'x-api-key',
        'X-Api-Key',
        'Host',
        'x-authenticated-user',
        'X-Forwarded-Proto',
        'x-forwarded-host',
        'X-Forwarded-For',
        'Connection',
        'Authorization',
        'Accept',
      ),
      fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,12}$/),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(name, fc.stringMatching(/^[\x21-\x7e ]{0,20}$/)), { maxLength: 10 }),
        (list) => {
          const out = forward(list.flat());
          assert.equal(out.length % 2, 0);
          assert.deepEqual(values(out, 'x-api-key'), []);
          assert.deepEqual(values(out, 'connection'), []);
          for (const owned of [
            'host',
            'x-forwarded-for',
            'x-forwarded-proto',
            'x-authenticated-user',
            'x-forwarded-host',
          ]) {
            assert.equal(values(out, owned).length, 1, owned);
          }
          assert.deepEqual(values(out, 'x-authenticated-user'), [CONTEXT.identity]);
        },
      ),
      { numRuns: 200 },
    );
  });
});

/** undici's raw response headers: a flat list of name and value buffers. */
function rawResponse(...flat: Array<string | Buffer>): Buffer[] {
  return flat.map((item) => (typeof item === 'string' ? Buffer.from(item, 'latin1') : item));
}

describe('downstreamResponseHeaders', () => {
  test('hop-by-hop response headers are removed, the rest kept in order, repeated headers too', () => {
    const out = downstreamResponseHeaders(
      rawResponse(
        'Connection',
        'keep-alive',
        'Keep-Alive',
        'timeout=5',
        'Proxy-Connection',
        'keep-alive',
        'Proxy-Authenticate',
        'Basic',
        'TE',
        'trailers',
        'Trailer',
        'x-checksum',
        'Transfer-Encoding',
        'chunked',
        'Upgrade',
        'h2c',
        'Content-Type',
        'application/json',
        'Content-Encoding',
        'gzip',
        'Set-Cookie',
        'a=1',
        'Set-Cookie',
        'b=2',
        'WWW-Authenticate',
        'Basic realm="prometheus"',
      ),
    );
    assert.deepEqual(out, [
      'Content-Type',
      'application/json',
      'Content-Encoding',
      'gzip',
      'Set-Cookie',
      'a=1',
      'Set-Cookie',
      'b=2',
      'WWW-Authenticate',
      'Basic realm="prometheus"',
    ]);
  });

  test('headers named in the upstream Connection header are removed, in any case', () => {
    const out = downstreamResponseHeaders(
      rawResponse('Connection', 'close, X-Internal-Hop', 'x-INTERNAL-hop', 'secret', 'X-Kept', '1'),
    );
    assert.deepEqual(out, ['X-Kept', '1']);
  });

  test('tokens of every Connection header count, not only the last one', () => {
    const out = downstreamResponseHeaders(
      rawResponse(
        'Connection',
        'X-Hop-A',
        'X-Hop-A',
        'a',
        'Connection',
        'X-Hop-B',
        'X-Hop-B',
        'b',
        'X-Kept',
        '1',
      ),
    );
    assert.deepEqual(out, ['X-Kept', '1']);
  });

  test('non-ASCII bytes in values survive unchanged (latin1 in, latin1 out)', () => {
    const value = Buffer.from('attachment; filename="r\u00e9sum\u00e9.txt"', 'utf8');
    const out = downstreamResponseHeaders(rawResponse('Content-Disposition', value));
    assert.deepEqual(Buffer.from(out[1]!, 'latin1'), value);
  });
});

describe('clientAddress', () => {
  test('strips the IPv4-mapped prefix', () => {
    assert.equal(clientAddress('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(clientAddress('2001:db8::1'), '2001:db8::1');
    assert.equal(clientAddress('127.0.0.1'), '127.0.0.1');
    assert.equal(clientAddress(undefined), 'unknown');
  });
});
