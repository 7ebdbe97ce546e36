import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import bcrypt from 'bcrypt';
import { registerEnvFileSecrets } from '../support/secrets.js';
import { assertNoSecret, runCli, tempDir } from './run-cli.js';

const files = tempDir();
after(() => files.remove());

const KEY_1 = 'k1-Zm9vYmFyYmF6cXV4LXNlY3JldC1rZXktb25l';
const KEY_2 = 'k2-c2Vjb25kLXNlY3JldC1hcGkta2V5LXZhbHVl';
const PLAIN_PASSWORD = 'plain-Pa55word-that-must-not-leak';
// bcrypt('s3cret', 4): the hash itself is a secret too (it can be attacked offline).
const BCRYPT_HASH = '$2b$04$XZYoNCHZkaSQbvWZXNyn9.WyHbFh3BZCvJWjPcDUrSPWana7XJsUW';

describe('edge-gateway check', () => {
  test('a valid configuration: exit 0 and what serve would do, without any secret', () => {
    const envFile = files.envFile('valid.env', [
      'ENVOY_AUTH_METHOD=any',
      `ENVOY_API_KEYS= ${KEY_1} , ${KEY_2} ,`,
      `ENVOY_BASIC_AUTH_CREDENTIALS=alice:${PLAIN_PASSWORD},bob:${BCRYPT_HASH}`,
      'PROMETHEUS_UPSTREAM=off',
      'VICTORIAMETRICS_LISTEN=127.0.0.1:18428',
      'VICTORIAMETRICS_UPSTREAM=http://vm.internal:8428',
      'UPSTREAM_CONNECT_TIMEOUT=2s',
      'UPSTREAM_TIMEOUT=250ms',
      'DRAIN_TIMEOUT=1m',
    ]);
    const result = runCli(['check', '--env', envFile]);

    assert.equal(result.status, 0, result.stderr);
    assertNoSecret(result, [KEY_1, KEY_2, PLAIN_PASSWORD, BCRYPT_HASH, BCRYPT_HASH.slice(7)]);
    const out = result.stdout;
    assert.match(out, /configuration is valid/);
    assert.ok(out.includes(`env file: ${envFile} (found)`), out);
    assert.match(out, /method\s+any/);
    assert.match(out, /API keys\s+2 \(key-[0-9a-f]{8}, key-[0-9a-f]{8}\)/);
    assert.match(out, /Basic users\s+2: 1 bcrypt, 1 plaintext \(alice, bob\)/);
    assert.match(out, /otlp-grpc\s+0\.0\.0\.0:4317\s+-> http:\/\/otel-collector:4317/);
    assert.match(out, /otlp-http\s+0\.0\.0\.0:4318\s+-> http:\/\/otel-collector:4318/);
    assert.match(out, /prometheus\s+off/);
    assert.match(out, /victoriametrics\s+127\.0\.0\.1:18428\s+-> http:\/\/vm\.internal:8428/);
    assert.match(out, /admin\s+127\.0\.0\.1:9901/);
    assert.match(out, /UPSTREAM_CONNECT_TIMEOUT\s+2s\s+\(set; restart to change\)/);
    assert.match(out, /UPSTREAM_TIMEOUT\s+250ms\s+\(set; restart to change\)/);
    assert.match(out, /DRAIN_TIMEOUT\s+1m\s+\(set; applies live\)/);
    assert.match(out, /AUTH_FAILURE_LIMIT\s+20\s+\(default; applies live\)/);
    assert.doesNotMatch(out, /placeholder/);
    assert.match(out, /WARNING: 1 Basic user with a plaintext password \(alice\)/);
  });

  test('the stock defaults: valid, the env file reported missing, a loud placeholder-key warning', () => {
    const result = runCli(['check'], { env: { GATEWAY_ENV_FILE: join(files.dir, 'absent.env') } });

    assert.equal(result.status, 0, result.stderr);
    assert.ok(result.stdout.includes(`${join(files.dir, 'absent.env')} (not found`), result.stdout);
    assert.match(result.stdout, /^WARNING: the stock placeholder API key "placeholder_api_key" is ACCEPTED/m);
    assert.match(result.stdout, /method\s+api-key/);
    assert.match(result.stdout, /API keys\s+1 \(key-[0-9a-f]{8}\)/);
  });

  test('an invalid configuration: exit 2 and every error listed, one per line, each naming its variable', () => {
    const envFile = files.envFile('invalid.env', [
      'ENVOY_AUTH_METHOD=kerberos',
      `ENVOY_API_KEYS=${KEY_1},${KEY_1}`,
      `ENVOY_BASIC_AUTH_CREDENTIALS=carol${PLAIN_PASSWORD},dave:$2b$04$truncated-hash`,
      'OTLP_HTTP_LISTEN=:99999',
      'PROMETHEUS_UPSTREAM=ftp://prometheus:9090',
      'UPSTREAM_CONNECT_TIMEOUT=soon',
      'LOG_LEVEL=chatty',
    ]);
    const result = runCli(['check', '--env', envFile]);

    assert.equal(result.status, 2);
    assert.equal(result.stdout, '');
    assertNoSecret(result, [KEY_1, PLAIN_PASSWORD, 'truncated-hash']);
    const errors = result.stderr.split('\n').filter((line) => line.startsWith('  error: '));
    const variables = [
      'ENVOY_AUTH_METHOD',
      'ENVOY_API_KEYS entry 2',
      'ENVOY_BASIC_AUTH_CREDENTIALS entry 1',
      'ENVOY_BASIC_AUTH_CREDENTIALS entry 2',
      'OTLP_HTTP_LISTEN',
      'PROMETHEUS_UPSTREAM',
      'UPSTREAM_CONNECT_TIMEOUT',
      'LOG_LEVEL',
    ];
    assert.equal(errors.length, variables.length, result.stderr);
    for (const variable of variables) {
      assert.ok(
        errors.some((line) => line.startsWith(`  error: ${variable}:`)),
        `${variable}:\n${result.stderr}`,
      );
    }
    assert.match(result.stderr, /configuration is INVALID \(8 errors; env file .*invalid\.env, found\)/);
  });

  test('unusable TLS files are an error, as serve finds them: exit 2 naming the file', () => {
    const missing = join(files.dir, 'no-such-cert.pem');
    const envFile = files.envFile('tls.env', [
      `TLS_CERT_FILE=${missing}`,
      `TLS_KEY_FILE=${join(files.dir, 'no-such-key.pem')}`,
    ]);
    const result = runCli(['check', '--env', envFile]);
    assert.equal(result.status, 2, result.stdout);
    assert.match(result.stderr, /configuration is INVALID/);
    assert.ok(result.stderr.includes('no-such-'), result.stderr);
  });

  test('basic-auth without any user is an error', () => {
    const envFile = files.envFile('no-users.env', ['ENVOY_AUTH_METHOD=basic-auth']);
    const result = runCli(['check', '--env', envFile]);

    assert.equal(result.status, 2);
    assert.match(
      result.stderr,
      /error: ENVOY_BASIC_AUTH_CREDENTIALS: ENVOY_AUTH_METHOD is basic-auth but no user/,
    );
  });

  test('reads what serve reads: the process environment, and GATEWAY_ENV_FILE without --env', () => {
    const envFile = files.envFile('from-variable.env', [`ENVOY_API_KEYS=${KEY_2}`]);
    const result = runCli(['check'], {
      env: {
        GATEWAY_ENV_FILE: envFile,
        ENVOY_AUTH_METHOD: 'basic-auth',
        ENVOY_BASIC_AUTH_CREDENTIALS: 'erin:x',
      },
    });

    assert.equal(result.status, 0, result.stderr);
    assertNoSecret(result, [KEY_2]);
    assert.ok(result.stdout.includes(`env file: ${envFile} (found)`), result.stdout);
    assert.match(result.stdout, /method\s+basic-auth/);
    assert.match(result.stdout, /API keys\s+1 configured, not used with basic-auth/);
    assert.match(result.stdout, /Basic users\s+1: 0 bcrypt, 1 plaintext \(erin\)/);
  });

  test('an env file that cannot be read is an error, not the defaults', () => {
    const directory = join(files.dir, 'a-directory.env');
    mkdirSync(directory);
    const result = runCli(['check', '-f', directory]);

    assert.equal(result.status, 2);
    assert.match(result.stderr, /error: cannot read env file .*a-directory\.env/);
  });

  test('--json prints the redacted configuration', () => {
    const envFile = files.envFile('json.env', [
      `ENVOY_API_KEYS=placeholder_api_key,${KEY_1}`,
      `ENVOY_BASIC_AUTH_CREDENTIALS=alice:${PLAIN_PASSWORD},bob:${BCRYPT_HASH}`,
      'OTLP_GRPC_UPSTREAM=off',
    ]);
    const result = runCli(['check', '--json', '--env', envFile]);

    assert.equal(result.status, 0, result.stderr);
    assertNoSecret(result, [KEY_1, PLAIN_PASSWORD, BCRYPT_HASH, BCRYPT_HASH.slice(7)]);
    const dump = JSON.parse(result.stdout) as {
      auth: {
        method: string;
        api_keys: unknown[];
        basic_users: { user: string }[];
        placeholder_key_in_use: boolean;
      };
      listeners: { name: string; upstream: string }[];
      env_file: string;
    };
    assert.equal(dump.auth.method, 'api-key');
    assert.equal(dump.auth.api_keys.length, 2);
    assert.deepEqual(
      dump.auth.basic_users.map((user) => user.user),
      ['alice', 'bob'],
    );
    assert.equal(dump.auth.placeholder_key_in_use, true);
    assert.equal(dump.listeners.find((listener) => listener.name === 'otlp-grpc')?.upstream, 'off');
    assert.equal(dump.env_file, envFile);
  });

  test('--json of an invalid configuration: exit 2, errors on stderr, nothing on stdout', () => {
    const envFile = files.envFile('json-invalid.env', ['ENVOY_AUTH_METHOD=nope']);
    const result = runCli(['check', '--json', '--env', envFile]);

    assert.equal(result.status, 2);
    assert.equal(result.stdout, '');
    assert.match(result.stderr, /error: ENVOY_AUTH_METHOD: must be one of/);
  });
});

