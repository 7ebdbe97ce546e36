import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningGateway } from '../support/gateway.js';
import { freePort } from '../support/ports.js';
import { type RunningService, startPrometheus } from '../support/services.js';
import { until } from '../support/wait.js';
import { startGatewayFor } from './fixtures.js';

const KEY = 'metrics-listen-suite-key';

interface PromVector {
  readonly status: string;
  readonly data: { readonly result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

async function query(prometheus: RunningService, expression: string): Promise<PromVector> {
  const response = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(expression)}`);
  assert.equal(response.status, 200, `${expression}: ${response.status}`);
  return (await response.json()) as PromVector;
}

// Issue 15: the stack's own Prometheus scrapes the gateway through METRICS_LISTEN.
for (const workers of ['1', '2']) {
  describe(`METRICS_LISTEN, WORKERS=${workers}: a real Prometheus scrapes a real gateway`, () => {
    let gateway: RunningGateway;
    let prometheus: RunningService;
    let metricsUrl: string;

    before(async () => {
      const metricsPort = await freePort();
      metricsUrl = `http://127.0.0.1:${metricsPort}`;
      gateway = await startGatewayFor(
        {},
        { ENVOY_API_KEYS: KEY, METRICS_LISTEN: `127.0.0.1:${metricsPort}`, WORKERS: workers },
      );
      prometheus = await startPrometheus({
        scrapeTargets: [`127.0.0.1:${metricsPort}`],
        jobName: 'edge-gateway',
      });
    });
    after(async () => {
      await prometheus?.stop();
      await gateway?.stop();
    });

    test('GET /metrics answers the exposition without credentials, as the admin port does', async () => {
      const response = await fetch(`${metricsUrl}/metrics`);
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const text = await response.text();
      assert.match(text, /^gateway_config_last_reload_successful 1$/m);
      assert.match(text, new RegExp(`^gateway_workers ${workers}$`, 'm'));
    });

    test('anything else is 404: no admin endpoint leaks onto this port', async () => {
      for (const [method, path] of [
        ['GET', '/'],
        ['GET', '/config_dump'],
        ['GET', '/credentials'],
        ['GET', '/stats/prometheus'],
        ['POST', '/reload'],
        ['POST', '/healthcheck/fail'],
        ['POST', '/metrics'],
      ] as const) {
        const response = await fetch(`${metricsUrl}${path}`, { method });
        assert.equal(response.status, 404, `${method} ${path}`);
        assert.doesNotMatch(await response.text(), /gateway_|api_keys/);
      }
      const ready = await fetch(`${gateway.url('admin')}/ready`);
      assert.equal(ready.status, 200, 'the refused POST /healthcheck/fail must not have reached the admin');
    });

    test('/config_dump shows the address', async () => {
      const dump = (await (await fetch(`${gateway.url('admin')}/config_dump`)).json()) as Record<
        string,
        unknown
      >;
      assert.equal(dump.metrics_listen, metricsUrl.replace('http://', ''));
    });

    test('the target is up under job="edge-gateway" and the gateway series are queryable', async () => {
      await until(
        'the gateway target up',
        async () => {
          const up = await query(prometheus, 'up{job="edge-gateway"}');
          return up.data.result[0]?.value[1] === '1' ? up : undefined;
        },
        20_000,
        250,
      );
      const reload = await query(prometheus, 'gateway_config_last_reload_successful{job="edge-gateway"}');
      assert.equal(reload.data.result.length, 1);
      assert.equal(reload.data.result[0]?.value[1], '1');
      const workersSeen = await query(prometheus, 'gateway_workers{job="edge-gateway"}');
      assert.equal(workersSeen.data.result[0]?.value[1], workers);
    });
  });
}
