import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { startGatewayFor } from '../e2e/fixtures.js';
import { selfSignedCertificate } from '../support/certificates.js';
import { type RunningGateway, startGateway } from '../support/gateway.js';
import { type OtlpReceiver, startOtlpReceiver, TRACE_EXPORT_PATH } from '../support/otlp-receiver.js';
import {
  type CountingUpstream,
  eventually,
  metricSum,
  rawExchange,
  startCountingUpstream,
} from './support.js';

/**
 * Optional TLS on the data ports, with a self-signed certificate made by openssl for this test:
 * HTTPS on the HTTP/1.1 ports (X-Forwarded-Proto: https upstream), gRPC over TLS with ALPN h2 on
 * 4317, no cleartext on a TLS port, certificates re-read when the files change (a broken
 * replacement keeps the running one), and precise start-up errors.
 */

const KEY = 'hostile-tls-key-33e1';
let dir: string;
let upstream: CountingUpstream;
let receiver: OtlpReceiver;
let gateway: RunningGateway;
let first: { cert: string; key: string };

/** A self-signed certificate for 127.0.0.1 and localhost, PEM text. */
function makeCertificate(name: string): { cert: string; key: string } {
  return selfSignedCertificate(dir, name);
}

/** Replaces a file the way renewal tools do: write beside it, then rename over it. */
function replaceFile(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
}

const certPath = (): string => join(dir, 'served.cert.pem');
const keyPath = (): string => join(dir, 'served.key.pem');

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'edge-gateway-tls-'));
  first = makeCertificate('first');
  writeFileSync(certPath(), first.cert);
  writeFileSync(keyPath(), first.key);
  upstream = await startCountingUpstream();
  receiver = await startOtlpReceiver();
  gateway = await startGatewayFor(
    { http: upstream.url, prometheus: upstream.url, victoriametrics: upstream.url, grpc: receiver.grpcUrl },
    { ENVOY_API_KEYS: KEY, TLS_CERT_FILE: certPath(), TLS_KEY_FILE: keyPath(), AUTH_FAILURE_LIMIT: '0' },
  );
});

after(async () => {
  await gateway?.stop();
  await upstream?.stop();
  await receiver?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function httpsGet(
  port: number,
  path: string,
  headers: Record<string, string>,
  ca: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path, headers, ca, agent: false, timeout: 5000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end();
  });
}

/** The certificate a fresh TLS connection to `port` is served, and the protocol ALPN chose. */
function handshake(
  port: number,
  alpn: string[],
  ca: string,
): Promise<{ fingerprint: string; alpn: string | false }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      { host: '127.0.0.1', port, ca, ALPNProtocols: alpn, servername: 'localhost' },
      () => {
        const fingerprint = socket.getPeerCertificate().fingerprint256;
        const protocol = socket.alpnProtocol;
        socket.destroy();
        resolve({ fingerprint, alpn: protocol ?? false });
      },
    );
    socket.on('error', reject);
    socket.setTimeout(5000, () => socket.destroy(new Error('handshake timeout')));
  });
}

function grpcExport(port: number, ca: string, metadata: Record<string, string>): Promise<grpc.status> {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createSsl(Buffer.from(ca)));
  const meta = new grpc.Metadata();
  for (const [name, value] of Object.entries(metadata)) meta.set(name, value);
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      TRACE_EXPORT_PATH,
      (value: Buffer) => value,
      (bytes: Buffer) => bytes,
      Buffer.alloc(0),
      meta,
      { deadline: Date.now() + 5000 },
      (error) => {
        client.close();
        resolve(error === null ? grpc.status.OK : (error.code ?? grpc.status.UNKNOWN));
      },
    );
  });
}

const fingerprintOf = (pem: string): string => new X509Certificate(pem).fingerprint256;