// Issue 11 item 4: `--env-file` was read by Node itself (exit 9, "node: FILE: not found").
for (const flag of ['-f', '--env']) {
  test(`check ${flag} with a missing file: the gateway's own exit 2, naming the file`, () => {
    const missing = join(tmpdir(), 'edge-gateway-no-such.env');
    const result = runCli(['check', flag, missing]);
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, new RegExp(`env file ${missing} \\(given with -f/--env\\) does not exist`));
  });
}

describe('edge-gateway check: empty and misspelt settings (issue 11 item 3)', () => {
  test('ENVOY_API_KEYS= , , is an error naming the variable: exit 2', () => {
    const envFile = files.envFile('empty-keys.env', ['ENVOY_API_KEYS= , ,']);
    const result = runCli(['check', '-f', envFile]);

    assert.equal(result.status, 2, result.stdout);
    assert.match(
      result.stderr,
      /^ {2}error: ENVOY_API_KEYS: ENVOY_AUTH_METHOD is api-key but the list holds no key/m,
    );
  });

  test('a misspelt setting is a warning naming the closest setting, on a valid and an invalid configuration', () => {
    const valid = runCli([
      'check',
      '-f',
      files.envFile('misspelt.env', [
        `ENVOY_API_KEYS=${KEY_1}`,
        `ENVOY_API_KEY=${KEY_2}`,
        'OTLP_GRPC_UPSTREM=off',
      ]),
    ]);
    assert.equal(valid.status, 0, valid.stderr);
    assertNoSecret(valid, [KEY_1, KEY_2]);
    assert.match(valid.stdout, /^WARNING: ENVOY_API_KEY: unknown setting; did you mean ENVOY_API_KEYS\?$/m);
    assert.match(
      valid.stdout,
      /^WARNING: OTLP_GRPC_UPSTREM: unknown setting; did you mean OTLP_GRPC_UPSTREAM\?$/m,
    );

    const invalid = runCli([
      'check',
      '-f',
      files.envFile('misspelt-invalid.env', ['ENVOY_AUTH_METOD=basic-auth', 'ENVOY_API_KEYS=,']),
    ]);
    assert.equal(invalid.status, 2);
    assert.match(
      invalid.stderr,
      /^ {2}warning: ENVOY_AUTH_METOD: unknown setting; did you mean ENVOY_AUTH_METHOD\?$/m,
    );
  });
});

