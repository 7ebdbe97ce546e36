/*
 * The arithmetic of the rate and byte budgets (issue 14): a token bucket holding at most
 * `capacity` tokens, refilled continuously at `perSecond`, full at the start. Over any interval
 * of d seconds it admits at most capacity + perSecond × d: the property test holds it to that.
 *
 * take() answers with a number, not an object, so the request path allocates nothing.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;
  private readonly perMs: number;

  constructor(
    readonly capacity: number,
    readonly perSecond: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.updatedAt = now;
    this.perMs = perSecond / 1000;
  }

  /**
   * Takes `amount` tokens at `now` (ms) if the bucket holds them: 0. Otherwise takes nothing and
   * answers the milliseconds until it will hold them (at least 1); an amount above the capacity
   * can never pass and answers the time to fill the bucket from empty.
   */
  take(amount: number, now: number): number {
    this.refill(now);
    if (amount <= this.tokens) {
      this.tokens -= amount;
      return 0;
    }
    const missing = Math.min(amount, this.capacity) - this.tokens;
    return Math.max(1, Math.ceil(missing / this.perMs));
  }

  /** Whole tokens left at `now`, for the RateLimit header. */
  remaining(now: number): number {
    this.refill(now);
    return Math.floor(this.tokens);
  }

  /** Milliseconds until the bucket is full again at `now`: the reset of the RateLimit header. */
  untilFull(now: number): number {
    this.refill(now);
    return Math.ceil((this.capacity - this.tokens) / this.perMs);
  }

  private refill(now: number): void {
    // A clock that steps back refills nothing and never takes tokens away.
    if (now <= this.updatedAt) return;
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.updatedAt) * this.perMs);
    this.updatedAt = now;
  }
}
