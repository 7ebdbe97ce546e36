import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcrypt';
import { Pool } from 'undici';
import { startGatewayFor } from '../e2e/fixtures.js';
import type { RunningGateway } from '../support/gateway.js';
import { type CountingUpstream, gatewayPid, metricSum, startCountingUpstream } from './support.js';

/**
 * A flood of wrong passwords for a bcrypt user must not pin the CPU: bcrypt runs on a bounded
 * number of threads, within a CPU budget (0.2 of one CPU on average), with a short queue beyond
 * which a guess gets 503 at once. An honest API-key client therefore keeps at least 80 % of its
 * throughput: the flood may take at most 20 % of the machine.
 *
 * Both are measured by counting, never by comparing timings: the CPU the flood costs the
 * gateway is counted in the kernel's CPU ticks of the gateway process (which do not depend on
 * what else the machine runs, unlike wall-clock throughput on a shared 2-core machine), and the
 * honest client's requests during the flood are counted: every one must succeed. The
 * brute-force limit is off so that only the bcrypt bound is under test (the limit would stop a
 * single-address attacker after 20 guesses anyway).
 */

const KEY = 'hostile-bcrypt-key-5a0d';
const USER = 'victim';
const PASSWORD = 'the-real-password';
/** The cost `edge-gateway hash-password` uses by default: about 0.25 s of one core per check. */
const COST = 12;
/**
 * Guesses per second: over ten times what bcrypt at cost 12 can check on one core, so bcrypt is
 * saturated the whole time, yet few enough that answering them is a small load of its own: the
 * flood tests bcrypt, not plain request handling.
 */
const ATTACK_RATE = 50;
const HONEST_REQUESTS = 300;
const HONEST_CONCURRENCY = 4;

let upstream: CountingUpstream;
let gateway: RunningGateway;

before(async () => {
  upstream = await startCountingUpstream();
  const hash = await bcrypt.hash(PASSWORD, COST);
  gateway = await startGatewayFor(
    { http: upstream.url },
    {
      ENVOY_AUTH_METHOD: 'any',
      ENVOY_API_KEYS: KEY,
      ENVOY_BASIC_AUTH_CREDENTIALS: `${USER}:${hash}`,
      AUTH_FAILURE_LIMIT: '0',
      ACCESS_LOG: 'off',
    },
  );
});

after(async () => {
  await gateway?.stop();
  await upstream?.stop();
});

/** CPU time the process has used, all threads, in milliseconds (utime + stime from /proc). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

interface Flood {
  readonly statuses: Map<number, number>;
  stop(): Promise<void>;
}

/** Wrong passwords for the bcrypt user at ATTACK_RATE per second, each one new (no cache, no dedupe). */
function startFlood(pool: Pool): Flood {
  const statuses = new Map<number, number>();
  let running = true;
  let sent = 0;
  const inFlight = new Set<Promise<void>>();
  const startedAt = Date.now();
  const tick = setInterval(() => {
    const due = Math.floor(((Date.now() - startedAt) / 1000) * ATTACK_RATE) - sent;
    for (let i = 0; i < due && running && inFlight.size < 64; i++) {
      sent++;
      // Built here rather than with basic(): a guess is no secret worth recording.
      const credential = Buffer.from(`${USER}:guess-${sent}-${Math.random()}`).toString('base64');
      const attempt = pool
        .request({
          path: '/api/v1/query',
          method: 'GET',
          headers: { authorization: `Basic ${credential}` },
          headersTimeout: 30_000,
        })
        .then(
          async (response) => {
            await response.body.text();
            statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
          },
          () => {
            statuses.set(0, (statuses.get(0) ?? 0) + 1);
          },
        )
        .finally(() => inFlight.delete(attempt));
      inFlight.add(attempt);
    }
  }, 10);
  return {
    statuses,
    async stop() {
      running = false;
      clearInterval(tick);
      await Promise.all(inFlight);
    },
  };
}

/** `count` honest requests, HONEST_CONCURRENCY at a time; answers their statuses. */
async function honestRequests(pool: Pool, count: number): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      const response = await pool.request({
        path: '/api/v1/query?query=up',
        method: 'GET',
        headers: { 'x-api-key': KEY },
        headersTimeout: 10_000,
      });
      await response.body.text();
      statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: HONEST_CONCURRENCY }, worker));
  return statuses;
}

const show = (statuses: Map<number, number>): string => JSON.stringify(Object.fromEntries(statuses));

describe('bcrypt flood', () => {
  test('a flood of wrong bcrypt passwords takes at most 20 % of the machine, counted in CPU ticks', async (t) => {
    const attacker = new Pool(gateway.url('http'), {
      connections: 64,
      localAddress: '127.0.0.9',
    });
    const pid = gatewayPid(gateway);
    const missesBefore = await metricSum(gateway, 'gateway_bcrypt_cache_misses_total');
    const flood = startFlood(attacker);
    let used = 0;
    const windowMs = 4000;
    try {
      // The first seconds may spend the budget's burst; the bound is on the sustained flood.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const cpuBefore = cpuMs(pid);
      const startedAt = performance.now();
      await new Promise((resolve) => setTimeout(resolve, windowMs));
      used = cpuMs(pid) - cpuBefore;
      const elapsed = performance.now() - startedAt;
      const share = used / (elapsed * availableParallelism());
      t.diagnostic(
        `the flood cost the gateway ${used} ms of CPU in ${elapsed.toFixed(0)} ms on ${availableParallelism()} CPUs: ${(share * 100).toFixed(1)} % of the machine`,
      );
      assert.ok(share <= 0.2, `the flood took ${(share * 100).toFixed(1)} % of the machine`);
    } finally {
      await flood.stop();
      await attacker.close();
    }
    const misses = (await metricSum(gateway, 'gateway_bcrypt_cache_misses_total')) - missesBefore;
    assert.ok(misses > 100, `the flood barely happened: ${misses} guesses`);
    assert.ok((flood.statuses.get(401) ?? 0) > 0, `bcrypt never ran: ${show(flood.statuses)}`);
    assert.ok((flood.statuses.get(503) ?? 0) > 0, `bcrypt was never full: ${show(flood.statuses)}`);
    assert.equal(flood.statuses.get(200) ?? 0, 0, `a guess got in: ${show(flood.statuses)}`);
  });

  test(`during the flood, ${HONEST_REQUESTS} honest API-key requests all succeed`, async (t) => {
    const honest = new Pool(gateway.url('http'), {
      connections: HONEST_CONCURRENCY,
      localAddress: '127.0.0.8',
    });
    const attacker = new Pool(gateway.url('http'), {
      connections: 64,
      localAddress: '127.0.0.9',
    });
    const flood = startFlood(attacker);
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const startedAt = performance.now();
      const statuses = await honestRequests(honest, HONEST_REQUESTS);
      t.diagnostic(
        `honest: ${show(statuses)} in ${(performance.now() - startedAt).toFixed(0)} ms; flood so far: ${show(flood.statuses)}`,
      );
      assert.deepEqual(Object.fromEntries(statuses), { 200: HONEST_REQUESTS });
      assert.ok(
        (flood.statuses.get(401) ?? 0) + (flood.statuses.get(503) ?? 0) > 0,
        'the flood never got an answer',
      );
    } finally {
      await flood.stop();
      await honest.close();
      await attacker.close();
    }
  });
});
