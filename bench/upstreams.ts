import { join } from 'node:path';
import { startVictoriaMetrics, type VictoriaMetricsService } from '../test/support/services.js';
import { spawnTree } from './children.js';
import { LOOPBACK } from './contenders/common.js';
import { REPO_ROOT } from './contenders/gateway.js';
import type { SinkCounters, SinkPorts } from './sinks.js';

export interface SinkProcess {
  readonly ports: SinkPorts;
  readonly pid: number | null;
  counters(): Promise<SinkCounters>;
  stop(): Promise<void>;
}

/** The discarding gRPC and HTTP sinks, in a process of their own (bench/sink-process.ts). */
export async function startSinkProcess(): Promise<SinkProcess> {
  const tracked = spawnTree(
    process.execPath,
    ['--import', 'tsx', join(REPO_ROOT, 'bench', 'sink-process.ts')],
    {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production' },
    },
  );
  const match = await tracked.output.waitFor(/SINK_PORTS (\{.*\})/, 20_000, tracked.exited);
  const ports = JSON.parse(match[1]!) as SinkPorts;
  return {
    ports,
    pid: tracked.child.pid ?? null,
    counters: async () => {
      const response = await fetch(`http://${LOOPBACK}:${ports.control}/stats`, {
        signal: AbortSignal.timeout(5000),
      });
      return (await response.json()) as SinkCounters;
    },
    stop: async () => {
      await tracked.stop('SIGTERM', 2000);
    },
  };
}

export const PROMQL_SERIES = 3000;
export const PROMQL_JOBS = 10;
/**
 * The workload-3 query, a typical dashboard panel: the request rate of one job per instance, over
 * 300 of the 3000 series (100 result rows). Aggregating all 3000 series takes VictoriaMetrics
 * 1.79 about 40 ms of CPU per query here, so that a proxy's cost would not show at all.
 */
export const PROMQL_QUERY = 'sum by (instance) (rate(bench_http_requests_total{job="job-3"}[5m]))';
export const PROMQL_RESULT_ROWS = 100;

/**
 * Real VictoriaMetrics holding `PROMQL_SERIES` counter series (20 samples each over the last
 * 5 minutes), imported through `/api/v1/import/prometheus` and flushed so queries see them.
 */
export async function startSeededVictoriaMetrics(
  seriesCount = PROMQL_SERIES,
  extraArgs: readonly string[] = [],
): Promise<VictoriaMetricsService> {
  const vm = await startVictoriaMetrics({ extraArgs });
  try {
    const now = Date.now();
    const lines: string[] = [];
    for (let i = 0; i < seriesCount; i++) {
      const labels = `job="job-${i % PROMQL_JOBS}",instance="host-${Math.floor(i / PROMQL_JOBS) % 100}:9100",handler="/api/h${i}",code="200"`;
      for (let sample = 0; sample < 20; sample++) {
        const timestamp = now - (19 - sample) * 15_000;
        lines.push(
          `bench_http_requests_total{${labels}} ${(i % 7) * 100 + sample * (1 + (i % 5))} ${timestamp}`,
        );
      }
    }
    const response = await fetch(`${vm.url}/api/v1/import/prometheus`, {
      method: 'POST',
      body: `${lines.join('\n')}\n`,
      signal: AbortSignal.timeout(60_000),
    });
    const text = await response.text();
    if (response.status !== 204)
      throw new Error(`VictoriaMetrics import answered ${response.status}: ${text}`);
    await vm.forceFlush();
    const check = await fetch(
      `${vm.url}/api/v1/series/count?match[]=${encodeURIComponent('bench_http_requests_total')}`,
      { signal: AbortSignal.timeout(10_000) },
    );
    const counted = (await check.json()) as { data?: number[] | number };
    const stored = Array.isArray(counted.data) ? counted.data[0] : counted.data;
    if (stored !== undefined && stored < seriesCount) {
      throw new Error(`VictoriaMetrics holds ${stored} of ${seriesCount} imported series`);
    }
    return vm;
  } catch (error) {
    await vm.stop();
    throw error;
  }
}
