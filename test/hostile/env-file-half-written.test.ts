import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { basic, startGatewayFor } from '../e2e/fixtures.js';
import { Metrics, startOkServer, writeEnvFile } from '../e2e/operations/helpers.js';
import type { RunningGateway } from '../support/gateway.js';
import { registerEnvFileSecrets } from '../support/secrets.js';
import { sleep, until } from '../support/wait.js';

/**
 * Issue 10 §3: a slow in-place write of the env file (`vault read ... > .env`, an editor writing
 * in place, a deploy script) passes through empty and half-written states that still parse. Read
 * in one of them, the gateway accepted the public placeholder key, a prefix of a new key, or a
 * prefix of a password. While such writes go on, a client keeps trying exactly those credentials:
 * none may ever be accepted, and the completed file must still apply within the reload promise.
 */

const PLACEHOLDER = 'placeholder_api_key';
/** The reload promise of the README (key rotation, step 3). */
const RELOAD_CONTRACT_MS = 2000;
const RELOAD_REJECTED = 'configuration reload rejected; the running configuration stays in force';

const newKey = (): string => `half-written-${randomBytes(16).toString('hex')}`;
const newPassword = (): string => randomBytes(12).toString('hex');

/** A credential the gateway must never accept; `label` says which, without the secret itself. */
interface Forbidden {
  readonly label: string;
  readonly headers: Readonly<Record<string, string>>;
}

const placeholder: Forbidden = { label: PLACEHOLDER, headers: { 'x-api-key': PLACEHOLDER } };
const keyPrefix = (key: string, length: number): Forbidden => ({
  label: `a ${length}-character prefix of a key`,
  headers: { 'x-api-key': key.slice(0, length) },
});
const passwordPrefix = (user: string, password: string, length: number): Forbidden => ({
  label: `${user} with a ${length}-character prefix of the password`,
  headers: { authorization: basic(user, password.slice(0, length)) },
});

/** Part of the file, then a pause with the file in that state (a slow pipe, a paused copy). */
interface Piece {
  readonly text: string;
  readonly pauseAfterMs: number;
}

/** An in-place write: the file is truncated at open (the empty state), then written piece by piece. */
async function writeInPlace(file: string, pieces: readonly Piece[]): Promise<void> {
  registerEnvFileSecrets(pieces.map((piece) => piece.text).join(''));
  const handle = await open(file, 'w');
  try {
    for (const piece of pieces) {
      if (piece.text !== '') await handle.write(piece.text);
      if (piece.pauseAfterMs > 0) await sleep(piece.pauseAfterMs);
    }
  } finally {
    await handle.close();
  }
}

/** `text` cut `offset` characters after the start of `marker`, with a pause at the cut. */
function cutAt(text: string, marker: string, offset: number, pauseMs: number): Piece[] {
  const at = text.indexOf(marker) + offset;
  assert.ok(at >= offset, `${marker} is in the file`);
  return [
    { text: text.slice(0, at), pauseAfterMs: pauseMs },
    { text: text.slice(at), pauseAfterMs: 0 },
  ];
}

