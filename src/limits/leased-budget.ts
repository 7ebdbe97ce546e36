/*
 * One process's share of a budget kept in a shared store (LIMIT_STORE=redis, issue 14). The
 * shared bucket (shared-bucket.lua: capacity, refill per second, never below zero) lives in
 * Redis; a process takes tokens from it in leases, in the background, and admits requests from
 * the lease it holds, so the request path never waits on Redis.
 *
 * A process that holds too little may admit on credit, at most one lease ahead of what Redis has
 * granted it (or one request, when a single request is larger than a lease); the next grant pays
 * the credit back first. That is the over-admission, and its whole bound:
 * - from a cold start, P processes together admit at most the shared budget + P leases;
 * - over any interval, a lease granted just before it can be spent inside it too: at most
 *   capacity + rate × duration + 2 leases per process.
 * A lease is a tenth of the capacity (at least one token): 10 requests of a burst of 100.
 * Leased tokens a process does not spend are lost to the others, never added to anyone. A late
 * lease (leaseLate) is the caller's to handle: SharedRequestRateLimiter then lets the process's
 * own bucket judge, so a slow Redis never refuses an honest request.
 */

/** What the shared store answered to a lease request. */
export interface LeaseGrant {
  /** Tokens taken from the shared bucket for this process (0 … the amount asked). */
  readonly granted: number;
  /** Tokens left in the shared bucket after the grant. */
  readonly left: number;
}

/** A lease is a tenth of the capacity, at least one token. */
export function leaseSizeOf(capacity: number): number {
  return Math.max(1, Math.ceil(capacity / 10));
}

/** Longest pause before asking again a shared bucket that answered short. */
const MAX_BACKOFF_MS = 1000;
/**
 * A lease unanswered this long is late: Redis is slow, or this process's event loop stalled.
 * Requests that would have to wait for it are judged by the process's own bucket instead.
 */
export const LATE_LEASE_MS = 20;

export class LeasedBudget {
  readonly leaseSize: number;
  private readonly perMs: number;
  /** Granted to this process and not spent yet. */
  private held = 0;
  /** Admitted on credit and not yet covered by a grant. */
  private credit = 0;
  private asking = false;
  private askedAt = 0;
  /** The last lease request failed (timed out) and none was granted since. */
  private unanswered = false;
  /** No lease is asked for before this (ms), after the shared bucket answered short. */
  private notBefore = 0;
  /** The shared bucket as its last answer left it, to tell a refused client when to retry. */
  private sharedLeft: number | null = null;
  private sharedAt = 0;
  /** The largest request refused for want of tokens since the last grant: what to ask for. */
  private wanted = 0;

  constructor(
    readonly capacity: number,
    readonly perSecond: number,
  ) {
    this.leaseSize = leaseSizeOf(capacity);
    this.perMs = perSecond / 1000;
  }

  /**
   * Takes `amount` at `now`: 0 when admitted, else the milliseconds to wait (at least 1), as
   * TokenBucket.take answers. An amount above the capacity can never pass.
   */
  take(amount: number, now: number): number {
    if (amount > this.capacity) return Math.max(1, Math.ceil(this.capacity / this.perMs));
    if (amount <= this.held) {
      this.held -= amount;
      return 0;
    }
    const short = amount - this.held;
    if (this.credit === 0 || this.credit + short <= this.leaseSize) {
      this.held = 0;
      this.credit += short;
      return 0;
    }
    this.wanted = Math.max(this.wanted, amount);
    return this.waitFor(amount, now);
  }

  /** Whole tokens this process holds: the RateLimit header's remaining. */
  remaining(_now: number): number {
    return Math.floor(this.held);
  }

  /**
   * The tokens to ask the shared bucket for now, or 0 when no lease is due (one is under way,
   * the holding is above half a lease, or the bucket answered short a moment ago). A non-zero
   * answer means a request is under way until granted() or failed() is called.
   */
  leaseDue(now: number): number {
    if (this.asking || now < this.notBefore) return 0;
    if (this.credit === 0 && this.held > this.leaseSize / 2 && this.wanted <= this.held) return 0;
    this.asking = true;
    this.askedAt = now;
    return Math.max(this.leaseSize, this.wanted) + this.credit - this.held;
  }

  /** Applies what the shared bucket granted to the request leaseDue() started. */
  granted(grant: LeaseGrant, asked: number, now: number): void {
    this.asking = false;
    this.unanswered = false;
    const repaid = Math.min(grant.granted, this.credit);
    this.credit -= repaid;
    this.held += grant.granted - repaid;
    this.sharedLeft = grant.left;
    this.sharedAt = now;
    if (grant.granted >= asked) {
      this.wanted = 0;
      this.notBefore = 0;
    } else {
      const need = Math.max(1, Math.min(this.wanted, this.capacity)) - grant.left;
      this.notBefore = now + Math.min(MAX_BACKOFF_MS, Math.max(0, Math.ceil(need / this.perMs)));
    }
  }

  /** Whether the lease under way is unanswered after LATE_LEASE_MS, or the last one failed. */
  leaseLate(now: number): boolean {
    return this.unanswered || (this.asking && now - this.askedAt > LATE_LEASE_MS);
  }

  /** The request leaseDue() started failed: nothing was granted. */
  failed(): void {
    this.asking = false;
    this.unanswered = true;
  }

  /** Until the shared bucket, as last seen, holds `amount` again; 1 ms when it is not known. */
  private waitFor(amount: number, now: number): number {
    if (this.sharedLeft === null) return 1;
    const estimate = Math.min(this.capacity, this.sharedLeft + (now - this.sharedAt) * this.perMs);
    return Math.max(1, Math.ceil((amount - estimate) / this.perMs));
  }
}
