import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import bcrypt from 'bcrypt';
import { Pool } from 'undici';
import type { RunningGateway } from '../../support/gateway.js';
import { type OtlpReceiver, startOtlpReceiver } from '../../support/otlp-receiver.js';
import { registerSecret } from '../../support/secrets.js';
import { basic, startGatewayFor } from '../fixtures.js';
import {
  type EnvFileWrite,
  grpcClient,
  grpcExport,
  Metrics,
  metric,
  sleep,
  startOkServer,
  waitForReloads,
  watchConnectivity,
  writeEnvFile,
} from './helpers.js';

/**
 * Live key rotation under load: keep-alive HTTP/1.1 clients (GET on 8428, POST on 4318) and gRPC
 * clients on 4317 send requests non-stop while the env file is rewritten 20 times, each time
 * adding a key and removing the oldest. Every request is judged against the key sets that could
 * have been in force while it was in flight.
 */

const ROTATIONS = 20;
/** The reload contract of issue 3: an edit to the env file takes effect within 2 seconds. */
const RELOAD_CONTRACT_MS = 2000;
const RUN = randomBytes(4).toString('hex');
const keyNumber = (n: number): string => `rotation-${RUN}-key-${n}-${randomBytes(6).toString('hex')}`;

type Transport = 'http-get' | 'http-post' | 'grpc';
type Outcome = 'ok' | 'unauthenticated' | string;

interface Observation {
  readonly client: string;
  readonly transport: Transport;
  readonly key: string;
  readonly sentAt: number;
  readonly doneAt: number;
  readonly outcome: Outcome;
}

/**
 * The key sets and when each was written and confirmed in force. Set r was written at
 * `writtenAt[r]` (before the write began) and confirmed at `confirmedAt[r]` (once the reload
 * counter said so); set 0 was in force before the load started.
 */
class RotationTimeline {
  readonly sets: ReadonlySet<string>[] = [];
  readonly writtenAt: number[] = [];
  readonly confirmedAt: number[] = [];
  private readonly everRemoved: string[] = [];

  constructor(initial: readonly string[]) {
    this.sets.push(new Set(initial));
    this.writtenAt.push(Number.NEGATIVE_INFINITY);
    this.confirmedAt.push(Number.NEGATIVE_INFINITY);
  }

  get latest(): number {
    return this.sets.length - 1;
  }

  written(keys: readonly string[], at: number): void {
    const previous = this.sets[this.latest] as ReadonlySet<string>;
    for (const key of previous) if (!keys.includes(key)) this.everRemoved.push(key);
    this.sets.push(new Set(keys));
    this.writtenAt.push(at);
    this.confirmedAt.push(Number.POSITIVE_INFINITY);
  }

  confirmed(at: number): void {
    this.confirmedAt[this.latest] = at;
  }

  /** Indexes of the sets that may have been in force at `t`. */
  private possible(t: number): [number, number] {
    let high = 0;
    while (high < this.latest && (this.writtenAt[high + 1] as number) <= t) high++;
    const low = (this.confirmedAt[high] as number) <= t ? high : high - 1;
    return [Math.max(low, 0), high];
  }

  /** What a request with `key` in flight over [sentAt, doneAt] must answer. */
  verdict(key: string, sentAt: number, doneAt: number): 'must-succeed' | 'must-fail' | 'either' {
    const [low] = this.possible(sentAt);
    const [, high] = this.possible(doneAt);
    let inAll = true;
    let inAny = false;
    for (let index = low; index <= high; index++) {
      const has = (this.sets[index] as ReadonlySet<string>).has(key);
      inAll &&= has;
      inAny ||= has;
    }
    return inAll ? 'must-succeed' : inAny ? 'either' : 'must-fail';
  }

  /** A key for the next request: mostly one in force, sometimes a removed, pending or unknown one. */
  pick(): string {
    const confirmedIndex = this.confirmedAt.findLastIndex((at) => at !== Number.POSITIVE_INFINITY);
    const inForce = [...(this.sets[confirmedIndex] as ReadonlySet<string>)];
    const roll = Math.random();
    if (roll < 0.1 && confirmedIndex < this.latest) {
      const pending = [...(this.sets[this.latest] as ReadonlySet<string>)].filter(
        (key) => !inForce.includes(key),
      );
      if (pending.length > 0) return pending[Math.floor(Math.random() * pending.length)] as string;
    }
    if (roll >= 0.7 && roll < 0.95 && this.everRemoved.length > 0) {
      const recent = this.everRemoved.slice(-3);
      return recent[Math.floor(Math.random() * recent.length)] as string;
    }
    if (roll >= 0.95) return `never-configured-${RUN}`;
    return inForce[Math.floor(Math.random() * inForce.length)] as string;
  }
}

