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

/** Runs `bench/run.ts --quick` with `args` into a temp dir; answers its latest.json and latest.md. */
async function quickBench(args: readonly string[]): Promise<{ result: BenchResult; markdown: string }> {
  const outDir = await mkdtemp(join(tmpdir(), 'edge-gateway-bench-smoke-'));
  try {
    await run(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', ...args, '--out', outDir], {
      cwd: REPO_ROOT,
      timeout: 170_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return {
      result: JSON.parse(await readFile(join(outDir, 'latest.json'), 'utf8')) as BenchResult,
      markdown: await readFile(join(outDir, 'latest.md'), 'utf8'),
    };
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}

// A smoke run of `npm run bench -- --quick`: the harness starts the sinks, the gateway and the load
// generators, and reports every request answered. No timing is asserted: on a shared 2-core
// machine the numbers of a 1-second run mean nothing.
test('bench --quick: direct, the TCP relay, edge-gateway and the minimal Node proxy, zero failures', {
  timeout: 180_000,
}, async () => {
  const { result, markdown } = await quickBench([
    '--only',
    'otlp-grpc,otlp-http',
    '--contenders',
    'direct,tcp-relay,edge-gateway,node-minimal',
  ]);
  assert.deepEqual(
    result.workloads.map((workload) => workload.id),
    ['otlp-grpc', 'otlp-http'],
  );
  for (const workload of result.workloads) {
    assert.deepEqual(
      workload.entries.map((entry) => entry.id),
      ['direct', 'tcp-relay', 'edge-gateway', 'node-minimal'],
    );
    for (const entry of workload.entries) {
      const where = `${workload.id} / ${entry.id}`;
      assert.equal(entry.error, undefined, `${where}: ${entry.error}`);
      assert.equal(entry.failures, 0, `${where} failed: ${entry.failureDetails.join('; ')}`);
      assert.ok(entry.median !== null && entry.median.throughput > 0, `${where}: no throughput`);
      assert.equal(
        entry.authCheck,
        entry.kind === 'direct' || entry.kind === 'tcp-relay' ? 'n/a' : 'enforced',
        where,
      );
    }
  }
  assert.match(markdown, /## 1\. OTLP\/gRPC export/);
  assert.match(markdown, /## Targets/);
});

// Workload 6 sends the plaintext and the bcrypt user's load to one gateway process configured
// with both users: the bcrypt entry reuses the plaintext entry's process, and both users get in.
test('bench --quick --only bcrypt: both Basic users served by one gateway process, zero failures', {
  timeout: 180_000,
}, async () => {
  const { result } = await quickBench(['--only', 'bcrypt', '--contenders', 'edge-gateway']);
  const [workload] = result.workloads;
  assert.equal(workload?.id, 'bcrypt');
  assert.deepEqual(
    workload.entries.map((entry) => [entry.id, entry.variant, entry.sharesProcessOf]),
    [
      ['edge-gateway-basic-plaintext', 'plaintext', undefined],
      ['edge-gateway-basic-bcrypt', 'bcrypt', 'edge-gateway-basic-plaintext'],
    ],
  );
  for (const entry of workload.entries) {
    assert.equal(entry.error, undefined, `${entry.id}: ${entry.error}`);
    assert.equal(entry.failures, 0, `${entry.id} failed: ${entry.failureDetails.join('; ')}`);
    assert.equal(entry.authCheck, 'enforced', entry.id);
    assert.ok(entry.median !== null && entry.median.throughput > 0, `${entry.id}: no throughput`);
  }
});

// Workload 7 (issue 12) does the same with a legacy key and a named key of scope read.
test('bench --quick --only scoped: the legacy and the scoped key served by one gateway process, zero failures', {
  timeout: 180_000,
}, async () => {
  const { result, markdown } = await quickBench(['--only', 'scoped', '--contenders', 'edge-gateway']);
  const [workload] = result.workloads;
  assert.equal(workload?.id, 'scoped');
  assert.deepEqual(
    workload.entries.map((entry) => [entry.id, entry.variant, entry.sharesProcessOf]),
    [
      ['edge-gateway-legacy-key', 'legacy', undefined],
      ['edge-gateway-scoped-key', 'scoped', 'edge-gateway-legacy-key'],
    ],
  );
  for (const entry of workload.entries) {
    assert.equal(entry.error, undefined, `${entry.id}: ${entry.error}`);
    assert.equal(entry.failures, 0, `${entry.id} failed: ${entry.failureDetails.join('; ')}`);
    assert.equal(entry.authCheck, 'enforced', entry.id);
    assert.ok(entry.median !== null && entry.median.throughput > 0, `${entry.id}: no throughput`);
  }
  assert.match(markdown, /≥ 0\.97 × legacy key req\/s/);
});
