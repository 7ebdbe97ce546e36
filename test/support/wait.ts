/** Waiting in tests: one poller for every suite. */

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `probe` every `intervalMs` until it answers something other than `undefined` or `false`
 * (then resolves with that) or `timeoutMs` passes (then throws, naming `what` and the last error
 * the probe threw). `what` may be a function, for a message built from the state at the failure.
 * A probe that throws is tried again (a service still starting), unless `retryErrors` is false:
 * then its error fails the wait at once.
 */
export async function until<T>(
  what: string | (() => string),
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 5000,
  intervalMs = 25,
  retryErrors = true,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      if (!retryErrors) throw error;
      last = error;
    }
    if (Date.now() > deadline) {
      const name = typeof what === 'function' ? what() : what;
      throw new Error(`${name} did not happen within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    }
    await sleep(intervalMs);
  }
}
