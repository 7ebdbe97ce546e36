import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { RunningGateway } from '../support/gateway.js';
import { startGatewayFor } from './fixtures.js';

const KEY = 'streaming-suite-key';
const MiB = 1024 * 1024;
const UPLOAD_BYTES = 1024 * MiB;
const DOWNLOAD_BYTES = 512 * MiB;
const CHUNK = Buffer.alloc(MiB, 'x');

/** Peak resident memory of a process (VmHWM), in bytes, from the kernel. */
function peakRss(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(match, 'VmHWM readable');
  return Number(match[1]) * 1024;
}

/**
 * A byte sink and source standing behind the 8428 listener: counts what an `/api/v1/import`
 * sends, and streams a large body for downloads. Not a VictoriaMetrics stand-in: it only proves
 * the gateway streams both ways without holding bodies.
 */
function startByteServer(): Promise<{ url: string; received: () => number; close: () => Promise<void> }> {
  let received = 0;
  const server = createServer((req, res) => {
    if (req.method === 'POST') {
      req.on('data', (chunk: Buffer) => {
        received += chunk.length;
      });
      req.on('end', () => {
        res.writeHead(204);
        res.end();
      });
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(DOWNLOAD_BYTES),
    });
    let sent = 0;
    const pump = (): void => {
      while (sent < DOWNLOAD_BYTES) {
        sent += CHUNK.length;
        if (!res.write(CHUNK)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
        received: () => received,
        close: () => new Promise((done) => server.close(() => done())),
      }),
    ),
  );
}

describe('bodies are streamed through the gateway, never buffered whole', () => {
  let upstream: Awaited<ReturnType<typeof startByteServer>>;
  let gateway: RunningGateway;

  before(async () => {
    upstream = await startByteServer();
    gateway = await startGatewayFor(
      { victoriametrics: upstream.url },
      { ENVOY_API_KEYS: KEY, ACCESS_LOG: 'off' },
    );
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  test('a 1 GiB chunked /api/v1/import arrives whole; the gateway peak RSS grows by < 128 MiB', async () => {
    const pid = gateway.child.pid!;
    const before = peakRss(pid);
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${gateway.url('victoriametrics')}/api/v1/import`,
        { method: 'POST', headers: { 'x-api-key': KEY, 'content-type': 'application/json' } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      let sent = 0;
      const pump = (): void => {
        while (sent < UPLOAD_BYTES) {
          sent += CHUNK.length;
          if (!req.write(CHUNK)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    assert.equal(status, 204);
    assert.equal(upstream.received(), UPLOAD_BYTES);
    const growth = peakRss(pid) - before;
    assert.ok(growth < 128 * MiB, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  });

  test('a 512 MiB response streams back whole with bounded gateway memory', async () => {
    const pid = gateway.child.pid!;
    const before = peakRss(pid);
    const received = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${gateway.url('victoriametrics')}/api/v1/export`,
        { headers: { 'x-api-key': KEY } },
        (res) => {
          let bytes = 0;
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
          });
          res.on('end', () => resolve(bytes));
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(received, DOWNLOAD_BYTES);
    const growth = peakRss(pid) - before;
    assert.ok(growth < 128 * MiB, `peak RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  });
});
