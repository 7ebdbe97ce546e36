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

/** Every entry started, answered every request, refused a request without credentials. */
function assertServedByGateways(entries: BenchResult['workloads'][number]['entries']): void {
  for (const entry of entries) {
    assert.equal(entry.error, undefined, `${entry.id}: ${entry.error}`);
    assert.equal(entry.failures, 0, `${entry.id} failed: ${entry.failureDetails.join('; ')}`);
    assert.equal(entry.authCheck, 'enforced', entry.id);
    assert.ok(entry.median !== null && entry.median.throughput > 0, `${entry.id}: no throughput`);
  }
}

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
  assertServedByGateways(workload.entries);
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
  assertServedByGateways(workload.entries);
  assert.match(markdown, /≥ 0\.97 × legacy key req\/s/);
});

// Workloads 8 and 9 (issue 14): a rate= never reached, memory and Redis store, against no limit.
test('bench --quick --only limits-tiny,limits-otlp-http: no limit, memory and Redis store, zero failures', {
  timeout: 180_000,
}, async () => {
  const { result, markdown } = await quickBench([
    '--only',
    'limits-tiny,limits-otlp-http',
    '--contenders',
    'edge-gateway',
  ]);
  assert.deepEqual(
    result.workloads.map((workload) => workload.id),
    ['limits-tiny', 'limits-otlp-http'],
  );
  for (const workload of result.workloads) {
    assert.deepEqual(
      workload.entries.map((entry) => [entry.id, entry.variant]),
      [
        ['edge-gateway-no-limit', 'no-limit'],
        ['edge-gateway-limit-memory', 'memory'],
        ['edge-gateway-limit-redis', 'redis'],
      ],
    );
    assertServedByGateways(workload.entries);
  }
  assert.match(markdown, /vs no limit/);
  assert.match(markdown, /≥ 0\.90 × no limit/);
});
