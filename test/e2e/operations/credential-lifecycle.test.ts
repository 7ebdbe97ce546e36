import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Agent, fetch as undiciFetch } from 'undici';
import type { RunningGateway } from '../../support/gateway.js';
import { type OtlpReceiver, startOtlpReceiver } from '../../support/otlp-receiver.js';
import { startGatewayFor } from '../fixtures.js';
import { DELETE_SPELLINGS, rawRequest } from '../scope-spellings.js';
import {
  grpcClient,
  grpcExport,
  logLinesSince,
  Metrics,
  sleep,
  until,
  waitForLogLines,
  waitForReloads,
  writeEnvFile,
} from './helpers.js';

/**
 * Issue 12 over time: expiry without a reload, re-scoping under load on open connections and
 * HTTP/2 sessions, one reload line per credential changed, and nothing refused ever reaching the
 * upstream (a recording upstream sees every request that gets through).
 */

const RUN = randomBytes(4).toString('hex');
const secret = (name: string): string => `${name}-${RUN}-${randomBytes(16).toString('base64url')}`;

interface Recorder {
  readonly url: string;
  /** `METHOD target` of every request received, in order. */
  readonly seen: string[];
  close(): Promise<void>;
}

async function startRecorder(): Promise<Recorder> {
  const seen: string[] = [];
  const server: Server = createServer((request, response) => {
    seen.push(`${request.method} ${request.url}`);
    request.resume();
    request.on('end', () => response.writeHead(200, { 'content-type': 'text/plain' }).end('recorded'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('named credentials over time (issue 12)', () => {
  let recorder: Recorder;
  let receiver: OtlpReceiver;
  let gateway: RunningGateway;
  const READER = secret('reader');
  const INGEST = secret('ingest');
  const ROTATING = secret('rotating');
  const SOON = secret('soon');
  const expiresAt = new Date(Date.now() + 6000);
  const baseEnv = (rotatingScopes: string, extra = ''): string =>
    [
      'ENVOY_AUTH_METHOD=api-key',
      'AUTH_FAILURE_LIMIT=0',
      `GATEWAY_KEY_READER=${READER}; scopes=read`,
      `GATEWAY_KEY_INGESTER=${INGEST}; scopes=ingest`,
      `GATEWAY_KEY_ROTATING=${ROTATING}; scopes=${rotatingScopes}`,
      `GATEWAY_KEY_SOON=${SOON}; scopes=read; expires=${expiresAt.toISOString()}`,
      extra,
      '',
    ].join('\n');

  before(async () => {
    recorder = await startRecorder();
    receiver = await startOtlpReceiver();
    gateway = await startGatewayFor(
      { grpc: receiver.grpcUrl, prometheus: recorder.url, victoriametrics: recorder.url },
      {},
      baseEnv('ingest+read+admin'),
    );
  });
  after(async () => {
    await gateway?.stop();
    await recorder?.close();
    await receiver?.stop();
  });

  test('no spelling of an admin path reaches the upstream for a read or ingest key; the classified path is what is forwarded', async () => {
    for (const key of [READER, INGEST]) {
      for (const listener of ['victoriametrics', 'prometheus'] as const) {
        for (const path of DELETE_SPELLINGS) {
          const answer = await rawRequest(gateway.ports[listener], 'POST', `${path}?match[]=x`, {
            'x-api-key': key,
          });
          assert.ok(answer.status === 403 || answer.status === 400, `${listener} ${path}: ${answer.status}`);
        }
      }
    }
    assert.deepEqual(recorder.seen, [], 'nothing refused reached the upstream');
    // The same kind of spelling of a read path is admitted, and forwarded as classified.
    const answer = await rawRequest(gateway.ports.prometheus, 'GET', '/api/v1/%71uery/./?query=up', {
      'x-api-key': READER,
    });
    assert.equal(answer.status, 403, 'a trailing slash makes it another path, closed by default');
    const clean = await rawRequest(gateway.ports.prometheus, 'GET', '//api/v1/%71uery?query=up', {
      'x-api-key': READER,
    });
    assert.equal(clean.status, 200);
    assert.deepEqual(recorder.seen, ['GET /api/v1/query?query=up']);
  });

  test('a credential expiring during the run stops working then, without a reload, answered like an unknown key', async () => {
    const reloadsBefore = await Metrics.scrape(gateway).then((m) =>
      m.get('gateway_config_reloads_total', {}, true),
    );
    const before = await fetch(`${gateway.url('prometheus')}/api/v1/query?query=up`, {
      headers: { 'x-api-key': SOON },
    });
    assert.equal(before.status, 200, 'works before its expiry');
    const unknown = await fetch(`${gateway.url('prometheus')}/api/v1/query?query=up`, {
      headers: { 'x-api-key': secret('never-configured') },
    });
    const offset = gateway.output().length;
    await sleep(Math.max(0, expiresAt.getTime() - Date.now()) + 100);
    const expired = await fetch(`${gateway.url('prometheus')}/api/v1/query?query=up`, {
      headers: { 'x-api-key': SOON },
    });
    assert.equal(expired.status, 401);
    assert.equal(await expired.text(), await unknown.text(), 'the same body as an unknown key');
    assert.equal(expired.headers.get('www-authenticate'), unknown.headers.get('www-authenticate'));
    const metrics = await Metrics.scrape(gateway);
    assert.equal(
      metrics.get('gateway_auth_failures_total', { listener: 'prometheus', reason: 'expired' }),
      1,
    );
    assert.equal(metrics.get('gateway_config_reloads_total', {}, true), reloadsBefore, 'no reload happened');
    assert.ok(metrics.get('gateway_credential_expiry_timestamp_seconds', { credential: 'soon' }) > 1e9);
    const [line] = await waitForLogLines(gateway, offset, (l) => l.auth_failure === 'expired');
    assert.equal(line?.path, '/api/v1/query');
  });

  test('re-scoping under load: no request is served with a scope the key no longer had; open HTTP/2 sessions follow too', async () => {
    const agent = new Agent({ connections: 4, pipelining: 1 });
    const client = grpcClient(gateway);
    try {
      assert.equal((await grpcExport(client, { 'x-api-key': ROTATING })).code, 0, 'ingest granted at first');
      recorder.seen.length = 0;
      let id = 0;
      let stop = false;
      /** id -> status, for requests to an admin path; `sentAfterChange` marks those sent once the change was seen. */
      const outcomes = new Map<number, { status: number; sentAfterChange: boolean }>();
      let changeSeen = false;
      const load = async (): Promise<void> => {
        while (!stop) {
          const mine = ++id;
          const sentAfterChange = changeSeen;
          const response = await undiciFetch(
            `${gateway.url('prometheus')}/api/v1/admin/tsdb/snapshot?id=${mine}`,
            {
              method: 'POST',
              headers: { 'x-api-key': ROTATING },
              dispatcher: agent,
            },
          );
          await response.arrayBuffer();
          outcomes.set(mine, { status: response.status, sentAfterChange });
        }
      };
      const workers = [load(), load(), load(), load()];
      await until(
        'some admin requests served',
        async () => (recorder.seen.length >= 20 ? true : undefined),
        10_000,
      );
      const offset = gateway.output().length;
      await writeEnvFile(gateway.envFile, baseEnv('read'));
      // The change is seen once /config_dump shows it: everything sent after that must be refused.
      await until(
        'the new scopes in force',
        async () => {
          const dump = (await (await fetch(`${gateway.url('admin')}/config_dump`)).json()) as {
            auth: { credentials: Array<{ name: string; scopes: string }> };
          };
          return dump.auth.credentials.find((c) => c.name === 'rotating')?.scopes === 'read'
            ? true
            : undefined;
        },
        5000,
      );
      changeSeen = true;
      const reScoped = await waitForLogLines(gateway, offset, (l) => l.credential === 'rotating');
      assert.equal(reScoped[0]?.change, 're-scoped');
      assert.equal(reScoped[0]?.msg, 'credential rotating re-scoped');
      await sleep(500);
      stop = true;
      await Promise.all(workers);

      const after = [...outcomes.entries()].filter(([, outcome]) => outcome.sentAfterChange);
      assert.ok(after.length >= 5, `load went on after the change (${after.length} requests)`);
      assert.deepEqual(
        after.filter(([, outcome]) => outcome.status !== 403).map(([n, o]) => `${n}: ${o.status}`),
        [],
        'every request sent after the change was refused',
      );
      const forwardedIds = new Set(recorder.seen.map((line) => Number(/id=(\d+)/.exec(line)?.[1])));
      assert.deepEqual(
        after.filter(([n]) => forwardedIds.has(n)).map(([n]) => n),
        [],
        'none of them reached the upstream',
      );
      assert.ok(
        [...outcomes.values()].every((outcome) => outcome.status === 200 || outcome.status === 403),
        'only 200 or 403, never a failure',
      );
      // The open HTTP/2 session follows the change on its next call.
      assert.deepEqual(await grpcExport(client, { 'x-api-key': ROTATING }), {
        code: 7,
        details: 'credential lacks scope "ingest"',
      });
    } finally {
      client.close();
      await agent.close();
    }
  });

  test('a reload logs one line per credential added, removed, rotated or re-scoped, by name, without secrets', async () => {
    const offset = gateway.output().length;
    const reloads = await Metrics.scrape(gateway).then((m) =>
      m.get('gateway_config_reloads_total', {}, true),
    );
    const NEW_READER = secret('reader-rotated');
    const text = [
      'ENVOY_AUTH_METHOD=api-key',
      'AUTH_FAILURE_LIMIT=0',
      `GATEWAY_KEY_READER=${NEW_READER}; scopes=read`,
      `GATEWAY_KEY_INGESTER=${INGEST}; scopes=ingest; expires=2099-01-01`,
      `GATEWAY_KEY_FRESH=${secret('fresh')}; scopes=admin`,
      `GATEWAY_KEY_SOON=${SOON}; scopes=read; expires=${expiresAt.toISOString()}`,
      '',
    ].join('\n');
    await writeEnvFile(gateway.envFile, text);
    await waitForReloads(gateway, reloads + 1);
    const lines = await waitForLogLines(gateway, offset, (l) => typeof l.credential === 'string', 4);
    assert.deepEqual(lines.map((l) => l.msg).sort(), [
      'credential fresh added',
      'credential ingester re-scoped',
      'credential reader rotated',
      'credential rotating removed',
    ]);
    const printed = gateway.output().slice(offset);
    for (const leaked of [NEW_READER, READER, ROTATING, INGEST]) assert.ok(!printed.includes(leaked));
    // The rotated key works, the old one no longer does.
    const fresh = await fetch(`${gateway.url('prometheus')}/api/v1/query?query=up`, {
      headers: { 'x-api-key': NEW_READER },
    });
    assert.equal(fresh.status, 200);
    const old = await fetch(`${gateway.url('prometheus')}/api/v1/query?query=up`, {
      headers: { 'x-api-key': READER },
    });
    assert.equal(old.status, 401);
    assert.equal(logLinesSince(gateway, offset).filter((l) => l.msg === 'configuration reloaded').length, 1);
  });
});

describe('GET /credentials with WORKERS=2 sums the workers (issue 12)', () => {
  let recorder: Recorder;
  let gateway: RunningGateway;
  const KEY = secret('cluster');

  before(async () => {
    recorder = await startRecorder();
    gateway = await startGatewayFor(
      { victoriametrics: recorder.url },
      { WORKERS: '2', ENVOY_AUTH_METHOD: 'api-key' },
      `GATEWAY_KEY_CLUSTERED=${KEY}; scopes=read\n`,
    );
  });
  after(async () => {
    await gateway?.stop();
    await recorder?.close();
  });

  test('requests over many connections, spread over both workers, all counted', async () => {
    const total = 40;
    for (let i = 0; i < total; i++) {
      // A new connection each time, so the kernel spreads them over the workers.
      const answer = await rawRequest(gateway.ports.victoriametrics, 'GET', `/api/v1/query?query=up&i=${i}`, {
        'x-api-key': KEY,
        connection: 'close',
      });
      assert.equal(answer.status, 200);
    }
    assert.equal(recorder.seen.length, total);
    const report = (await (await fetch(`${gateway.url('admin')}/credentials`)).json()) as {
      credentials: Array<{ name: string; requests: Record<string, number>; last_used: string | null }>;
    };
    const clustered = report.credentials.find((c) => c.name === 'clustered');
    assert.deepEqual(clustered?.requests, { victoriametrics: total });
    assert.ok(clustered?.last_used !== null);
  });
});
