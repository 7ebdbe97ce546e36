import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import type { BenchResult } from '../../bench/report.js';

const run = promisify(execFile);
const REPO_ROOT = new URL('../..', import.meta.url).pathname;

// A smoke run of `npm run bench -- --quick`: the harness starts the sinks, the gateway and the load
// generators, and reports every request answered. No timing is asserted: on a shared 2-core
// machine the numbers of a 1-second run mean nothing.
test('bench --quick: direct, edge-gateway and the minimal Node proxy, zero failures', {
  timeout: 180_000,
}, async () => {
  const outDir = await mkdtemp(join(tmpdir(), 'edge-gateway-bench-smoke-'));
  try {
    await run(
      process.execPath,
      [
        '--import',
        'tsx',
        'bench/run.ts',
        '--quick',
        '--only',
        'otlp-grpc,otlp-http',
        '--contenders',
        'direct,edge-gateway,node-minimal',
        '--out',
        outDir,
      ],
      { cwd: REPO_ROOT, timeout: 170_000, maxBuffer: 16 * 1024 * 1024 },
    );
    const result = JSON.parse(await readFile(join(outDir, 'latest.json'), 'utf8')) as BenchResult;
    assert.deepEqual(
      result.workloads.map((workload) => workload.id),
      ['otlp-grpc', 'otlp-http'],
    );
    for (const workload of result.workloads) {
      assert.deepEqual(
        workload.entries.map((entry) => entry.id),
        ['direct', 'edge-gateway', 'node-minimal'],
      );
      for (const entry of workload.entries) {
        const where = `${workload.id} / ${entry.id}`;
        assert.equal(entry.error, undefined, `${where}: ${entry.error}`);
        assert.equal(entry.failures, 0, `${where} failed: ${entry.failureDetails.join('; ')}`);
        assert.ok(entry.median !== null && entry.median.throughput > 0, `${where}: no throughput`);
        assert.equal(entry.authCheck, entry.kind === 'direct' ? 'n/a' : 'enforced', where);
      }
    }
    const markdown = await readFile(join(outDir, 'latest.md'), 'utf8');
    assert.match(markdown, /## 1\. OTLP\/gRPC export/);
    assert.match(markdown, /## Targets/);
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
});
