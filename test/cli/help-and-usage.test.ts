import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli, tempDir } from './run-cli.js';

const files = tempDir();
after(() => files.remove());

describe('edge-gateway --help and usage errors', () => {
  test('--help lists every command with what it is for', () => {
    const result = runCli(['--help']);

    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^Usage: edge-gateway \[options\] \[command\]/);
    assert.match(result.stdout, /serve \[options\]\s+run the gateway \(the default command\)/);
    assert.match(result.stdout, /check \[options\]\s+validate a configuration/);
    assert.match(result.stdout, /hash-password \[options\] \[user\]\s+hash a password with bcrypt/);
    assert.match(result.stdout, /gen-key \[options\]\s+print a new random API key/);
  });

  const commandHelp: ReadonlyArray<readonly [string, readonly RegExp[]]> = [
    ['serve', [/Usage: edge-gateway serve/, /-f, --env <file>/, /SIGTERM/]],
    [
      'check',
      [
        /Usage: edge-gateway check/,
        /-f, --env <file>/,
        /--json/,
        /Exits 0/,
        /never\s+printed/,
        /within\s+14\s+days/,
      ],
    ],
    [
      'hash-password',
      [
        /Usage: edge-gateway hash-password \[options\] \[user\]/,
        /--cost <n>/,
        /\(default: 12\)/,
        /--scopes <scopes>/,
        /GATEWAY_USER_<NAME>/,
      ],
    ],
    [
      'gen-key',
      [
        /Usage: edge-gateway gen-key/,
        /--count <n>/,
        /256 bits/,
        /ENVOY_API_KEYS/,
        /--name <name>/,
        /--scopes <scopes>/,
      ],
    ],
  ];
  for (const [command, expected] of commandHelp) {
    test(`${command} --help and help ${command} describe it`, () => {
      for (const args of [
        [command, '--help'],
        ['help', command],
      ]) {
        const result = runCli(args);
        assert.equal(result.status, 0, `${args.join(' ')}: ${result.stderr}`);
        for (const pattern of expected) assert.match(result.stdout, pattern, args.join(' '));
      }
    });
  }

  test('an unknown command exits 2 and names it', () => {
    const result = runCli(['chek']);

    assert.equal(result.status, 2);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /error: unknown command 'chek'/);
  });

  test('an unknown option or an extra argument exits 2 with commander’s message', () => {
    const unknownOption = runCli(['check', '--verbose']);
    assert.equal(unknownOption.status, 2);
    assert.match(unknownOption.stderr, /error: unknown option '--verbose'/);

    const extra = runCli(['gen-key', 'now']);
    assert.equal(extra.status, 2);
    assert.match(extra.stderr, /error: too many arguments for 'gen-key'/);

    const missingValue = runCli(['check', '--env']);
    assert.equal(missingValue.status, 2);
    assert.match(missingValue.stderr, /error: option '-f, --env <file>' argument missing/);
  });

  test('without a command it runs serve, which refuses an invalid configuration with exit 2', () => {
    const envFile = files.envFile('invalid.env', ['ENVOY_AUTH_METHOD=kerberos']);
    for (const args of [
      ['--env', envFile],
      ['serve', '--env', envFile],
    ]) {
      const result = runCli(args);
      assert.equal(result.status, 2, args.join(' '));
      assert.match(result.stderr, /configuration error: ENVOY_AUTH_METHOD: must be one of/);
    }
  });
});

// Issue 11 item 5: the bin failed after `npm ci` (exit 127) until a build: `prepare` builds now.
test('npx edge-gateway runs from a checkout, and npm ci builds it (prepare)', () => {
  const repo = fileURLToPath(new URL('../../', import.meta.url));
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  assert.match(pkg.scripts.prepare ?? '', /tsc -p tsconfig\.build\.json/);
  const result = spawnSync('npx', ['--no-install', 'edge-gateway', '--help'], {
    cwd: repo,
    encoding: 'utf8',
  });
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /Usage: edge-gateway/);
});
