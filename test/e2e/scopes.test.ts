import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import type { RunningGateway } from '../support/gateway.js';
import { exportSpans } from '../support/otel-client.js';
import { type OtlpReceiver, startOtlpReceiver } from '../support/otlp-receiver.js';
import { freePort } from '../support/ports.js';
import { registerSecret } from '../support/secrets.js';
import {
  type RunningService,
  requireBinary,
  startPrometheus,
  startVictoriaMetrics,
  type VictoriaMetricsService,
} from '../support/services.js';
import { until as untilEvery } from '../support/wait.js';
import { basic, startGatewayFor } from './fixtures.js';
import { grpcClient, grpcExport, Metrics } from './operations/helpers.js';
import { DELETE_SPELLINGS, rawRequest } from './scope-spellings.js';

/**
 * Issue 12 against the real stores: an ingest key writes and cannot read or delete, a read key
 * and a read user read (the Prometheus UI included) and cannot write, an admin key deletes, and
 * no spelling of an admin path passes as anything else. Nothing refused reaches an upstream.
 */

const until = <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> =>
  untilEvery(what, probe, timeoutMs, 250);

const RUN = randomBytes(4).toString('hex');
const secret = (name: string): string => `${name}-${RUN}-${randomBytes(16).toString('base64url')}`;
const INGEST_KEY = secret('ingest');
const READ_KEY = secret('read');
const ADMIN_KEY = secret('admin');
const GRAFANA_PASSWORD = secret('grafana-pw');
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const SERIES = `scopes_test_${RUN}`;
const CHROMIUM = '/usr/bin/chromium';

const envFile = [
  'ENVOY_AUTH_METHOD=any',
  `GATEWAY_KEY_APP=${INGEST_KEY}; scopes=ingest`,
  // The reader's key is held only as its digest.
  `GATEWAY_KEY_READER=sha256:${sha256(READ_KEY)}; scopes=read`,
  `GATEWAY_KEY_OPS=${ADMIN_KEY}; scopes=admin`,
  `GATEWAY_USER_GRAFANA=grafana:${GRAFANA_PASSWORD}; scopes=read`,
  'AUTH_FAILURE_LIMIT=0',
  '',
].join('\n');

