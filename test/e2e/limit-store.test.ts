import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../cli/run-cli.js';
import type { RunningGateway } from '../support/gateway.js';
import { type OtlpReceiver, startOtlpReceiver } from '../support/otlp-receiver.js';
import { type RunningRedis, startRedis } from '../support/redis.js';
import { registerSecret } from '../support/secrets.js';
import { until } from '../support/wait.js';
import { metricValue, postOnFreshConnection, startGatewayFor } from './fixtures.js';

/*
 * Issue 14, LIMIT_STORE=redis against a real redis-server and real gateway processes: two
 * replicas (and two workers) on one Redis are held to one budget and one auth-failure count;
 * Redis killed and restarted in the middle of a run; its password never shown. The counts are
 * bounded, never the timings.
 */

const RUN = randomBytes(4).toString('hex');
const secret = (name: string): string => `${name}-${RUN}-${randomBytes(16).toString('base64url')}`;
const REDIS_PASSWORD = `redis-${RUN}-${randomBytes(12).toString('base64url')}`;
const LIMITED_KEY = secret('limited');
const HONEST_KEY = secret('honest');
const WRONG_KEY = secret('wrong');
registerSecret({ kind: 'api-key', value: WRONG_KEY });

// 10 a minute, burst 10: a lease is 1 request; nothing noticeable refills during a test.
const envFile = [
  `GATEWAY_KEY_LIMITED=${LIMITED_KEY}; scopes=ingest; rate=10/min; burst=10`,
  `GATEWAY_KEY_HONEST=${HONEST_KEY}; scopes=ingest; rate=100000/s`,
  '',
].join('\n');

/** How many of `count` requests, sent in turn to each gateway, were answered `status`. */
async function alternate(
  gateways: readonly RunningGateway[],
  key: string,
  count: number,
  status: number,
): Promise<{ matched: number; statuses: number[] }> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++)
    statuses.push(await postOnFreshConnection(gateways[i % gateways.length] as RunningGateway, key));
  return { matched: statuses.filter((code) => code === status).length, statuses };
}

const storeUp = (gateway: RunningGateway): Promise<number> => metricValue(gateway, 'gateway_limit_store_up');

