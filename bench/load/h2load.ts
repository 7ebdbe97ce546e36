import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from '../children.js';
import { percentileOfSorted } from '../stats.js';
import type { Measurement } from '../types.js';

export interface H2loadOptions {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** POST body (for gRPC: the length-prefixed message). */
  readonly bodyFile: string;
  readonly threads: number;
  readonly clients: number;
  readonly streamsPerClient: number;
  readonly durationS: number;
  /** Where h2load's per-request log is written (and removed after parsing). */
  readonly scratchDir: string;
}

let logCounter = 0;

/**
 * One timed h2load run over cleartext HTTP/2 (prior knowledge). Latency percentiles come from
 * h2load's per-request log (`--log-file`), which also gives the exact count of non-2xx answers.
 * h2load cannot see a gRPC status (it travels in trailers), so the caller cross-checks the
 * successes against what the upstream received.
 */
export async function runH2load(options: H2loadOptions): Promise<Measurement> {
  const logFile = join(options.scratchDir, `h2load-${process.pid}-${logCounter++}.log`);
  const duration = Math.max(1, Math.round(options.durationS));
  const args = [
    `-t${options.threads}`,
    `-c${options.clients}`,
    `-m${options.streamsPerClient}`,
    `-D${duration}`,
    `--log-file=${logFile}`,
    '-d',
    options.bodyFile,
  ];
  for (const [name, value] of Object.entries(options.headers)) args.push('-H', `${name}: ${value}`);
  args.push(options.url);
  const run = await runTool('h2load', args, (duration + 30) * 1000);
  if (run.code !== 0 || !/requests: \d+ total/.test(run.output)) {
    await rm(logFile, { force: true });
    throw new Error(
      `h2load ${args.join(' ')} failed (exit ${run.code}${run.timedOut ? ', killed after timeout' : ''}):\n${run.output}`,
    );
  }
  const log = await readFile(logFile, 'utf8').catch(() => '');
  await rm(logFile, { force: true });
  const latenciesUs: number[] = [];
  let failed = 0;
  const statuses = new Map<string, number>();
  for (const line of log.split('\n')) {
    if (line === '') continue;
    const [, status = '', durationUs = ''] = line.split('\t');
    const code = Number(status);
    if (code >= 200 && code < 300) latenciesUs.push(Number(durationUs));
    else {
      failed++;
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  }
  // Streams that failed at the connection level may be missing from the log: take h2load's count
  // when it is higher ("errored" and "timeout" are subsets of "failed").
  const summary = /requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed/.exec(run.output);
  const reportedFailures = summary === null ? 0 : Number(summary[1]);
  failed = Math.max(failed, reportedFailures);
  const sorted = Float64Array.from(latenciesUs).sort();
  const detail = [...statuses].map(([status, count]) => `${count} × status ${status}`).join(', ');
  return {
    succeeded: latenciesUs.length,
    failed,
    seconds: duration,
    p50Ms: percentileOfSorted(sorted, 50) / 1000,
    p99Ms: percentileOfSorted(sorted, 99) / 1000,
    ...(failed > 0 ? { failureDetail: `h2load: ${detail || `${failed} failed streams`}` } : {}),
  };
}
