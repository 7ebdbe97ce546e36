import type { ListenerName, Scope } from '../config/types.js';
import type { InflightCounter } from '../limits/inflight.js';
import type { RateRefusal, RequestRateLimiter } from '../limits/request-rate-limiter.js';
import type { CredentialMetrics } from '../observability/credential-metrics.js';
import type { ListenerLimitMetrics } from '../observability/limit-metrics.js';
import type { ListenerMetrics } from '../observability/metrics.js';
import type { AuthState } from './auth-state.js';
import { type AuthFailureReason, type AuthOutcome, type Principal, SCOPE_BITS } from './credential-store.js';
import type { AuthFailureLimiter } from './failure-limiter.js';
import { readPresentedCredential } from './presented-credential.js';
import { classifyRequest } from './route-scope.js';

/**
 * What becomes of a request at the door, the same on every listener:
 * - `over-limit`: its client is over AUTH_FAILURE_LIMIT (429 / RESOURCE_EXHAUSTED), judged
 *   before any credential work;
 * - `refused`: no valid credential (401 / UNAUTHENTICATED; 503 / UNAVAILABLE when `overloaded`);
 * - `bad-target`: authenticated, but the target has no single meaning (400);
 * - `forbidden`: authenticated, but the credential lacks the scope the target needs (403 /
 *   PERMISSION_DENIED); not an authentication failure, so not counted toward the limit;
 * - `limited`: authenticated and allowed, but over its credential's rate=, its declared body
 *   over its bytes=, or all its inflight= places taken (429 / RESOURCE_EXHAUSTED with the retry
 *   delay); not an authentication failure (issue 14);
 * - `admitted`: forward `target` (the path as classified) for `principal`. `release` gives back
 *   its inflight= place when the exchange ends (the exchange record calls it); `meter` is set
 *   when the body's bytes must be taken from the bytes= budget as they stream (an ingest
 *   request without a declared length): it answers each chunk with null, or the refusal that
 *   cuts the body.
 */
export type Admission =
  | { readonly kind: 'over-limit'; readonly retryAfterSeconds: number; readonly failures: number }
  | { readonly kind: 'refused'; readonly reason: AuthFailureReason }
  | { readonly kind: 'bad-target'; readonly principal: Principal; readonly text: string }
  | {
      readonly kind: 'forbidden';
      readonly principal: Principal;
      readonly scope: Scope;
      readonly text: string;
    }
  | {
      readonly kind: 'limited';
      readonly principal: Principal;
      readonly limit: CredentialLimit;
      readonly refusal: RateRefusal;
    }
  | {
      readonly kind: 'admitted';
      readonly principal: Principal;
      readonly target: string;
      readonly release: (() => void) | undefined;
      readonly meter: BodyMeter | null;
    };

/** A request let in: what its exchange forwards, for whom, and what it holds of its limits. */
export type Admitted = Extract<Admission, { readonly kind: 'admitted' }>;

/** The per-credential limits of issue 14, as metrics and access logs name them. */
export type CredentialLimit = 'rate' | 'bytes' | 'inflight';

/** Takes a streamed body's chunk of `bytes` from its credential's bytes= budget. */
export type BodyMeter = (bytes: number) => RateRefusal | null;

/** The one-line 403 body and gRPC message: which scope is missing, never whose credential. */
export function lacksScopeText(scope: Scope): string {
  return `credential lacks scope "${scope}"`;
}

const LACKS: Readonly<Record<Scope, string>> = {
  ingest: lacksScopeText('ingest'),
  read: lacksScopeText('read'),
  admin: lacksScopeText('admin'),
};

export interface RequestAdmissionOptions {
  readonly listener: ListenerName;
  readonly auth: AuthState;
  readonly limiter: AuthFailureLimiter;
  readonly rates: RequestRateLimiter;
  readonly inflight: InflightCounter;
  readonly metrics: ListenerMetrics;
  readonly limits: ListenerLimitMetrics;
  readonly credentials: CredentialMetrics;
}

/**
 * The admission of a request, written once for both protocols (issue 12): failure limit, then
 * credential check, then route classification and scope check. A reload that lands while a
 * bcrypt check is under way is honoured: the request is judged again against the credentials in
 * force when the check settles, so it is never served with a scope its credential no longer had.
 */
export class RequestAdmission {
  constructor(private readonly options: RequestAdmissionOptions) {}

  /** The door of a data listener, from the options it is built with. */
  static forListener(options: {
    readonly config: { readonly name: ListenerName };
    readonly auth: AuthState;
    readonly metrics: ListenerMetrics;
    readonly credentialMetrics: CredentialMetrics;
    readonly protection: {
      readonly limiter: AuthFailureLimiter;
      readonly rates: RequestRateLimiter;
      readonly inflight: InflightCounter;
      readonly limits: ListenerLimitMetrics;
    };
  }): RequestAdmission {
    return new RequestAdmission({
      listener: options.config.name,
      auth: options.auth,
      limiter: options.protection.limiter,
      rates: options.protection.rates,
      inflight: options.protection.inflight,
      metrics: options.metrics,
      limits: options.protection.limits,
      credentials: options.credentialMetrics,
    });
  }

