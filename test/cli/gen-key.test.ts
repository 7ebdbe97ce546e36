import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startGatewayFor } from '../e2e/fixtures.js';
import { startOkServer } from '../e2e/operations/helpers.js';
import type { RunningGateway } from '../support/gateway.js';
import { registerSecret } from '../support/secrets.js';
import { assertNoSecret, parseCredentialLine, runCli, tempDir } from './run-cli.js';

const files = tempDir();
after(() => files.remove());

const KEY = /^[A-Za-z0-9_-]{43}$/;

function keysFrom(stdout: string): string[] {
  assert.ok(stdout.endsWith('\n'), 'ends with a newline');
  return stdout.slice(0, -1).split('\n');
}

describe('edge-gateway gen-key', () => {
  test('prints one URL-safe key of 256 bits', () => {
    const result = runCli(['gen-key']);

    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stderr, '');
    const keys = keysFrom(result.stdout);
    assert.equal(keys.length, 1);
    const [key = ''] = keys;
    assert.match(key, KEY);
    assert.equal(Buffer.from(key, 'base64url').length, 32);
  });

  test('--count N prints N distinct keys, and no two runs repeat one', () => {
    const first = keysFrom(runCli(['gen-key', '--count', '50']).stdout);
    const second = keysFrom(runCli(['gen-key', '--count', '50']).stdout);

    assert.equal(first.length, 50);
    for (const key of first) assert.match(key, KEY);
    assert.equal(new Set([...first, ...second]).size, 100);
  });

  test('its keys are accepted as ENVOY_API_KEYS by check, and check does not print them', () => {
    const keys = keysFrom(runCli(['gen-key', '--count', '2']).stdout);
    const envFile = files.envFile('generated.env', [`ENVOY_API_KEYS=${keys.join(',')}`]);
    const result = runCli(['check', '--env', envFile]);

    assert.equal(result.status, 0, result.stderr);
    assertNoSecret(result, keys);
    assert.match(result.stdout, /API keys\s+2 \(/);
    assert.doesNotMatch(result.stdout, /placeholder/);
  });

  test('--count outside 1..1000 is a usage error', () => {
    for (const count of ['0', '1001', 'many', '2.5']) {
      const result = runCli(['gen-key', '--count', count]);
      assert.equal(result.status, 2, count);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /error: option '--count <n>' argument .* is invalid/);
    }
  });
});

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
/** March 31st of next year: in the future whenever the suite runs. */
const EXPIRES = `${new Date().getUTCFullYear() + 1}-03-31`;

/** Runs gen-key --name ...: the key and the env file line, both registered as secrets of the suite. */
function namedKey(args: readonly string[]): { key: string; line: string; stderr: string } {
  const result = runCli(['gen-key', ...args]);
  assert.equal(result.status, 0, result.stderr);
  const lines = keysFrom(result.stdout);
  assert.equal(lines.length, 2, result.stdout);
  const [key = '', line = ''] = lines;
  registerSecret({ kind: 'api-key', value: key });
  registerSecret({ kind: 'key-digest', value: sha256(key) });
  assertNoSecret({ ...result, stdout: '' }, [key, sha256(key)]);
  return { key, line, stderr: result.stderr };
}