describe('env files written in place are never applied half-written (issue 10 §3)', () => {
  let okServer: Awaited<ReturnType<typeof startOkServer>>;
  let gateway: RunningGateway;

  const status = async (headers: Readonly<Record<string, string>>): Promise<number> => {
    const response = await fetch(`${gateway.url('victoriametrics')}/health`, { headers });
    await response.arrayBuffer();
    return response.status;
  };

  /**
   * Keeps sending requests with every credential `forbidden()` names, one after the other, until
   * stopped; answers how many requests it sent and which credentials got a 200.
   */
  const hammer = (
    forbidden: () => readonly Forbidden[],
  ): { stop(): Promise<{ sent: number; accepted: Map<string, number> }> } => {
    let running = true;
    let sent = 0;
    const accepted = new Map<string, number>();
    const loop = (async () => {
      while (running) {
        for (const credential of forbidden()) {
          if ((await status(credential.headers)) === 200) {
            accepted.set(credential.label, (accepted.get(credential.label) ?? 0) + 1);
          }
          sent++;
        }
      }
    })();
    return {
      async stop() {
        running = false;
        await loop;
        return { sent, accepted };
      },
    };
  };

  /** Replaces the file atomically (write a temp file, rename) and waits until `works` is accepted. */
  const establish = async (text: string, works: Readonly<Record<string, string>>): Promise<void> => {
    await writeEnvFile(gateway.envFile, text, 'rename');
    await until('the new configuration is in force', async () => (await status(works)) === 200, 5000);
  };

  /**
   * Writes `pieces` in place while a client tries `forbidden`, then checks that none of them was
   * ever accepted, that the completed file applies within the reload promise, and that any
   * rejection logged on the way named what `rejection` expects.
   */
  const expectNeverHalfApplied = async (options: {
    readonly pieces: readonly Piece[];
    readonly forbidden: readonly Forbidden[];
    readonly finallyWorks: Readonly<Record<string, string>>;
    readonly finallyRefused: Readonly<Record<string, string>>;
    readonly rejection?: RegExp;
  }): Promise<void> => {
    const offset = gateway.output().length;
    const client = hammer(() => options.forbidden);
    await writeInPlace(gateway.envFile, options.pieces);
    await until(
      'the completed file is in force',
      async () => (await status(options.finallyWorks)) === 200,
      RELOAD_CONTRACT_MS,
      10,
    );
    // The client goes on a while: a half-written state applied last would show now.
    await sleep(500);
    const { sent, accepted } = await client.stop();
    assert.ok(sent > 0);
    assert.deepEqual(
      Object.fromEntries(accepted),
      {},
      `accepted while the file was being written (${sent} tries)`,
    );
    assert.equal(await status(options.finallyRefused), 401, 'the credential of the old file is refused');
    const metrics = await Metrics.scrape(gateway);
    assert.equal(metrics.get('gateway_placeholder_key_in_use'), 0);
    assert.equal(metrics.get('gateway_config_last_reload_successful'), 1, 'the completed file was applied');
    const rejections = gateway
      .output()
      .slice(offset)
      .split('\n')
      .filter((line) => line.includes(RELOAD_REJECTED))
      .map((line) => JSON.parse(line) as { errors: string[] });
    for (const rejection of rejections) {
      assert.equal(rejection.errors.length, 1);
      assert.match(rejection.errors[0] as string, options.rejection ?? /^$/);
    }
  };

  const apiKeyFile = (key: string): string => `ENVOY_AUTH_METHOD=api-key\nENVOY_API_KEYS=${key}\n`;

  before(async () => {
    okServer = await startOkServer();
    const key = newKey();
    // From the process environment, so that no half-written file can bring the limiter back:
    // the client below tries wrong credentials all the time.
    gateway = await startGatewayFor(
      { victoriametrics: okServer.url },
      { AUTH_FAILURE_LIMIT: '0' },
      apiKeyFile(key),
    );
  });
  after(async () => {
    await gateway?.stop();
    await okServer?.close();
  });

  test('file empty for 600 ms: the placeholder key is never accepted', async () => {
    const running = newKey();
    await establish(apiKeyFile(running), { 'x-api-key': running });
    const next = newKey();
    await expectNeverHalfApplied({
      pieces: [
        { text: '', pauseAfterMs: 600 },
        { text: apiKeyFile(next), pauseAfterMs: 0 },
      ],
      forbidden: [placeholder],
      finallyWorks: { 'x-api-key': next },
      finallyRefused: { 'x-api-key': running },
      rejection: /^ENVOY_API_KEYS: the public placeholder_api_key would be accepted/,
    });
  });

  test('cut inside a key: the prefix of the new key is never accepted', async () => {
    const running = newKey();
    await establish(apiKeyFile(running), { 'x-api-key': running });
    const next = newKey();
    await expectNeverHalfApplied({
      pieces: cutAt(apiKeyFile(next), next, 10, 500),
      forbidden: [keyPrefix(next, 10), placeholder],
      finallyWorks: { 'x-api-key': next },
      finallyRefused: { 'x-api-key': running },
    });
  });

  test('cut inside a password: the prefix of the new password is never accepted', async () => {
    const usersFile = (password: string): string =>
      `ENVOY_AUTH_METHOD=basic-auth\nENVOY_BASIC_AUTH_CREDENTIALS=alice:${password}\n`;
    const running = newPassword();
    await establish(usersFile(running), { authorization: basic('alice', running) });
    const next = newPassword();
    await expectNeverHalfApplied({
      pieces: cutAt(usersFile(next), `alice:${next}`, 'alice:'.length + 2, 500),
      forbidden: [passwordPrefix('alice', next, 2), placeholder],
      finallyWorks: { authorization: basic('alice', next) },
      finallyRefused: { authorization: basic('alice', running) },
    });
  });

  test('ENVOY_AUTH_METHOD last in the file and cut before it: api-key mode never comes', async () => {
    const usersFile = (password: string): string =>
      `ENVOY_BASIC_AUTH_CREDENTIALS=alice:${password}\nENVOY_AUTH_METHOD=basic-auth\n`;
    const running = newPassword();
    await establish(usersFile(running), { authorization: basic('alice', running) });
    const next = newPassword();
    await expectNeverHalfApplied({
      pieces: cutAt(usersFile(next), 'ENVOY_AUTH_METHOD=', 0, 600),
      forbidden: [placeholder],
      finallyWorks: { authorization: basic('alice', next) },
      finallyRefused: { authorization: basic('alice', running) },
      rejection: /^ENVOY_AUTH_METHOD: the new env file no longer sets it/,
    });
  });

  test('100 slow in-place edits in about 15 s: no placeholder, no prefix, and the last key works', async (t) => {
    const fileOf = (key: string, password: string): string =>
      `ENVOY_API_KEYS=${key}\nENVOY_BASIC_AUTH_CREDENTIALS=alice:${password}\nENVOY_AUTH_METHOD=any\n`;
    const first = { key: newKey(), password: newPassword() };
    await establish(fileOf(first.key, first.password), { 'x-api-key': first.key });
    /** The credentials the half-written states of the last few edits would have made valid. */
    let recent: Forbidden[] = [placeholder];
    const client = hammer(() => recent);
    let last = first;
    const startedAt = performance.now();
    for (let edit = 0; edit < 100; edit++) {
      const next = { key: newKey(), password: newPassword() };
      const text = fileOf(next.key, next.password);
      // Two pauses per edit, mid-key, mid-password, empty, or just before the ENVOY_AUTH_METHOD
      // line: a long one (110 to 140 ms, past the 100 ms debounce that read such states before)
      // and a short one (10 to 40 ms).
      const keyCut = text.indexOf(next.key) + 4 + (edit % 20);
      const passwordCut = text.indexOf(`alice:${next.password}`) + 'alice:'.length + 1 + (edit % 10);
      const methodCut = text.indexOf('ENVOY_AUTH_METHOD=');
      const cuts = [edit % 3 === 0 ? 0 : keyCut, edit % 3 === 1 ? methodCut : passwordCut];
      const pause = (from: number): number => from + Math.floor(Math.random() * 30);
      const long = edit % 2;
      recent = [
        placeholder,
        keyPrefix(next.key, keyCut - text.indexOf(next.key)),
        passwordPrefix('alice', next.password, passwordCut - text.indexOf(next.password)),
        ...recent.slice(1, 9),
      ];
      await writeInPlace(gateway.envFile, [
        { text: text.slice(0, cuts[0]), pauseAfterMs: pause(long === 0 ? 110 : 10) },
        { text: text.slice(cuts[0], cuts[1]), pauseAfterMs: pause(long === 1 ? 110 : 10) },
        { text: text.slice(cuts[1]), pauseAfterMs: 0 },
      ]);
      last = next;
    }
    const stormMs = performance.now() - startedAt;
    await until(
      'the last edit is in force',
      async () => (await status({ 'x-api-key': last.key })) === 200,
      RELOAD_CONTRACT_MS,
      10,
    );
    await sleep(500);
    const { sent, accepted } = await client.stop();
    t.diagnostic(`100 edits in ${Math.round(stormMs)} ms; ${sent} tries with forbidden credentials`);
    assert.deepEqual(Object.fromEntries(accepted), {}, `accepted during the storm (${sent} tries)`);
    assert.equal(await status({ authorization: basic('alice', last.password) }), 200);
    assert.equal(await status({ 'x-api-key': first.key }), 401);
    assert.equal((await Metrics.scrape(gateway)).get('gateway_placeholder_key_in_use'), 0);
  });
});