describe('TLS on the data ports', () => {
  test('4318, 9090 and 8428 speak HTTPS and tell the upstream X-Forwarded-Proto: https', async () => {
    for (const port of [gateway.ports.http, gateway.ports.prometheus, gateway.ports.victoriametrics]) {
      const before = upstream.seen.length;
      const answer = await httpsGet(port, '/api/v1/query?query=up', { 'x-api-key': KEY }, first.cert);
      assert.equal(answer.status, 200, `port ${port}: ${answer.body}`);
      assert.equal(upstream.seen.length, before + 1);
      assert.equal(upstream.seen.at(-1)?.headers['x-forwarded-proto'], 'https');
      const denied = await httpsGet(port, '/', {}, first.cert);
      assert.equal(denied.status, 401);
    }
  });

  test('4317 speaks gRPC over TLS, ALPN h2: the gRPC client reaches the collector', async () => {
    const served = await handshake(gateway.ports.grpc, ['h2'], first.cert);
    assert.equal(served.alpn, 'h2');
    const before = receiver.requests.grpc;
    assert.equal(await grpcExport(gateway.ports.grpc, first.cert, { 'x-api-key': KEY }), grpc.status.OK);
    assert.equal(receiver.requests.grpc, before + 1);
    assert.equal(receiver.lastRequest?.headers['x-forwarded-proto'], 'https');
    assert.equal(
      await grpcExport(gateway.ports.grpc, first.cert, { 'x-api-key': 'wrong' }),
      grpc.status.UNAUTHENTICATED,
    );
  });

  test('no cleartext on a TLS port: plain HTTP/1.1 and h2c prior knowledge get no answer', async () => {
    const before = upstream.seen.length;
    const plain = await rawExchange(
      gateway.ports.http,
      `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: ${KEY}\r\n\r\n`,
      { waitMs: 3000 },
    );
    assert.equal(plain.status, 0, `cleartext was answered: ${plain.text.slice(0, 100)}`);
    const h2c = await rawExchange(gateway.ports.grpc, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', { waitMs: 3000 });
    // A SETTINGS frame's header has type 0x4 in its fourth byte.
    const answeredSettings = h2c.text.length >= 9 && h2c.text.charCodeAt(3) === 0x04;
    assert.ok(!answeredSettings, 'the TLS gRPC port answered an h2c preface with SETTINGS');
    assert.equal(upstream.seen.length, before);
  });

  test('4317 refuses a TLS client that does not offer h2', async () => {
    const refused = await handshake(gateway.ports.grpc, ['http/1.1'], first.cert).then(
      (served) => `negotiated ${String(served.alpn)}`,
      (error: Error) => error.message,
    );
    assert.doesNotMatch(refused, /negotiated http\/1\.1/);
  });

  test('a renewed certificate is served to new connections within seconds, without a restart', async () => {
    const second = makeCertificate('second');
    const reloadsBefore = await metricSum(gateway, 'gateway_tls_certificate_reloads_total');
    assert.equal(
      (await handshake(gateway.ports.http, ['http/1.1'], first.cert)).fingerprint,
      fingerprintOf(first.cert),
    );
    replaceFile(keyPath(), second.key);
    replaceFile(certPath(), second.cert);
    await eventually(
      async () =>
        (await handshake(gateway.ports.http, ['http/1.1'], second.cert).catch(() => null))?.fingerprint ===
        fingerprintOf(second.cert),
      5000,
      () => 'the renewed certificate was not served within 5 s',
    );
    const onGrpc = await handshake(gateway.ports.grpc, ['h2'], second.cert);
    assert.equal(onGrpc.fingerprint, fingerprintOf(second.cert));
    assert.equal(await grpcExport(gateway.ports.grpc, second.cert, { 'x-api-key': KEY }), grpc.status.OK);
    assert.equal((await metricSum(gateway, 'gateway_tls_certificate_reloads_total')) - reloadsBefore, 1);
    await gateway.waitForOutput(/TLS certificate reloaded/);
    first = second;
  });

  test('a broken replacement (garbage, or a key of another certificate) keeps the running certificate', async () => {
    const served = fingerprintOf(first.cert);
    const failuresBefore = await metricSum(gateway, 'gateway_tls_certificate_reload_failures_total');
    replaceFile(certPath(), 'not a certificate\n');
    await eventually(
      async () =>
        (await metricSum(gateway, 'gateway_tls_certificate_reload_failures_total')) > failuresBefore,
      5000,
      () => 'the broken certificate file was not reported',
    );
    assert.equal((await handshake(gateway.ports.http, ['http/1.1'], first.cert)).fingerprint, served);
    const other = makeCertificate('other');
    replaceFile(certPath(), other.cert); // the key file still holds the served certificate's key
    await eventually(
      async () =>
        (await metricSum(gateway, 'gateway_tls_certificate_reload_failures_total')) > failuresBefore + 1,
      5000,
      () => 'the mismatched pair was not reported',
    );
    assert.equal((await handshake(gateway.ports.http, ['http/1.1'], first.cert)).fingerprint, served);
    assert.match(gateway.output(), /is not the private key of the certificate/);
    // The matching pair again: it is served (again) and the log says so.
    replaceFile(certPath(), first.cert);
    assert.equal((await httpsGet(gateway.ports.http, '/', { 'x-api-key': KEY }, first.cert)).status, 200);
  });
});

describe('slow TLS handshakes', () => {
  test('a handshake that never starts, or stops half-way, is cut after CLIENT_HEADER_TIMEOUT on every port', async () => {
    const slow = await startGatewayFor(
      { http: upstream.url, grpc: receiver.grpcUrl },
      {
        ENVOY_API_KEYS: KEY,
        TLS_CERT_FILE: certPath(),
        TLS_KEY_FILE: keyPath(),
        CLIENT_HEADER_TIMEOUT: '1s',
      },
    );
    try {
      // Nothing at all, and the first bytes of a TLS record header (a ClientHello that never comes).
      const attempts = [slow.ports.http, slow.ports.grpc].flatMap((port) => [
        { port, bytes: '' },
        { port, bytes: '\x16\x03\x01\x02\x00' },
      ]);
      for (const { port, bytes } of attempts) {
        const startedAt = Date.now();
        const answer = await rawExchange(port, Buffer.from(bytes, 'latin1'), { waitMs: 6000 });
        const took = Date.now() - startedAt;
        assert.ok(answer.closed, `port ${port}: a stalled handshake was kept open`);
        assert.ok(took >= 900, `port ${port}: cut after ${took} ms, before the timeout`);
      }
      assert.equal((await httpsGet(slow.ports.http, '/', { 'x-api-key': KEY }, first.cert)).status, 200);
    } finally {
      await slow.stop();
    }
  });
});

describe('TLS configuration errors at start', () => {
  async function startFailure(env: Record<string, string>): Promise<string> {
    const failing = await startGateway({
      env: {
        OTLP_GRPC_UPSTREAM: 'off',
        OTLP_HTTP_UPSTREAM: 'http://127.0.0.1:9',
        PROMETHEUS_UPSTREAM: 'off',
        VICTORIAMETRICS_UPSTREAM: 'off',
        ...env,
      },
      waitForReady: false,
    });
    const status = await Promise.race([
      failing.exited,
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 10_000)),
    ]);
    if (status === null) await failing.stop('SIGKILL');
    assert.notEqual(status, null, 'the gateway started with a broken TLS configuration');
    assert.notEqual(status?.code, 0);
    return failing.output();
  }

  test('a key that does not belong to the certificate: the gateway does not start, and says which file', async () => {
    const other = makeCertificate('mismatch');
    const keyFile = join(dir, 'mismatch-only.key.pem');
    writeFileSync(keyFile, other.key);
    const output = await startFailure({ TLS_CERT_FILE: certPath(), TLS_KEY_FILE: keyFile });
    assert.match(
      output,
      new RegExp(`TLS_KEY_FILE: ${keyFile.replaceAll('.', '\\.')} is not the private key of the certificate`),
    );
    assert.ok(!output.includes('PRIVATE KEY'), 'key material in the output');
  });

  test('a missing file and a half-configured pair are named', async () => {
    const missing = await startFailure({ TLS_CERT_FILE: join(dir, 'nope.pem'), TLS_KEY_FILE: keyPath() });
    assert.match(missing, /TLS_CERT_FILE: cannot read .*nope\.pem \(ENOENT\)/);
    const half = await startFailure({ TLS_CERT_FILE: certPath() });
    assert.match(
      half,
      /TLS_KEY_FILE: TLS_CERT_FILE is set, so TLS_KEY_FILE must name the private key file too/,
    );
  });
});