describe('edge-gateway gen-key --name (issue 12)', () => {
  test('prints the key, then the env file line holding only its digest; the labels on stderr', () => {
    const { key, line, stderr } = namedKey([
      '--name',
      'checkout-service',
      '--scopes',
      'ingest',
      '--expires',
      EXPIRES,
    ]);

    assert.match(key, KEY);
    assert.equal(
      line,
      `GATEWAY_KEY_CHECKOUT_SERVICE=sha256:${sha256(key)}; scopes=ingest; expires=${EXPIRES}`,
    );
    assert.equal(
      stderr,
      `# API key of checkout-service (scopes ingest, until ${EXPIRES}), shown only this once: give it to the client\n` +
        "# for the gateway's env file (only the key's SHA-256 digest; applies live):\n",
    );
    const credential = parseCredentialLine(line);
    assert.deepEqual(credential, {
      name: 'checkout-service',
      variable: 'GATEWAY_KEY_CHECKOUT_SERVICE',
      secret: { kind: 'key', sha256Hex: sha256(key) },
      scopes: ['ingest'],
      expiresAt: Date.parse(`${EXPIRES}T00:00:00Z`),
      limits: { rate: null, bytesPerMinute: null, inflight: null },
    });
  });

  const cases: ReadonlyArray<readonly [readonly string[], string, string]> = [
    [['--name', 'grafana', '--scopes', 'read'], 'GATEWAY_KEY_GRAFANA', '; scopes=read'],
    [['--name', 'CI_Runner', '--scopes', 'read+ingest'], 'GATEWAY_KEY_CI_RUNNER', '; scopes=ingest+read'],
    [['--name', 'ops', '--scopes', 'admin+read+ingest'], 'GATEWAY_KEY_OPS', '; scopes=all'],
    [['--name', 'ops-2', '--scopes', 'all'], 'GATEWAY_KEY_OPS_2', '; scopes=all'],
    [
      ['--name', 'batch', '--scopes', 'ingest', '--expires', `${EXPIRES}T18:30:00+02:00`],
      'GATEWAY_KEY_BATCH',
      `; scopes=ingest; expires=${EXPIRES}T18:30:00+02:00`,
    ],
  ];
  for (const [args, variable, options] of cases) {
    test(`${args.join(' ')}: ${variable}=sha256:<digest>${options}`, () => {
      const { key, line } = namedKey(args);
      assert.equal(line, `${variable}=sha256:${sha256(key)}${options}`);
      const credential = parseCredentialLine(line);
      assert.equal(credential.variable, variable);
      assert.deepEqual(credential.secret, { kind: 'key', sha256Hex: sha256(key) });
    });
  }

  const refused: ReadonlyArray<readonly [readonly string[], RegExp]> = [
    [['--scopes', 'ingest'], /^error: --scopes needs --name/],
    [['--expires', EXPIRES], /^error: --expires needs --name/],
    [['--name', 'checkout-service'], /^error: --name needs --scopes: a named key must say what it may do/],
    [['--name', 'a', '--scopes', 'ingest', '--count', '2'], /^error: --count makes keys for ENVOY_API_KEYS/],
    [['--name', 'a', '--scopes', 'ingest', '--count', '1'], /^error: --count makes keys for ENVOY_API_KEYS/],
    [
      ['--name', 'checkout service', '--scopes', 'ingest'],
      /argument 'checkout service' is invalid\. expected letters and digits/,
    ],
    [['--name', 'a__b', '--scopes', 'ingest'], /argument 'a__b' is invalid/],
    [['--name', '-a', '--scopes', 'ingest'], /argument '-a' is invalid/],
    [
      ['--name', 'a', '--scopes', 'write'],
      /argument 'write' is invalid\. unknown scope "write" \(expected ingest, read, admin or all, joined with \+\)/,
    ],
    [['--name', 'a', '--scopes', 'ingest,read'], /unknown scope "ingest,read"/],
    [['--name', 'a', '--scopes', ''], /unknown scope ""/],
    [
      ['--name', 'a', '--scopes', 'ingest', '--expires', 'next-week'],
      /argument 'next-week' is invalid\. expected a date \(2027-03-31/,
    ],
    [
      ['--name', 'a', '--scopes', 'ingest', '--expires', `${EXPIRES.slice(0, 4)}-02-30`],
      /is invalid\. expected a date/,
    ],
    [
      ['--name', 'a', '--scopes', 'ingest', '--expires', '2020-01-01'],
      /argument '2020-01-01' is invalid\. 2020-01-01T00:00:00\.000Z is in the past: a new credential must expire in the future/,
    ],
  ];
  for (const [args, message] of refused) {
    test(`refused with exit 2 and nothing on stdout: gen-key ${args.join(' ')}`, () => {
      const result = runCli(['gen-key', ...args]);
      assert.equal(result.status, 2, result.stdout);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'a stack trace');
    });
  }

  test('an expiry a minute ago is in the past too', () => {
    const past = new Date(Date.now() - 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
    const result = runCli(['gen-key', '--name', 'a', '--scopes', 'ingest', '--expires', past]);
    assert.equal(result.status, 2);
    assert.match(result.stderr, /is in the past/);
  });

  test('--help shows a named key with its two lines', () => {
    const result = runCli(['gen-key', '--help']);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /--name <name>\s+make a named key: GATEWAY_KEY_<NAME> \(needs --scopes\)/);
    assert.match(
      result.stdout,
      /--scopes <scopes>\s+what it may do: ingest, read, admin or all, joined with \+/,
    );
    assert.match(result.stdout, /--expires <date>/);
    assert.match(
      result.stdout,
      /\$ edge-gateway gen-key --name checkout-service --scopes ingest --expires 2027-03-31\n.*shown only this once.*\n.*<the new key.*\n.*env file.*\n\s+GATEWAY_KEY_CHECKOUT_SERVICE=sha256:<64 hex>; scopes=ingest; expires=2027-03-31\n/,
    );
  });
});

