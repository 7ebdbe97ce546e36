import { hash as digest, timingSafeEqual } from 'node:crypto';
import { NO_LIMITS } from '../config/credential-limits.js';
import {
  type AuthMethod,
  type CredentialLimits,
  type GatewayConfig,
  SCOPES,
  type Scope,
} from '../config/types.js';
import { type BcryptVerifier, decoyHashLike } from './bcrypt-verifier.js';
import type { BasicPair, PresentedCredential } from './presented-credential.js';

export type AuthFailureReason =
  | 'missing'
  | 'malformed'
  | 'conflict'
  | 'wrong_scheme'
  | 'invalid_key'
  | 'unknown_user'
  | 'invalid_password'
  | 'expired'
  | 'overloaded';

export const AUTH_FAILURE_REASONS: readonly AuthFailureReason[] = [
  'missing',
  'malformed',
  'conflict',
  'wrong_scheme',
  'invalid_key',
  'unknown_user',
  'invalid_password',
  'expired',
  'overloaded',
];

/** A scope as a bit: a request's check is one AND. */
export const SCOPE_BITS: Readonly<Record<Scope, number>> = Object.freeze({ ingest: 1, read: 2, admin: 4 });
const ALL_SCOPES = SCOPES.reduce((bits, scope) => bits | SCOPE_BITS[scope], 0);

/** Who a request is, once authenticated: its name, what it may do, until when. */
export interface Principal {
  readonly ok: true;
  /** The credential's name: logs, metrics and the identity header sent upstream. */
  readonly identity: string;
  /** SCOPE_BITS of what it may do. */
  readonly scopes: number;
  /** Milliseconds since the epoch from which it is refused, or null. */
  readonly expiresAt: number | null;
  /** Its rate, byte and in-flight limits (issue 14). */
  readonly limits: CredentialLimits;
}

export type AuthOutcome = Principal | { readonly ok: false; readonly reason: AuthFailureReason };

function principal(
  identity: string,
  scopes: readonly Scope[],
  expiresAt: number | null,
  limits: CredentialLimits = NO_LIMITS,
): Principal {
  const bits = scopes.reduce((sum, scope) => sum | SCOPE_BITS[scope], 0);
  return Object.freeze({ ok: true as const, identity, scopes: bits, expiresAt, limits });
}

const FAILURES = Object.fromEntries(
  AUTH_FAILURE_REASONS.map((reason) => [reason, Object.freeze({ ok: false, reason })]),
) as unknown as Readonly<Record<AuthFailureReason, AuthOutcome>>;

type UserEntry =
  | { readonly kind: 'plain'; readonly digest: Buffer; readonly success: Principal }
  | { readonly kind: 'bcrypt'; readonly hash: string; readonly success: Principal };

/** The identity forwarded and logged for a key: never the key, only a short digest of it. */
export function keyIdentity(key: string): string {
  return `key-${digest('sha256', key, 'hex').slice(0, 8)}`;
}

function sha256(text: string): Buffer {
  return digest('sha256', text, 'buffer');
}

/**
 * The credentials of one configuration, ready for the request path: keys are looked up by
 * SHA-256 digest (the lookup never compares secret bytes), plaintext passwords are compared as
 * fixed-length digests with `timingSafeEqual`, bcrypt hashes go through the shared verifier.
 * Outcomes are preallocated so an accepted request allocates nothing here but the digest.
 */
export class CredentialStore {
  readonly method: AuthMethod;
  private readonly keysByDigest = new Map<string, AuthOutcome>();
  private readonly users = new Map<string, UserEntry>();
  /** user -> bcrypt hash, for the verifier to drop what a reload removed. */
  readonly bcryptHashes = new Map<string, string>();
  /**
   * With bcrypt users configured, a name that is no user is checked against this hash through
   * the same queue, so that neither the time of a 401 nor a 503 tells which user names exist.
   */
  private readonly decoyHash: string | null;

