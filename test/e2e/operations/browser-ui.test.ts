import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page, type Response } from 'playwright-core';
import { REPO_ROOT, type RunningGateway } from '../../support/gateway.js';
import { freePort } from '../../support/ports.js';
import { registerSecret } from '../../support/secrets.js';
import {
  type RunningService,
  requireBinary,
  startPrometheus,
  startVictoriaMetrics,
  type VictoriaMetricsService,
} from '../../support/services.js';
import { startGatewayFor } from '../fixtures.js';
import { metric, until, waitForReloads, writeEnvFile } from './helpers.js';

/**
 * Prometheus' web UI and VictoriaMetrics through the gateway in headless Chromium, the way a
 * person opens them: the 401 Basic challenge, a login with a user's password (basic-auth mode)
 * or with the API key as the password (api-key mode), then a query whose result renders.
 * Screenshots go to test/artifacts/.
 *
 * Debian's packages are what runs here: Prometheus 2.42 serves its classic UI at /graph, and
 * victoria-metrics 1.79 is built without vmui (its /vmui/ answers 404), so VictoriaMetrics is
 * checked through the pages and API it does serve, and the vmui link is followed to show the
 * gateway passes VictoriaMetrics' own answer through.
 */

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ARTIFACTS = join(REPO_ROOT, 'test', 'artifacts');
const CHALLENGE = 'Basic realm="Observability Pipeline"';

const RUN = randomBytes(4).toString('hex');
const USER = 'grafana-viewer';
const PASSWORD = `ui-pw-${RUN}-${randomBytes(8).toString('hex')}`;
const KEY = `ui-key-${RUN}-${randomBytes(12).toString('hex')}`;
/** A series imported into VictoriaMetrics for the query to find. */
const SERIES = `browser_ui_test_${RUN}`;

const basicAuthFile = `ENVOY_AUTH_METHOD=basic-auth\nENVOY_BASIC_AUTH_CREDENTIALS=${USER}:${PASSWORD}\nENVOY_API_KEYS=${KEY}\n`;
const apiKeyFile = `ENVOY_AUTH_METHOD=api-key\nENVOY_API_KEYS=${KEY}\n`;

/** Every response the page received, for checking what the browser saw besides the page. */
function recordResponses(page: Page): Response[] {
  const responses: Response[] = [];
  page.on('response', (response) => responses.push(response));
  return responses;
}

/**
 * Navigates to `url` expecting the gateway to refuse: headless Chromium, with no one to type a
 * password, either fails the navigation after the 401 (no credentials) or shows the 401 page
 * (its credentials were refused). Answers the 401 response, checked for the Basic challenge.
 */
async function refusedNavigation(page: Page, url: string): Promise<Response> {
  const responses = recordResponses(page);
  const navigated = await page.goto(url).catch((error: Error) => {
    assert.match(error.message, /ERR_INVALID_AUTH_CREDENTIALS/);
    return null;
  });
  const refusal = navigated ?? responses.filter((response) => response.url() === url).pop();
  assert.ok(refusal !== undefined, `no response for ${url}`);
  assert.equal(refusal.status(), 401);
  assert.equal(await refusal.headerValue('www-authenticate'), CHALLENGE);
  assert.ok(
    responses.every((response) => response.status() === 401),
    'nothing but 401s reached the browser',
  );
  return refusal;
}

