import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcrypt';
import { basic, startGatewayFor } from '../e2e/fixtures.js';
import { startOkServer } from '../e2e/operations/helpers.js';
import type { RunningGateway } from '../support/gateway.js';
import { registerSecret } from '../support/secrets.js';
import { assertNoSecret, CLI, parseCredentialLine, runCli, tempDir } from './run-cli.js';

const files = tempDir();
after(() => files.remove());

const PASSWORD = 'correct horse:battery,staple';

/** The hash from a `user:<hash>` line (the hash itself contains no ':' after the user). */
function hashOf(line: string, user: string): string {
  assert.ok(line.startsWith(`${user}:`), line);
  return line.slice(user.length + 1);
}

const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;

/**
 * Runs hash-password on a pseudo-terminal (util-linux `script`), typing each answer once its
 * prompt is out, as a person would. Answers everything the terminal showed and the exit code.
 */
function onTerminal(
  args: readonly string[],
  answers: readonly string[],
): Promise<{ shown: string; code: number | null }> {
  const quote = (word: string): string => `'${word.replaceAll("'", "'\\''")}'`;
  const command = [process.execPath, CLI, 'hash-password', ...args].map(quote).join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TERM: 'dumb' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const pending = [...answers];
  let shown = '';
  let prompts = 0;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (text: string) => {
    shown += text;
    const seen = (shown.match(/password[^:\n]*: /gi) ?? []).length;
    while (prompts < seen) {
      prompts += 1;
      const answer = pending.shift();
      if (answer !== undefined) child.stdin.write(`${answer}\r`);
    }
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ shown, code });
    });
  });
}

describe('edge-gateway hash-password', () => {
  test('hashes the first line of stdin and prints user:<bcrypt hash> that verifies', async () => {
    const result = runCli(['hash-password', 'alice', '--cost', '4'], { input: `${PASSWORD}\n` });

    assert.equal(result.status, 0, result.stderr);
    assertNoSecret(result, [PASSWORD]);
    const lines = result.stdout.split('\n');
    assert.equal(lines.length, 2, 'one line and its newline');
    const hash = hashOf(lines[0] ?? '', 'alice');
    assert.match(hash, /^\$2b\$04\$[./A-Za-z0-9]{53}$/);
    assert.equal(await bcrypt.compare(PASSWORD, hash), true);
    assert.equal(await bcrypt.compare(`${PASSWORD}\n`, hash), false);
  });

  test('its output pasted into ENVOY_BASIC_AUTH_CREDENTIALS makes check pass with that user', () => {
    const alice = runCli(['hash-password', 'alice', '--cost', '4'], { input: `${PASSWORD}\n` }).stdout.trim();
    const bob = runCli(['hash-password', 'bob', '--cost', '5'], { input: 'another one\n' }).stdout.trim();
    const envFile = files.envFile('hashed.env', [
      'ENVOY_AUTH_METHOD=basic-auth',
      `ENVOY_BASIC_AUTH_CREDENTIALS=${alice},${bob}`,
    ]);
    const result = runCli(['check', '--env', envFile]);

    assert.equal(result.status, 0, result.stderr);
    assertNoSecret(result, [PASSWORD, hashOf(alice, 'alice'), hashOf(bob, 'bob')]);
    assert.match(result.stdout, /Basic users\s+2: 2 bcrypt, 0 plaintext \(alice, bob\)/);
    assert.doesNotMatch(result.stdout, /WARNING/);
  });

  test('cost 12 by default, and only the hash when no user is given', async () => {
    const result = runCli(['hash-password'], { input: 'no user\n' });

    assert.equal(result.status, 0, result.stderr);
    const hash = result.stdout.trimEnd();
    assert.match(hash, /^\$2b\$12\$[./A-Za-z0-9]{53}$/);
    assert.equal(await bcrypt.compare('no user', hash), true);
  });

  test('only the first line counts, its CRLF removed; a last line without newline works', async () => {
    const crlf = runCli(['hash-password', 'carol', '--cost', '4'], { input: 'first\r\nsecond\n' });
    assert.equal(crlf.status, 0, crlf.stderr);
    assert.equal(await bcrypt.compare('first', hashOf(crlf.stdout.trimEnd(), 'carol')), true);

    const bare = runCli(['hash-password', 'carol', '--cost', '4'], { input: ' spaces kept ' });
    assert.equal(bare.status, 0, bare.stderr);
    assert.equal(await bcrypt.compare(' spaces kept ', hashOf(bare.stdout.trimEnd(), 'carol')), true);
  });

  test('an empty password is refused: exit 1, nothing on stdout', () => {
    for (const input of ['', '\n', '\r\nsecond line\n']) {
      const result = runCli(['hash-password', 'dave', '--cost', '4'], { input });
      assert.equal(result.status, 1, JSON.stringify(input));
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /empty password, nothing hashed/);
    }
  });

  test('a password bcrypt would truncate (over 72 bytes) is refused', () => {
    const result = runCli(['hash-password', '--cost', '4'], { input: `${'é'.repeat(37)}\n` });

    assert.equal(result.status, 1);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /longer than 72 bytes/);
  });

  test("a user name ENVOY_BASIC_AUTH_CREDENTIALS cannot hold is refused: ':', ',', edge spaces", () => {
    for (const user of ['ali:ce', 'ali,ce', ' alice', '']) {
      const result = runCli(['hash-password', user, '--cost', '4'], { input: `${PASSWORD}\n` });
      assert.equal(result.status, 2, user);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /error: command-argument value .* is invalid for argument 'user'/);
    }
  });

  test('--cost outside 4..15 is a usage error', () => {
    for (const cost of ['3', '16', 'twelve', '-1']) {
      const result = runCli(['hash-password', 'alice', '--cost', cost], { input: `${PASSWORD}\n` });
      assert.equal(result.status, 2, cost);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, /error: option '--cost <n>' argument .* is invalid/);
    }
  });

  test('on a terminal: asks twice on the terminal without echoing the password', async () => {
    assert.ok(hasScript, 'the pseudo-terminal tests need `script` (Debian package bsdutils)');
    const typed = 'typed-on-a-tty-Secret';
    const { shown, code } = await onTerminal(['erin', '--cost', '4'], [typed, typed]);

    assert.equal(code, 0, shown);
    assert.ok(!shown.includes(typed), 'the password was echoed');
    assert.match(shown, /Password for erin: /);
    assert.match(shown, /Repeat password: /);
    const line = shown.split(/\r?\n/).find((candidate) => candidate.startsWith('erin:$2b$'));
    assert.ok(line, shown);
    assert.equal(await bcrypt.compare(typed, hashOf(line.trim(), 'erin')), true);
  });

  test('on a terminal: two different answers are refused with exit 1', async () => {
    assert.ok(hasScript, 'the pseudo-terminal tests need `script` (Debian package bsdutils)');
    const { shown, code } = await onTerminal(['erin', '--cost', '4'], ['first-Secret', 'second-Secret']);

    assert.equal(code, 1, shown);
    assert.match(shown, /the two passwords differ, nothing hashed/);
    assert.doesNotMatch(shown, /\$2b\$/);
    assert.ok(!shown.includes('first-Secret') && !shown.includes('second-Secret'), 'a password was echoed');
  });
});

