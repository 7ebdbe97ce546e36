import { hash as digest, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcrypt';

/** A user's last verified password, as its SHA-256, valid until `expiresAt` (epoch ms). */
interface VerifiedEntry {
  readonly hash: string;
  readonly passwordDigest: Buffer;
  readonly expiresAt: number;
}

export interface BcryptVerifierOptions {
  /** Users whose verified password is kept, at most (one entry per user). */
  readonly cacheSize: number;
  /** How long a verification is trusted before bcrypt runs again. */
  readonly cacheTtlMs: number;
  /** bcrypt comparisons running at once (each holds a libuv thread for tens of milliseconds). */
  readonly maxConcurrent: number;
  /** Comparisons waiting for a slot, at most; beyond this a check fails fast as `overloaded`. */
  readonly maxQueued: number;
  /**
   * Average share of one CPU that comparisons may take (0.2: 200 ms of bcrypt per second),
   * whatever the hashes' cost; when it is spent, checks fail fast as `overloaded`. Unset: no
   * budget beyond `maxConcurrent`.
   */
  readonly cpuShare?: number;
  /** Comparison time that may be spent at once before the average applies. Default 2000 ms. */
  readonly burstMs?: number;
}

export type BcryptResult = 'match' | 'mismatch' | 'overloaded';

/**
 * bcrypt checks with a cache of verified credentials, so a bcrypt hash costs one comparison per
 * credential and TTL rather than one per request. Comparisons run on libuv's thread pool (the
 * event loop never waits), are deduplicated while in flight, and are bounded in concurrency so a
 * flood of wrong passwords cannot take every thread, and optionally held to a CPU budget so that
 * such a flood cannot take more than a set share of the machine either (bcrypt's cost is per
 * hash, so the budget is in time, not in checks). Honest use needs little: one comparison per
 * credential and TTL. The verifier outlives reloads: `retainOnly` drops what the new
 * configuration no longer backs.
 */
export class BcryptVerifier {
  cacheHits = 0;
  cacheMisses = 0;
  rejectedOverload = 0;
  /**
   * One entry per user, keyed by user name: a bcrypt hash matches one password, so a user's
   * verified credential is that password's digest. A hit then costs what a plaintext check
   * costs (one SHA-256, one timingSafeEqual), and the map is bounded by the configured users.
   */
  private readonly verified = new Map<string, VerifiedEntry>();
  private readonly inFlight = new Map<string, Promise<BcryptResult>>();
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  /** Milliseconds of comparison time available now (may go negative: charged after the fact). */
  private budgetMs: number;
  private budgetAt = performance.now();

  constructor(private readonly options: BcryptVerifierOptions) {
    this.budgetMs = options.burstMs ?? 2000;
  }

  /** True when this exact credential was verified within the TTL; false when bcrypt has to run. */
  cached(user: string, hash: string, password: string): boolean {
    const entry = this.verified.get(user);
    if (entry === undefined || entry.hash !== hash) return false;
    if (entry.expiresAt <= Date.now()) {
      this.verified.delete(user);
      return false;
    }
    if (!timingSafeEqual(digest('sha256', password, 'buffer'), entry.passwordDigest)) return false;
    this.cacheHits++;
    return true;
  }

  verify(user: string, hash: string, password: string): Promise<BcryptResult> {
    const key = cacheKey(hash, password);
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    this.cacheMisses++;
    if (
      !this.hasBudget() ||
      (this.running >= this.options.maxConcurrent && this.waiting.length >= this.options.maxQueued)
    ) {
      this.rejectedOverload++;
      return Promise.resolve('overloaded');
    }
    const result = this.compare(password, hash).then((outcome): BcryptResult => {
      if (outcome === 'match') this.remember(user, hash, password);
      return outcome;
    });
    this.inFlight.set(key, result);
    void result.finally(() => this.inFlight.delete(key));
    return result;
  }

  /** Forgets verifications whose user is gone or whose hash changed. */
  retainOnly(currentHashes: ReadonlyMap<string, string>): void {
    for (const [user, entry] of this.verified) {
      if (currentHashes.get(user) !== entry.hash) this.verified.delete(user);
    }
  }

  private remember(user: string, hash: string, password: string): void {
    this.verified.delete(user);
    // Oldest first in a Map's order: beyond the bound (more users than cacheSize), drop the oldest.
    if (this.verified.size >= this.options.cacheSize) {
      const oldest = this.verified.keys().next();
      if (!oldest.done) this.verified.delete(oldest.value);
    }
    this.verified.set(user, {
      hash,
      passwordDigest: digest('sha256', password, 'buffer'),
      expiresAt: Date.now() + this.options.cacheTtlMs,
    });
  }

  get size(): number {
    return this.verified.size;
  }

  private async compare(password: string, hash: string): Promise<BcryptResult> {
    if (this.running >= this.options.maxConcurrent) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    // The budget may have run out while this check waited: pass the free slot on.
    if (!this.hasBudget()) {
      this.rejectedOverload++;
      this.waiting.shift()?.();
      return 'overloaded';
    }
    this.running++;
    const startedAt = performance.now();
    try {
      return (await bcrypt.compare(password, hash)) ? 'match' : 'mismatch';
    } catch {
      return 'mismatch';
    } finally {
      this.running--;
      this.spend(performance.now() - startedAt);
      this.waiting.shift()?.();
    }
  }

  private hasBudget(): boolean {
    if (this.options.cpuShare === undefined) return true;
    this.refill();
    return this.budgetMs > 0;
  }

  private spend(ms: number): void {
    if (this.options.cpuShare === undefined) return;
    this.refill();
    this.budgetMs -= ms;
  }

  private refill(): void {
    const now = performance.now();
    const share = this.options.cpuShare ?? 0;
    this.budgetMs = Math.min(this.options.burstMs ?? 2000, this.budgetMs + (now - this.budgetAt) * share);
    this.budgetAt = now;
  }
}

function cacheKey(hash: string, password: string): string {
  return digest('sha256', `${hash}\0${password}`, 'base64');
}

/**
 * A well-formed bcrypt hash at the cost of `like` that no password matches (its digest part is
 * all zero bits): verifying an unknown user against it costs what a known user's check costs.
 */
export function decoyHashLike(like: string): string {
  const rounds = String(bcrypt.getRounds(like)).padStart(2, '0');
  return `$2b$${rounds}$${'.'.repeat(53)}`;
}
