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
 * The rate= budgets of this process (LIMIT_STORE=memory): one bucket per credential name, made
 * again when a reload changes its rate.
 */
export class RequestRateLimiter {
  private readonly buckets = new Map<string, { rate: RequestRate; bucket: TokenBucket }>();
  private readonly byteBuckets = new Map<string, { perMinute: number; bucket: TokenBucket }>();

  /**
   * null when `identity` may send a body of `bytes` now (and takes them), else how it is
   * refused: a body larger than the whole per-minute budget is refused for a minute.
   */
  takeBytes(identity: string, perMinute: number, bytes: number, now: number): RateRefusal | null {
    let entry = this.byteBuckets.get(identity);
    if (entry === undefined || entry.perMinute !== perMinute) {
      entry = { perMinute, bucket: new TokenBucket(perMinute, perMinute / 60, now) };
      this.byteBuckets.set(identity, entry);
    }
    const waitMs = entry.bucket.take(bytes, now);
    if (waitMs === 0) return null;
    const retryAfterSeconds = Math.ceil(waitMs / 1000);
    return {
      retryAfterSeconds,
      policy: `"bytes";q=${perMinute};w=60`,
      state: `"bytes";r=${entry.bucket.remaining(now)};t=${retryAfterSeconds}`,
      text: `byte limit of ${identity} exceeded`,
    };
  }

  /** null when `identity` may send a request now (and takes one), else how it is refused. */
  take(identity: string, rate: RequestRate, now: number): RateRefusal | null {
    let entry = this.buckets.get(identity);
    if (entry === undefined || entry.rate !== rate) {
      entry = { rate, bucket: new TokenBucket(rate.burst, rate.count / rate.windowSeconds, now) };
      this.buckets.set(identity, entry);
    }
    const waitMs = entry.bucket.take(1, now);
    if (waitMs === 0) return null;
    const retryAfterSeconds = Math.ceil(waitMs / 1000);
    return {
      retryAfterSeconds,
      policy: `"rate";q=${rate.count};w=${rate.windowSeconds}`,
      state: `"rate";r=${entry.bucket.remaining(now)};t=${retryAfterSeconds}`,
      text: rateLimitText(identity),
    };
  }
}

export function rateLimitText(identity: string): string {
  return `rate limit of ${identity} exceeded`;
}
