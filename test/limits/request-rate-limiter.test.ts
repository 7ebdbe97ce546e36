import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RequestRateLimiter } from '../../src/limits/request-rate-limiter.js';

describe('the memory rate limiter across reloads (issue 14)', () => {
  test('an unchanged rate= parsed again keeps its bucket; a changed one starts afresh', () => {
    const limiter = new RequestRateLimiter();
    const rate = () => ({ count: 2, windowSeconds: 60 as const, burst: 2 });
    assert.equal(limiter.take('checkout', rate(), 0), null);
    assert.equal(limiter.take('checkout', rate(), 0), null);
    // A reload hands the listeners a new, equal RequestRate.
    assert.equal(limiter.take('checkout', rate(), 0)?.text, 'rate limit of checkout exceeded');
    assert.equal(limiter.take('checkout', { count: 3, windowSeconds: 60, burst: 3 }, 0), null);
  });
});
