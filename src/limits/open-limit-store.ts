import type { Registry } from 'prom-client';
import type { SharedFailures } from '../auth/failure-limiter.js';
import type { LimitStore } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { RedisLimitStore } from './redis-limit-store.js';
import { RequestRateLimiter } from './request-rate-limiter.js';
import { SharedRequestRateLimiter } from './shared-rate-limiter.js';

/** What the gateway's limiters keep their state in, per LIMIT_STORE (issue 14). */
export interface LimitStores {
  /** The rate= and bytes= budgets every listener of this process takes from. */
  readonly rates: RequestRateLimiter;
  /** The AUTH_FAILURE_LIMIT counts shared with other processes, or null (memory). */
  readonly failures: SharedFailures | null;
  /** Ends the connection to the store, if any. */
  close(): Promise<void>;
}

/**
 * `memory`: each process on its own. A Redis URL: this process connects to it (every worker
 * does, on its own) and shares budgets and counts through it, falling back to memory while it
 * does not answer. Connecting is background work: the gateway starts serving at once.
 */
export function openLimitStore(store: LimitStore, registry: Registry, logger: Logger): LimitStores {
  if (store.kind === 'memory') {
    return { rates: new RequestRateLimiter(), failures: null, close: async () => undefined };
  }
  const redis = new RedisLimitStore(store, registry, logger);
  return { rates: new SharedRequestRateLimiter(redis), failures: redis, close: () => redis.close() };
}
