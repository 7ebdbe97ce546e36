import { spawnTracked, type TrackedProcess } from '../test/support/processes.js';
import { processTree } from './proc-stats.js';

/**
 * Root processes whose descendants must die with the harness. test/support kills the children
 * it spawned, but SIGKILL on nginx's master leaves its workers running (nginx does not ask the
 * kernel to kill them with it), so the harness kills whole trees, and does so before
 * test/support's hooks run: once a master is gone its workers are re-parented and can no longer
 * be found from it.
 */
const trackedRoots = new Set<number>();
let hooksInstalled = false;

function killTrackedTrees(): void {
  for (const root of trackedRoots) {
    // Root first: a master that outlives its workers by a moment would start new ones.
    for (const pid of processTree(root)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  trackedRoots.clear();
}

/** Must run before the first child is spawned, so these hooks come before test/support's. */
export function installTreeCleanup(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killTrackedTrees);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}: stopping every child process\n`);
      killTrackedTrees();
      // test/support's own handler (when installed) re-raises the signal; otherwise we do.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/** Spawns a child whose whole process tree is killed if the harness dies. */
export function spawnTree(
  command: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): TrackedProcess {
  installTreeCleanup();
  const tracked = spawnTracked(command, args, options);
  const { pid } = tracked.child;
  if (pid !== undefined) {
    trackedRoots.add(pid);
    tracked.exited.then(() => trackedRoots.delete(pid));
  }
  return tracked;
}

export interface ToolRun {
  readonly code: number | null;
  readonly output: string;
  readonly timedOut: boolean;
}

/** Runs a load generator (or any tool) to completion, killing it after `timeoutMs`. */
export async function runTool(command: string, args: readonly string[], timeoutMs: number): Promise<ToolRun> {
  const tracked = spawnTree(command, args);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void tracked.stop('SIGKILL');
  }, timeoutMs);
  const status = await tracked.exited;
  clearTimeout(timer);
  return { code: status.code, output: tracked.output.text(), timedOut };
}
