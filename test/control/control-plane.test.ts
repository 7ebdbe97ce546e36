import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { loadGatewayConfig } from '../../src/config/load.js';
import { ControlPlane } from '../../src/control/control-plane.js';
import { LocalDataPlane } from '../../src/data-plane/local.js';
import { freePort } from '../support/ports.js';

/**
 * The control plane in this process over a real local data plane: one OTLP/HTTP listener on a
 * free loopback port in front of a loopback upstream, the admin port beside it.
 */

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

interface Running {
  readonly control: ControlPlane;
  readonly envFile: string;
  readonly admin: string;
  readonly data: string;
  readonly lines: LogLine[];
}

const dir = mkdtempSync(join(tmpdir(), 'control-plane-test-'));
let upstream: Server;
let upstreamUrl: string;

before(async () => {
  upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('{}'));
  });
  await new Promise<void>((resolve) => upstream.listen({ host: '127.0.0.1', port: 0 }, resolve));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});
after(async () => {
  await new Promise((resolve) => upstream.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

async function startControlPlane(envText: string): Promise<Running> {
  const envFile = join(dir, `env-${Math.random().toString(36).slice(2)}`);
  writeFileSync(envFile, envText);
  const [adminPort, dataPort] = [await freePort(), await freePort()];
  const processEnv = {
    GATEWAY_ENV_FILE: envFile,
    WORKERS: '1',
    ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
    OTLP_HTTP_LISTEN: `127.0.0.1:${dataPort}`,
    OTLP_HTTP_UPSTREAM: upstreamUrl,
    OTLP_GRPC_UPSTREAM: 'off',
    PROMETHEUS_UPSTREAM: 'off',
    VICTORIAMETRICS_UPSTREAM: 'off',
  };
  const loaded = loadGatewayConfig(processEnv);
  assert.ok(loaded.ok, JSON.stringify(loaded));
  const lines: LogLine[] = [];
  const logger = pino(
    { level: loaded.config.logLevel },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line));
        done();
      },
    }),
  );
  const control = new ControlPlane({
    initial: loaded,
    processEnv,
    dataPlane: new LocalDataPlane(loaded.config, logger),
    logger,
  });
  await control.start();
  return {
    control,
    envFile,
    admin: `http://127.0.0.1:${adminPort}`,
    data: `http://127.0.0.1:${dataPort}`,
    lines,
  };
}

async function postTraces(running: Running, key: string): Promise<number> {
  const response = await fetch(`${running.data}/v1/traces`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    body: '{"resourceSpans":[]}',
  });
  await response.arrayBuffer();
  return response.status;
}