  /** The failure limit alone: null, or how the client over it is answered. */
  overLimit(client: string | undefined): Admission | null {
    const { limiter, limits } = this.options;
    const retryAfterSeconds = limiter.retryAfterSeconds(client);
    if (retryAfterSeconds <= 0) return null;
    limits.authFailureLimit.inc();
    return { kind: 'over-limit', retryAfterSeconds, failures: limiter.failuresOf(client) };
  }

  /**
   * The credential check alone (CONNECT, which is never forwarded, needs no scope): failures are
   * counted toward the limit (an overloaded verifier is the gateway's condition, not the
   * client's) and by reason.
   */
  authenticate(
    client: string | undefined,
    rawHeaders: readonly string[],
    then: (outcome: AuthOutcome) => void,
  ): void {
    const presented = readPresentedCredential(rawHeaders);
    const attempt = (): void => {
      const { store } = this.options.auth.current;
      store.check(presented, (outcome) => {
        if (outcome.ok && this.options.auth.current.store !== store) {
          attempt();
          return;
        }
        if (!outcome.ok) {
          this.options.metrics.authFailure(outcome.reason);
          if (outcome.reason !== 'overloaded') this.options.limiter.recordFailure(client);
        } else {
          this.options.credentials.used(outcome.identity, Date.now());
        }
        then(outcome);
      });
    };
    attempt();
  }

  /**
   * All of it. `target` is the origin-form target as received, or null when the request has
   * none the gateway can forward; `declaredBodyBytes` its Content-Length, when it has one (a
   * body over the credential's bytes= budget is refused before any of it is read).
   */
  admit(
    client: string | undefined,
    method: string,
    target: string | null,
    rawHeaders: readonly string[],
    then: (admission: Admission) => void,
    declaredBodyBytes = 0,
  ): void {
    const over = this.overLimit(client);
    if (over !== null) {
      then(over);
      return;
    }
    this.authenticate(client, rawHeaders, (outcome) => {
      then(
        outcome.ok
          ? this.authorize(outcome, method, target, declaredBodyBytes)
          : { kind: 'refused', reason: outcome.reason },
      );
    });
  }

  private authorize(
    principal: Principal,
    method: string,
    target: string | null,
    declaredBodyBytes: number,
  ): Admission {
    if (target === null) return { kind: 'bad-target', principal, text: 'bad request target' };
    const route = classifyRequest(this.options.listener, method, target);
    if (!route.ok) return { kind: 'bad-target', principal, text: route.reason };
    if ((principal.scopes & SCOPE_BITS[route.scope]) === 0) {
      this.options.credentials.denied(principal.identity, route.scope);
      return { kind: 'forbidden', principal, scope: route.scope, text: LACKS[route.scope] };
    }
    const { rate, bytesPerMinute, inflight } = principal.limits;
    const { identity } = principal;
    // Judged first and taken last: a request refused by another limit never holds a place.
    if (inflight !== null && this.options.inflight.of(identity) >= inflight) {
      return this.limited(principal, 'inflight', inflightRefusal(identity, inflight));
    }
    const now = Date.now();
    if (rate !== null) {
      const refusal = this.options.rates.take(identity, rate, now);
      if (refusal !== null) return this.limited(principal, 'rate', refusal);
    }
    let meter: BodyMeter | null = null;
    if (bytesPerMinute !== null && route.scope === 'ingest') {
      if (declaredBodyBytes > 0) {
        const refusal = this.options.rates.takeBytes(identity, bytesPerMinute, declaredBodyBytes, now);
        if (refusal !== null) return this.limited(principal, 'bytes', refusal);
      } else {
        meter = (bytes) => {
          const refusal = this.options.rates.takeBytes(identity, bytesPerMinute, bytes, Date.now());
          if (refusal !== null) this.options.limits.credentialLimited(identity, 'bytes');
          return refusal;
        };
      }
    }
    const release =
      inflight === null ? undefined : (this.options.inflight.enter(identity, inflight) ?? undefined);
    return { kind: 'admitted', principal, target: route.target, release, meter };
  }

  private limited(principal: Principal, limit: CredentialLimit, refusal: RateRefusal): Admission {
    this.options.limits.credentialLimited(principal.identity, limit);
    return { kind: 'limited', principal, limit, refusal };
  }
}

/**
 * All of a credential's inflight= places are taken: retry in a second. The RateLimit headers
 * name the policy by its quota alone (no window: places come back when requests end).
 */
function inflightRefusal(identity: string, inflight: number): RateRefusal {
  return {
    retryAfterSeconds: 1,
    policy: `"inflight";q=${inflight}`,
    state: `"inflight";r=0;t=1`,
    text: `inflight limit of ${identity} exceeded`,
  };
}
