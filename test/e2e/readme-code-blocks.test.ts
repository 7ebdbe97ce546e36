import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parse } from 'dotenv';
import { parseGatewayConfig } from '../../src/config/parse.js';
import type { RunningGateway } from '../support/gateway.js';
import { REPO_ROOT } from '../support/gateway.js';
import { type OtlpReceiver, startOtlpReceiver } from '../support/otlp-receiver.js';
import { startGatewayFor } from './fixtures.js';

/**
 * Issue 11 item 1: the README's JavaScript example did not authenticate (the gRPC exporter
 * ignores `headers`), and only the curl lines were ever run. Every fenced block of the README is
 * listed here with how it is proven: run by this test, run by readme-curl.test.ts, or why it
 * cannot run here. A new block that is not listed fails the test.
 */

interface Block {
  readonly lang: string;
  readonly firstLine: string;
  readonly text: string;
}

function readmeBlocks(): Block[] {
  const lines = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)$/.exec(lines[i] as string);
    if (open === null) continue;
    const end = lines.indexOf('```', i + 1);
    assert.ok(end !== -1, `README: code block at line ${i + 1} is never closed`);
    const body = lines.slice(i + 1, end);
    blocks.push({ lang: open[1] ?? '', firstLine: body[0] ?? '', text: body.join('\n') });
    i = end;
  }
  return blocks;
}

/** How each block is proven, keyed by the start of its first line. */
const INVENTORY: ReadonlyArray<readonly [start: string, how: string]> = [
  ['your apps', 'a diagram, not code'],
  [
    'docker compose --profile full up -d',
    'needs a Docker engine; the compose file is validated by test/deploy',
  ],
  [
    'ENVOY_API_KEYS=replace-with',
    'an env file: the suite starts every gateway with such variables (test/support/gateway.ts)',
  ],
  ['GATEWAY_KEY_CHECKOUT_SERVICE=', 'run here: parsed as an env file, each credential checked'],
  ['curl -H "X-API-Key: placeholder_api_key"', 'run by readme-curl.test.ts'],
  ['curl -u admin:secretpassword', 'run by readme-curl.test.ts'],
  ['export OTEL_EXPORTER_OTLP_ENDPOINT', 'run here'],
  ['// The gRPC exporter ignores', 'run here'],
  [
    'remote_write:',
    'a prometheus.yml fragment; remote_write through the gateway is tested by e2e/metrics-stores',
  ],
  ['edge-gateway ', 'run here'],
  ['src/config/', 'the source layout, not code'],
];

const how = (block: Block): string | undefined =>
  INVENTORY.find(([start]) => block.firstLine.startsWith(start))?.[1];

const blocks = readmeBlocks();
const block = (start: string): Block => {
  const found = blocks.find((candidate) => candidate.firstLine.startsWith(start));
  assert.ok(found !== undefined, `README has no block starting "${start}"`);
  return found;
};

test('the named-credentials example is a valid env file with what the text says', () => {
  const vars = parse(block('GATEWAY_KEY_CHECKOUT_SERVICE=').text);
  const result = parseGatewayConfig(
    {
      ...vars,
      OTLP_GRPC_UPSTREAM: 'off',
      OTLP_HTTP_UPSTREAM: 'off',
      PROMETHEUS_UPSTREAM: 'off',
      VICTORIAMETRICS_UPSTREAM: 'off',
    },
    '.env',
  );
  assert.ok(result.ok, JSON.stringify(result));
  assert.deepEqual(
    result.config.namedCredentials.map(({ name, secret, scopes, expiresAt }) => ({
      name,
      kind: secret.kind,
      scopes,
      expiresAt,
    })),
    [
      { name: 'checkout-service', kind: 'key', scopes: ['ingest'], expiresAt: null },
      { name: 'ops', kind: 'key', scopes: ['ingest', 'read', 'admin'], expiresAt: Date.UTC(2027, 2, 31) },
      { name: 'grafana', kind: 'user', scopes: ['read'], expiresAt: null },
    ],
  );
  assert.equal(result.config.placeholderKeyInUse, false, 'the placeholder key is off once named keys exist');
});