/** March 31st of next year: in the future whenever the suite runs. */
const EXPIRES = `${new Date().getUTCFullYear() + 1}-03-31`;

/** Runs hash-password with `password` on stdin: its one line, the password and hash registered as secrets. */
function namedUser(args: readonly string[], user: string, password: string): { line: string; hash: string } {
  registerSecret({ kind: 'password', value: password, user });
  const result = runCli(['hash-password', ...args, '--cost', '4'], { input: `${password}\n` });
  assert.equal(result.status, 0, result.stderr);
  assertNoSecret(result, [password]);
  assert.equal(result.stderr, '');
  const lines = result.stdout.split('\n');
  assert.equal(lines.length, 2, 'one line and its newline');
  const line = lines[0] ?? '';
  const hash = /:(\$2b\$04\$[./A-Za-z0-9]{53});/.exec(line)?.[1] ?? '';
  assert.notEqual(hash, '', line);
  registerSecret({ kind: 'bcrypt-hash', value: hash, user });
  return { line, hash };
}

describe('edge-gateway hash-password --scopes: a GATEWAY_USER_<NAME> line (issue 12)', () => {
  test('prints GATEWAY_USER_<USER>=user:<bcrypt hash>; scopes=...; expires=..., which the parser reads back', async () => {
    const { line, hash } = namedUser(
      ['grafana', '--scopes', 'read', '--expires', EXPIRES],
      'grafana',
      PASSWORD,
    );

    assert.equal(line, `GATEWAY_USER_GRAFANA=grafana:${hash}; scopes=read; expires=${EXPIRES}`);
    assert.equal(await bcrypt.compare(PASSWORD, hash), true);
    assert.deepEqual(parseCredentialLine(line), {
      name: 'grafana',
      variable: 'GATEWAY_USER_GRAFANA',
      secret: { kind: 'user', credential: { user: 'grafana', kind: 'bcrypt', hash } },
      scopes: ['read'],
      expiresAt: Date.parse(`${EXPIRES}T00:00:00Z`),
      limits: { rate: null, bytesPerMinute: null, inflight: null },
    });
  });

  test('--name names the credential when the user name cannot, and scopes are written as scopes= reads them', () => {
    const { line, hash } = namedUser(
      ['alice.smith@example.com', '--name', 'alice', '--scopes', 'read+ingest'],
      'alice.smith@example.com',
      'alice-Pa55word',
    );
    assert.equal(line, `GATEWAY_USER_ALICE=alice.smith@example.com:${hash}; scopes=ingest+read`);
    const credential = parseCredentialLine(line);
    assert.equal(credential.name, 'alice');
    assert.deepEqual(credential.scopes, ['ingest', 'read']);
    assert.equal(credential.expiresAt, null);
  });

  const refused: ReadonlyArray<readonly [readonly string[], RegExp]> = [
    [['--scopes', 'read'], /^error: --scopes needs a user name/],
    [['bob', '--name', 'bob'], /^error: --name needs --scopes: a named user must say what it may do/],
    [['bob', '--expires', EXPIRES], /^error: --expires needs --scopes/],
    [
      ['bob.smith', '--scopes', 'read'],
      /^error: "bob\.smith" cannot be a credential name .*: give one with --name/,
    ],
    [['bob', '--name', 'bob smith', '--scopes', 'read'], /argument 'bob smith' is invalid/],
    [
      ['b;ob', '--name', 'bob', '--scopes', 'read'],
      /^error: the user name of a GATEWAY_USER_ line cannot hold ';' or '#'/,
    ],
    [
      ['b#ob', '--name', 'bob', '--scopes', 'read'],
      /^error: the user name of a GATEWAY_USER_ line cannot hold ';' or '#'/,
    ],
    [['bob', '--scopes', 'write'], /argument 'write' is invalid\. unknown scope "write"/],
    [
      ['bob', '--scopes', 'read', '--expires', '2020-01-01'],
      /is in the past: a new credential must expire in the future/,
    ],
    [
      ['bob', '--scopes', 'read', '--expires', '31.03.2027'],
      /argument '31\.03\.2027' is invalid\. expected a date/,
    ],
  ];
  for (const [args, message] of refused) {
    test(`refused with exit 2 before any password is read: hash-password ${args.join(' ')}`, () => {
      const result = runCli(['hash-password', ...args, '--cost', '4'], { input: `${PASSWORD}\n` });
      assert.equal(result.status, 2, result.stdout);
      assert.equal(result.stdout, '');
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /\n\s+at /, 'a stack trace');
    });
  }

  test('on a terminal: the named line comes after the two questions, the password never shown', async () => {
    assert.ok(hasScript, 'the pseudo-terminal tests need `script` (Debian package bsdutils)');
    const typed = 'typed-for-a-named-user-Secret';
    registerSecret({ kind: 'password', value: typed, user: 'erin' });
    const { shown, code } = await onTerminal(['erin', '--scopes', 'admin', '--cost', '4'], [typed, typed]);

    assert.equal(code, 0, shown);
    assert.ok(!shown.includes(typed), 'the password was echoed');
    const line = shown
      .split(/\r?\n/)
      .find((candidate) => candidate.startsWith('GATEWAY_USER_ERIN=erin:$2b$'));
    assert.ok(line, shown);
    assert.match(line, /; scopes=admin$/);
  });
});

