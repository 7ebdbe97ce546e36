import type { RequestRate } from '../config/types.js';
import { LeasedBudget } from './leased-budget.js';
import type { RedisLimitStore } from './redis-limit-store.js';
import { type Budget, RequestRateLimiter, sameRate } from './request-rate-limiter.js';

/** One credential's budget in the shared store: spent from its lease, renewed in the background. */
class SharedBudget implements Budget {
  readonly budget: LeasedBudget;

  constructor(
    readonly key: string,
    capacity: number,
    perSecond: number,
    private readonly store: RedisLimitStore,
    /** This process's own bucket of the same limit (the memory store's). */
    private readonly local: (now: number) => Budget,
  ) {
    this.budget = new LeasedBudget(capacity, perSecond);
  }

  take(amount: number, now: number): number {
    let wait = this.budget.take(amount, now);
    // Never held up by a late lease: the process's own bucket judges what it would refuse.
    if (wait > 0 && this.budget.leaseLate(now)) wait = this.local(now).take(amount, now);
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
  /** By credential; replaced when a reload changes the limit. Keys are made only then. */
  private readonly rates = new Map<string, { readonly rate: RequestRate; readonly budget: SharedBudget }>();
  private readonly bytes = new Map<string, { readonly perMinute: number; readonly budget: SharedBudget }>();

  constructor(private readonly store: RedisLimitStore) {
    super();
    store.onUp(() => {
      this.rates.clear();
      this.bytes.clear();
    });
  }

  protected override rateBudget(identity: string, rate: RequestRate, now: number): Budget {
    if (!this.store.up) return super.rateBudget(identity, rate, now);
    let entry = this.rates.get(identity);
    if (entry === undefined || !sameRate(entry.rate, rate)) {
      const key = `rate:${identity}:${rate.count}/${rate.windowSeconds}:${rate.burst}`;
      const perSecond = rate.count / rate.windowSeconds;
      const local = (at: number) => super.rateBudget(identity, rate, at);
      entry = { rate, budget: new SharedBudget(key, rate.burst, perSecond, this.store, local) };
      this.rates.set(identity, entry);
    }
    return entry.budget;
  }

  protected override byteBudget(identity: string, perMinute: number, now: number): Budget {
    if (!this.store.up) return super.byteBudget(identity, perMinute, now);
    let entry = this.bytes.get(identity);
    if (entry === undefined || entry.perMinute !== perMinute) {
      const key = `bytes:${identity}:${perMinute}`;
      const local = (at: number) => super.byteBudget(identity, perMinute, at);
      entry = { perMinute, budget: new SharedBudget(key, perMinute, perMinute / 60, this.store, local) };
      this.bytes.set(identity, entry);
    }
    return entry.budget;
  }
}