describe('LIMIT_STORE=redis with real gateway processes (issue 14)', () => {
  let receiver: OtlpReceiver;
  let redis: RunningRedis;
  let replicas: RunningGateway[] = [];

  before(async () => {
    receiver = await startOtlpReceiver();
    redis = await startRedis({ password: REDIS_PASSWORD });
    const env = {
      LIMIT_STORE: redis.url,
      AUTH_FAILURE_LIMIT: '6',
      AUTH_FAILURE_WINDOW: '5m',
      LOG_FORMAT: 'json',
    };
    replicas = [
      await startGatewayFor({ http: receiver.httpUrl }, env, envFile),
      await startGatewayFor({ http: receiver.httpUrl }, env, envFile),
    ];
    for (const replica of replicas)
      await until('connected to Redis', async () => (await storeUp(replica)) === 1);
  });
  after(async () => {
    for (const replica of replicas) await replica.stop();
    await redis?.stop();
    await receiver?.stop();
  });

  test('two replicas: a client alternating between them is held to one shared rate', async () => {
    const { matched, statuses } = await alternate(replicas, LIMITED_KEY, 40, 200);
    // Memory stores would admit 10 on each (20). Shared: the burst of 10, plus at most one lease
    // (one request) per replica.
    assert.ok(matched >= 1 && matched <= 10 + 2, `${matched} admitted: ${statuses.join(' ')}`);
    assert.deepEqual(new Set(statuses), new Set([200, 429]));
  });

  test('Redis killed in the middle of a run: nothing honest fails; restarted: shared again', async () => {
    const statuses: number[] = [];
    const send = async (count: number) => {
      for (let i = 0; i < count; i++)
        statuses.push(await postOnFreshConnection(replicas[i % 2] as RunningGateway, HONEST_KEY));
    };
    await send(20);
    await redis.kill();
    await send(40);
    for (const replica of replicas)
      await until('store down', async () => (await storeUp(replica)) === 0, 10_000);
    await send(20);
    await redis.restart();
    for (const replica of replicas)
      await until('shared again', async () => (await storeUp(replica)) === 1, 10_000);
    await send(40);
    assert.deepEqual(new Set(statuses), new Set([200]), 'every honest request answered 200');
    for (const replica of replicas) {
      assert.equal(replica.child.exitCode, null, 'no crash');
      const warnings = replica.output().match(/LIMIT_STORE does not answer/g) ?? [];
      assert.equal(warnings.length, 1, 'one warning, not one per request');
      assert.equal((replica.output().match(/limits are shared again/g) ?? []).length, 1);
    }
    // Shared again: the restarted (empty) Redis holds one budget for both.
    const { matched } = await alternate(replicas, LIMITED_KEY, 30, 200);
    assert.ok(matched <= 10 + 2, `${matched} admitted after the restart`);
  });

  test('the Redis password never appears in /config_dump, check or the logs', async () => {
    for (const replica of replicas) {
      const dump = await (await fetch(`${replica.url('admin')}/config_dump`)).text();
      assert.ok(!dump.includes(REDIS_PASSWORD));
      assert.match(dump, /"limit_store":"redis:\/\/:\[redacted\]@127\.0\.0\.1:\d+\/0"/);
      assert.ok(!(await (await fetch(`${replica.url('admin')}/metrics`)).text()).includes(REDIS_PASSWORD));
      assert.ok(!replica.output().includes(REDIS_PASSWORD));
    }
    const env = { ENVOY_API_KEYS: HONEST_KEY, LIMIT_STORE: redis.url };
    const check = runCli(['check'], { env });
    assert.equal(check.status, 0, check.stderr);
    assert.match(check.stdout, /LIMIT_STORE +redis:\/\/:\[redacted\]@127\.0\.0\.1/);
    const json = runCli(['check', '--json'], { env });
    const bad = runCli(['check'], {
      env: { ...env, LIMIT_STORE: `${redis.url.replace(/\/0$/, '')}/db-zero` },
    });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /LIMIT_STORE: .*\[redacted\]/);
    for (const output of [check.stdout, check.stderr, json.stdout, bad.stdout, bad.stderr])
      assert.ok(!output.includes(REDIS_PASSWORD), output);
  });
  test('a reload with a bad LIMIT_STORE is refused naming it; a good new one needs a restart', async () => {
    const [replica] = replicas as [RunningGateway];
    const reload = async (line: string) => {
      await writeFile(replica.envFile, `${envFile}${line}\n`);
      const response = await fetch(`${replica.url('admin')}/reload`, { method: 'POST' });
      return { status: response.status, text: await response.text() };
    };
    const other = `redis-${RUN}-other-password`;
    registerSecret({ kind: 'password', value: other, user: 'default' });
    try {
      const bad = await reload(`LIMIT_STORE=redis://:${other}@127.0.0.1:${redis.port}/zero`);
      assert.equal(bad.status, 400);
      assert.match(bad.text, /LIMIT_STORE: the database .*\[redacted\]/);
      const good = await reload(`LIMIT_STORE=redis://:${other}@127.0.0.1:${redis.port}/1`);
      assert.equal(good.status, 200, good.text);
      assert.match(good.text, /"restartNeeded":\["LIMIT_STORE"\]/);
      const dump = await (await fetch(`${replica.url('admin')}/config_dump`)).text();
      assert.match(
        dump,
        new RegExp(`"limit_store":"redis://:\\[redacted\\]@127\\.0\\.0\\.1:${redis.port}/0"`),
      );
      for (const text of [bad.text, good.text, dump, replica.output()]) assert.ok(!text.includes(other));
      assert.equal(await storeUp(replica), 1, 'the running store stays in force');
    } finally {
      await writeFile(replica.envFile, envFile);
    }
  });

  // Last: it blocks this client's address on both replicas for AUTH_FAILURE_WINDOW.
  test('two replicas: the auth-failure limit counts failures made on both', async () => {
    const { matched, statuses } = await alternate(replicas, WRONG_KEY, 30, 401);
    // Memory stores would let 6 failures through on each (12). Shared: 6, plus at most one on
    // each replica before it hears the total.
    assert.ok(matched >= 6 && matched <= 6 + 2, `${matched} failures let through: ${statuses.join(' ')}`);
    assert.equal(statuses.at(-1), 429);
  });
});

describe('LIMIT_STORE=redis with WORKERS=2 (issue 14)', () => {
  let receiver: OtlpReceiver;
  let redis: RunningRedis;
  let gateway: RunningGateway;

  before(async () => {
    receiver = await startOtlpReceiver();
    redis = await startRedis();
    gateway = await startGatewayFor(
      { http: receiver.httpUrl },
      { LIMIT_STORE: redis.url, WORKERS: '2' },
      envFile,
    );
    // The lowest over the workers: 1 once both are connected.
    await until('both workers connected', async () => (await storeUp(gateway)) === 1);
  });
  after(async () => {
    await gateway?.stop();
    await redis?.stop();
    await receiver?.stop();
  });

  test('both workers take from one budget', async () => {
    const { matched, statuses } = await alternate([gateway], LIMITED_KEY, 40, 200);
    // Each worker alone would admit 10 (20 together).
    assert.ok(matched >= 1 && matched <= 10 + 2, `${matched} admitted: ${statuses.join(' ')}`);
    // The metrics make sense summed by the primary: one up gauge, errors counted once.
    assert.equal(await storeUp(gateway), 1);
  });
});
