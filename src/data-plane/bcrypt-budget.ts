import { availableParallelism } from 'node:os';
import { BcryptVerifier } from '../auth/bcrypt-verifier.js';

/**
 * Average share of one CPU that bcrypt may take, across all workers: a flood of wrong passwords
 * for a bcrypt user costs the machine at most this, while honest use (one comparison per
 * credential and 5 minutes) needs a small fraction of it.
 */
const BCRYPT_CPU_SHARE = 0.2;

/** The bcrypt verifier of one process, given its share of the machine among `workers`. */
export function bcryptVerifierFor(workers: number): BcryptVerifier {
  return new BcryptVerifier({
    cacheSize: 10_000,
    cacheTtlMs: 5 * 60_000,
    maxConcurrent: bcryptThreads(workers),
    // A verification is needed once per credential and TTL: a short queue absorbs a burst of
    // honest first requests, and a flood of guesses beyond it fails fast instead of waiting.
    maxQueued: 16,
    cpuShare: BCRYPT_CPU_SHARE / Math.max(1, workers),
    // About four first-time checks of cost-12 hashes at once.
    burstMs: 1000,
  });
}

/**
 * bcrypt threads per process: together, all workers may keep at most half of the CPUs busy with
 * bcrypt (at least one thread each), so that a flood of wrong passwords for a bcrypt user cannot
 * take the cores the request path needs.
 */
export function bcryptThreads(workers: number, cpus = availableParallelism()): number {
  return Math.max(1, Math.floor(cpus / 2 / Math.max(1, workers)));
}
