import { AuthFailureLimiter } from '../auth/failure-limiter.js';
import type { GatewayConfig } from '../config/types.js';
import { InflightCounter } from '../limits/inflight.js';
import { RequestRateLimiter } from '../limits/request-rate-limiter.js';
import type { Logger } from '../observability/logger.js';

export interface Limiters {
  readonly rates: RequestRateLimiter;
  /** inflight= places: per process by design (see InflightCounter). */
  readonly inflight: InflightCounter;
  /** Shared by every listener of this process (not across workers). */
  readonly failureLimiter: AuthFailureLimiter;
}

/** The request-rate and authentication-failure limiters every listener of this process shares. */
export function buildLimiters(config: GatewayConfig, logger: Logger): Limiters {
  const rates = new RequestRateLimiter();
  const failureLimiter = new AuthFailureLimiter({
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
  return { rates, inflight: new InflightCounter(), failureLimiter };
}
