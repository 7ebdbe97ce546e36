import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { type RunningGateway, startGateway } from '../support/gateway.js';
import {
  type CountingUpstream,
  eventually,
  metricSum,
  requireCommand,
  startCountingUpstream,
} from './support.js';

/**
 * Issue 10 §5: with an open-file limit of 1024, 1,100 idle unauthenticated connections made honest
 * clients get resets and the env-file reloader fail with EMFILE. Now every port takes only what
 * the limit leaves after a reserve (the admin port, the reloader), a full port closes its oldest
 * connection that never sent a request to take a new one, and one address holds at most
 * MAX_CONNECTIONS_PER_CLIENT connections per port.
 */

const OLD_KEY = 'hostile-fd-key-old-3d81';
const NEW_KEY = 'hostile-fd-key-new-90ce';
const PER_CLIENT = 100;
let upstream: CountingUpstream;
let gateway: RunningGateway;
const sockets: Socket[] = [];

before(async () => {
  const prlimit = requireCommand('prlimit', 'util-linux');
  upstream = await startCountingUpstream();
  gateway = await startGateway({
    wrapper: [prlimit, '--nofile=1024:1024'],
    env: {
      OTLP_GRPC_UPSTREAM: 'off',
      OTLP_HTTP_UPSTREAM: upstream.url,
      PROMETHEUS_UPSTREAM: 'off',
      VICTORIAMETRICS_UPSTREAM: 'off',
      MAX_CONNECTIONS_PER_CLIENT: String(PER_CLIENT),
      // Idle connections stay until the test ends: only the caps may close them.
      CLIENT_HEADER_TIMEOUT: '120s',
      AUTH_FAILURE_LIMIT: '0',
    },
    envFileText: `ENVOY_API_KEYS=${OLD_KEY}\n`,
  });
});

after(async () => {
  for (const socket of sockets) socket.destroy();
  await gateway?.stop();
  await upstream?.stop();
});

function idleConnection(port: number, from: string): Promise<Socket> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: from });
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve(socket));
    socket.once('close', () => resolve(socket));
    sockets.push(socket);
  });
}

async function status(key: string): Promise<number> {
  const response = await fetch(`${gateway.url('http')}/v1/traces`, { headers: { 'x-api-key': key } });
  await response.arrayBuffer();
  return response.status;
}

test('1,100 idle connections under a 1024 open-file limit: honest clients, the admin port and reloads keep working', async () => {
  for (let address = 0; address < 11; address++) {
    const from = `127.0.0.${100 + address}`;
    await Promise.all(Array.from({ length: PER_CLIENT }, () => idleConnection(gateway.ports.http, from)));
  }
  assert.equal(await status(OLD_KEY), 200);
  assert.equal((await fetch(`${gateway.url('admin')}/ready`)).status, 200);
  assert.ok((await metricSum(gateway, 'gateway_connection_limit_reached_total', { limit: 'total' })) > 0);

  await writeFile(gateway.envFile, `ENVOY_API_KEYS=${NEW_KEY}\n`);
  await eventually(
    async () => (await status(NEW_KEY)) === 200,
    10_000,
    () => 'the new key never worked',
  );
  assert.equal(await status(OLD_KEY), 401);
  assert.doesNotMatch(gateway.output(), /EMFILE/);
});

test('one address gets MAX_CONNECTIONS_PER_CLIENT connections per port, and no more', async () => {
  const before = await metricSum(gateway, 'gateway_connection_limit_reached_total', { limit: 'per_client' });
  const mine = await Promise.all(
    Array.from({ length: PER_CLIENT + 20 }, () => idleConnection(gateway.ports.http, '127.0.0.120')),
  );
  await eventually(
    () => mine.filter((socket) => socket.destroyed || socket.readableEnded).length >= 20,
    5000,
    () => `${mine.filter((socket) => socket.destroyed).length} of ${mine.length} closed`,
  );
  assert.equal(
    (await metricSum(gateway, 'gateway_connection_limit_reached_total', { limit: 'per_client' })) - before,
    20,
  );
});
