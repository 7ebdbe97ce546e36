import type { RequestRate } from '../config/types.js';
import { LeasedBudget } from './leased-budget.js';
import type { RedisLimitStore } from './redis-limit-store.js';
import { type Budget, RequestRateLimiter } from './request-rate-limiter.js';

/** One credential's budget in the shared store: spent from its lease, renewed in the background. */
class SharedBudget implements Budget {
  readonly budget: LeasedBudget;

  constructor(
    readonly key: string,
    capacity: number,
    perSecond: number,
    private readonly store: RedisLimitStore,
  ) {
    this.budget = new LeasedBudget(capacity, perSecond);
  }

  take(amount: number, now: number): number {
    const wait = this.budget.take(amount, now);
    const asked = this.budget.leaseDue(now);
    if (asked > 0) {
      const { budget } = this;
      this.store.lease(this.key, budget.capacity, budget.perSecond, asked).then(
        (grant) => budget.granted(grant, asked, Date.now()),
        () => budget.failed(),
      );
    }
    return wait;
  }

  remaining(now: number): number {
    return this.budget.remaining(now);
  }
}

/**
 * The rate= and bytes= budgets with LIMIT_STORE=redis: one shared bucket per credential and
 * limit in Redis, spent by each process from leases it takes in the background (LeasedBudget
 * says how far that can over-admit). While the store is down each process falls back to its own
 * buckets (the memory limiter it extends) at once; when it is back, leases start afresh.
 */
export class SharedRequestRateLimiter extends RequestRateLimiter {
  /** By credential and limit kind; replaced when a reload changes the limit. */
  private readonly shared = new Map<string, SharedBudget>();

  constructor(private readonly store: RedisLimitStore) {
    super();
    store.onUp(() => this.shared.clear());
  }

  protected override rateBudget(identity: string, rate: RequestRate, now: number): Budget {
    if (!this.store.up) return super.rateBudget(identity, rate, now);
    const policy = `${rate.count}/${rate.windowSeconds}:${rate.burst}`;
    return this.sharedBudget(`rate:${identity}`, policy, rate.burst, rate.count / rate.windowSeconds);
  }

  protected override byteBudget(identity: string, perMinute: number, now: number): Budget {
    if (!this.store.up) return super.byteBudget(identity, perMinute, now);
    return this.sharedBudget(`bytes:${identity}`, String(perMinute), perMinute, perMinute / 60);
  }

  private sharedBudget(name: string, policy: string, capacity: number, perSecond: number): SharedBudget {
    const key = `${name}:${policy}`;
    let budget = this.shared.get(name);
    if (budget === undefined || budget.key !== key) {
      budget = new SharedBudget(key, capacity, perSecond, this.store);
      this.shared.set(name, budget);
    }
    return budget;
  }
}
