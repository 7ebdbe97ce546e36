import type { Registry } from 'prom-client';
import { AuthFailureLimiter } from '../auth/failure-limiter.js';
import type { GatewayConfig } from '../config/types.js';
import { InflightCounter } from '../limits/inflight.js';
import { openLimitStore } from '../limits/open-limit-store.js';
import type { RequestRateLimiter } from '../limits/request-rate-limiter.js';
import type { Logger } from '../observability/logger.js';

export interface Limiters {
  readonly rates: RequestRateLimiter;
  /** inflight= places: per process by design (see InflightCounter). */
  readonly inflight: InflightCounter;
  /** Shared by every listener of this process; across processes only with LIMIT_STORE=redis. */
  readonly failureLimiter: AuthFailureLimiter;
  /** Ends the connection to the LIMIT_STORE, if any. */
  close(): Promise<void>;
}

/** The request-rate and authentication-failure limiters every listener of this process shares. */
export function buildLimiters(config: GatewayConfig, logger: Logger, registry: Registry): Limiters {
  const stores = openLimitStore(config.limitStore, registry, logger);
  const failureLimiter = new AuthFailureLimiter({
    shared: stores.failures,
    limit: config.authFailureLimit,
    windowMs: config.authFailureWindowMs,
    exempt: config.authFailureLimitExempt,
    maxTrackedAddresses: 100_000,
    onLimitReached: ({ address, failures, windowMs }) =>
      logger.warn(
        { client: address, auth_failures: failures, window_ms: windowMs },
        'client reached AUTH_FAILURE_LIMIT: its requests get 429 until its window ends',
      ),
  });
  return {
    rates: stores.rates,
    inflight: new InflightCounter(),
    failureLimiter,
    close: () => stores.close(),
  };
}