describe('edge-gateway check: the credentials table, expiry warnings, legacy hint (issue 12)', () => {
  const DAY = 24 * 3600_000;
  const instant = (fromNow: number): string =>
    new Date(Date.now() + fromNow).toISOString().replace(/\.\d+Z$/, 'Z');
  const day = (fromNow: number): string => instant(fromNow).slice(0, 10);
  const sha256 = (key: string): string => createHash('sha256').update(key).digest('hex');
  const NAMED_KEY = 'named-Zm9vYmFyYmF6cXV4LXNlY3JldC1rZXk';
  const SOON_KEY = 'soon-c2Vjb25kLXNlY3JldC1hcGkta2V5';
  const OLD_KEY = 'old-dGhpcmQtc2VjcmV0LWFwaS1rZXk';
  const EDGE_KEY = 'edge-Zm91cnRoLXNlY3JldC1hcGkta2V5';
  const LATE_KEY = 'late-ZmlmdGgtc2VjcmV0LWFwaS1rZXk';
  const PASSWORD = 'grafana-Pa55word-never-printed';
  const USER_HASH = bcrypt.hashSync(PASSWORD, 4);
  const SECRETS = [
    KEY_1,
    PLAIN_PASSWORD,
    NAMED_KEY,
    SOON_KEY,
    OLD_KEY,
    EDGE_KEY,
    LATE_KEY,
    PASSWORD,
    USER_HASH,
  ];
  const DIGESTS = [NAMED_KEY, SOON_KEY, OLD_KEY, EDGE_KEY, LATE_KEY, KEY_1].map(sha256);
  const soon = instant(5 * DAY);
  const old = day(-2 * DAY);
  const edge = instant(14 * DAY - 3600_000);
  const late = instant(14 * DAY + 3600_000);
  const grafana = day(40 * DAY);

  /** An env file whose credentials are recorded for the suite's no-secrets test. */
  function credentialsFile(name: string, lines: readonly string[]): string {
    registerEnvFileSecrets(lines.join('\n'));
    return files.envFile(name, lines);
  }

  const everyKind = (): string =>
    credentialsFile('credentials.env', [
      'ENVOY_AUTH_METHOD=any',
      `ENVOY_API_KEYS=${KEY_1}`,
      `ENVOY_BASIC_AUTH_CREDENTIALS=alice:${PLAIN_PASSWORD}`,
      `GATEWAY_KEY_CHECKOUT_SERVICE=sha256:${sha256(NAMED_KEY)}; scopes=ingest`,
      `GATEWAY_KEY_SOON=${SOON_KEY}; scopes=read+ingest; expires=${soon}`,
      `GATEWAY_KEY_OLD=${OLD_KEY}; scopes=admin; expires=${old}`,
      `GATEWAY_KEY_EDGE=${EDGE_KEY}; scopes=all; expires=${edge}`,
      `GATEWAY_KEY_LATE=${LATE_KEY}; scopes=read; expires=${late}`,
      `GATEWAY_USER_GRAFANA=grafana:${USER_HASH}; scopes=read; expires=${grafana}`,
    ]);

  test('one row per accepted credential: name, kind, scopes, expiry, variable; no secret, no digest', () => {
    const result = runCli(['check', '-f', everyKind()]);

    assert.equal(result.status, 0, result.stderr);
    assertNoSecret(result, [...SECRETS, ...DIGESTS, USER_HASH.slice(7)]);
    assert.doesNotMatch(result.stdout, /[0-9a-f]{64}|sha256:/);
    const table = result.stdout.slice(result.stdout.indexOf('\ncredentials\n') + 1).split('\n\n')[0] ?? '';
    const rows = table
      .split('\n')
      .slice(1, 10)
      .map((row) => row.trim().split(/ {2,}/));
    assert.deepEqual(rows, [
      ['name', 'kind', 'scopes', 'expires', 'source'],
      [rows[1]?.[0] ?? '', 'key', 'all', 'never', 'ENVOY_API_KEYS'],
      ['alice', 'user', 'all', 'never', 'ENVOY_BASIC_AUTH_CREDENTIALS'],
      ['checkout-service', 'key', 'ingest', 'never', 'GATEWAY_KEY_CHECKOUT_SERVICE'],
      ['edge', 'key', 'all', `${edge} (soon)`, 'GATEWAY_KEY_EDGE'],
      ['late', 'key', 'read', late, 'GATEWAY_KEY_LATE'],
      ['old', 'key', 'admin', `${old} (EXPIRED)`, 'GATEWAY_KEY_OLD'],
      ['soon', 'key', 'ingest+read', `${soon} (soon)`, 'GATEWAY_KEY_SOON'],
      ['grafana', 'user', 'read', grafana, 'GATEWAY_USER_GRAFANA'],
    ]);
    // A legacy key shows by its identity header, never by more of its digest.
    assert.equal(rows[1]?.[0], `key-${sha256(KEY_1).slice(0, 8)}`);
    assert.match(result.stdout, /API keys\s+6 \(key-[0-9a-f]{8}, checkout-service, edge, late, old, soon\)/);
    assert.match(result.stdout, /Basic users\s+2: 1 bcrypt, 1 plaintext \(alice, grafana\)/);
  });

  test('warnings: expired (valid all the same, said in the status line) and within 14 days, not later', () => {
    const result = runCli(['check', '-f', everyKind()]);

    assert.equal(result.status, 0, result.stderr);
    assert.match(
      result.stdout,
      /^edge-gateway check: configuration is valid, but 1 credential has EXPIRED and is refused \(see WARNING below\)\n/,
    );
    const warnings = result.stdout.split('\n').filter((line) => line.startsWith('WARNING: GATEWAY_'));
    assert.equal(warnings.length, 3, result.stdout);
    assert.match(
      warnings.find((line) => line.includes('GATEWAY_KEY_OLD')) ?? '',
      new RegExp(
        `^WARNING: GATEWAY_KEY_OLD \\(old\\): EXPIRED 2 days( \\d+ hours?)? ago \\(${old}\\) and refused since`,
      ),
    );
    assert.match(
      warnings.find((line) => line.includes('GATEWAY_KEY_SOON')) ?? '',
      new RegExp(
        `^WARNING: GATEWAY_KEY_SOON \\(soon\\): expires in 4 days 23 hours \\(${soon}\\): rotate it`,
      ),
    );
    assert.match(
      warnings.find((line) => line.includes('GATEWAY_KEY_EDGE')) ?? '',
      /^WARNING: GATEWAY_KEY_EDGE \(edge\): expires in 13 days 2[23] hours/,
    );
    assert.ok(!result.stdout.includes('WARNING: GATEWAY_KEY_LATE'), 'more than 14 days ahead is no warning');
    assert.ok(!result.stdout.includes('WARNING: GATEWAY_USER_GRAFANA'));
  });

  test('one hint, naming both legacy variables and the commands that make named credentials', () => {
    const result = runCli(['check', '-f', everyKind()]);

    assert.equal(result.stdout.split('hint:').length, 2, result.stdout);
    assert.match(
      result.stdout,
      /^ {2}hint: 2 credentials from ENVOY_API_KEYS and ENVOY_BASIC_AUTH_CREDENTIALS may do everything \(scope all\) and never expire;\n.*named credential.*\n {10}edge-gateway gen-key --name <name> --scopes <scopes>\n {10}edge-gateway hash-password <user> --scopes <scopes>\n/m,
    );
  });

  test('named credentials only: no hint, no status-line remark, no warning', () => {
    const result = runCli([
      'check',
      '-f',
      credentialsFile('named-only.env', [
        `GATEWAY_KEY_CHECKOUT_SERVICE=sha256:${sha256(NAMED_KEY)}; scopes=ingest; expires=${grafana}`,
      ]),
    ]);
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^edge-gateway check: configuration is valid\n/);
    assert.doesNotMatch(result.stdout, /hint:|WARNING|placeholder/);
    assert.match(
      result.stdout,
      new RegExp(
        `^ {2}checkout-service\\s+key\\s+ingest\\s+${grafana}\\s+GATEWAY_KEY_CHECKOUT_SERVICE$`,
        'm',
      ),
    );
  });

  test('the stock placeholder: its own warning pointing at named keys, not the legacy hint', () => {
    const result = runCli(['check'], { env: { GATEWAY_ENV_FILE: join(files.dir, 'absent.env') } });
    assert.equal(result.status, 0, result.stderr);
    assert.match(
      result.stdout,
      /^WARNING: the stock placeholder API key .* named key \(edge-gateway gen-key --name <name> --scopes <scopes>\)/m,
    );
    assert.match(
      result.stdout,
      /^ {2}key-[0-9a-f]{8}\s+key\s+all\s+never\s+ENVOY_API_KEYS \(the stock placeholder\)$/m,
    );
    assert.doesNotMatch(result.stdout, /hint:/);
  });

  test('a credential the auth method does not take: a warning, and no row', () => {
    const result = runCli([
      'check',
      '-f',
      credentialsFile('ignored.env', [
        `GATEWAY_KEY_CHECKOUT_SERVICE=${NAMED_KEY}; scopes=ingest`,
        `GATEWAY_USER_GRAFANA=grafana:${USER_HASH}; scopes=read`,
      ]),
    ]);
    assert.equal(result.status, 0, result.stderr);
    assertNoSecret(result, [NAMED_KEY, sha256(NAMED_KEY), USER_HASH]);
    assert.match(
      result.stdout,
      /^WARNING: GATEWAY_USER_GRAFANA: ENVOY_AUTH_METHOD=api-key takes no users, so this credential is not accepted$/m,
    );
    assert.doesNotMatch(result.stdout, /^ {2}grafana\s/m);
    assert.match(
      result.stdout,
      /^ {2}checkout-service\s+key\s+ingest\s+never\s+GATEWAY_KEY_CHECKOUT_SERVICE$/m,
    );
  });

  test('--json lists the credentials by name and scope, without any secret or digest', () => {
    const result = runCli(['check', '--json', '-f', everyKind()]);

    assert.equal(result.status, 0, result.stderr);
    assertNoSecret(result, [...SECRETS, ...DIGESTS]);
    const dump = JSON.parse(result.stdout) as {
      auth: { credentials: { name: string; scopes: string; expires: string | null; source: string }[] };
    };
    const byName = new Map(dump.auth.credentials.map((credential) => [credential.name, credential]));
    assert.equal(byName.size, 8);
    assert.deepEqual(byName.get('soon'), {
      name: 'soon',
      kind: 'key',
      scopes: 'ingest+read',
      expires: new Date(soon).toISOString(),
      source: 'GATEWAY_KEY_SOON',
    });
    assert.equal(byName.get('grafana')?.scopes, 'read');
  });
});