describe('a gateway accepts a key gen-key --name printed, for its scopes only (issue 12)', () => {
  let upstream: Awaited<ReturnType<typeof startOkServer>>;
  let gateway: RunningGateway;
  const ingest = namedKey(['--name', 'checkout-service', '--scopes', 'ingest', '--expires', EXPIRES]);
  const read = namedKey(['--name', 'grafana', '--scopes', 'read']);

  before(async () => {
    upstream = await startOkServer();
    // Only the printed lines: no ENVOY_API_KEYS, so no placeholder key either.
    gateway = await startGatewayFor(
      { http: upstream.url, prometheus: upstream.url },
      {},
      `${ingest.line}\n${read.line}\n`,
    );
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  async function status(url: string, headers: Record<string, string>, method = 'GET'): Promise<number> {
    const response = await fetch(url, { method, headers });
    await response.arrayBuffer();
    return response.status;
  }

  test('the ingest key sends OTLP and may not query; the read key queries and may not send', async () => {
    const traces = `${gateway.url('http')}/v1/traces`;
    const query = `${gateway.url('prometheus')}/api/v1/query?query=up`;
    assert.equal(await status(traces, { 'x-api-key': ingest.key }, 'POST'), 200);
    assert.equal(await status(traces, { authorization: `Bearer ${ingest.key}` }, 'POST'), 200);
    assert.equal(await status(query, { 'x-api-key': ingest.key }), 403);
    assert.equal(await status(query, { authorization: `Bearer ${read.key}` }), 200);
    assert.equal(await status(traces, { 'x-api-key': read.key }, 'POST'), 403);
    assert.equal(upstream.requests(), 3);
  });

  test('the digest itself is no key, and neither is a key gen-key printed for no gateway', async () => {
    const traces = `${gateway.url('http')}/v1/traces`;
    assert.equal(await status(traces, { 'x-api-key': sha256(ingest.key) }, 'POST'), 401);
    const other = keysFrom(runCli(['gen-key']).stdout)[0] ?? '';
    registerSecret({ kind: 'api-key', value: other });
    assert.equal(await status(traces, { 'x-api-key': other }, 'POST'), 401);
  });

  test('check lists both by name and scope, and prints neither key nor digest', () => {
    const envFile = files.envFile('named-keys.env', [ingest.line, read.line, 'OTLP_GRPC_UPSTREAM=off']);
    const result = runCli(['check', '--env', envFile]);
    assert.equal(result.status, 0, result.stderr);
    assertNoSecret(result, [ingest.key, read.key, sha256(ingest.key), sha256(read.key)]);
    assert.match(result.stdout, /^ {2}checkout-service\s+key\s+ingest\s/m);
    assert.match(result.stdout, /^ {2}grafana\s+key\s+read\s/m);
  });
});
