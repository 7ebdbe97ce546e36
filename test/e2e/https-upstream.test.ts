import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { selfSignedCertificate } from '../support/certificates.js';
import type { RunningGateway } from '../support/gateway.js';
import { startGatewayFor } from './fixtures.js';

/**
 * An https:// upstream on an HTTP/1.1 port (VICTORIAMETRICS_UPSTREAM=https://...): the gateway
 * speaks TLS to it and verifies its certificate against Node's CAs, which an operator extends with
 * NODE_EXTRA_CA_CERTS; an upstream whose certificate is not trusted is never talked to (502).
 */

const KEY = 'https-upstream-key-5e0b';
const dir = mkdtempSync(join(tmpdir(), 'https-upstream-'));
let upstream: Server;
let upstreamUrl = '';
let caFile = '';
const seen: string[] = [];
let handshakes = 0;

before(async () => {
  const { cert, key } = selfSignedCertificate(dir, 'victoriametrics');
  caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, cert);
  upstream = createServer({ cert, key }, (req, res) => {
    seen.push(`${req.method} ${req.url} host=${req.headers.host}`);
    req.resume();
    req.on('end', () => res.end(`tls upstream saw ${req.url}`));
  });
  upstream.on('secureConnection', () => handshakes++);
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamUrl = `https://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});

after(async () => {
  upstream?.closeAllConnections();
  await new Promise((resolve) => upstream?.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

async function call(gateway: RunningGateway, path: string): Promise<{ status: number; body: string }> {
  const response = await fetch(`${gateway.url('victoriametrics')}${path}`, {
    method: 'POST',
    headers: { 'x-api-key': KEY, 'content-type': 'text/plain' },
    body: 'up 1\n',
  });
  return { status: response.status, body: await response.text() };
}

describe('an https upstream on an HTTP/1.1 port', () => {
  test('with its CA in NODE_EXTRA_CA_CERTS: requests and bodies go through over TLS, the connection reused', async () => {
    const gateway = await startGatewayFor(
      { victoriametrics: upstreamUrl },
      { ENVOY_API_KEYS: KEY, NODE_EXTRA_CA_CERTS: caFile },
    );
    try {
      const before = seen.length;
      const handshakesBefore = handshakes;
      for (const path of ['/api/v1/import/prometheus', '/api/v1/import/prometheus?extra_label=a=b']) {
        const answer = await call(gateway, path);
        assert.equal(answer.status, 200, answer.body);
        assert.equal(answer.body, `tls upstream saw ${path}`);
      }
      assert.equal(seen.length - before, 2);
      assert.equal(handshakes - handshakesBefore, 1, 'the keep-alive TLS connection was not reused');
      assert.match(seen.at(-1)!, new RegExp(`host=127\\.0\\.0\\.1:${new URL(upstreamUrl).port}$`));
    } finally {
      await gateway.stop();
    }
  });

  test('without it: 502 "failed to answer", and the upstream never sees a request', async () => {
    const gateway = await startGatewayFor({ victoriametrics: upstreamUrl }, { ENVOY_API_KEYS: KEY });
    try {
      const before = seen.length;
      const answer = await call(gateway, '/api/v1/import/prometheus');
      assert.equal(answer.status, 502, answer.body);
      assert.equal(answer.body, `upstream 127.0.0.1:${new URL(upstreamUrl).port} failed to answer`);
      assert.equal(seen.length, before);
    } finally {
      await gateway.stop();
    }
  });
});
