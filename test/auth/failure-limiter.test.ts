import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { AuthFailureLimiter, addressKey } from '../../src/auth/failure-limiter.js';

function limiter(limit = 3, windowMs = 60_000, maxTrackedAddresses = 1000) {
  let now = 1_000_000;
  const instance = new AuthFailureLimiter({ limit, windowMs, maxTrackedAddresses, now: () => now });
  return {
    instance,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

describe('AuthFailureLimiter', () => {
  test('the limit-th failure is still answered, the next request is refused until the window ends', () => {
    const { instance, advance } = limiter(3, 60_000);
    for (let i = 0; i < 3; i++) {
      assert.equal(instance.retryAfterSeconds('198.51.100.7'), 0, `request ${i + 1}`);
      instance.recordFailure('198.51.100.7');
    }
    assert.equal(instance.retryAfterSeconds('198.51.100.7'), 60);
    advance(59_001);
    assert.equal(instance.retryAfterSeconds('198.51.100.7'), 1);
    assert.equal(instance.refused, 2);
    advance(999);
    assert.equal(instance.retryAfterSeconds('198.51.100.7'), 0);
    assert.equal(instance.trackedAddresses, 0, 'the ended window is forgotten');
  });

  test('the window is fixed: failures after it start a new one', () => {
    const { instance, advance } = limiter(2, 10_000);
    instance.recordFailure('a');
    advance(9_000);
    instance.recordFailure('a');
    assert.equal(instance.retryAfterSeconds('a'), 1);
    advance(1_000);
    assert.equal(instance.retryAfterSeconds('a'), 0);
    instance.recordFailure('a');
    assert.equal(instance.retryAfterSeconds('a'), 0, 'one failure in the new window');
  });

  test('other addresses are not affected', () => {
    const { instance } = limiter(1);
    instance.recordFailure('192.0.2.1');
    assert.ok(instance.retryAfterSeconds('192.0.2.1') > 0);
    assert.equal(instance.retryAfterSeconds('192.0.2.2'), 0);
    assert.equal(instance.retryAfterSeconds(undefined), 0);
  });

  test('limit 0 counts nothing and refuses nothing', () => {
    const { instance } = limiter(0);
    for (let i = 0; i < 100; i++) instance.recordFailure('192.0.2.1');
    assert.equal(instance.retryAfterSeconds('192.0.2.1'), 0);
    assert.equal(instance.trackedAddresses, 0);
  });

  test('a reload changes limit and window for the next decision', () => {
    const { instance } = limiter(10);
    instance.recordFailure('a');
    instance.recordFailure('a');
    assert.equal(instance.retryAfterSeconds('a'), 0);
    instance.configure(2, 60_000);
    assert.equal(instance.retryAfterSeconds('a'), 60);
  });

  test('memory is bounded: at most maxTrackedAddresses addresses are tracked', () => {
    const { instance } = limiter(1, 60_000, 100);
    for (let i = 0; i < 10_000; i++) instance.recordFailure(`10.0.${i >> 8}.${i & 255}`);
    assert.equal(instance.trackedAddresses, 100);
    // The most recent failures are the ones kept.
    assert.ok(instance.retryAfterSeconds('10.0.39.15') > 0);
    assert.equal(instance.retryAfterSeconds('10.0.0.1'), 0);
  });
});

describe('addressKey', () => {
  test('IPv4 and IPv4-mapped IPv6 are the same client', () => {
    assert.equal(addressKey('203.0.113.9'), '203.0.113.9');
    assert.equal(addressKey('::ffff:203.0.113.9'), '203.0.113.9');
  });

  test('IPv6 addresses are grouped by /64, whatever their spelling', () => {
    const key = addressKey('2001:db8:1:2::1');
    assert.equal(key, '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), key);
    assert.equal(addressKey('2001:db8:1:2:0:0:0:1%eth0'), key);
    assert.notEqual(addressKey('2001:db8:1:3::1'), key);
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
  });

  test('every address in a /64 maps to one key (property)', () => {
    const group = fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16));
    fc.assert(
      fc.property(
        fc.array(group, { minLength: 8, maxLength: 8 }),
        fc.array(group, { minLength: 4, maxLength: 4 }),
        (a, tail) => {
          const other = [...a.slice(0, 4), ...tail];
          assert.equal(addressKey(a.join(':')), addressKey(other.join(':')));
        },
      ),
    );
  });
});