describe('named, scoped credentials against real VictoriaMetrics, Prometheus and an OTLP receiver (issue 12)', () => {
  let vm: VictoriaMetricsService;
  let prometheus: RunningService;
  let receiver: OtlpReceiver;
  let gateway: RunningGateway;
  const ingest = { 'X-API-Key': INGEST_KEY };
  const read = { 'X-API-Key': READ_KEY };
  const admin = { 'X-API-Key': ADMIN_KEY };

  const vmSeriesCount = async (selector: string): Promise<number> => {
    await vm.forceFlush();
    const response = await fetch(`${vm.url}/api/v1/series?match[]=${encodeURIComponent(selector)}`);
    const body = (await response.json()) as { data: unknown[] };
    return body.data.length;
  };

  before(async () => {
    registerSecret({ kind: 'key-digest', value: sha256(READ_KEY) });
    registerSecret({ kind: 'api-key', value: READ_KEY });
    receiver = await startOtlpReceiver();
    vm = await startVictoriaMetrics();
    const gatewayVmPort = await freePort();
    // Prometheus remote-writes what it scrapes through the gateway's 8428 with the ingest key.
    prometheus = await startPrometheus({
      scrapeTargets: [vm.url.replace('http://', '')],
      jobName: `scopes-${RUN}`,
      remoteWrite: { url: `http://127.0.0.1:${gatewayVmPort}/api/v1/write`, bearerToken: INGEST_KEY },
    });
    gateway = await startGatewayFor(
      { grpc: receiver.grpcUrl, http: receiver.httpUrl, prometheus: prometheus.url, victoriametrics: vm.url },
      { VICTORIAMETRICS_LISTEN: `127.0.0.1:${gatewayVmPort}` },
      envFile,
    );
  });
  after(async () => {
    await gateway?.stop();
    await prometheus?.stop();
    await vm?.stop();
    await receiver?.stop();
  });

  test('ingest: OTLP/gRPC and OTLP/HTTP exports (real SDK exporters) arrive', async () => {
    const spansBefore = receiver.spans.length;
    const grpc = await exportSpans({
      transport: 'grpc',
      url: gateway.url('grpc'),
      headers: { 'x-api-key': INGEST_KEY },
      spans: [{ name: 'ingest-grpc' }],
    });
    assert.equal(grpc.code, 0, String(grpc.error));
    const http = await exportSpans({
      transport: 'http-protobuf',
      url: gateway.url('http'),
      headers: ingest,
      spans: [{ name: 'ingest-http' }],
    });
    assert.equal(http.code, 0, String(http.error));
    assert.deepEqual(
      receiver.spans.slice(spansBefore).map((span) => span.name),
      ['ingest-grpc', 'ingest-http'],
    );
  });

  test('ingest: an import to VictoriaMetrics works; Prometheus remote_write through 8428 arrives', async () => {
    const imported = await fetch(`${gateway.url('victoriametrics')}/api/v1/import/prometheus`, {
      method: 'POST',
      headers: ingest,
      body: `${SERIES}{kind="ingest"} 1\n${SERIES}{kind="doomed"} 2\n`,
    });
    assert.equal(imported.status, 204, await imported.text());
    assert.equal(await vmSeriesCount(SERIES), 2);
    await until('remote-written samples in VictoriaMetrics', async () =>
      (await vmSeriesCount(`up{job="scopes-${RUN}"}`)) > 0 ? true : undefined,
    );
  });

  test('ingest: a query on 8428 and 9090 gets 403 naming the scope; delete_series gets 403 and the series stays', async () => {
    for (const url of [
      `${gateway.url('victoriametrics')}/api/v1/query?query=${SERIES}`,
      `${gateway.url('prometheus')}/api/v1/query?query=up`,
      `${gateway.url('victoriametrics')}/api/v1/export?match[]=${SERIES}`,
    ]) {
      const response = await fetch(url, { headers: ingest });
      assert.equal(response.status, 403, url);
      assert.equal(await response.text(), 'credential lacks scope "read"');
    }
    const deleted = await fetch(
      `${gateway.url('victoriametrics')}/api/v1/admin/tsdb/delete_series?match[]=${SERIES}`,
      { method: 'POST', headers: ingest },
    );
    assert.equal(deleted.status, 403);
    assert.equal(await deleted.text(), 'credential lacks scope "admin"');
    assert.equal(await vmSeriesCount(SERIES), 2);
  });

  test('read: queries on both stores; export and import get 403; an OTLP export is refused, gRPC with PERMISSION_DENIED, nothing at the receiver', async () => {
    const vmQuery = await fetch(`${gateway.url('victoriametrics')}/api/v1/query?query=${SERIES}`, {
      headers: read,
    });
    assert.equal(vmQuery.status, 200);
    assert.equal(((await vmQuery.json()) as { data: { result: unknown[] } }).data.result.length, 2);
    const promQuery = await until('a Prometheus query answer', async () => {
      const response = await fetch(`${gateway.url('prometheus')}/api/v1/query?query=up`, {
        headers: { authorization: basic('grafana', GRAFANA_PASSWORD) },
      });
      assert.equal(response.status, 200);
      const body = (await response.json()) as { data: { result: unknown[] } };
      return body.data.result.length > 0 ? body : undefined;
    });
    assert.ok(promQuery.data.result.length > 0);

    const imported = await fetch(`${gateway.url('victoriametrics')}/api/v1/import/prometheus`, {
      method: 'POST',
      headers: read,
      body: `${SERIES}{kind="from-reader"} 1\n`,
    });
    assert.equal(imported.status, 403);
    assert.equal(await imported.text(), 'credential lacks scope "ingest"');

    const requestsBefore = { ...receiver.requests };
    const http = await exportSpans({
      transport: 'http-protobuf',
      url: gateway.url('http'),
      headers: read,
      spans: [{ name: 'from-reader' }],
    });
    assert.equal(http.code, 1);
    assert.equal(http.httpStatus, 403);
    const grpc = await exportSpans({
      transport: 'grpc',
      url: gateway.url('grpc'),
      headers: { 'x-api-key': READ_KEY },
      spans: [{ name: 'from-reader' }],
    });
    assert.equal(grpc.grpcCode, 7);
    const client = grpcClient(gateway);
    try {
      assert.deepEqual(await grpcExport(client, { 'x-api-key': READ_KEY }), {
        code: 7,
        details: 'credential lacks scope "ingest"',
      });
    } finally {
      client.close();
    }
    assert.deepEqual(receiver.requests, requestsBefore, 'nothing reached the receiver');
    await vm.forceFlush();
    assert.equal(await vmSeriesCount(`${SERIES}{kind="from-reader"}`), 0);
  });

  test('read: the Prometheus UI in Chromium with the read user renders a query', async () => {
    await requireBinary(CHROMIUM, 'chromium');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
      ],
    });
    try {
      const context = await browser.newContext({
        httpCredentials: { username: 'grafana', password: GRAFANA_PASSWORD },
      });
      const page = await context.newPage();
      const statuses: number[] = [];
      page.on('response', (response) => statuses.push(response.status()));
      const opened = await page.goto(`${gateway.url('prometheus')}/graph`);
      assert.equal(opened?.status(), 200);
      await page.locator('#expr0').fill('up');
      await page.locator('#graph_wrapper0 .execute_btn').click();
      const row = page.locator('#console0 table tbody tr', { hasText: `job="scopes-${RUN}"` });
      await row.first().waitFor({ timeout: 15_000 });
      assert.ok(statuses.filter((status) => status === 200).length >= 10, 'the page loaded its assets');
      assert.deepEqual(
        // Debian's 2.42 redirects /graph twice, to the classic UI.
        statuses.filter((status) => status >= 400),
        [],
        'every page, asset and API call of the UI is allowed to a read user',
      );
    } finally {
      await browser.close();
    }
  });

  test('every spelling of delete_series, on 8428 and 9090, is refused to non-admin keys and the series stays', async () => {
    for (const headers of [read, ingest]) {
      for (const listener of ['victoriametrics', 'prometheus'] as const) {
        for (const path of DELETE_SPELLINGS) {
          const answer = await rawRequest(
            gateway.ports[listener],
            'POST',
            `${path}?match[]=${SERIES}`,
            headers,
          );
          assert.ok(
            answer.status === 403 || answer.status === 400,
            `${listener} ${path}: ${answer.status} ${answer.body}`,
          );
          if (answer.status === 403) assert.equal(answer.body, 'credential lacks scope "admin"', path);
        }
      }
    }
    assert.equal(await vmSeriesCount(SERIES), 2);
  });

  test('admin: delete_series on the real VictoriaMetrics removes the series', async () => {
    const deleted = await fetch(
      `${gateway.url('victoriametrics')}/api/v1/admin/tsdb/delete_series?match[]=${encodeURIComponent(`${SERIES}{kind="doomed"}`)}`,
      { method: 'POST', headers: admin },
    );
    assert.equal(deleted.status, 204, await deleted.text());
    assert.equal(await vmSeriesCount(`${SERIES}{kind="doomed"}`), 0);
    assert.equal(await vmSeriesCount(SERIES), 1);
    // An admin key is no read key.
    const query = await fetch(`${gateway.url('victoriametrics')}/api/v1/query?query=${SERIES}`, {
      headers: admin,
    });
    assert.equal(query.status, 403);
  });

  test('/credentials and the metrics count per credential, with no secret and no digest', async () => {
    const response = await fetch(`${gateway.url('admin')}/credentials`);
    assert.equal(response.status, 200);
    const text = await response.text();
    for (const leaked of [
      INGEST_KEY,
      READ_KEY,
      ADMIN_KEY,
      GRAFANA_PASSWORD,
      sha256(INGEST_KEY),
      sha256(READ_KEY),
      sha256(ADMIN_KEY),
    ]) {
      assert.ok(!text.includes(leaked), `a secret or digest in /credentials: ${text}`);
    }
    const { credentials } = JSON.parse(text) as {
      credentials: Array<{
        name: string;
        kind: string;
        scopes: string;
        last_used: string | null;
        requests: Record<string, number>;
        scope_denials: Record<string, number>;
      }>;
    };
    const byName = new Map(credentials.map((entry) => [entry.name, entry]));
    assert.deepEqual([...byName.keys()].sort(), ['app', 'grafana', 'ops', 'reader']);
    const app = byName.get('app');
    assert.equal(app?.kind, 'key');
    assert.equal(app?.scopes, 'ingest');
    assert.ok((app?.requests['otlp-grpc'] ?? 0) >= 1, JSON.stringify(app));
    assert.ok((app?.requests['otlp-http'] ?? 0) >= 1, JSON.stringify(app));
    assert.ok((app?.requests.victoriametrics ?? 0) >= 1, JSON.stringify(app));
    assert.ok(app?.last_used !== null && Date.now() - Date.parse(app?.last_used ?? '') < 600_000);
    assert.ok((byName.get('reader')?.scope_denials.ingest ?? 0) >= 3, JSON.stringify(byName.get('reader')));
    assert.equal(byName.get('grafana')?.kind, 'user');

    const metrics = await Metrics.scrape(gateway);
    assert.ok(
      metrics.get('gateway_credential_requests_total', {
        credential: 'app',
        listener: 'otlp-http',
        code_class: '2xx',
      }) >= 1,
    );
    assert.ok(
      metrics.get('gateway_credential_scope_denials_total', { credential: 'reader', scope: 'ingest' }) >= 3,
    );
    assert.ok(
      metrics.get('gateway_credential_received_bytes_total', { credential: 'app', listener: 'otlp-http' }) >
        0,
    );
    assert.ok(metrics.get('gateway_credential_last_used_timestamp_seconds', { credential: 'app' }) > 1e9);
    // A 403 is no authentication failure.
    assert.equal(
      metrics.get(
        'gateway_auth_failures_total',
        { listener: 'victoriametrics', reason: 'invalid_key' },
        true,
      ),
      0,
    );
  });
});
