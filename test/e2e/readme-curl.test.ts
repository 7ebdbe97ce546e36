import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { RunningGateway } from '../support/gateway.js';
import { REPO_ROOT } from '../support/gateway.js';
import { encodeTraceRequest } from '../support/otlp-codec.js';
import { type OtlpReceiver, startOtlpReceiver } from '../support/otlp-receiver.js';
import {
  type RunningService,
  startPrometheus,
  startVictoriaMetrics,
  type VictoriaMetricsService,
} from '../support/services.js';
import { startGatewayFor } from './fixtures.js';

const execFileAsync = promisify(execFile);

interface CurlLine {
  readonly command: string;
  readonly status: number;
  readonly bodyIncludes: string | undefined;
}

/** The curl lines (also `printf ... | curl ...`) of the README block that follows `marker`, each with its `# <status> [text]`. */
function readmeCurlBlock(marker: string): CurlLine[] {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf(marker);
  assert.ok(start !== -1, `README has no "${marker}"`);
  const fence = readme.indexOf('```bash\n', start);
  const block = readme.slice(fence + 8, readme.indexOf('\n```', fence + 8));
  return block
    .split('\n')
    .filter((line) => line.startsWith('curl ') || /^printf [^|]+\| curl /.test(line))
    .map((line) => {
      const hash = line.lastIndexOf(' # ');
      assert.ok(hash !== -1, `README curl line without an expected status: ${line}`);
      const expectation = /^(\d{3})(?:\s+(.*))?$/.exec(line.slice(hash + 3).trim());
      assert.ok(expectation, `cannot read the expectation of: ${line}`);
      return {
        command: line.slice(0, hash).trim(),
        status: Number(expectation[1]),
        bodyIncludes: expectation[2],
      };
    });
}

const DEFAULT_PORTS = { 4317: 'grpc', 4318: 'http', 9090: 'prometheus', 8428: 'victoriametrics' } as const;

/**
 * Runs a README line with bash, its localhost ports mapped to the test gateway's. Asynchronously:
 * the collector stand-in lives in this process and must keep answering meanwhile.
 */
async function runCurl(
  line: CurlLine,
  gateway: RunningGateway,
  cwd: string,
): Promise<{ status: number; output: string }> {
  let command = line.command;
  for (const [port, listener] of Object.entries(DEFAULT_PORTS)) {
    command = command.replaceAll(`localhost:${port}`, `127.0.0.1:${gateway.ports[listener]}`);
  }
  assert.doesNotMatch(command, /localhost|:(4317|4318|9090|8428)\//, 'every port mapped to the test gateway');
  const { stdout: output } = await execFileAsync(
    'bash',
    ['-c', `${command} -s --max-time 10 -w '\\n%{http_code}'`],
    {
      cwd,
      encoding: 'utf8',
    },
  );
  const newline = output.lastIndexOf('\n');
  return { status: Number(output.slice(newline + 1)), output: output.slice(0, newline) };
}

describe('the README curl commands, run with real curl against the gateway', () => {
  let receiver: OtlpReceiver;
  let vm: VictoriaMetricsService;
  let prometheus: RunningService;
  let workDir: string;

  before(async () => {
    execFileSync('curl', ['--version']);
    receiver = await startOtlpReceiver();
    vm = await startVictoriaMetrics();
    prometheus = await startPrometheus({ scrapeTargets: [vm.url.replace('http://', '')] });
    workDir = mkdtempSync(join(tmpdir(), 'readme-curl-'));
    writeFileSync(
      join(workDir, 'trace.pb'),
      encodeTraceRequest({
        resourceSpans: [
          {
            resource: { attributes: [{ key: 'service.name', value: { stringValue: 'readme' } }] },
            scopeSpans: [
              {
                spans: [{ traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(8, 2), name: 'from-trace.pb' }],
              },
            ],
          },
        ],
      }),
    );
  });
  after(async () => {
    await prometheus?.stop();
    await vm?.stop();
    await receiver?.stop();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  for (const [mode, marker, env] of [
    ['api-key', 'In `api-key` mode', {}],
    [
      'basic-auth',
      'In `basic-auth` mode',
      { ENVOY_AUTH_METHOD: 'basic-auth', ENVOY_BASIC_AUTH_CREDENTIALS: 'admin:secretpassword' },
    ],
  ] as const) {
    test(`${mode} mode: every README line answers as its comment says`, async () => {
      const lines = readmeCurlBlock(marker);
      assert.ok(lines.length >= 5, `${lines.length} curl lines`);
      const gateway = await startGatewayFor(
        {
          grpc: receiver.grpcUrl,
          http: receiver.httpUrl,
          prometheus: prometheus.url,
          victoriametrics: vm.url,
        },
        env,
      );
      try {
        receiver.reset();
        for (const line of lines) {
          const { status, output } = await runCurl(line, gateway, workDir);
          assert.equal(status, line.status, `${line.command}\n${output}`);
          if (line.bodyIncludes !== undefined)
            assert.ok(output.includes(line.bodyIncludes), `${line.command}\n${output}`);
        }
        if (mode === 'api-key') {
          assert.ok(
            receiver.spans.some((span) => span.name === 'from-trace.pb'),
            'trace.pb reached the collector',
          );
        }
      } finally {
        await gateway.stop();
      }
    });
  }
});
