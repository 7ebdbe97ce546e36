import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { GATEWAY_OUTPUT_LOG, startGateway } from './gateway.js';
import { exportSpans } from './otel-client.js';
import { startOtlpReceiver } from './otlp-receiver.js';
import { freePort } from './ports.js';

test('startGateway runs the built gateway on free loopback ports until stopped', async () => {
  const receiver = await startOtlpReceiver();
  const gateway = await startGateway({
    env: {
      ENVOY_API_KEYS: 'support-selftest-key',
      OTLP_GRPC_UPSTREAM: receiver.grpcUrl,
      OTLP_HTTP_UPSTREAM: receiver.httpUrl,
    },
  });
  try {
    const ports = Object.values(gateway.ports);
    assert.equal(new Set(ports).size, 5, `distinct ports ${ports}`);
    for (const port of ports) assert.ok(![4317, 4318, 9090, 8428, 9901].includes(port));
    assert.equal(gateway.url('admin'), `http://127.0.0.1:${gateway.ports.admin}`);
    assert.equal(existsSync(gateway.envFile), false, 'no env file unless envFileText is given');

    const ready = await fetch(`${gateway.url('admin')}/ready`);
    assert.equal(ready.status, 200);

    const result = await exportSpans({
      transport: 'grpc',
      url: gateway.url('grpc'),
      headers: { 'x-api-key': 'support-selftest-key' },
      spans: [{ name: 'through the gateway' }],
    });
    assert.equal(result.code, 0, result.error?.message);
    const [span] = await receiver.waitForSpans(1);
    assert.equal(span?.name, 'through the gateway');
  } finally {
    const status = await gateway.stop();
    await receiver.stop();
    assert.deepEqual(status, { code: 0, signal: null }, gateway.output());
  }
  assert.ok(gateway.output().length > 0, 'output captured');
  assert.ok(
    readFileSync(GATEWAY_OUTPUT_LOG, 'utf8').includes(gateway.output()),
    'output appended to the log',
  );
});

test('startGateway writes envFileText, whose listen addresses win over env like in the gateway', async () => {
  const adminPort = await freePort();
  const gateway = await startGateway({
    env: { ADMIN_LISTEN: '127.0.0.1:1' },
    envFileText: `ADMIN_LISTEN=127.0.0.1:${adminPort}\nENVOY_API_KEYS=from-the-file\n`,
  });
  try {
    assert.equal(gateway.ports.admin, adminPort);
    assert.match(readFileSync(gateway.envFile, 'utf8'), /from-the-file/);
  } finally {
    await gateway.stop();
  }
});

test('a gateway that cannot start is reported with its output', async () => {
  await assert.rejects(
    startGateway({ env: { ENVOY_AUTH_METHOD: 'no-such-method' } }),
    /the gateway exited during start-up \(code \d+\).*ENVOY_AUTH_METHOD/s,
  );
  const gateway = await startGateway({ env: { ENVOY_AUTH_METHOD: 'no-such-method' }, waitForReady: false });
  const status = await gateway.exited;
  assert.notEqual(status.code, 0);
  await gateway.stop();
});
