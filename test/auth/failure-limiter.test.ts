import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { AuthFailureLimiter, addressKey } from '../../src/auth/failure-limiter.js';
import type { AddressRange } from '../../src/config/types.js';
import { parseAddressRanges } from '../../src/config/values.js';

function limiter(
  limit = 3,
  windowMs = 60_000,
  maxTrackedAddresses = 1000,
  exempt: readonly AddressRange[] = [],
) {
  let now = 1_000_000;
  const instance = new AuthFailureLimiter({ limit, windowMs, exempt, maxTrackedAddresses, now: () => now });
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
    instance.configure({ limit: 2, windowMs: 60_000, exempt: [] });
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

function ranges(text: string): readonly AddressRange[] {
  const parsed = parseAddressRanges(text);
  assert.ok(parsed.ok, JSON.stringify(parsed));
  return parsed.value;
}

describe('AUTH_FAILURE_LIMIT_EXEMPT (issue 11 item 9)', () => {
  const exempt = ranges('10.0.0.0/8, 192.0.2.7, fd00::/8, 2001:db8::1');

  test('an exempt address is never refused, however often it fails; others still are', () => {
    const { instance } = limiter(2, 60_000, 1000, exempt);
    for (const address of ['10.1.2.3', '::ffff:10.9.9.9', '192.0.2.7', 'fd00::42', '2001:db8::1']) {
      for (let i = 0; i < 50; i++) instance.recordFailure(address);
      assert.equal(instance.retryAfterSeconds(address), 0, address);
      assert.equal(instance.failuresOf(address), 0, `${address} is not counted toward the limit`);
    }
    for (const address of ['11.0.0.1', '192.0.2.8', '::ffff:192.0.2.8', 'fe80::1', '2001:db8::2']) {
      instance.recordFailure(address);
      instance.recordFailure(address);
      assert.ok(instance.retryAfterSeconds(address) > 0, address);
    }
  });

  test('a reload that exempts a blocked address lets it in at once', () => {
    const { instance } = limiter(1);
    instance.recordFailure('198.51.100.7');
    assert.ok(instance.retryAfterSeconds('198.51.100.7') > 0);
    instance.configure({ limit: 1, windowMs: 60_000, exempt: ranges('198.51.100.0/24') });
    assert.equal(instance.retryAfterSeconds('198.51.100.7'), 0);
    instance.configure({ limit: 1, windowMs: 60_000, exempt: [] });
    assert.ok(instance.retryAfterSeconds('198.51.100.7') > 0, 'and removing the exemption applies too');
  });

  test('failuresOf answers the failures in the current window, what the 429 log line reports', () => {
    const { instance, advance } = limiter(3, 10_000);
    assert.equal(instance.failuresOf('203.0.113.5'), 0);
    for (let i = 0; i < 3; i++) instance.recordFailure('203.0.113.5');
    assert.equal(instance.failuresOf('203.0.113.5'), 3);
    assert.equal(instance.failuresOf('::ffff:203.0.113.5'), 3, 'the same client');
    assert.equal(instance.failuresOf(undefined), 0);
    advance(10_000);
    assert.equal(instance.failuresOf('203.0.113.5'), 0, 'the window ended');
  });
});

test('onLimitReached: once per address and window, with the address and its failures (issue 11 item 9)', () => {
  let now = 0;
  const events: unknown[] = [];
  const instance = new AuthFailureLimiter({
    limit: 2,
    windowMs: 1000,
    exempt: [],
    maxTrackedAddresses: 10,
    now: () => now,
    onLimitReached: (event) => events.push(event),
  });
  for (let i = 0; i < 5; i++) instance.recordFailure('192.0.2.9');
  assert.deepEqual(events, [{ address: '192.0.2.9', failures: 2, windowMs: 1000 }]);
  now = 1000;
  instance.recordFailure('192.0.2.9');
  instance.recordFailure('192.0.2.9');
  assert.equal(events.length, 2, 'a new window, a new line');
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