async function metric(running: Running, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${running.admin}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

async function configDump(running: Running): Promise<Record<string, unknown>> {
  return (await (await fetch(`${running.admin}/config_dump`)).json()) as Record<string, unknown>;
}

const messages = (running: Running, msg: string): LogLine[] =>
  running.lines.filter((line) => line.msg === msg);

describe('ControlPlane over a local data plane', () => {
  let running: Running;
  before(async () => {
    running = await startControlPlane('ENVOY_API_KEYS=control-test-key-1\n');
  });
  after(async () => {
    await running.control.stop();
  });

  test('start: admin answers for both planes, and start-up is reported', async () => {
    const ready = await fetch(`${running.admin}/ready`);
    assert.equal(ready.status, 200);
    assert.equal(await ready.text(), 'LIVE');
    assert.equal(await metric(running, 'gateway_ready'), 1);
    assert.equal(await metric(running, 'gateway_workers'), 1);
    assert.equal(await metric(running, 'gateway_config_last_reload_successful'), 1);
    // The data plane's own metrics come with the control plane's.
    assert.notEqual(await metric(running, 'gateway_bcrypt_cache_hits_total'), undefined);
    assert.equal(await postTraces(running, 'control-test-key-1'), 200);
    assert.deepEqual(
      [
        'admin listening',
        'listener ready',
        'authentication configured',
        'edge-gateway started; edits to the env file apply live',
      ].map((msg) => messages(running, msg).length),
      [1, 1, 1, 1],
    );
    assert.equal(messages(running, 'listener off (upstream set to off)').length, 3);
    const [started] = messages(running, 'edge-gateway started; edits to the env file apply live');
    assert.equal(started?.workers, 1);
    assert.equal(started?.api_keys, 1);
    assert.ok(!JSON.stringify(await configDump(running)).includes('control-test-key-1'), 'redacted');
  });

  test('a good edit reaches the listener; the reload is counted and logged', async () => {
    const successes = (await metric(running, 'gateway_config_reloads_total')) ?? 0;
    writeFileSync(running.envFile, 'ENVOY_API_KEYS=control-test-key-2\n');
    const result = await running.control.reload('admin');
    assert.equal(result.ok, true);
    assert.equal(await postTraces(running, 'control-test-key-2'), 200);
    assert.equal(await postTraces(running, 'control-test-key-1'), 401);
    assert.ok(((await metric(running, 'gateway_config_reloads_total')) ?? 0) > successes);
    assert.ok(messages(running, 'configuration reloaded').length > 0);
  });

  test('an invalid edit keeps the running configuration in force', async () => {
    const before = await configDump(running);
    writeFileSync(running.envFile, 'ENVOY_API_KEYS=control-test-key-3\nENVOY_AUTH_METHOD=no-such-method\n');
    const result = await running.control.reload('admin');
    assert.equal(result.ok, false);
    assert.equal(await postTraces(running, 'control-test-key-2'), 200);
    assert.equal(await postTraces(running, 'control-test-key-3'), 401);
    assert.deepEqual(await configDump(running), before);
    assert.equal(await metric(running, 'gateway_config_last_reload_successful'), 0);
    assert.ok(
      messages(running, 'configuration reload rejected; the running configuration stays in force').length > 0,
    );
  });

  test('a restart-only change is named and not applied: /config_dump shows what runs', async () => {
    const before = await configDump(running);
    writeFileSync(
      running.envFile,
      'ENVOY_API_KEYS=control-test-key-2\nOTLP_HTTP_UPSTREAM=http://127.0.0.1:9\nDRAIN_TIMEOUT=3s\n',
    );
    const result = await running.control.reload('admin');
    assert.deepEqual(result.ok && result.restartNeeded, ['OTLP_HTTP_UPSTREAM']);
    assert.equal(await postTraces(running, 'control-test-key-2'), 200, 'still the running upstream');
    assert.deepEqual((await configDump(running)).listeners, before.listeners);
    assert.equal(running.control.drainTimeoutMs, 3000, 'a live setting is in force at once');
  });

  test('/healthcheck/fail and /healthcheck/ok switch /ready', async () => {
    assert.equal((await fetch(`${running.admin}/healthcheck/fail`, { method: 'POST' })).status, 200);
    assert.equal((await fetch(`${running.admin}/ready`)).status, 503);
    assert.equal(await metric(running, 'gateway_ready'), 0);
    assert.equal((await fetch(`${running.admin}/healthcheck/ok`, { method: 'POST' })).status, 200);
    assert.equal((await fetch(`${running.admin}/ready`)).status, 200);
    assert.equal(messages(running, 'health check failed by operator').length, 1);
  });
});

test('ControlPlane: the placeholder-key warning at start-up and at every reload while it works', async () => {
  const running = await startControlPlane('ENVOY_AUTH_METHOD=api-key\n');
  try {
    const warnings = (): number =>
      running.lines.filter((line) => /PLACEHOLDER API KEY/.test(line.msg)).length;
    assert.equal(warnings(), 1);
    assert.equal(await metric(running, 'gateway_placeholder_key_in_use'), 1);
    assert.equal((await running.control.reload('admin')).ok, true);
    assert.equal(warnings(), 2);
  } finally {
    await running.control.stop();
  }
});

test('ControlPlane: stop drains the data plane, then closes the admin port', async () => {
  const running = await startControlPlane('ENVOY_API_KEYS=control-test-key-4\n');
  await running.control.stop();
  assert.equal(running.control.ready, false);
  await assert.rejects(fetch(`${running.admin}/ready`));
  await assert.rejects(postTraces(running, 'control-test-key-4'));
  // A second stop (SIGTERM then SIGINT) is a no-op.
  await running.control.stop();
});
