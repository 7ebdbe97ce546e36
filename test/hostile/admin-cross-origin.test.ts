import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { startGatewayFor } from '../e2e/fixtures.js';
import type { RunningGateway } from '../support/gateway.js';

/**
 * Issue 10 §6: any web page open in the operator's browser could POST /healthcheck/fail or
 * /reload to 127.0.0.1:9901 (a form needs no CORS), directly or through DNS rebinding. Such
 * requests carry an Origin, or a Host that is not the admin address: both are refused.
 */

let gateway: RunningGateway;

before(async () => {
  gateway = await startGatewayFor({}, { ENVOY_API_KEYS: 'admin-origin-key-1f0d' });
});

after(async () => {
  await gateway?.stop();
});

function admin(method: string, path: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gateway.ports.admin, method, path, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

const f = (
  name: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  want: number,
): void => {
  test(`${name}: ${want}`, async () => {
    assert.equal(await admin(method, path, headers), want);
  });
};

f(
  'POST /healthcheck/fail with an Origin',
  'POST',
  '/healthcheck/fail',
  { origin: 'http://evil.example' },
  403,
);
f('POST /reload with an Origin', 'POST', '/reload', { origin: 'null' }, 403);
f(
  'POST /healthcheck/fail with a rebinding Host',
  'POST',
  '/healthcheck/fail',
  { host: 'evil.example:9901' },
  403,
);
f(
  'POST /healthcheck/ok with a Host on another port',
  'POST',
  '/healthcheck/ok',
  { host: '127.0.0.1:1' },
  403,
);

test('after the refusals the gateway is still ready; curl-style requests work', async () => {
  assert.equal(await admin('GET', '/ready', {}), 200);
  const host = { host: `127.0.0.1:${gateway.ports.admin}` };
  assert.equal(await admin('POST', '/healthcheck/fail', host), 200);
  assert.equal(await admin('GET', '/ready', {}), 503);
  assert.equal(await admin('POST', '/healthcheck/ok', { host: `localhost:${gateway.ports.admin}` }), 200);
  assert.equal(await admin('GET', '/ready', { origin: 'http://evil.example' }), 200);
});
