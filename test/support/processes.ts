import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';

/**
 * Child processes and temp dirs started by the test support, killed/removed when the test
 * process exits however it exits, so that a failed or interrupted test leaves nothing running.
 */
const liveChildren = new Set<ChildProcess>();
const liveTempDirs = new Set<string>();
let exitHooksInstalled = false;

function killEverythingNow(): void {
  for (const child of liveChildren) child.kill('SIGKILL');
  liveChildren.clear();
  for (const dir of liveTempDirs) rmSync(dir, { recursive: true, force: true });
  liveTempDirs.clear();
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', killEverythingNow);
  // 'exit' is not emitted when a signal ends the process (the test runner sends SIGTERM on
  // timeout): clean up, then die of the same signal as we would have without the handler.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killEverythingNow();
      process.kill(process.pid, signal);
    });
  }
}

export function trackTempDir(dir: string): void {
  installExitHooks();
  liveTempDirs.add(dir);
}

export async function removeTempDir(dir: string): Promise<void> {
  liveTempDirs.delete(dir);
  await rm(dir, { recursive: true, force: true });
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** Everything a child printed (stdout and stderr interleaved), bounded to its most recent part. */
export class OutputBuffer {
  private chunks: string[] = [];
  private length = 0;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly maxChars = 1024 * 1024) {}

  append(chunk: string): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
    if (this.length > this.maxChars) {
      const text = this.chunks.join('').slice(-this.maxChars);
      this.chunks = [text];
      this.length = text.length;
    }
    for (const listener of this.listeners) listener();
  }

  text(): string {
    return this.chunks.join('');
  }

  /** Resolves with the first match of `pattern` in the output, now or later. */
  waitFor(pattern: RegExp, timeoutMs: number, exited?: Promise<ExitStatus>): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const match = this.text().match(pattern);
        if (match === null) return false;
        finish();
        resolve(match);
        return true;
      };
      const finish = (): void => {
        clearTimeout(timer);
        this.listeners.delete(onAppend);
      };
      const onAppend = (): void => {
        check();
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`output did not match ${pattern} within ${timeoutMs} ms; output:\n${this.text()}`));
      }, timeoutMs);
      if (check()) return;
      this.listeners.add(onAppend);
      exited?.then((status) => {
        if (check()) return;
        finish();
        reject(
          new Error(
            `process exited (${describeExit(status)}) before its output matched ${pattern}; output:\n${this.text()}`,
          ),
        );
      });
    });
  }
}

export function describeExit(status: ExitStatus): string {
  return status.signal === null ? `code ${status.code}` : `signal ${status.signal}`;
}

export interface TrackedProcess {
  readonly child: ChildProcess;
  readonly output: OutputBuffer;
  /** Settles once, when the process has exited (never rejects). */
  readonly exited: Promise<ExitStatus>;
  /** Sends `signal`, then SIGKILL after `graceMs`; resolves with how the process ended. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<ExitStatus>;
}

export interface SpawnTrackedOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Called with every chunk of stdout/stderr, e.g. to copy it to a log file. */
  readonly onOutput?: (chunk: string) => void;
}

export function spawnTracked(
  command: string,
  args: readonly string[],
  options: SpawnTrackedOptions = {},
): TrackedProcess {
  installExitHooks();
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveChildren.add(child);
  const output = new OutputBuffer();
  const onData = (data: Buffer): void => {
    const chunk = data.toString('utf8');
    output.append(chunk);
    options.onOutput?.(chunk);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('error', (error) => {
      output.append(`\n[spawn error] ${error.message}\n`);
      liveChildren.delete(child);
      resolve({ code: null, signal: null });
    });
    child.once('exit', (code, signal) => {
      liveChildren.delete(child);
      resolve({ code, signal });
    });
  });

  const stop = async (signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<ExitStatus> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([exited, killed]);
    clearTimeout(timer);
    return exited;
  };
  return { child, output, exited, stop };
}

/** Polls `probe` until it returns true; fails on timeout or as soon as `exited` settles. */
export async function waitUntilReady(
  what: string,
  probe: () => Promise<boolean>,
  tracked: TrackedProcess,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exitStatus: ExitStatus | undefined;
  tracked.exited.then((status) => {
    exitStatus = status;
  });
  for (;;) {
    if (exitStatus !== undefined) {
      throw new Error(
        `${what} exited during start-up (${describeExit(exitStatus)}); output:\n${tracked.output.text()}`,
      );
    }
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) {
      throw new Error(`${what} was not ready within ${timeoutMs} ms; output:\n${tracked.output.text()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** True when GET `url` answers 200 within a second. */
export async function answers200(url: string, headers: Record<string, string> = {}): Promise<boolean> {
  const response = await fetch(url, { headers, signal: AbortSignal.timeout(1000) });
  await response.arrayBuffer();
  return response.status === 200;
}
