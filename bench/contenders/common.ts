import { connect } from 'node:net';
import { freePort } from '../../test/support/ports.js';
import { describeExit, type TrackedProcess } from '../../test/support/processes.js';
import type { HostPort } from '../types.js';

export const LOOPBACK = '127.0.0.1';

/** True once something accepts TCP connections on `target`. */
export function acceptsConnections(target: HostPort): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(target.port, target.host);
    socket.setTimeout(1000);
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
    socket.once('timeout', () => finish(false));
  });
}

/** Polls `probe` until true; fails early with the output if the process exits. */
export async function waitReady(
  what: string,
  tracked: TrackedProcess,
  probe: () => Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (tracked.child.exitCode !== null || tracked.child.signalCode !== null) {
      const status = await tracked.exited;
      throw new Error(`${what} exited during start-up (${describeExit(status)}):\n${tracked.output.text()}`);
    }
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new Error(`${what} not ready within ${timeoutMs} ms:\n${tracked.output.text()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Starts a server on free ports, retrying with new ports when another process took one between
 * `freePort()` and the bind (other agents and tests share this machine).
 */
export async function withFreePorts<T>(
  count: number,
  start: (ports: number[]) => Promise<T>,
  attempts = 3,
): Promise<T> {
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const ports: number[] = [];
    while (ports.length < count) {
      const port = await freePort();
      if (!ports.includes(port)) ports.push(port);
    }
    try {
      return await start(ports);
    } catch (error) {
      lastError = error;
      if (!/address already in use|EADDRINUSE/i.test(String((error as Error).message))) break;
    }
  }
  throw lastError;
}
