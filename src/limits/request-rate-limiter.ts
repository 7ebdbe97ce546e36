import type { RequestRate } from '../config/types.js';
import { TokenBucket } from './token-bucket.js';

/** How a request over its credential's rate is answered, on both protocols. */
export interface RateRefusal {
  readonly retryAfterSeconds: number;
  /** `"rate";q=100;w=1`: the RateLimit-Policy header (draft-ietf-httpapi-ratelimit-headers). */
  readonly policy: string;
  /** `"rate";r=0;t=1`: the RateLimit header. */
  readonly state: string;
  /** `rate limit of checkout-service exceeded`: the 429 body and gRPC message, no secret. */
  readonly text: string;
}

/**
 * The rate= and bytes= budgets of this process (LIMIT_STORE=memory): one bucket per credential
 * name, made again when a reload changes its limit (and only then). A shared store (SharedRequestRateLimiter)
 * answers other budgets through the two hooks below.
 */
export class RequestRateLimiter {
  private readonly buckets = new Map<string, { rate: RequestRate; bucket: TokenBucket }>();
  private readonly byteBuckets = new Map<string, { perMinute: number; bucket: TokenBucket }>();

  /**
   * null when `identity` may send a body of `bytes` now (and takes them), else how it is
   * refused: a body larger than the whole per-minute budget is refused for a minute.
   */
  takeBytes(identity: string, perMinute: number, bytes: number, now: number): RateRefusal | null {
    const budget = this.byteBudget(identity, perMinute, now);
    return refusalOf(budget, bytes, now, 'bytes', perMinute, 60, `byte limit of ${identity} exceeded`);
  }

  /** null when `identity` may send a request now (and takes one), else how it is refused. */
  take(identity: string, rate: RequestRate, now: number): RateRefusal | null {
    const budget = this.rateBudget(identity, rate, now);
    return refusalOf(budget, 1, now, 'rate', rate.count, rate.windowSeconds, rateLimitText(identity));
  }

  protected rateBudget(identity: string, rate: RequestRate, now: number): Budget {
    let entry = this.buckets.get(identity);
    // By value: a reload parses every credential line again, and an unchanged rate= keeps its bucket.
    if (entry === undefined || !sameRate(entry.rate, rate)) {
      entry = { rate, bucket: new TokenBucket(rate.burst, rate.count / rate.windowSeconds, now) };
      this.buckets.set(identity, entry);
    }
    return entry.bucket;
  }

  protected byteBudget(identity: string, perMinute: number, now: number): Budget {
    let entry = this.byteBuckets.get(identity);
    if (entry === undefined || entry.perMinute !== perMinute) {
      entry = { perMinute, bucket: new TokenBucket(perMinute, perMinute / 60, now) };
      this.byteBuckets.set(identity, entry);
    }
    return entry.bucket;
  }
}

/** A budget as the request path sees it: a TokenBucket here, a LeasedBudget with a shared store. */
export interface Budget {
  /** 0 when `amount` is taken, else the milliseconds to wait (at least 1). */
  take(amount: number, now: number): number;
  remaining(now: number): number;
}

/** Takes `amount` from `bucket`: null when it passes, else the refusal with its headers. */
function refusalOf(
  bucket: Budget,
  amount: number,
  now: number,
  policy: 'rate' | 'bytes',
  quota: number,
  windowSeconds: number,
  text: string,
): RateRefusal | null {
  const waitMs = bucket.take(amount, now);
  if (waitMs === 0) return null;
  const retryAfterSeconds = Math.ceil(waitMs / 1000);
  return {
    retryAfterSeconds,
    policy: `"${policy}";q=${quota};w=${windowSeconds}`,
    state: `"${policy}";r=${bucket.remaining(now)};t=${retryAfterSeconds}`,
    text,
  };
}

/** Whether two parsed rate= options are the same limit (a reload makes new, equal objects). */
export function sameRate(a: RequestRate, b: RequestRate): boolean {
  return a === b || (a.count === b.count && a.windowSeconds === b.windowSeconds && a.burst === b.burst);
}

export function rateLimitText(identity: string): string {
  return `rate limit of ${identity} exceeded`;
}
