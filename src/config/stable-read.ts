import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * How long an env file must stay unchanged before it is read as a whole (issue 10 §3): a slow
 * in-place write (`vault read ... > .env`, an editor writing in place, a copy) passes through
 * empty and half-written states that still parse, and applying one of them accepted the
 * placeholder key or a prefix of a new key.
 */
export interface Stability {
  /** Least time between the two observations that must agree. */
  readonly intervalMs: number;
  /** Quiet time a file ending in a newline (or empty, or missing) needs. */
  readonly quietMs: number;
  /**
   * Quiet time a file whose last line has no newline needs: that is what a write cut mid-line
   * looks like (inside a key or a password), so it must hold still for longer.
   */
  readonly unterminatedQuietMs: number;
  /** Longest time spent waiting for the file to settle before this attempt gives up. */
  readonly maxWaitMs: number;
}

/** Together with the 100 ms settle time of the watch, this keeps the 2 s reload promise. */
export const DEFAULT_STABILITY: Stability = {
  intervalMs: 250,
  quietMs: 400,
  unterminatedQuietMs: 1000,
  maxWaitMs: 10_000,
};

/** What one look at the file saw: its bytes with the inode, size and mtime they were read with. */
type Observation =
  | { readonly kind: 'file'; readonly content: Buffer; readonly ino: number; readonly mtimeMs: number }
  | { readonly kind: 'unreadable'; readonly code: string };

export type StableRead =
  /** `content` null: the file does not exist (the process environment and defaults then apply). */
  | { readonly settled: true; readonly content: Buffer | null }
  /** Could not be read the same way twice (EACCES, EMFILE...): `code` says why. */
  | { readonly settled: true; readonly unreadable: string }
  | { readonly settled: false; readonly reason: string };

async function observe(file: string): Promise<Observation> {
  try {
    // One descriptor for the stat and the read, so they describe the same inode.
    const handle = await open(file, 'r');
    try {
      const stat = await handle.stat();
      const content = await handle.readFile();
      return { kind: 'file', content, ino: stat.ino, mtimeMs: stat.mtimeMs };
    } finally {
      await handle.close();
    }
  } catch (error) {
    return { kind: 'unreadable', code: (error as NodeJS.ErrnoException).code ?? 'error' };
  }
}

function same(a: Observation, b: Observation): boolean {
  if (a.kind === 'unreadable') return b.kind === 'unreadable' && a.code === b.code;
  return b.kind === 'file' && a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.content.equals(b.content);
}

function requiredQuietMs(observation: Observation, stability: Stability): number {
  if (observation.kind === 'unreadable' || observation.content.length === 0) return stability.quietMs;
  return observation.content[observation.content.length - 1] === 0x0a
    ? stability.quietMs
    : stability.unterminatedQuietMs;
}

/**
 * Reads `file` once it has stayed unchanged (inode, mtime and bytes) over two observations at
 * least `intervalMs` apart and for its quiet time. The quiet time counts from the file's mtime
 * or from when this content was first seen, whichever is older: a file written long ago is
 * read after one interval, and an mtime in the future (a skewed network filesystem) still
 * settles. Answers `settled: false` when the file kept changing for `maxWaitMs`.
 */
export async function readWhenStable(
  file: string,
  stability: Stability,
  isCancelled: () => boolean = () => false,
): Promise<StableRead> {
  const startedAt = performance.now();
  let previous = await observe(file);
  let firstSeenAt = Date.now();
  for (;;) {
    const waitMs = Math.max(
      stability.intervalMs,
      requiredQuietMs(previous, stability) - quietMs(previous, firstSeenAt),
    );
    await sleep(waitMs);
    if (isCancelled()) return { settled: false, reason: 'the reloader stopped' };
    const current = await observe(file);
    if (!same(previous, current)) firstSeenAt = Date.now();
    else if (quietMs(current, firstSeenAt) >= requiredQuietMs(current, stability)) {
      if (current.kind === 'file') return { settled: true, content: current.content };
      return current.code === 'ENOENT'
        ? { settled: true, content: null }
        : { settled: true, unreadable: current.code };
    }
    if (performance.now() - startedAt >= stability.maxWaitMs) {
      return {
        settled: false,
        reason: `it kept changing for ${stability.maxWaitMs} ms (it must stay unchanged for ${stability.quietMs} ms, ${stability.unterminatedQuietMs} ms when its last line has no newline)`,
      };
    }
    previous = current;
  }
}

function quietMs(observation: Observation, firstSeenAt: number): number {
  const now = Date.now();
  const seen = now - firstSeenAt;
  if (observation.kind === 'unreadable') return seen;
  const sinceWrite = now - observation.mtimeMs;
  return sinceWrite >= 0 ? Math.max(seen, sinceWrite) : seen;
}
