import { hash as digest } from 'node:crypto';
import bcrypt from 'bcrypt';
import { LRUCache } from 'lru-cache';

interface VerifiedEntry {
  readonly user: string;
  readonly hash: string;
}

export interface BcryptVerifierOptions {
  /** Verified credentials kept, at most. */
  readonly cacheSize: number;
  /** How long a verification is trusted before bcrypt runs again. */
  readonly cacheTtlMs: number;
  /** bcrypt comparisons running at once (each holds a libuv thread for tens of milliseconds). */
  readonly maxConcurrent: number;
  /** Comparisons waiting for a slot, at most; beyond this a check fails fast as `overloaded`. */
  readonly maxQueued: number;
}

export type BcryptResult = 'match' | 'mismatch' | 'overloaded';

/**
 * bcrypt checks with a cache of verified credentials, so a bcrypt hash costs one comparison per
 * credential and TTL rather than one per request. Comparisons run on libuv's thread pool (the
 * event loop never waits), are deduplicated while in flight, and are bounded in concurrency so a
 * flood of wrong passwords cannot take every thread. The verifier outlives reloads: `retainOnly`
 * drops what the new configuration no longer backs.
 */
export class BcryptVerifier {
  cacheHits = 0;
  cacheMisses = 0;
  rejectedOverload = 0;
  private readonly verified: LRUCache<string, VerifiedEntry>;
  private readonly inFlight = new Map<string, Promise<BcryptResult>>();
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly options: BcryptVerifierOptions) {
    this.verified = new LRUCache({ max: options.cacheSize, ttl: options.cacheTtlMs });
  }

  /** Synchronous answer from the cache, or null when bcrypt has to run. */
  cached(user: string, hash: string, password: string): boolean {
    const hit = this.verified.get(cacheKey(hash, password));
    if (hit !== undefined && hit.user === user && hit.hash === hash) {
      this.cacheHits++;
      return true;
    }
    return false;
  }

  verify(user: string, hash: string, password: string): Promise<BcryptResult> {
    const key = cacheKey(hash, password);
    const pending = this.inFlight.get(key);
    if (pending) return pending;
    this.cacheMisses++;
    if (this.running >= this.options.maxConcurrent && this.waiting.length >= this.options.maxQueued) {
      this.rejectedOverload++;
      return Promise.resolve('overloaded');
    }
    const result = this.compare(password, hash).then((match): BcryptResult => {
      if (match) this.verified.set(key, { user, hash });
      return match ? 'match' : 'mismatch';
    });
    this.inFlight.set(key, result);
    void result.finally(() => this.inFlight.delete(key));
    return result;
  }

  /** Forgets verifications whose user is gone or whose hash changed. */
  retainOnly(currentHashes: ReadonlyMap<string, string>): void {
    for (const [key, entry] of this.verified.entries()) {
      if (currentHashes.get(entry.user) !== entry.hash) this.verified.delete(key);
    }
  }

  get size(): number {
    return this.verified.size;
  }

  private async compare(password: string, hash: string): Promise<boolean> {
    if (this.running >= this.options.maxConcurrent) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.running++;
    try {
      return await bcrypt.compare(password, hash);
    } catch {
      return false;
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }
}

function cacheKey(hash: string, password: string): string {
  return digest('sha256', `${hash}\0${password}`, 'base64');
}