describe('edge-gateway check: credential limits (issue 14)', () => {
  const LIMITED_KEY = 'limited-bGltaXRlZC1zZWNyZXQta2V5LXgx';
  const OTHER_KEY = 'other-b3RoZXItc2VjcmV0LWtleS15eXl5';
  const limitsFile = (name: string, lines: readonly string[]): string => {
    registerEnvFileSecrets(lines.join('\n'));
    return files.envFile(name, lines);
  };

  test('a limits column when some credential has limits, none for the others', () => {
    const result = runCli([
      'check',
      '-f',
      limitsFile('limits.env', [
        `GATEWAY_KEY_CHECKOUT_SERVICE=${LIMITED_KEY}; scopes=ingest; rate=100/s; burst=200; bytes=64MiB/min; inflight=8`,
        `GATEWAY_KEY_OTHER=${OTHER_KEY}; scopes=read`,
      ]),
    ]);
    assert.equal(result.status, 0, result.stderr);
    assertNoSecret(result, [LIMITED_KEY, OTHER_KEY]);
    assert.match(result.stdout, /name\s+kind\s+scopes\s+expires\s+source\s+limits/);
    assert.match(
      result.stdout,
      /checkout-service .*GATEWAY_KEY_CHECKOUT_SERVICE\s+rate 100\/s burst 200, bytes 64MiB\/min, inflight 8/,
    );
    assert.match(result.stdout, /other .*GATEWAY_KEY_OTHER\s+none/);
  });

  test('bad limit values: exit 2, each error naming its variable, no secret', () => {
    const result = runCli([
      'check',
      '-f',
      limitsFile('bad-limits.env', [
        `GATEWAY_KEY_CHECKOUT_SERVICE=${LIMITED_KEY}; scopes=ingest; rate=fast; bytes=64MB/min`,
        `GATEWAY_KEY_OTHER=${OTHER_KEY}; scopes=read; inflight=0`,
      ]),
    ]);
    assert.equal(result.status, 2, result.stdout);
    assertNoSecret(result, [LIMITED_KEY, OTHER_KEY]);
    assert.match(result.stderr, /GATEWAY_KEY_CHECKOUT_SERVICE: rate= must be/);
    assert.match(result.stderr, /GATEWAY_KEY_CHECKOUT_SERVICE: bytes= must be/);
    assert.match(result.stderr, /GATEWAY_KEY_OTHER: inflight= must be/);
  });
});
