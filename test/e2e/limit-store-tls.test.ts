import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requireCommand } from '../hostile/support.js';
import type { RunningGateway } from '../support/gateway.js';
import { type OtlpReceiver, startOtlpReceiver } from '../support/otlp-receiver.js';
import { type RunningRedis, startRedis } from '../support/redis.js';
import { until } from '../support/wait.js';
import { metricValue, postOnFreshConnection, startGatewayFor } from './fixtures.js';

/*
 * Issue 14: LIMIT_STORE=rediss:// against a redis-server that speaks TLS only, with a
 * self-signed certificate the gateway trusts through NODE_EXTRA_CA_CERTS (as an operator trusts
 * a private CA). The certificate's address is checked: no SNI is sent for an IP address.
 */

const KEY = 'limit-store-tls-key-5b1d';

describe('LIMIT_STORE=rediss:// (issue 14)', () => {
  let dir: string;
  let redis: RunningRedis;
  let receiver: OtlpReceiver;
  let gateway: RunningGateway;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'edge-gateway-redis-tls-'));
    const certFile = join(dir, 'redis.cert.pem');
    const keyFile = join(dir, 'redis.key.pem');
    execFileSync(
      requireCommand('openssl', 'openssl'),
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=redis'],
        ...['-addext', 'subjectAltName=IP:127.0.0.1'],
      ],
      { stdio: 'pipe' },
    );
    redis = await startRedis({ tls: { certFile, keyFile } });
    receiver = await startOtlpReceiver();
    gateway = await startGatewayFor(
      { http: receiver.httpUrl },
      { LIMIT_STORE: redis.url, NODE_EXTRA_CA_CERTS: certFile },
      `GATEWAY_KEY_TLS=${KEY}; scopes=ingest; rate=3/min; burst=3\n`,
    );
  });
  after(async () => {
    await gateway?.stop();
    await receiver?.stop();
    await redis?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test('the gateway reaches Redis over TLS and takes its budget from it', async () => {
    assert.match(redis.url, /^rediss:/);
    await until(
      'connected over TLS',
      async () => (await metricValue(gateway, 'gateway_limit_store_up')) === 1,
    );
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push(await postOnFreshConnection(gateway, KEY));
    assert.ok(statuses.filter((status) => status === 200).length <= 3 + 1, statuses.join(' '));
    assert.equal(statuses.at(-1), 429);
    assert.equal(
      await metricValue(gateway, 'gateway_limit_store_up'),
      1,
      'still up: the leases came over TLS',
    );
    assert.doesNotMatch(gateway.output(), /LIMIT_STORE does not answer|ServerName/);
  });
});
