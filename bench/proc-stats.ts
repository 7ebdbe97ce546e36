import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time and memory of a contender, read from /proc. A contender may be several processes
 * (nginx's master and workers, a gateway with WORKERS=2), so everything is summed over the
 * process and its descendants.
 */

let clockTicksPerSecond: number | undefined;

/** USER_HZ, the unit of utime/stime in /proc/<pid>/stat (100 on every Linux we know of). */
export function clockTicks(): number {
  if (clockTicksPerSecond === undefined) {
    try {
      clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicksPerSecond = 100;
    }
  }
  return clockTicksPerSecond;
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Fields of /proc/<pid>/stat after the `(comm)` field, which may itself contain spaces. */
function statFields(pid: number): string[] | null {
  const stat = readOrNull(`/proc/${pid}/stat`);
  if (stat === null) return null;
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** `pid` and all its descendants that are alive now. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const child = Number(entry);
    if (!Number.isInteger(child)) continue;
    const fields = statFields(child);
    if (fields === null) continue;
    const parent = Number(fields[1]);
    const siblings = children.get(parent);
    if (siblings === undefined) children.set(parent, [child]);
    else siblings.push(child);
  }
  const tree: number[] = [];
  const pending = [pid];
  while (pending.length > 0) {
    const next = pending.pop()!;
    if (statFields(next) === null) continue;
    tree.push(next);
    pending.push(...(children.get(next) ?? []));
  }
  return tree;
}

/** True while `pid` runs (an exited child is reaped by Node at once, so it is gone from /proc). */
export function processAlive(pid: number): boolean {
  return statFields(pid) !== null;
}

/** User + system CPU seconds consumed so far by `pids` (processes that exited count as 0). */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = statFields(pid);
    // After `(comm)`: state(0) ppid(1) ... utime(11) stime(12), i.e. fields 14 and 15 of stat(5).
    if (fields !== null) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / clockTicks();
}

export interface MemoryReading {
  /** Resident set size now, summed, in bytes. */
  readonly rssBytes: number;
  /** Peak resident set size (VmHWM) of each process, summed: an upper bound of the peak total. */
  readonly hwmBytes: number;
}

export function memory(pids: readonly number[]): MemoryReading {
  let rssBytes = 0;
  let hwmBytes = 0;
  for (const pid of pids) {
    const status = readOrNull(`/proc/${pid}/status`);
    if (status === null) continue;
    rssBytes += kilobytes(status, 'VmRSS') * 1024;
    hwmBytes += kilobytes(status, 'VmHWM') * 1024;
  }
  return { rssBytes, hwmBytes };
}

function kilobytes(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match === null ? 0 : Number(match[1]);
}

/**
 * Polls the resident set size of `pids` every `intervalMs` and keeps the maximum, so a peak
 * between two readings of VmHWM-of-the-sum is not lost (VmHWM is per process).
 */
export class RssSampler {
  private timer: NodeJS.Timeout | undefined;
  peakBytes = 0;

  constructor(
    private readonly pids: readonly number[],
    private readonly intervalMs = 100,
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    return this;
  }

  private sample(): void {
    const { rssBytes } = memory(this.pids);
    if (rssBytes > this.peakBytes) this.peakBytes = rssBytes;
  }

  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.peakBytes;
  }
}
