import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { TokenBucket } from '../../src/limits/token-bucket.js';

describe('token bucket (issue 14 limit arithmetic)', () => {
  test('a full bucket admits its capacity at once, then refuses with the time to refill', () => {
    const bucket = new TokenBucket(3, 1, 0);
    assert.deepEqual([bucket.take(1, 0), bucket.take(1, 0), bucket.take(1, 0)], [0, 0, 0]);
    assert.equal(bucket.take(1, 0), 1000);
    assert.equal(bucket.take(1, 500), 500);
    assert.equal(bucket.take(1, 1000), 0);
    assert.equal(bucket.remaining(1000), 0);
    assert.equal(bucket.untilFull(1000), 3000);
  });

  test('a refused take takes nothing', () => {
    const bucket = new TokenBucket(10, 10, 0);
    assert.equal(bucket.take(7, 0), 0);
    assert.equal(bucket.take(5, 0), 200);
    assert.equal(bucket.take(3, 0), 0);
  });

  test('an amount above the capacity never passes and waits for a full bucket', () => {
    const bucket = new TokenBucket(100, 10, 0);
    assert.equal(bucket.take(101, 0), 1);
    assert.equal(bucket.take(101, 60_000), 1);
    assert.equal(bucket.take(50, 60_000), 0);
    assert.equal(bucket.take(101, 60_000), 5000);
  });

  test('a clock that steps back neither refills nor drains', () => {
    const bucket = new TokenBucket(2, 1, 10_000);
    assert.equal(bucket.take(2, 10_000), 0);
    assert.equal(bucket.take(1, 5_000), 1000);
    assert.equal(bucket.take(1, 11_000), 0);
  });

  test('property: over any interval it admits at most capacity + rate × duration', () => {
    const step = fc.record({
      gapMs: fc.integer({ min: 0, max: 2000 }),
      amount: fc.integer({ min: 1, max: 50 }),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 100 }),
        fc.array(step, { maxLength: 200 }),
        (capacity, perSecond, steps) => {
          const bucket = new TokenBucket(capacity, perSecond, 0);
          const admitted: Array<{ at: number; amount: number }> = [];
          let now = 0;
          for (const { gapMs, amount } of steps) {
            now += gapMs;
            const wait = bucket.take(amount, now);
            if (wait === 0) admitted.push({ at: now, amount });
            else assert.ok(wait >= 1);
          }
          for (let i = 0; i < admitted.length; i++) {
            let sum = 0;
            for (let j = i; j < admitted.length; j++) {
              sum += (admitted[j] as { amount: number }).amount;
              const seconds =
                ((admitted[j] as { at: number }).at - (admitted[i] as { at: number }).at) / 1000;
              assert.ok(
                sum <= capacity + perSecond * seconds + 1e-9,
                `${sum} > ${capacity} + ${perSecond} × ${seconds}`,
              );
            }
          }
        },
      ),
    );
  });

  test('property: a refused request admitted after the wait it was told', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 1, max: 100 }),
        (capacity, perSecond, first, second) => {
          const bucket = new TokenBucket(capacity, perSecond, 0);
          bucket.take(Math.min(first, capacity), 0);
          const wait = bucket.take(Math.min(second, capacity), 0);
          if (wait > 0) assert.equal(bucket.take(Math.min(second, capacity), wait), 0);
        },
      ),
    );
  });
});