describe('a gateway accepts the user hash-password --scopes printed, for its scopes only (issue 12)', () => {
  const password = 'grafana-reads-only-Pa55';
  const { line } = namedUser(['grafana', '--scopes', 'read'], 'grafana', password);
  let upstream: Awaited<ReturnType<typeof startOkServer>>;
  let gateway: RunningGateway;

  before(async () => {
    upstream = await startOkServer();
    gateway = await startGatewayFor(
      { http: upstream.url, prometheus: upstream.url },
      { ENVOY_AUTH_METHOD: 'basic-auth' },
      `${line}\n`,
    );
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  test('Basic grafana:<password> may query, not send OTLP; a wrong password is 401', async () => {
    const status = async (url: string, pass: string, method = 'GET'): Promise<number> => {
      const response = await fetch(url, { method, headers: { authorization: basic('grafana', pass) } });
      await response.arrayBuffer();
      return response.status;
    };
    assert.equal(await status(`${gateway.url('prometheus')}/api/v1/query?query=up`, password), 200);
    assert.equal(await status(`${gateway.url('http')}/v1/metrics`, password, 'POST'), 403);
    assert.equal(
      await status(`${gateway.url('prometheus')}/api/v1/query?query=up`, `${password}-wrong`),
      401,
    );
    assert.equal(upstream.requests(), 1);
  });
});
