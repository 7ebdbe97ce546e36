import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { LeasedBudget, type LeaseGrant, leaseSizeOf } from '../../src/limits/leased-budget.js';
import { TokenBucket } from '../../src/limits/token-bucket.js';

/*
 * Issue 14: the arithmetic of budgets shared through leases. N simulated processes take leases
 * from one shared bucket (the model of the Redis script: grants part of what is asked, never
 * below zero) in any order, with answers delayed, reordered or lost; whatever happens, what
 * they admit together stays within the documented bound (src/limits/leased-budget.ts).
 */

/** The shared bucket as the Lua script keeps it. */
class SharedBucketModel {
  private tokens: number;
  private at = 0;
  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
  ) {
    this.tokens = capacity;
  }
  lease(want: number, now: number): LeaseGrant {
    if (now > this.at) {
      this.tokens = Math.min(this.capacity, this.tokens + ((now - this.at) * this.perSecond) / 1000);
      this.at = now;
    }
    const granted = Math.max(0, Math.min(want, Math.floor(this.tokens)));
    this.tokens -= granted;
    return { granted, left: this.tokens };
  }
}

type Step =
  | { readonly kind: 'request'; readonly process: number; readonly amount: number; readonly gapMs: number }
  /** Redis runs the oldest pending lease of a process (the command reached it). */
  | { readonly kind: 'serve'; readonly process: number; readonly gapMs: number }
  /** The answer of a served lease reaches its process, or its command failed (timeout). */
  | { readonly kind: 'answer'; readonly process: number; readonly lost: boolean; readonly gapMs: number };

interface Admitted {
  readonly at: number;
  readonly amount: number;
}

/** Runs the steps; answers every admission with its time. */
function simulate(
  processes: number,
  capacity: number,
  perSecond: number,
  steps: readonly Step[],
): { admitted: Admitted[]; largest: number } {
  const shared = new SharedBucketModel(capacity, perSecond);
  const budgets = Array.from({ length: processes }, () => new LeasedBudget(capacity, perSecond));
  const pending = budgets.map(() => [] as number[]);
  const served = budgets.map(() => [] as Array<{ asked: number; grant: LeaseGrant }>);
  const admitted: Admitted[] = [];
  let largest = 0;
  let now = 0;
  for (const step of steps) {
    now += step.gapMs;
    const p = step.process % processes;
    const budget = budgets[p] as LeasedBudget;
    if (step.kind === 'request') {
      const wait = budget.take(step.amount, now);
      if (wait === 0) {
        admitted.push({ at: now, amount: step.amount });
        largest = Math.max(largest, step.amount);
      } else {
        assert.ok(wait >= 1);
      }
      const asked = budget.leaseDue(now);
      if (asked > 0) pending[p]?.push(asked);
    } else if (step.kind === 'serve') {
      const asked = pending[p]?.shift();
      if (asked !== undefined) served[p]?.push({ asked, grant: shared.lease(asked, now) });
    } else {
      const answer = served[p]?.shift();
      if (answer === undefined) {
        // A command lost before Redis ran it.
        if (step.lost && pending[p]?.shift() !== undefined) budget.failed();
        continue;
      }
      // A command Redis ran whose answer was lost: its tokens are gone for everyone.
      if (step.lost) budget.failed();
      else budget.granted(answer.grant, answer.asked, now);
    }
  }
  return { admitted, largest };
}

const stepArbitrary = (maxAmount: number, maxGapMs: number) =>
  fc.oneof(
    fc.record({
      kind: fc.constant('request' as const),
      process: fc.nat(7),
      amount: fc.integer({ min: 1, max: maxAmount }),
      gapMs: fc.integer({ min: 0, max: maxGapMs }),
    }),
    fc.record({
      kind: fc.constant('serve' as const),
      process: fc.nat(7),
      gapMs: fc.integer({ min: 0, max: 50 }),
    }),
    fc.record({
      kind: fc.constant('answer' as const),
      process: fc.nat(7),
      lost: fc.boolean(),
      gapMs: fc.integer({ min: 0, max: 50 }),
    }),
  );

/** The most any one process may be ahead: a lease, or one request larger than a lease. */
function perProcessBound(capacity: number, largest: number): number {
  return Math.max(leaseSizeOf(capacity), largest);
}

function assertWithinBound(
  processes: number,
  capacity: number,
  perSecond: number,
  steps: readonly Step[],
): void {
  const { admitted, largest } = simulate(processes, capacity, perSecond, steps);
  const ahead = perProcessBound(capacity, largest);
  // Since the start: the budget, plus one lease (or one request) per process.
  const total = admitted.reduce((sum, { amount }) => sum + amount, 0);
  const elapsed = (admitted.at(-1)?.at ?? 0) / 1000;
  assert.ok(
    total <= capacity + perSecond * elapsed + processes * ahead + 1e-9,
    `from the start: ${total} > ${capacity} + ${perSecond} × ${elapsed} + ${processes} × ${ahead}`,
  );
  // Over any interval: a lease granted before it can be spent inside it too.
  for (let i = 0; i < admitted.length; i++) {
    let sum = 0;
    for (let j = i; j < admitted.length; j++) {
      sum += (admitted[j] as Admitted).amount;
      const seconds = ((admitted[j] as Admitted).at - (admitted[i] as Admitted).at) / 1000;
      assert.ok(
        sum <= capacity + perSecond * seconds + 2 * processes * ahead + 1e-9,
        `${sum} > ${capacity} + ${perSecond} × ${seconds} + 2 × ${processes} × ${ahead}`,
      );
    }
  }
}

