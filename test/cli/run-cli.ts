import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseDotenv } from 'dotenv';
import { parseGatewayConfig } from '../../src/config/parse.js';
import type { NamedCredential } from '../../src/config/types.js';

/** The built CLI, as `npm test` leaves it (it builds before running the tests). */
export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Written to the CLI's stdin (a pipe, so never a TTY). */
  readonly input?: string;
  /** Extra variables on top of the clean environment. */
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
}

/**
 * Runs `node dist/cli.js ...args` in a clean environment: only PATH, so that no ENVOY_* or
 * GATEWAY_ENV_FILE of the developer's shell changes what the CLI reads.
 */
export function runCli(args: readonly string[], options: RunOptions = {}): CliResult {
  const result: SpawnSyncReturns<string> = spawnSync(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? tmpdir(),
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...options.env },
    input: options.input ?? '',
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A temp directory for env files, removed by `remove()`. */
export function tempDir(): {
  readonly dir: string;
  envFile(name: string, lines: readonly string[]): string;
  remove(): void;
} {
  const dir = mkdtempSync(join(tmpdir(), 'edge-gateway-cli-'));
  return {
    dir,
    envFile(name, lines) {
      const file = join(dir, name);
      writeFileSync(file, `${lines.join('\n')}\n`);
      return file;
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Fails when the CLI printed a secret; the failure shows the output with the secrets masked. */
export function assertNoSecret(result: CliResult, secrets: readonly string[]): void {
  const mask = (text: string): string =>
    secrets.reduce((masked, secret) => masked.replaceAll(secret, '<SECRET>'), text);
  secrets.forEach((secret, index) => {
    for (const [stream, text] of [
      ['stdout', result.stdout],
      ['stderr', result.stderr],
    ] as const) {
      if (text.includes(secret)) throw new Error(`secret #${index + 1} appears on ${stream}:\n${mask(text)}`);
    }
  });
}

/**
 * The one named credential of a printed `GATEWAY_KEY_<NAME>=...` / `GATEWAY_USER_<NAME>=...` line,
 * as the gateway reads it: dotenv, then the configuration parser.
 */
export function parseCredentialLine(line: string): NamedCredential {
  const vars = parseDotenv(`${line}\n`);
  const result = parseGatewayConfig(
    {
      ENVOY_AUTH_METHOD: 'any',
      OTLP_GRPC_UPSTREAM: 'off',
      OTLP_HTTP_UPSTREAM: 'off',
      PROMETHEUS_UPSTREAM: 'off',
      VICTORIAMETRICS_UPSTREAM: 'off',
      ...vars,
    },
    '.env',
  );
  if (!result.ok) throw new Error(`the printed line does not parse: ${result.errors.join('; ')}`);
  const [credential, ...others] = result.config.namedCredentials;
  if (credential === undefined || others.length > 0) throw new Error('expected exactly one named credential');
  return credential;
}
