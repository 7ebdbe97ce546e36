import { connect } from 'node:net';
import { freePort } from '../../test/support/ports.js';
import { describeExit, type TrackedProcess } from '../../test/support/processes.js';
import type { HostPort, RunningContender } from '../types.js';

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

/**
 * A contender process spawned to listen on `target`: waits until it accepts connections (killing
 * it if it never does) and answers it as a running contender; `stop` sends SIGTERM, then runs
 * `cleanup`.
 */
export async function listeningContender(
  what: string,
  tracked: TrackedProcess,
  target: HostPort,
  authHeaders: Readonly<Record<string, string>>,
  cleanup: () => Promise<void> = async () => undefined,
): Promise<RunningContender> {
  try {
    await waitReady(what, tracked, () => acceptsConnections(target));
  } catch (error) {
    await tracked.stop('SIGKILL');
    throw error;
  }
  return {
    target,
    authHeaders,
    pid: tracked.child.pid ?? null,
    output: () => tracked.output.text(),
    stop: async () => {
      await tracked.stop('SIGTERM', 5000);
      await cleanup();
    },
  };
}
