import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { REPO_ROOT, type RunningGateway } from '../support/gateway.js';
import { freePort } from '../support/ports.js';
import { type RunningService, startPrometheus } from '../support/services.js';
import { until } from '../support/wait.js';
import { startGatewayFor } from './fixtures.js';

// Issue 15: the dashboard is tested against the real thing: each panel's PromQL is parsed and
// evaluated by a real Prometheus that scrapes a real gateway (WORKERS=2) through METRICS_LISTEN.
const DASHBOARD = join(REPO_ROOT, 'config', 'grafana', 'edge-gateway.json');
const READ_KEY = 'dashboard-suite-read-key';
const INGEST_KEY = 'dashboard-suite-ingest-key';

interface Target {
  readonly refId: string;
  readonly expr: string;
}
interface Panel {
  readonly id: number;
  readonly title: string;
  readonly type: string;
  readonly datasource: { readonly uid: string };
  readonly gridPos: { readonly h: number; readonly w: number; readonly x: number; readonly y: number };
  readonly targets: readonly Target[];
}
interface Dashboard {
  readonly title: string;
  readonly uid: string;
  readonly schemaVersion: number;
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: ReadonlyArray<{ name: string; type: string; query: unknown }> };
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;

/** What Grafana puts in place of its variables before the query reaches Prometheus. */
function substituted(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '10s')
    .replaceAll('$__range', '5m')
    .replaceAll('$job', 'edge-gateway');
}

describe('config/grafana/edge-gateway.json as a dashboard', () => {
  test('has a title, uid, schemaVersion and a Prometheus datasource variable every panel uses', () => {
    assert.equal(dashboard.title, 'edge-gateway');
    assert.match(dashboard.uid, /^[a-z-]+$/);
    assert.ok(Number.isInteger(dashboard.schemaVersion) && dashboard.schemaVersion >= 36);
    const variable = dashboard.templating.list.find((candidate) => candidate.type === 'datasource');
    assert.deepEqual([variable?.name, variable?.query], ['datasource', 'prometheus']);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
    for (const panel of dashboard.panels) assert.equal(panel.datasource.uid, '${datasource}', panel.title);
  });

  test('has unique panel ids, and every panel at least one query inside a 24-column grid', () => {
    const ids = dashboard.panels.map((panel) => panel.id);
    assert.equal(new Set(ids).size, ids.length);
    for (const panel of dashboard.panels) {
      assert.ok(panel.targets.length > 0, panel.title);
      assert.ok(panel.gridPos.x + panel.gridPos.w <= 24, panel.title);
      assert.equal(new Set(panel.targets.map((target) => target.refId)).size, panel.targets.length);
    }
  });

  test('shows what issue 15 asks for', () => {
    const expressions = dashboard.panels
      .flatMap((panel) => panel.targets.map((target) => target.expr))
      .join('\n');
    for (const metric of [
      'gateway_requests_total',
      'histogram_quantile(0.5,',
      'histogram_quantile(0.99,',
      'gateway_auth_failures_total',
      '_limit_reached_total',
      'gateway_upstream_errors_total',
      'gateway_requests_in_flight',
      'gateway_received_bytes_total',
      'gateway_sent_bytes_total',
      'gateway_config_last_reload_successful',
      'gateway_config_last_reload_success_timestamp_seconds',
      'gateway_credential_requests_total',
      'gateway_workers',
    ])
      assert.ok(expressions.includes(metric), metric);
  });
});

describe('every panel of the dashboard returns data from a real Prometheus scraping a real gateway', () => {
  let prometheus: RunningService;
  let gateway: RunningGateway;

  before(async () => {
    const metricsPort = await freePort();
    const closedPort = await freePort();
    prometheus = await startPrometheus({
      scrapeTargets: [`127.0.0.1:${metricsPort}`],
      jobName: 'edge-gateway',
    });
    gateway = await startGatewayFor(
      { prometheus: prometheus.url, victoriametrics: `http://127.0.0.1:${closedPort}` },
      {
        METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
        WORKERS: '2',
        GATEWAY_KEY_DASHBOARD_READER: `${READ_KEY}; scopes=read; expires=2099-01-01`,
        GATEWAY_KEY_DASHBOARD_INGEST: `${INGEST_KEY}; scopes=ingest`,
        AUTH_FAILURE_LIMIT: '3',
      },
    );
    // Traffic that gives every panel something to show: answered queries (rate, latency, bytes,
    // per-credential use), a denied scope, an unreachable upstream, then refused keys up to the
    // brute-force limit (last: the limit then refuses this address), and a reload.
    const prom = gateway.url('prometheus');
    for (let i = 0; i < 20; i++) {
      const response = await fetch(`${prom}/api/v1/query?query=up`, { headers: { 'X-API-Key': READ_KEY } });
      assert.equal(response.status, 200);
      await response.arrayBuffer();
    }
    for (let i = 0; i < 5; i++) {
      const posted = await fetch(`${prom}/api/v1/query`, {
        method: 'POST',
        headers: { 'X-API-Key': READ_KEY, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'query=up',
      });
      assert.equal(posted.status, 200);
      await posted.arrayBuffer();
    }
    const denied = await fetch(`${prom}/api/v1/query?query=up`, { headers: { 'X-API-Key': INGEST_KEY } });
    assert.equal(denied.status, 403);
    const unreachable = await fetch(`${gateway.url('victoriametrics')}/api/v1/query?query=up`, {
      headers: { 'X-API-Key': READ_KEY },
    });
    assert.equal(unreachable.status, 503);
    const reload = await fetch(`${gateway.url('admin')}/reload`, { method: 'POST' });
    assert.equal(reload.status, 200);
    const answers: number[] = [];
    for (let i = 0; i < 12; i++)
      answers.push(
        (await fetch(`${prom}/api/v1/query?query=up`, { headers: { 'X-API-Key': 'wrong-key' } })).status,
      );
    assert.ok(answers.includes(401) && answers.includes(429), `answers ${answers.join(' ')}`);
  });
  after(async () => {
    await gateway?.stop();
    await prometheus?.stop();
  });

  for (const panel of dashboard.panels) {
    for (const target of panel.targets) {
      test(`${panel.title} (${target.refId})`, async () => {
        const expr = substituted(target.expr);
        await until(
          `data for ${expr}`,
          async () => {
            const response = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
            const body = (await response.json()) as {
              status: string;
              error?: string;
              data?: { result: unknown[] };
            };
            // A parse error is 400 bad_data: fail at once rather than wait.
            assert.equal(response.status, 200, `${expr}: ${body.error}`);
            return (body.data?.result.length ?? 0) > 0 ? body : undefined;
          },
          30_000,
          500,
        );
      });
    }
  }
});