test('every README code block is accounted for', () => {
  const unlisted = blocks.filter((candidate) => how(candidate) === undefined);
  assert.deepEqual(
    unlisted.map((candidate) => candidate.firstLine),
    [],
    'README blocks not listed in INVENTORY',
  );
});

describe('README code blocks, run against a gateway in front of an OTLP receiver', () => {
  let receiver: OtlpReceiver;
  let gateway: RunningGateway;
  const scratch = mkdtempSync(join(tmpdir(), 'edge-gateway-readme-'));
  const KEY = 'readme-blocks-key-6d2f';

  before(async () => {
    receiver = await startOtlpReceiver();
    // The blocks use the stock placeholder key, the default (a key named in the environment
    // counts as a secret for the suite's no-secrets check, and this one is public), and
    // "your-api-key", replaced by it.
    gateway = await startGatewayFor({ grpc: receiver.grpcUrl });
  });

  after(async () => {
    await gateway?.stop();
    await receiver?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  /** Runs a CommonJS script from the repository (so `require` finds node_modules) that exports one span. */
  function runExport(prelude: string, spanName: string, env: Record<string, string> = {}): void {
    const file = join(REPO_ROOT, 'test', 'artifacts', `readme-block-${spanName}.cjs`);
    writeFileSync(
      file,
      `${prelude}
const { BasicTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.getTracer('readme').startSpan(${JSON.stringify(spanName)}).end();
provider.forceFlush().then(() => provider.shutdown());
`,
    );
    execFileSync(process.execPath, [file], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      timeout: 20_000,
    });
  }

  test('the JavaScript OTLP/gRPC example authenticates: its span arrives', async () => {
    receiver.reset();
    const code = block('// The gRPC exporter ignores')
      .text.replace('http://localhost:4317', gateway.url('grpc'))
      .replace('your-api-key', 'placeholder_api_key');
    runExport(code, 'readme-javascript');
    const spans = await receiver.waitForSpans(1, 10_000);
    assert.equal(spans[0]?.name, 'readme-javascript');
  });

  test('the OTEL_EXPORTER_OTLP_* variables: an exporter configured by them alone gets its span in', async () => {
    receiver.reset();
    const env: Record<string, string> = {};
    for (const line of block('export OTEL_EXPORTER_OTLP_ENDPOINT').text.split('\n')) {
      const match = /^export (\w+)=(\S+)/.exec(line);
      if (match !== null)
        env[match[1] as string] = (match[2] as string).replace('http://localhost:4317', gateway.url('grpc'));
    }
    assert.deepEqual(Object.keys(env), ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_HEADERS']);
    runExport(
      "const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');\nconst exporter = new OTLPTraceExporter();",
      'readme-env',
      env,
    );
    const spans = await receiver.waitForSpans(1, 10_000);
    assert.equal(spans[0]?.name, 'readme-env');
  });

  test('the command-line block: each command that does not start a server runs and exits 0', () => {
    writeFileSync(join(scratch, '.env'), `ENVOY_API_KEYS=${KEY}\n`);
    const cli = join(REPO_ROOT, 'dist', 'cli.js');
    let ran = 0;
    for (const line of block('edge-gateway ').text.split('\n')) {
      const command = line.replace(/\s+# .*$/, '').trim();
      // `edge-gateway` alone and `serve` start the gateway; `<command>` is a placeholder;
      // hash-password without a pipe asks on a terminal.
      if (
        /^edge-gateway( serve|\s*$)/.test(command) ||
        command.includes('<') ||
        /^edge-gateway hash-password/.test(command)
      )
        continue;
      const shell = command.replaceAll('edge-gateway', `'${process.execPath}' '${cli}'`);
      execFileSync('bash', ['-c', shell], {
        cwd: scratch,
        env: { PATH: process.env.PATH ?? '', PASSWORD: 'readme-block-password' },
        timeout: 20_000,
      });
      ran++;
    }
    assert.ok(ran >= 4, `only ${ran} commands ran`);
  });
});