describe('the UIs through the gateway in headless Chromium', () => {
  let vm: VictoriaMetricsService;
  let prometheus: RunningService;
  let gateway: RunningGateway;
  let browser: Browser;
  let adminPort: number;
  let importedAt: number;

  before(async () => {
    await requireBinary(CHROMIUM, 'chromium');
    registerSecret({ kind: 'password', value: KEY, user: 'anyone' });
    vm = await startVictoriaMetrics();
    importedAt = Date.now();
    const imported = await fetch(`${vm.url}/api/v1/import`, {
      method: 'POST',
      body: [1, 2, 3]
        .map((i) =>
          JSON.stringify({
            metric: { __name__: SERIES, shard: `s${i}` },
            values: [i * 7],
            timestamps: [importedAt],
          }),
        )
        .join('\n'),
    });
    assert.equal(imported.status, 204);
    await vm.forceFlush();
    // Prometheus scrapes the gateway's own admin port, so `up` has a series to show.
    adminPort = await freePort();
    prometheus = await startPrometheus({
      scrapeTargets: [`127.0.0.1:${adminPort}`],
      jobName: 'edge-gateway',
    });
    gateway = await startGatewayFor(
      { prometheus: prometheus.url, victoriametrics: vm.url },
      { ADMIN_LISTEN: `127.0.0.1:${adminPort}`, AUTH_FAILURE_LIMIT: '0' },
      basicAuthFile,
    );
    await until(
      'Prometheus to have scraped the gateway',
      async () => {
        const response = await fetch(`${prometheus.url}/api/v1/query?query=up`);
        const body = (await response.json()) as { data: { result: unknown[] } };
        return body.data.result.length > 0 ? true : undefined;
      },
      20_000,
      250,
    );
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    await gateway?.stop();
    await prometheus?.stop();
    await vm?.stop();
  });

  const newContext = (credentials?: { username: string; password: string }): Promise<BrowserContext> =>
    browser.newContext({
      viewport: { width: 1280, height: 720 },
      ...(credentials === undefined ? {} : { httpCredentials: credentials }),
    });

  /** Opens /graph, runs `up` and answers the rendered result rows (Debian's 2.42 serves the classic UI). */
  const queryPrometheusUi = async (page: Page, screenshot: string): Promise<string[]> => {
    const opened = await page.goto(`${gateway.url('prometheus')}/graph`);
    assert.equal(opened?.status(), 200);
    await page.locator('#expr0').fill('up');
    await page.locator('#graph_wrapper0 .execute_btn').click();
    const row = page.locator('#console0 table tbody tr', { hasText: 'job="edge-gateway"' });
    await row.first().waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, screenshot), fullPage: true });
    return page.locator('#console0 table tbody tr').allInnerTexts();
  };

  /** VictoriaMetrics' own page, then a PromQL query typed as a URL; answers the query's JSON. */
  const queryVictoriaMetrics = async (page: Page, screenshot: string): Promise<string> => {
    const home = await page.goto(`${gateway.url('victoriametrics')}/`);
    assert.equal(home?.status(), 200);
    assert.match((await page.locator('body').textContent()) ?? '', /Single-node VictoriaMetrics/);
    await page.screenshot({ path: join(ARTIFACTS, screenshot.replace('.png', '-home.png')) });
    const query = `${gateway.url('victoriametrics')}/api/v1/query?query=sum(${SERIES})&time=${importedAt / 1000}`;
    const answered = await page.goto(query);
    assert.equal(answered?.status(), 200);
    // The same query from a script in the page, as vmui makes it: the browser sends the cached
    // credentials with same-origin requests by itself.
    const fromScript = await page.evaluate(async (url) => {
      const response = await fetch(url);
      return { status: response.status, body: await response.text() };
    }, query);
    assert.equal(fromScript.status, 200);
    await page.screenshot({ path: join(ARTIFACTS, screenshot) });
    // Chromium shows a JSON answer as text in a <pre>.
    return (await page.locator('pre').first().textContent()) ?? '';
  };

  test('without credentials the browser gets the Basic challenge', async () => {
    const context = await newContext();
    try {
      for (const listener of ['prometheus', 'victoriametrics'] as const) {
        await refusedNavigation(await context.newPage(), `${gateway.url(listener)}/graph`);
      }
    } finally {
      await context.close();
    }
  });

  test('wrong credentials are refused the same way', async () => {
    const context = await newContext({ username: USER, password: `${PASSWORD}-wrong` });
    registerSecret({ kind: 'password', value: `${PASSWORD}-wrong`, user: USER });
    try {
      const before = await metric(gateway, 'gateway_auth_failures_total', {
        listener: 'prometheus',
        reason: 'invalid_password',
      });
      await refusedNavigation(await context.newPage(), `${gateway.url('prometheus')}/graph`);
      const after = await metric(gateway, 'gateway_auth_failures_total', {
        listener: 'prometheus',
        reason: 'invalid_password',
      });
      assert.ok(after > before, 'the gateway saw and refused the password');
    } finally {
      await context.close();
    }
  });

  test("basic-auth mode: a user's password logs in; `up` renders in Prometheus' UI; VictoriaMetrics answers a query", async () => {
    const context = await newContext({ username: USER, password: PASSWORD });
    try {
      const page = await context.newPage();
      const responses = recordResponses(page);
      const rows = await queryPrometheusUi(page, 'browser-prometheus-basic-auth.png');
      assert.ok(
        rows.some((row) => row.includes(`instance="127.0.0.1:${adminPort}"`) && /\t1$/.test(row.trim())),
        `rows: ${JSON.stringify(rows)}`,
      );
      // The page's scripts and its query went through the gateway with the browser's credentials.
      const apiCalls = responses.filter((response) =>
        new URL(response.url()).pathname.startsWith('/api/v1/'),
      );
      assert.ok(apiCalls.length > 0, 'the UI queried the API');
      assert.deepEqual(
        apiCalls.filter((response) => response.status() !== 200).map((r) => `${r.status()} ${r.url()}`),
        [],
      );

      const vmPage = await context.newPage();
      const answer = JSON.parse(await queryVictoriaMetrics(vmPage, 'browser-victoriametrics-basic-auth.png'));
      assert.equal(answer.status, 'success');
      assert.equal(answer.data.result[0].value[1], '42');
    } finally {
      await context.close();
    }
  });

  test("vmui: the home page's link stays on the gateway and shows what VictoriaMetrics serves there", async (t) => {
    const direct = await fetch(`${vm.url}/vmui/`);
    await direct.arrayBuffer();
    const context = await newContext({ username: USER, password: PASSWORD });
    try {
      const page = await context.newPage();
      await page.goto(`${gateway.url('victoriametrics')}/`);
      const [response] = await Promise.all([
        page.waitForNavigation(),
        page.locator('a[href="vmui"]').click(),
      ]);
      // VictoriaMetrics redirects vmui to vmui/ with a relative Location: the browser stays on the gateway.
      assert.equal(new URL(page.url()).origin, gateway.url('victoriametrics'));
      assert.equal(new URL(page.url()).pathname, '/vmui/');
      assert.equal(response?.status(), direct.status, 'the same answer as VictoriaMetrics gives directly');
      await page.screenshot({ path: join(ARTIFACTS, 'browser-vmui.png') });
      if (direct.status === 404) {
        t.diagnostic(
          "this VictoriaMetrics build has no vmui (Debian's victoria-metrics 1.79 is built without it): " +
            'VictoriaMetrics is checked in the browser through its home page and a typed query instead',
        );
      }
    } finally {
      await context.close();
    }
  });

  test('api-key mode (switched live): the API key as the password logs in to both', async () => {
    const reloads = await metric(gateway, 'gateway_config_reloads_total');
    await writeEnvFile(gateway.envFile, apiKeyFile);
    await waitForReloads(gateway, reloads + 1);

    // The user's password no longer opens anything.
    const refused = await newContext({ username: USER, password: PASSWORD });
    try {
      await refusedNavigation(await refused.newPage(), `${gateway.url('prometheus')}/graph`);
    } finally {
      await refused.close();
    }

    // Any user name: the password is the key (what a person types into the browser's prompt).
    const context = await newContext({ username: 'anyone', password: KEY });
    try {
      const page = await context.newPage();
      const rows = await queryPrometheusUi(page, 'browser-prometheus-api-key.png');
      assert.ok(
        rows.some((row) => row.includes('job="edge-gateway"')),
        `rows: ${JSON.stringify(rows)}`,
      );
      const vmPage = await context.newPage();
      const answer = JSON.parse(await queryVictoriaMetrics(vmPage, 'browser-victoriametrics-api-key.png'));
      assert.equal(answer.data.result[0].value[1], '42');
    } finally {
      await context.close();
    }
  });
});