  constructor(
    config: Pick<GatewayConfig, 'authMethod' | 'apiKeys' | 'basicCredentials'> &
      Partial<Pick<GatewayConfig, 'namedCredentials'>>,
    private readonly bcrypt: BcryptVerifier,
  ) {
    this.method = config.authMethod;
    // Legacy credentials grant every scope and never expire (drop-in).
    for (const key of config.apiKeys) {
      this.keysByDigest.set(digest('sha256', key, 'base64'), principal(keyIdentity(key), SCOPES, null));
    }
    for (const credential of config.basicCredentials) {
      this.addUser(credential, principal(credential.user, SCOPES, null));
    }
    for (const named of config.namedCredentials ?? []) {
      const success = principal(named.name, named.scopes, named.expiresAt, named.limits);
      if (named.secret.kind === 'key') {
        this.keysByDigest.set(Buffer.from(named.secret.sha256Hex, 'hex').toString('base64'), success);
      } else {
        this.addUser(named.secret.credential, success);
      }
    }
    const first = this.bcryptHashes.values().next().value;
    this.decoyHash = first === undefined ? null : decoyHashLike(first);
  }

  private addUser(credential: GatewayConfig['basicCredentials'][number], success: Principal): void {
    if (credential.kind === 'plain') {
      this.users.set(credential.user, { kind: 'plain', digest: sha256(credential.password), success });
    } else {
      this.users.set(credential.user, { kind: 'bcrypt', hash: credential.hash, success });
      this.bcryptHashes.set(credential.user, credential.hash);
    }
  }

  get keyCount(): number {
    return this.keysByDigest.size;
  }

  get userCount(): number {
    return this.users.size;
  }

  /** Synchronous unless a bcrypt hash has to be checked for the first time. */
  authenticate(presented: PresentedCredential): AuthOutcome | Promise<AuthOutcome> {
    switch (presented.kind) {
      case 'none':
        return FAILURES.missing;
      case 'malformed':
        return FAILURES.malformed;
      case 'conflict':
        return FAILURES.conflict;
      case 'api-key':
        if (this.method === 'basic-auth') {
          return presented.basic === null ? FAILURES.wrong_scheme : this.verifyUser(presented.basic);
        }
        return this.verifyKey(presented.key);
      case 'basic':
        if (this.method === 'basic-auth') return this.verifyUser(presented.pair);
        if (this.method === 'any' && this.users.has(presented.pair.user))
          return this.verifyUser(presented.pair);
        // A browser's password prompt: the API key is given as the password, the user name is free.
        return this.method === 'any'
          ? this.orDecoy(this.verifyKey(presented.pair.password), presented.pair)
          : this.verifyKey(presented.pair.password);
    }
  }

  /**
   * Authenticates and hands the outcome to `then`: at once when it is known, or once a first
   * bcrypt check settles. A check that fails to run at all is `overloaded`, never a pass. A
   * credential past its expiry is `expired`, judged when the check settles.
   */
  check(presented: PresentedCredential, then: (outcome: AuthOutcome) => void): void {
    const outcome = this.authenticate(presented);
    if (outcome instanceof Promise)
      outcome.then(
        (settled) => then(unexpired(settled)),
        () => then(FAILURES.overloaded),
      );
    else then(unexpired(outcome));
  }

  /** Every scope bit: what a legacy credential holds. */
  static readonly ALL_SCOPES = ALL_SCOPES;

  private verifyKey(key: string): AuthOutcome {
    return this.keysByDigest.get(digest('sha256', key, 'base64')) ?? FAILURES.invalid_key;
  }

  /** A failure for a name that is no user costs a bcrypt check when bcrypt users exist. */
  private orDecoy(outcome: AuthOutcome, pair: BasicPair): AuthOutcome | Promise<AuthOutcome> {
    if (outcome.ok || this.decoyHash === null) return outcome;
    return this.bcrypt
      .verify(pair.user, this.decoyHash, pair.password)
      .then((result) => (result === 'overloaded' ? FAILURES.overloaded : outcome));
  }

  private verifyUser(pair: BasicPair): AuthOutcome | Promise<AuthOutcome> {
    const entry = this.users.get(pair.user);
    if (entry === undefined) return this.orDecoy(FAILURES.unknown_user, pair);
    if (entry.kind === 'plain') {
      return timingSafeEqual(sha256(pair.password), entry.digest) ? entry.success : FAILURES.invalid_password;
    }
    if (this.bcrypt.cached(pair.user, entry.hash, pair.password)) return entry.success;
    return this.bcrypt
      .verify(pair.user, entry.hash, pair.password)
      .then((result) =>
        result === 'match'
          ? entry.success
          : result === 'overloaded'
            ? FAILURES.overloaded
            : FAILURES.invalid_password,
      );
  }
}

function unexpired(outcome: AuthOutcome): AuthOutcome {
  return outcome.ok && outcome.expiresAt !== null && Date.now() >= outcome.expiresAt
    ? FAILURES.expired
    : outcome;
}
