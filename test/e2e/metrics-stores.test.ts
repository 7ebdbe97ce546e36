import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningGateway } from '../support/gateway.js';
import { freePort } from '../support/ports.js';
import {
  type RunningService,
  startPrometheus,
  startVictoriaMetrics,
  type VictoriaMetricsService,
} from '../support/services.js';
import { until as untilEvery } from '../support/wait.js';
import { basic, metricValue, startGatewayFor } from './fixtures.js';

/** The stores scrape and ingest on their own clocks: poll every 250 ms for up to 20 s. */
const until = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> =>
  untilEvery(what, probe, timeoutMs, 250);

const KEY = 'stores-suite-key';

interface PromResult {
  readonly status: string;
  readonly data: { readonly result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

describe('Prometheus (9090) and VictoriaMetrics (8428) behind the gateway, real processes', () => {
  let vm: VictoriaMetricsService;
  let prometheus: RunningService;
  let gateway: RunningGateway;
  const withKey = { 'X-API-Key': KEY };

  before(async () => {
    vm = await startVictoriaMetrics();
    const gatewayVmPort = await freePort();
    // Prometheus scrapes VictoriaMetrics directly (inside the stack) and remote-writes through the
    // gateway with the key. Debian's Prometheus 2.42 does not send remote_write `headers:` (checked
    // against a header-dumping server), so the key goes as `authorization: {type: Bearer}`.
    prometheus = await startPrometheus({
      scrapeTargets: [vm.url.replace('http://', '')],
      jobName: 'vm',
      remoteWrite: { url: `http://127.0.0.1:${gatewayVmPort}/api/v1/write`, bearerToken: KEY },
    });
    gateway = await startGatewayFor(
      { prometheus: prometheus.url, victoriametrics: vm.url },
      { ENVOY_API_KEYS: KEY, VICTORIAMETRICS_LISTEN: `127.0.0.1:${gatewayVmPort}` },
    );
  });
  after(async () => {
    await gateway?.stop();
    await prometheus?.stop();
    await vm?.stop();
  });

  test('a PromQL query through 9090', async () => {
    const result = await until('a scraped sample', async () => {
      const response = await fetch(`${gateway.url('prometheus')}/api/v1/query?query=up`, {
        headers: withKey,
      });
      assert.equal(response.status, 200);
      const body = (await response.json()) as PromResult;
      return body.data.result.length > 0 ? body : undefined;
    });
    assert.equal(result.status, 'success');
    assert.equal(result.data.result[0]?.metric.job, 'vm');
    assert.equal(result.data.result[0]?.value[1], '1');
  });

  test('/api/v1/targets through 9090 shows the scrape target up', async () => {
    const health = await until('the target to be up', async () => {
      const response = await fetch(`${gateway.url('prometheus')}/api/v1/targets`, { headers: withKey });
      const body = (await response.json()) as { data: { activeTargets: Array<{ health: string }> } };
      return body.data.activeTargets[0]?.health === 'up' ? 'up' : undefined;
    });
    assert.equal(health, 'up');
  });

  test('9090 and 8428 answer 401 without the key', async () => {
    for (const url of [
      `${gateway.url('prometheus')}/api/v1/query?query=up`,
      `${gateway.url('victoriametrics')}/health`,
    ]) {
      const response = await fetch(url);
      assert.equal(response.status, 401);
      assert.equal(await response.text(), 'Missing or Invalid API Key');
    }
  });

  test('/health through 8428', async () => {
    const response = await fetch(`${gateway.url('victoriametrics')}/health`, { headers: withKey });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'OK');
  });

  test('/api/v1/import through 8428, then a query through 8428 reads the samples back', async () => {
    const now = Date.now();
    const lines = [0, 1, 2]
      .map((i) =>
        JSON.stringify({
          metric: { __name__: 'gateway_import_test', instance: `i${i}` },
          values: [i * 10],
          timestamps: [now - 1000],
        }),
      )
      .join('\n');
    const imported = await fetch(`${gateway.url('victoriametrics')}/api/v1/import`, {
      method: 'POST',
      headers: withKey,
      body: lines,
    });
    assert.equal(imported.status, 204, await imported.text());
    await vm.forceFlush();
    const body = await until('imported samples to be queryable', async () => {
      const response = await fetch(
        `${gateway.url('victoriametrics')}/api/v1/query?query=sum(gateway_import_test)&time=${Math.floor(now / 1000)}`,
        { headers: withKey },
      );
      const parsed = (await response.json()) as PromResult;
      return parsed.data.result.length > 0 ? parsed : undefined;
    });
    assert.equal(body.data.result[0]?.value[1], '30');
  });

  test("Prometheus' remote_write goes through the gateway into VictoriaMetrics and reads back through it", async () => {
    const series = await until(
      'remote-written samples in VictoriaMetrics',
      async () => {
        await vm.forceFlush();
        const response = await fetch(`${gateway.url('victoriametrics')}/api/v1/query?query=up{job="vm"}`, {
          headers: withKey,
        });
        const parsed = (await response.json()) as PromResult;
        return parsed.data.result.length > 0 ? parsed.data.result : undefined;
      },
      30_000,
    );
    assert.equal(series[0]?.metric.job, 'vm');
    const writes = await metricValue(
      gateway,
      'gateway_requests_total',
      'listener="victoriametrics",code="204",grpc_status=""',
    );
    assert.ok(writes >= 1, `remote_write requests answered 204 through the gateway: ${writes}`);
  });
});

describe('a Prometheus with its own basic auth (web.config.yml) behind the gateway', () => {
  let prometheus: RunningService;
  let gateway: RunningGateway;

  before(async () => {
    prometheus = await startPrometheus({
      webConfig: { basicAuth: { username: 'admin', password: 'secretpassword' } },
    });
  });
  after(async () => {
    await prometheus?.stop();
  });

  test('api-key mode: the key opens the gateway, the forwarded Authorization opens Prometheus', async () => {
    gateway = await startGatewayFor({ prometheus: prometheus.url }, { ENVOY_API_KEYS: KEY });
    try {
      const url = `${gateway.url('prometheus')}/api/v1/status/buildinfo`;
      const both = await fetch(url, {
        headers: { 'X-API-Key': KEY, Authorization: basic('admin', 'secretpassword') },
      });
      assert.equal(both.status, 200);
      const keyOnly = await fetch(url, { headers: { 'X-API-Key': KEY } });
      assert.equal(keyOnly.status, 401, 'Prometheus itself still asks for its credentials');
    } finally {
      await gateway.stop();
    }
  });

  test('basic-auth mode: the stock credentials pass the gateway and Prometheus alike', async () => {
    gateway = await startGatewayFor(
      { prometheus: prometheus.url },
      { ENVOY_AUTH_METHOD: 'basic-auth', ENVOY_BASIC_AUTH_CREDENTIALS: 'admin:secretpassword' },
    );
    try {
      const url = `${gateway.url('prometheus')}/api/v1/status/buildinfo`;
      const ok = await fetch(url, { headers: { Authorization: basic('admin', 'secretpassword') } });
      assert.equal(ok.status, 200);
      const none = await fetch(url);
      assert.equal(none.status, 401);
      assert.equal(none.headers.get('www-authenticate'), 'Basic realm="Observability Pipeline"');
      assert.equal(await none.text(), 'Unauthorized');
    } finally {
      await gateway.stop();
    }
  });
});
