import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import bcrypt from 'bcrypt';
import { basic, startGatewayFor } from '../e2e/fixtures.js';
import type { RunningGateway } from '../support/gateway.js';
import { type CountingUpstream, metricSum, startCountingUpstream } from './support.js';

/**
 * Issue 10 §6: a wrong password for a bcrypt user took about 58 ms and an unknown user about
 * 1.4 ms, and only bcrypt users ever got the 503 of a full bcrypt queue: both told an attacker
 * which user names exist. A name that is no user now costs a bcrypt check through the same
 * queue (counted by gateway_bcrypt_cache_misses_total, not by a clock), so it gets the same
 * answers in the same time.
 */

const PASSWORD = 'enumeration-password-77b1';

async function status(gateway: RunningGateway, user: string, password: string): Promise<number> {
  const response = await fetch(`${gateway.url('http')}/v1/traces`, {
    headers: { authorization: basic(user, password) },
  });
  await response.arrayBuffer();
  return response.status;
}

const CHECKS = 2;

for (const method of ['basic-auth', 'any'] as const) {
  describe(`user enumeration (${method})`, () => {
    let upstream: CountingUpstream;
    let gateway: RunningGateway;

    after(async () => {
      await gateway?.stop();
      await upstream?.stop();
    });

    test('an unknown user runs bcrypt as a known user with a wrong password does', async () => {
      upstream = await startCountingUpstream();
      const hash = await bcrypt.hash(PASSWORD, 10);
      gateway = await startGatewayFor(
        { http: upstream.url },
        {
          ENVOY_AUTH_METHOD: method,
          ENVOY_API_KEYS: 'enumeration-key-unused-a4c9',
          ENVOY_BASIC_AUTH_CREDENTIALS: `alice:${hash}`,
          AUTH_FAILURE_LIMIT: '0',
        },
      );
      const misses = (): Promise<number> => metricSum(gateway, 'gateway_bcrypt_cache_misses_total');
      const start = await misses();
      // Two of each: five cost-10 checks (100-150 ms each on this machine) stay inside a
      // process's bcrypt burst budget (1 s); eleven, and at times seven, spent it (503, not 401).
      for (let i = 0; i < CHECKS; i++) assert.equal(await status(gateway, 'alice', `wrong-${i}`), 401);
      const known = (await misses()) - start;
      for (let i = 0; i < CHECKS; i++) assert.equal(await status(gateway, `nobody-${i}`, `wrong-${i}`), 401);
      const unknown = (await misses()) - start - known;
      assert.equal(known, CHECKS);
      assert.equal(unknown, CHECKS, 'unknown users did not run bcrypt');
      assert.equal(await status(gateway, 'alice', PASSWORD), 200);
    });

    test('a flood of unknown users meets the full bcrypt queue (503) as known users do', async () => {
      const statuses = await Promise.all(
        Array.from({ length: 80 }, (_, i) => status(gateway, `nobody-${i}`, `guess-${i}`)),
      );
      assert.ok(statuses.includes(503), `statuses: ${[...new Set(statuses)].join(',')}`);
      assert.ok(statuses.every((code) => code === 401 || code === 503));
    });
  });
}