/**
 * ACCESS_LOG=off: thousands of requests would otherwise flood the suite's output log.
 * AUTH_FAILURE_LIMIT=0: the removed keys this test presents on purpose are no brute-force attack.
 */
const COMMON_SETTINGS = 'ACCESS_LOG=off\nAUTH_FAILURE_LIMIT=0\n';

function envFileText(keys: readonly string[]): string {
  return `# rotated by the test\nENVOY_AUTH_METHOD=api-key\nENVOY_API_KEYS=${keys.join(', ')}\n${COMMON_SETTINGS}`;
}

/**
 * Both in one process and in the multi-process mode (the production default, WORKERS=auto), where
 * the primary validates each edit and hands it to the workers that serve the connections.
 */
for (const workers of [1, 2]) {
  describe(`key rotation under continuous load (HTTP/1.1 keep-alive and gRPC), WORKERS=${workers}`, () => {
    let receiver: OtlpReceiver;
    let okServer: Awaited<ReturnType<typeof startOkServer>>;
    let gateway: RunningGateway;
    let nextKey = 0;
    const initialKeys = [keyNumber(nextKey++), keyNumber(nextKey++)];

    before(async () => {
      receiver = await startOtlpReceiver();
      okServer = await startOkServer();
      gateway = await startGatewayFor(
        { grpc: receiver.grpcUrl, http: receiver.httpUrl, victoriametrics: okServer.url },
        { WORKERS: String(workers) },
        envFileText(initialKeys),
      );
    });
    after(async () => {
      await gateway?.stop();
      await receiver?.stop();
      await okServer?.close();
    });

    test(`${ROTATIONS} rotations: keys in force succeed, removed keys get 401/UNAUTHENTICATED, nothing else fails`, async (t) => {
      const timeline = new RotationTimeline(initialKeys);
      registerSecret({ kind: 'api-key', value: `never-configured-${RUN}` });
      const observations: Observation[] = [];
      let running = true;

      const httpPools: { name: string; pool: Pool; connects: () => number }[] = [];
      const openPool = (name: string, origin: string): Pool => {
        const pool = new Pool(origin, { connections: 1, pipelining: 1, keepAliveTimeout: 60_000 });
        let connects = 0;
        pool.on('connect', () => connects++);
        httpPools.push({ name, pool, connects: () => connects });
        return pool;
      };

      const httpClient = async (name: string, transport: 'http-get' | 'http-post'): Promise<void> => {
        const pool =
          transport === 'http-get'
            ? openPool(name, gateway.url('victoriametrics'))
            : openPool(name, gateway.url('http'));
        while (running) {
          const key = timeline.pick();
          const sentAt = performance.now();
          let outcome: Outcome;
          try {
            const response = await pool.request(
              transport === 'http-get'
                ? { path: '/health', method: 'GET', headers: { 'x-api-key': key } }
                : {
                    path: '/v1/traces',
                    method: 'POST',
                    headers: { 'x-api-key': key, 'content-type': 'application/json' },
                    body: '{"resourceSpans":[]}',
                  },
            );
            const body = await response.body.text();
            outcome =
              response.statusCode === 200
                ? 'ok'
                : response.statusCode === 401
                  ? 'unauthenticated'
                  : `HTTP ${response.statusCode} ${body}`;
          } catch (error) {
            outcome = `client error ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
          }
          observations.push({ client: name, transport, key, sentAt, doneAt: performance.now(), outcome });
          await sleep(3);
        }
      };

      const channels: { name: string; client: grpc.Client; states: string[] }[] = [];
      const grpcLoop = async (name: string): Promise<void> => {
        const client = grpcClient(gateway);
        const { states } = watchConnectivity(client);
        channels.push({ name, client, states });
        while (running) {
          const key = timeline.pick();
          const sentAt = performance.now();
          const status = await grpcExport(client, { 'x-api-key': key });
          const outcome =
            status.code === 0
              ? 'ok'
              : status.code === 16
                ? 'unauthenticated'
                : `gRPC ${status.code} ${status.details}`;
          observations.push({
            client: name,
            transport: 'grpc',
            key,
            sentAt,
            doneAt: performance.now(),
            outcome,
          });
          await sleep(3);
        }
      };

      const clients = [
        httpClient('get-1', 'http-get'),
        httpClient('get-2', 'http-get'),
        httpClient('post-1', 'http-post'),
        httpClient('post-2', 'http-post'),
        grpcLoop('grpc-1'),
        grpcLoop('grpc-2'),
        grpcLoop('grpc-3'),
      ];

      const reloadTimes: number[] = [];
      let currentKeys = initialKeys;
      try {
        await sleep(300);
        for (let rotation = 1; rotation <= ROTATIONS; rotation++) {
          // Add a new key, remove the oldest: two keys in force at any time, as in a real rotation.
          const nextKeys = [...currentKeys.slice(1), keyNumber(nextKey++)];
          const how: EnvFileWrite = rotation % 2 === 1 ? 'rename' : 'in-place';
          const writtenAt = performance.now();
          timeline.written(nextKeys, writtenAt);
          await writeEnvFile(gateway.envFile, envFileText(nextKeys), how);
          await waitForReloads(gateway, rotation, 5000);
          const confirmedAt = performance.now();
          timeline.confirmed(confirmedAt);
          reloadTimes.push(confirmedAt - writtenAt);
          const applied = await metric(gateway, 'gateway_config_reloads_total');
          assert.equal(
            applied,
            rotation,
            `rotation ${rotation} (${how}): ${applied} reloads applied, so the gateway applied some intermediate content of the file`,
          );
          currentKeys = nextKeys;
          // Let the load run on the new key set before the next edit.
          await sleep(250);
        }
        await sleep(200);
      } finally {
        running = false;
        await Promise.all(clients);
      }

      const reconnectsAfterReady = channels.map(({ name, states }) => ({
        name,
        states: states.slice(states.indexOf('READY')),
      }));
      for (const channel of channels) channel.client.close();
      const connections = httpPools.map(({ name, connects }) => ({ name, connects: connects() }));
      await Promise.all(httpPools.map(({ pool }) => pool.close()));

      const judged = observations.map((observation) => ({
        ...observation,
        verdict: timeline.verdict(observation.key, observation.sentAt, observation.doneAt),
      }));
      const unexpected = judged.filter(
        (o) =>
          (o.outcome !== 'ok' && o.outcome !== 'unauthenticated') ||
          (o.verdict === 'must-succeed' && o.outcome !== 'ok') ||
          (o.verdict === 'must-fail' && o.outcome !== 'unauthenticated'),
      );
      const describeObservation = (o: (typeof judged)[number]): string => {
        const index = [...timeline.sets.keys()]
          .filter((i) => (timeline.writtenAt[i] as number) <= o.sentAt)
          .pop();
        return `${o.client} key …${o.key.slice(-12)} ${o.verdict} got ${o.outcome} (sent under set ${index}, took ${(o.doneAt - o.sentAt).toFixed(1)} ms)`;
      };
      assert.deepEqual(
        unexpected.slice(0, 10).map(describeObservation),
        [],
        `${unexpected.length} wrong answers`,
      );

      // The load was real and exercised both sides of every rotation, on every transport.
      const count = (transport: Transport, verdict: string, outcome?: Outcome): number =>
        judged.filter(
          (o) =>
            o.transport === transport &&
            o.verdict === verdict &&
            (outcome === undefined || o.outcome === outcome),
        ).length;
      const summary = Object.fromEntries(
        (['http-get', 'http-post', 'grpc'] as const).map((transport) => [
          transport,
          {
            mustSucceed: count(transport, 'must-succeed'),
            mustFail: count(transport, 'must-fail'),
            either: count(transport, 'either'),
          },
        ]),
      );
      for (const [transport, counts] of Object.entries(summary)) {
        assert.ok(
          counts.mustSucceed >= 100,
          `${transport}: only ${counts.mustSucceed} requests with a key in force`,
        );
        assert.ok(counts.mustFail >= 20, `${transport}: only ${counts.mustFail} requests with a removed key`);
      }
      // Removed keys stopped working on connections opened while they were valid: every rotation
      // removed a key that requests right after it still presented, on the same connections.
      const rotationsWithRejectedRemovedKey = timeline.sets.filter((_, index) =>
        judged.some(
          (o) =>
            index > 0 &&
            o.verdict === 'must-fail' &&
            o.key !== `never-configured-${RUN}` &&
            o.sentAt >= (timeline.confirmedAt[index] as number) &&
            o.sentAt < (timeline.writtenAt[index + 1] ?? Number.POSITIVE_INFINITY),
        ),
      ).length;
      assert.ok(
        rotationsWithRejectedRemovedKey >= ROTATIONS - 2,
        `removed keys were tried and rejected after only ${rotationsWithRejectedRemovedKey} of ${ROTATIONS} rotations`,
      );

      const maxReloadMs = Math.max(...reloadTimes);
      t.diagnostic(`write to confirmed reload, ms: ${reloadTimes.map((ms) => ms.toFixed(0)).join(' ')}`);
      assert.ok(
        maxReloadMs <= RELOAD_CONTRACT_MS,
        `a reload took ${maxReloadMs.toFixed(0)} ms to take effect (contract: ${RELOAD_CONTRACT_MS} ms): ${reloadTimes.map((t) => t.toFixed(0)).join(', ')}`,
      );

      // No connection was dropped: the gRPC channels stayed READY throughout, the GET clients kept
      // their one keep-alive connection. A 401 to a POST whose body was not read closes that
      // connection on purpose, so the POST clients reconnect at most once per 401.
      for (const { name, states } of reconnectsAfterReady)
        assert.deepEqual(states, ['READY'], `${name}: ${states}`);
      for (const { name, connects } of connections) {
        const rejected = judged.filter((o) => o.client === name && o.outcome === 'unauthenticated').length;
        if (name.startsWith('get')) assert.equal(connects, 1, `${name} opened ${connects} connections`);
        else
          assert.ok(connects <= 1 + rejected, `${name} opened ${connects} connections for ${rejected} 401s`);
      }

      const metrics = await Metrics.scrape(gateway);
      assert.equal(metrics.get('gateway_config_reloads_total'), ROTATIONS);
      assert.equal(metrics.get('gateway_config_reload_failures_total'), 0);
      assert.equal(metrics.get('gateway_config_last_reload_successful'), 1);
      console.log(
        JSON.stringify({
          workers,
          requests: judged.length,
          summary,
          reloadMs: { max: Math.round(maxReloadMs), all: reloadTimes.map(Math.round) },
          connections,
        }),
      );
    });
  });

  describe(`credential edits through the env file, on an open keep-alive connection, WORKERS=${workers}`, () => {
    let okServer: Awaited<ReturnType<typeof startOkServer>>;
    let gateway: RunningGateway;
    let pool: Pool;
    let connects = 0;
    let reloads = 0;
    const KEY = `edits-${RUN}-key-${randomBytes(8).toString('hex')}`;
    const ALICE_OLD = `alice-old-${randomBytes(6).toString('hex')}`;
    const ALICE_NEW = `alice-new-${randomBytes(6).toString('hex')}`;
    const BOB = `bob-pw-${randomBytes(6).toString('hex')}`;
    const BOB_NEW = `bob-new-pw-${randomBytes(6).toString('hex')}`;
    let bobHash: string;
    let bobNewHash: string;

    const file = (method: string, users: string): string =>
      `ENVOY_AUTH_METHOD=${method}\nENVOY_API_KEYS=${KEY}\nENVOY_BASIC_AUTH_CREDENTIALS=${users}\nAUTH_FAILURE_LIMIT=0\n`;
    /** Edits the file, then waits (at most the 2 s contract) until the reload is in force. */
    const edit = async (text: string): Promise<void> => {
      await writeEnvFile(gateway.envFile, text, reloads % 2 === 0 ? 'rename' : 'in-place');
      reloads++;
      await waitForReloads(gateway, reloads, RELOAD_CONTRACT_MS);
    };
    const get = async (headers: Record<string, string>): Promise<{ status: number; body: string }> => {
      const response = await pool.request({ path: '/health', method: 'GET', headers });
      return { status: response.statusCode, body: await response.body.text() };
    };

    before(async () => {
      bobHash = await bcrypt.hash(BOB, 10);
      bobNewHash = await bcrypt.hash(BOB_NEW, 10);
      registerSecret({ kind: 'password', value: BOB, user: 'bob' });
      registerSecret({ kind: 'password', value: BOB_NEW, user: 'bob' });
      okServer = await startOkServer();
      gateway = await startGatewayFor(
        { victoriametrics: okServer.url },
        { WORKERS: String(workers) },
        file('api-key', `alice:${ALICE_OLD},bob:${bobHash}`),
      );
      pool = new Pool(gateway.url('victoriametrics'), {
        connections: 1,
        pipelining: 1,
        keepAliveTimeout: 60_000,
      });
      pool.on('connect', () => connects++);
    });
    after(async () => {
      await pool?.close();
      await gateway?.stop();
      await okServer?.close();
    });

    test('switching the auth method: api-key -> basic-auth -> any -> api-key', async () => {
      assert.equal((await get({ 'x-api-key': KEY })).status, 200);
      assert.deepEqual(await get({ authorization: basic('alice', ALICE_OLD) }), {
        status: 401,
        body: 'Missing or Invalid API Key',
      });

      await edit(file('basic-auth', `alice:${ALICE_OLD},bob:${bobHash}`));
      assert.deepEqual(await get({ 'x-api-key': KEY }), { status: 401, body: 'Unauthorized' });
      assert.equal((await get({ authorization: basic('alice', ALICE_OLD) })).status, 200);

      await edit(file('any', `alice:${ALICE_OLD},bob:${bobHash}`));
      assert.equal((await get({ 'x-api-key': KEY })).status, 200);
      assert.equal((await get({ authorization: basic('alice', ALICE_OLD) })).status, 200);

      await edit(file('api-key', `alice:${ALICE_OLD},bob:${bobHash}`));
      assert.equal((await get({ 'x-api-key': KEY })).status, 200);
      assert.equal((await get({ authorization: basic('alice', ALICE_OLD) })).status, 401);
      assert.equal(connects, 1, 'every answer came on the one keep-alive connection');
    });

    test('changing a password: the old one fails at once, the new one works', async () => {
      await edit(file('basic-auth', `alice:${ALICE_OLD},bob:${bobHash}`));
      assert.equal((await get({ authorization: basic('alice', ALICE_OLD) })).status, 200);
      await edit(file('basic-auth', `alice:${ALICE_NEW},bob:${bobHash}`));
      assert.equal((await get({ authorization: basic('alice', ALICE_OLD) })).status, 401);
      assert.equal((await get({ authorization: basic('alice', ALICE_NEW) })).status, 200);
      assert.equal(connects, 1);
    });

    test("a removed bcrypt user's cached verification stops working at once, and the cache entry is gone", async () => {
      // In force since the previous test: basic-auth, alice with her new password, bob with bobHash.
      const before = await Metrics.scrape(gateway);
      const misses0 = before.get('gateway_bcrypt_cache_misses_total');
      const hits0 = before.get('gateway_bcrypt_cache_hits_total');
      assert.equal((await get({ authorization: basic('bob', BOB) })).status, 200);
      assert.equal((await get({ authorization: basic('bob', BOB) })).status, 200);
      assert.equal(
        await metric(gateway, 'gateway_bcrypt_cache_misses_total'),
        misses0 + 1,
        'bcrypt ran once',
      );
      assert.equal(
        await metric(gateway, 'gateway_bcrypt_cache_hits_total'),
        hits0 + 1,
        'then the cache answered',
      );

      await edit(file('basic-auth', `alice:${ALICE_NEW}`));
      assert.equal((await get({ authorization: basic('bob', BOB) })).status, 401);

      // Back with the same hash: bcrypt has to run again, so the verification was really dropped.
      await edit(file('basic-auth', `alice:${ALICE_NEW},bob:${bobHash}`));
      assert.equal((await get({ authorization: basic('bob', BOB) })).status, 200);
      assert.equal(await metric(gateway, 'gateway_bcrypt_cache_misses_total'), misses0 + 2);

      // A new hash for bob: the old password, verified and cached a moment ago, fails at once.
      await edit(file('basic-auth', `alice:${ALICE_NEW},bob:${bobNewHash}`));
      assert.equal((await get({ authorization: basic('bob', BOB) })).status, 401);
      assert.equal((await get({ authorization: basic('bob', BOB_NEW) })).status, 200);
      assert.equal(connects, 1);
    });
  });
}
