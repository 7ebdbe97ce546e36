import assert from 'node:assert/strict';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { RunningGateway } from '../support/gateway.js';
import { exportSpans } from '../support/otel-client.js';
import { type OtlpReceiver, startOtlpReceiver } from '../support/otlp-receiver.js';
import { sleep, until as untilEvery } from '../support/wait.js';
import { metricValue, postOnFreshConnection, startGatewayFor } from './fixtures.js';

/** Pids of a process's children, from the kernel. */
function childPids(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);
}

/** Polls every 100 ms for up to 10 s; a probe that throws fails the test at once. */
async function until(what: string, probe: () => Promise<boolean>): Promise<void> {
  await untilEvery(what, probe, 10_000, 100, false);
}

describe('WORKERS=2: a node:cluster primary and two workers sharing the sockets', () => {
  let receiver: OtlpReceiver;
  let gateway: RunningGateway;

  before(async () => {
    receiver = await startOtlpReceiver();
    gateway = await startGatewayFor(
      { grpc: receiver.grpcUrl, http: receiver.httpUrl },
      { WORKERS: '2' },
      'ENVOY_API_KEYS=workers-key-1\n',
    );
  });
  after(async () => {
    await gateway?.stop();
    await receiver?.stop();
  });

  /** Sends `count` requests, each on a fresh connection so the primary spreads them over the workers. */
  async function statuses(key: string, count: number): Promise<number[]> {
    const results: number[] = [];
    for (let i = 0; i < count; i++) results.push(await postOnFreshConnection(gateway, key));
    return results;
  }

  test('two workers serve; /ready, /config_dump and the aggregated /metrics come from the primary', async () => {
    assert.equal(childPids(gateway.child.pid!).length, 2);
    assert.deepEqual(new Set(await statuses('workers-key-1', 20)), new Set([200]));
    const dump = (await (await fetch(`${gateway.url('admin')}/config_dump`)).json()) as { workers: number };
    assert.equal(dump.workers, 2);
    assert.equal(await metricValue(gateway, 'gateway_workers'), 2);
    // Each worker counts its own requests; the primary's /metrics sums them.
    assert.equal(
      await metricValue(gateway, 'gateway_requests_total', 'listener="otlp-http",code="200",grpc_status=""'),
      20,
    );
    const exported = await exportSpans({
      transport: 'grpc',
      url: gateway.url('grpc'),
      headers: { 'x-api-key': 'workers-key-1' },
      spans: [{ name: 'via-a-worker' }],
    });
    assert.equal(exported.code, 0, exported.error?.message);
  });

  test('a reload reaches every worker', async () => {
    const reloads = await metricValue(gateway, 'gateway_config_reloads_total');
    writeFileSync(`${gateway.envFile}.tmp`, 'ENVOY_API_KEYS=workers-key-2\n');
    renameSync(`${gateway.envFile}.tmp`, gateway.envFile);
    await until(
      'the reload',
      async () => (await metricValue(gateway, 'gateway_config_reloads_total')) > reloads,
    );
    // Workers apply what the primary sends over IPC; a round trip later every worker has it.
    await until('every worker on the new key', async () =>
      (await statuses('workers-key-1', 6)).every((s) => s === 401),
    );
    assert.deepEqual(new Set(await statuses('workers-key-2', 20)), new Set([200]));
    assert.deepEqual(new Set(await statuses('workers-key-1', 20)), new Set([401]));
  });

  test('a crashed worker is replaced and traffic goes on, even while /metrics is scraped', async () => {
    // Scrapes in a loop while the worker dies: the primary asks every worker for its metrics over
    // IPC, and a write to the dead worker's channel (EPIPE) once took the whole primary down.
    let scraping = true;
    const scrapes = Array.from({ length: 16 }, async () => {
      while (scraping) {
        await fetch(`${gateway.url('admin')}/metrics`)
          .then((response) => response.arrayBuffer())
          .catch(() => undefined);
      }
    });
    const victims: number[] = [];
    try {
      // Three deaths: the window in which the primary still writes to a dead worker is short.
      for (let death = 1; death <= 3; death++) {
        const [victim] = childPids(gateway.child.pid!);
        victims.push(victim!);
        await sleep(200);
        process.kill(victim!, 'SIGKILL');
        await sleep(300);
        assert.equal(gateway.child.exitCode, null, `the primary is still running after death ${death}`);
        await until(
          `replacement worker ${death}`,
          async () =>
            (await metricValue(gateway, 'gateway_worker_restarts_total')) === death &&
            (await metricValue(gateway, 'gateway_workers')) === 2,
        );
      }
    } finally {
      scraping = false;
      await Promise.all(scrapes);
    }
    assert.equal(childPids(gateway.child.pid!).length, 2);
    assert.ok(!childPids(gateway.child.pid!).some((pid) => victims.includes(pid)));
    // The replacement runs the configuration in force, not the file it started from alone.
    assert.deepEqual(new Set(await statuses('workers-key-2', 20)), new Set([200]));
  });

  test('SIGTERM drains every worker and the primary exits 0', async () => {
    const status = await gateway.stop();
    assert.deepEqual(status, { code: 0, signal: null });
  });
});
