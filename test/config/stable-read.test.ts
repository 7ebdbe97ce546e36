import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { readWhenStable, type Stability } from '../../src/config/stable-read.js';
import { sleep } from '../support/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'stable-read-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const fresh = (): string => join(dir, `env-${++files}`);

/** Short times, so each case takes a fraction of a second; the gateway's are DEFAULT_STABILITY. */
const STABILITY: Stability = { intervalMs: 30, quietMs: 120, unterminatedQuietMs: 600, maxWaitMs: 1500 };

const text = (read: Awaited<ReturnType<typeof readWhenStable>>): string | null | undefined =>
  read.settled && 'content' in read ? (read.content?.toString() ?? null) : undefined;

describe('readWhenStable: an env file is read only once it holds still (issue 10 §3)', () => {
  test('a file at rest is read as it is; a missing one is null; a directory is unreadable', async () => {
    const file = fresh();
    writeFileSync(file, 'ENVOY_API_KEYS=k\n');
    assert.equal(text(await readWhenStable(file, STABILITY)), 'ENVOY_API_KEYS=k\n');
    assert.equal(text(await readWhenStable(fresh(), STABILITY)), null);
    const directory = fresh();
    mkdirSync(directory);
    assert.deepEqual(await readWhenStable(directory, STABILITY), { settled: true, unreadable: 'EISDIR' });
  });

  test('a slow in-place write is read whole, never one of its states on the way', async () => {
    const file = fresh();
    const whole = 'ENVOY_AUTH_METHOD=api-key\nENVOY_API_KEYS=a-new-key-written-slowly\n';
    writeFileSync(file, '');
    const reading = readWhenStable(file, STABILITY);
    // One character every 10 ms, the way a pipe from a slow command fills the file.
    for (const character of whole) {
      appendFileSync(file, character);
      await sleep(10);
    }
    assert.equal(text(await reading), whole);
  });

  test('a write cut mid-line waits longer than the ordinary quiet time before it counts', async () => {
    const file = fresh();
    writeFileSync(file, 'ENVOY_API_KEYS=prefix-of');
    const reading = readWhenStable(file, STABILITY);
    // Quiet for longer than quietMs but less than unterminatedQuietMs: still not read.
    await sleep(250);
    appendFileSync(file, '-the-whole-key\n');
    assert.equal(text(await reading), 'ENVOY_API_KEYS=prefix-of-the-whole-key\n');
  });

  test('a file that never holds still is not read: the attempt gives up', async () => {
    const file = fresh();
    writeFileSync(file, 'A=1\n');
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        writeFileSync(file, `A=${i}\n`);
        await sleep(15);
      }
    })();
    const read = await readWhenStable(file, STABILITY);
    writing = false;
    await writer;
    assert.equal(read.settled, false);
    assert.match(read.settled ? '' : read.reason, /^it kept changing for 1500 ms/);
  });

  test('a cancelled read answers at its next look', async () => {
    const file = fresh();
    writeFileSync(file, 'A=1\n');
    assert.deepEqual(await readWhenStable(file, STABILITY, () => true), {
      settled: false,
      reason: 'the reloader stopped',
    });
  });
});
