import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import bcrypt from 'bcrypt';
import { BcryptVerifier, type BcryptVerifierOptions } from '../../src/auth/bcrypt-verifier.js';

const HASH_A = bcrypt.hashSync('password-a', 4);
const HASH_B = bcrypt.hashSync('password-b', 4);
const HASH_A2 = bcrypt.hashSync('password-a', 4);

function verifier(options: Partial<BcryptVerifierOptions> = {}): BcryptVerifier {
  return new BcryptVerifier({
    cacheSize: 100,
    cacheTtlMs: 60_000,
    maxConcurrent: 2,
    maxQueued: 100,
    ...options,
  });
}

describe('BcryptVerifier', () => {
  test('a match is cached: later checks are synchronous cache hits', async () => {
    const v = verifier();
    assert.equal(v.cached('alice', HASH_A, 'password-a'), false);
    assert.equal(await v.verify('alice', HASH_A, 'password-a'), 'match');
    assert.equal(v.cacheMisses, 1);
    assert.equal(v.cached('alice', HASH_A, 'password-a'), true);
    assert.equal(v.cached('alice', HASH_A, 'password-a'), true);
    assert.equal(v.cacheHits, 2);
    assert.equal(v.size, 1);
  });

  test('a mismatch is not cached', async () => {
    const v = verifier();
    assert.equal(await v.verify('alice', HASH_A, 'wrong'), 'mismatch');
    assert.equal(v.cached('alice', HASH_A, 'wrong'), false);
    assert.equal(await v.verify('alice', HASH_A, 'wrong'), 'mismatch');
    assert.equal(v.cacheMisses, 2);
    assert.equal(v.size, 0);
  });

  test('the cache answers only for the same user, hash and password', async () => {
    const v = verifier();
    await v.verify('alice', HASH_A, 'password-a');
    assert.equal(v.cached('mallory', HASH_A, 'password-a'), false);
    assert.equal(v.cached('alice', HASH_A2, 'password-a'), false);
    assert.equal(v.cached('alice', HASH_A, 'password-a '), false);
    assert.equal(v.cached('alice', HASH_A, 'password-A'), false);
    assert.equal(v.cacheHits, 0);
  });

  test('a malformed hash is a mismatch, not an exception', async () => {
    const v = verifier();
    assert.equal(await v.verify('alice', '$2b$04$not-a-real-hash', 'x'), 'mismatch');
    assert.equal(await v.verify('alice', '', 'x'), 'mismatch');
  });

  test('retainOnly drops removed users and changed hashes, keeps the rest', async () => {
    const v = verifier();
    assert.equal(await v.verify('alice', HASH_A, 'password-a'), 'match');
    assert.equal(await v.verify('bob', HASH_B, 'password-b'), 'match');
    assert.equal(await v.verify('carol', HASH_A2, 'password-a'), 'match');
    assert.equal(v.size, 3);

    // bob removed; alice's hash rotated (same password, new salt); carol unchanged.
    v.retainOnly(
      new Map([
        ['alice', HASH_A2],
        ['carol', HASH_A2],
      ]),
    );
    assert.equal(v.size, 1);
    assert.equal(v.cached('bob', HASH_B, 'password-b'), false);
    assert.equal(v.cached('alice', HASH_A, 'password-a'), false);
    assert.equal(v.cached('carol', HASH_A2, 'password-a'), true);

    v.retainOnly(new Map());
    assert.equal(v.size, 0);
  });

  test('cached verifications expire after the TTL', async () => {
    const v = verifier({ cacheTtlMs: 40 });
    await v.verify('alice', HASH_A, 'password-a');
    assert.equal(v.cached('alice', HASH_A, 'password-a'), true);
    await sleep(120);
    assert.equal(v.cached('alice', HASH_A, 'password-a'), false);
  });

  test('the cache is bounded in size', async () => {
    const v = verifier({ cacheSize: 2 });
    await v.verify('alice', HASH_A, 'password-a');
    await v.verify('bob', HASH_B, 'password-b');
    await v.verify('carol', HASH_A2, 'password-a');
    assert.equal(v.size, 2);
    assert.equal(v.cached('alice', HASH_A, 'password-a'), false);
    assert.equal(v.cached('carol', HASH_A2, 'password-a'), true);
  });

  test('concurrent checks of the same credential run bcrypt once', async () => {
    const v = verifier();
    const results = await Promise.all([
      v.verify('alice', HASH_A, 'password-a'),
      v.verify('alice', HASH_A, 'password-a'),
      v.verify('alice', HASH_A, 'password-a'),
    ]);
    assert.deepEqual(results, ['match', 'match', 'match']);
    assert.equal(v.cacheMisses, 1);

    const wrong = await Promise.all([v.verify('alice', HASH_A, 'nope'), v.verify('alice', HASH_A, 'nope')]);
    assert.deepEqual(wrong, ['mismatch', 'mismatch']);
    assert.equal(v.cacheMisses, 2);
  });

  test('different credentials are not deduplicated', async () => {
    const v = verifier();
    const results = await Promise.all([
      v.verify('alice', HASH_A, 'password-a'),
      v.verify('alice', HASH_A, 'password-b'),
      v.verify('bob', HASH_B, 'password-b'),
    ]);
    assert.deepEqual(results, ['match', 'mismatch', 'match']);
    assert.equal(v.cacheMisses, 3);
  });

  test('beyond maxConcurrent running and maxQueued waiting, a check is overloaded at once', async () => {
    const v = verifier({ maxConcurrent: 1, maxQueued: 1 });
    const running = v.verify('alice', HASH_A, 'password-a');
    const queued = v.verify('bob', HASH_B, 'password-b');
    const rejected = v.verify('alice', HASH_A, 'third');
    const rejected2 = v.verify('bob', HASH_B, 'fourth');
    assert.equal(await rejected, 'overloaded');
    assert.equal(await rejected2, 'overloaded');
    assert.equal(v.rejectedOverload, 2);
    assert.equal(await running, 'match');
    assert.equal(await queued, 'match');
    // Once the queue drains, checks run again.
    assert.equal(await v.verify('alice', HASH_A, 'third'), 'mismatch');
  });

  test('with a CPU budget, a check beyond it is overloaded at once until the budget refills', async () => {
    // 0.05 ms of bcrypt at once, refilled at half a millisecond per millisecond.
    const v = verifier({ maxConcurrent: 1, cpuShare: 0.5, burstMs: 0.05 });
    assert.equal(await v.verify('alice', HASH_A, 'wrong-1'), 'mismatch');
    // A cost-4 comparison (about 1 ms) takes far longer than the burst, however fast the machine
    // is at the moment (a 1 ms burst against a 1 ms comparison failed now and then): spent.
    assert.equal(await v.verify('alice', HASH_A, 'wrong-2'), 'overloaded');
    assert.equal(v.rejectedOverload, 1);
    await sleep(200);
    assert.equal(await v.verify('alice', HASH_A, 'password-a'), 'match');
  });

  test('no more than maxConcurrent comparisons run at once', async () => {
    const v = verifier({ maxConcurrent: 2, maxQueued: 100 });
    let peak = 0;
    let sampling = true;
    const sample = () => {
      peak = Math.max(peak, Reflect.get(v, 'running') as number);
      if (sampling) setImmediate(sample);
    };
    sample();
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        v.verify('alice', HASH_A, i % 2 === 0 ? `wrong-${i}` : 'password-a'),
      ),
    );
    sampling = false;
    assert.equal(results.filter((r) => r === 'match').length, 4);
    assert.equal(results.filter((r) => r === 'mismatch').length, 4);
    assert.ok(peak >= 1 && peak <= 2, `peak concurrency ${peak}`);
    assert.equal(v.rejectedOverload, 0);
  });

  test('bcrypt runs off the event loop: timers fire while a comparison is running', async () => {
    const slowHash = bcrypt.hashSync('slow', 10);
    const v = verifier();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    try {
      assert.equal(await v.verify('slow', slowHash, 'slow'), 'match');
    } finally {
      clearInterval(timer);
    }
    assert.ok(ticks > 0, 'the event loop was blocked during bcrypt');
  });
});
