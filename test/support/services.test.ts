import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { type RunningService, requireBinary, startPrometheus, startVictoriaMetrics } from './services.js';
import { until } from './wait.js';

interface QueryResponse {
  status: string;
  data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

async function instantQuery(service: RunningService, query: string): Promise<QueryResponse> {
  const response = await fetch(`${service.url}/api/v1/query?query=${encodeURIComponent(query)}`, {
    signal: AbortSignal.timeout(2000),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as QueryResponse;
}

async function isListening(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
}

test('a missing binary fails with the Debian package to install', async () => {
  await assert.rejects(
    requireBinary('/usr/bin/does-not-exist-edge-gateway', 'some-package'),
    (error: Error) => {
      assert.match(error.message, /\/usr\/bin\/does-not-exist-edge-gateway/);
      assert.match(error.message, /Debian package "some-package"/);
      return true;
    },
  );
});

test('VictoriaMetrics: healthy, an imported sample is immediately queryable, stop cleans up', async () => {
  const vm = await startVictoriaMetrics();
  try {
    assert.match(vm.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${vm.url}/health`);
    assert.equal(await health.text(), 'OK');

    const imported = await fetch(`${vm.url}/api/v1/import/prometheus`, {
      method: 'POST',
      body: 'support_selftest_total{probe="vm"} 42\n',
    });
    assert.equal(imported.status, 204);
    await vm.forceFlush();
    const value = await until(
      'the imported sample to be queryable',
      async () => {
        const result = (await instantQuery(vm, 'support_selftest_total')).data.result;
        return result[0]?.value[1];
      },
      3000,
      200,
      false,
    );
    assert.equal(value, '42');
  } finally {
    await vm.stop();
  }
  assert.equal(existsSync(vm.dataDir), false, 'data dir removed');
  assert.equal(await isListening(`${vm.url}/health`), false, 'process gone');
  await vm.stop();
});

test('Prometheus: scrapes its targets every second and remote-writes them with the configured headers', async () => {
  const vm = await startVictoriaMetrics();
  try {
    const prometheus = await startPrometheus({
      scrapeTargets: [`127.0.0.1:${vm.port}`],
      jobName: 'vm-selftest',
      remoteWrite: { url: `${vm.url}/api/v1/write`, headers: { 'X-Selftest': 'yes' } },
    });
    try {
      const ready = await fetch(`${prometheus.url}/-/ready`);
      assert.equal(ready.status, 200);
      const loaded = (await (await fetch(`${prometheus.url}/api/v1/status/config`)).json()) as {
        data: { yaml: string };
      };
      assert.match(loaded.data.yaml, /X-Selftest: "?yes"?/);
      assert.match(loaded.data.yaml, /batch_send_deadline: 1s/);
      await until(
        'Prometheus to scrape VictoriaMetrics',
        async () => {
          const result = (await instantQuery(prometheus, 'up{job="vm-selftest"}')).data.result;
          return result[0]?.value[1] === '1' ? true : undefined;
        },
        10_000,
        200,
        false,
      );
      await until(
        'the remote-written samples to reach VictoriaMetrics',
        async () => {
          await vm.forceFlush();
          const result = (await instantQuery(vm, 'up{job="vm-selftest"}')).data.result;
          return result[0]?.value[1] === '1' ? true : undefined;
        },
        10_000,
        200,
        false,
      );
    } finally {
      await prometheus.stop();
    }
    assert.equal(existsSync(prometheus.dataDir), false, 'data dir removed');
    assert.equal(await isListening(`${prometheus.url}/-/ready`), false, 'process gone');
  } finally {
    await vm.stop();
  }
});

test('Prometheus with its own basic auth (web config) rejects anonymous requests', async () => {
  const credentials = { username: 'admin', password: 'secret:with:colons' };
  const prometheus = await startPrometheus({ webConfig: { basicAuth: credentials } });
  try {
    const anonymous = await fetch(`${prometheus.url}/-/ready`);
    assert.equal(anonymous.status, 401);
    const authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
    const authenticated = await fetch(`${prometheus.url}/api/v1/status/buildinfo`, {
      headers: { authorization },
    });
    assert.equal(authenticated.status, 200);
  } finally {
    await prometheus.stop();
  }
});