describe('leased budgets over a shared bucket (issue 14 limit arithmetic)', () => {
  test('a cold process admits its first request on credit, then spends the lease it was granted', () => {
    const budget = new LeasedBudget(100, 10);
    assert.equal(budget.leaseSize, 10);
    assert.equal(budget.take(1, 0), 0, 'admitted on credit before any lease');
    const asked = budget.leaseDue(0);
    assert.equal(asked, 11, 'a lease, plus the credit to pay back');
    assert.equal(budget.leaseDue(0), 0, 'one lease request at a time');
    for (let i = 1; i < 10; i++) assert.equal(budget.take(1, 0), 0, `on credit ${i}`);
    assert.ok(budget.take(1, 0) > 0, 'no more than a lease ahead of Redis');
    budget.granted({ granted: 11, left: 89 }, asked, 1);
    assert.equal(budget.remaining(1), 1, 'the credit was paid back first');
    assert.equal(budget.take(1, 1), 0);
  });

  test('a shared bucket that answers short: refused with the time until it holds a token again', () => {
    const budget = new LeasedBudget(10, 1);
    assert.equal(budget.take(1, 0), 0);
    const asked = budget.leaseDue(0);
    budget.granted({ granted: 0, left: 0.5 }, asked, 0);
    assert.equal(budget.take(1, 0), 500, 'half a token missing at one per second');
    assert.equal(budget.leaseDue(100), 0, 'not asked again before a token is back');
    assert.ok(budget.leaseDue(600) > 0);
  });

  test('a lease unanswered for more than 20 ms, or failed, is late until one is granted', () => {
    const budget = new LeasedBudget(10, 1);
    assert.equal(budget.take(1, 0), 0);
    let asked = budget.leaseDue(0);
    assert.equal(budget.leaseLate(20), false);
    assert.equal(budget.leaseLate(21), true);
    budget.failed();
    assert.equal(budget.leaseLate(100), true, 'the last one failed');
    asked = budget.leaseDue(100);
    budget.granted({ granted: asked, left: 5 }, asked, 101);
    assert.equal(budget.leaseLate(101), false);
  });

  test('a body larger than the capacity never passes; one larger than a lease passes alone', () => {
    const budget = new LeasedBudget(1000, 1000 / 60);
    assert.equal(budget.take(1001, 0), 60_000);
    assert.equal(budget.take(600, 0), 0, 'one request larger than a lease, on credit');
    assert.ok(budget.take(1, 0) > 0, 'nothing more on credit until Redis has answered');
  });

  test('property: rate= (one token a request) over N processes stays within budget + the lease bound', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 40 }),
        // Down to one token in 100 s: the shared bucket runs dry within a run.
        fc.integer({ min: 1, max: 2000 }).map((hundredths) => hundredths / 100),
        fc.array(stepArbitrary(1, 20), { maxLength: 400 }),
        (processes, capacity, perSecond, steps) => assertWithinBound(processes, capacity, perSecond, steps),
      ),
      { numRuns: 500 },
    );
  });

  test('property: bytes= (requests of any size up to the capacity) stays within budget + the lease bound', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 10, max: 10_000 }),
        fc.array(stepArbitrary(3_000, 20), { maxLength: 400 }),
        (processes, capacity, steps) => assertWithinBound(processes, capacity, capacity / 60, steps),
      ),
      { numRuns: 500 },
    );
  });

  test('property: with Redis answering at once, a lone process admits about what a memory bucket does', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 100 }),
        fc.array(fc.integer({ min: 0, max: 100 }), { maxLength: 200 }),
        (capacity, perSecond, gaps) => {
          const shared = new SharedBucketModel(capacity, perSecond);
          const budget = new LeasedBudget(capacity, perSecond);
          const memory = new TokenBucket(capacity, perSecond, 0);
          let now = 0;
          let leased = 0;
          let alone = 0;
          for (const gap of gaps) {
            now += gap;
            if (budget.take(1, now) === 0) leased++;
            if (memory.take(1, now) === 0) alone++;
            const asked = budget.leaseDue(now);
            if (asked > 0) budget.granted(shared.lease(asked, now), asked, now);
          }
          // The tokens a lease holds unspent are all a lone process can lose.
          assert.ok(leased + budget.leaseSize >= alone, `${leased} leased, ${alone} from memory`);
        },
      ),
    );
  });
});
