import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AuthFailureLimiter, type SharedFailures } from '../../src/auth/failure-limiter.js';

/*
 * Issue 14: AUTH_FAILURE_LIMIT over a shared store, with a store model whose answers the test
 * delivers when it wants (Redis answering late, or not at all).
 */

class SharedWindowModel {
  readonly windows = new Map<string, { startedAt: number; failures: number }>();
  constructor(readonly now: () => number) {}
  add(key: string, windowMs: number): { failures: number; msLeft: number } {
    const now = this.now();
    let window = this.windows.get(key);
    if (window === undefined || now - window.startedAt >= windowMs) {
      window = { startedAt: now, failures: 0 };
      this.windows.set(key, window);
    }
    window.failures++;
    return { failures: window.failures, msLeft: window.startedAt + windowMs - now };
  }
}

/** One process's view of the store: its answers wait in `pending` until delivered. */
function processView(model: SharedWindowModel) {
  const pending: Array<() => void> = [];
  const view: SharedFailures & { up: boolean } = {
    up: true,
    addFailure: (key, windowMs) => {
      const answer = model.add(key, windowMs);
      return new Promise((resolve) => pending.push(() => resolve(answer)));
    },
  };
  const deliver = (): void => {
    for (const resolve of pending.splice(0)) resolve();
  };
  return { view, deliver };
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('AUTH_FAILURE_LIMIT shared between processes (issue 14)', () => {
  test('failures alternating over two processes are counted together, with one past the limit each at most', async () => {
    let now = 1000;
    const model = new SharedWindowModel(() => now);
    const views = [processView(model), processView(model)];
    const reached: number[] = [];
    const limiters = views.map(
      ({ view }, index) =>
        new AuthFailureLimiter({
          limit: 5,
          windowMs: 60_000,
          exempt: [],
          maxTrackedAddresses: 10,
          now: () => now,
          shared: view,
          onLimitReached: () => reached.push(index),
        }),
    );
    let admitted = 0;
    for (let i = 0; i < 20; i++) {
      const p = i % 2;
      const limiter = limiters[p] as AuthFailureLimiter;
      now += 10;
      if (limiter.retryAfterSeconds('203.0.113.9') > 0) continue;
      limiter.recordFailure('203.0.113.9');
      admitted++;
      views[p]?.deliver();
      await flush();
    }
    // Alone, each would have let 5 through (10).
    assert.ok(admitted >= 5 && admitted <= 5 + 2, `${admitted} failures let through`);
    for (const limiter of limiters) {
      assert.equal(limiter.retryAfterSeconds('203.0.113.9'), 60, 'the window of the first failure, anywhere');
    }
    assert.deepEqual(reached.sort(), [0, 1], 'each process logs the limit once');
  });

  test('answers that never come: each process still counts on its own', async () => {
    const model = new SharedWindowModel(() => 0);
    const { view } = processView(model);
    const limiter = new AuthFailureLimiter({
      limit: 3,
      windowMs: 60_000,
      exempt: [],
      maxTrackedAddresses: 10,
      now: () => 0,
      shared: view,
    });
    for (let i = 0; i < 3; i++) limiter.recordFailure('198.51.100.1');
    assert.ok(limiter.retryAfterSeconds('198.51.100.1') > 0);
  });

  test('a store that is down is not asked', () => {
    const model = new SharedWindowModel(() => 0);
    const { view } = processView(model);
    view.up = false;
    const limiter = new AuthFailureLimiter({
      limit: 3,
      windowMs: 60_000,
      exempt: [],
      maxTrackedAddresses: 10,
      shared: view,
    });
    limiter.recordFailure('198.51.100.2');
    assert.equal(model.windows.size, 0);
  });
});
