import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Where a `node --cpu-prof` profile spends its time: top functions by self time, by inclusive
 * time within the gateway's own code, and self time grouped by origin (gateway code, each
 * package in node_modules, Node internals, GC). Usage:
 *   node --import tsx bench/profile-summary.ts <file.cpuprofile | dir> [--top N]
 */

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  /** Samples in which the process waited for work: `(idle)`. */
  readonly idleMs: number;
  readonly self: readonly { name: string; ms: number }[];
  readonly inclusiveOwnCode: readonly { name: string; ms: number }[];
  readonly byOrigin: readonly { name: string; ms: number }[];
}

function functionKey(frame: CallFrame): string {
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
  if (frame.url === '') return name;
  const file = frame.url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules|dist|src)\//, '$1/');
  return `${name} ${file}:${frame.lineNumber + 1}`;
}

function origin(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg !== null) return pkg[1]!;
  if (/\/(dist|src)\//.test(url)) return 'edge-gateway code';
  return url;
}

function isOwnCode(frame: CallFrame): boolean {
  return /\/(dist|src)\//.test(frame.url) && !frame.url.includes('node_modules');
}

export function summarizeProfile(profile: CpuProfile, top = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  const origins = new Map<string, number>();
  const add = (map: Map<string, number>, key: string, us: number): void => {
    map.set(key, (map.get(key) ?? 0) + us);
  };
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const us = profile.timeDeltas[i + 1] ?? 0;
    const leaf = byId.get(profile.samples[i]!);
    if (leaf === undefined) continue;
    totalUs += us;
    add(self, functionKey(leaf.callFrame), us);
    add(origins, origin(leaf.callFrame), us);
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!.callFrame;
      if (!isOwnCode(frame)) continue;
      const key = functionKey(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      add(inclusive, key, us);
    }
  }
  const sorted = (map: Map<string, number>, n: number) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, ms: us / 1000 }));
  return {
    totalMs: totalUs / 1000,
    idleMs: (origins.get('(idle)') ?? 0) / 1000,
    self: sorted(self, top),
    inclusiveOwnCode: sorted(inclusive, top),
    byOrigin: sorted(origins, top),
  };
}

export function renderSummary(summary: ProfileSummary): string {
  // Shares of the busy time (sampled minus idle): what the process spent its CPU on.
  const busyMs = summary.totalMs - summary.idleMs;
  const pct = (ms: number): string =>
    `${((100 * ms) / summary.totalMs).toFixed(1).padStart(5)}%  ${busyMs > 0 ? `${((100 * ms) / busyMs).toFixed(1).padStart(5)}%` : '    -'}`;
  const table = (rows: readonly { name: string; ms: number }[]): string =>
    rows
      .filter((row) => row.name !== '(idle)')
      .map((row) => `  ${pct(row.ms)} ${row.ms.toFixed(0).padStart(7)} ms  ${row.name}`)
      .join('\n');
  return [
    `sampled time: ${summary.totalMs.toFixed(0)} ms, of which busy (not idle): ${busyMs.toFixed(0)} ms`,
    'columns: share of sampled time, share of busy time, self time',
    '',
    'self time by origin:',
    table(summary.byOrigin),
    '',
    'top functions by self time:',
    table(summary.self),
    '',
    "edge-gateway's own functions by inclusive time:",
    table(summary.inclusiveOwnCode),
    '',
  ].join('\n');
}

function profileFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .filter((name) => name.endsWith('.cpuprofile'))
    .map((name) => join(path, name));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const topIndex = args.indexOf('--top');
  const top = topIndex === -1 ? 25 : Number(args.splice(topIndex, 2)[1]);
  if (args.length !== 1) {
    process.stderr.write(
      'usage: node --import tsx bench/profile-summary.ts <file.cpuprofile | dir> [--top N]\n',
    );
    process.exit(2);
  }
  for (const file of profileFiles(args[0]!)) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    process.stdout.write(`== ${file}\n${renderSummary(summarizeProfile(profile, top))}\n`);
  }
}
