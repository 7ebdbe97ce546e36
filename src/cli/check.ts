import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { keyIdentity } from '../auth/credential-store.js';
import type { EnvVars } from '../config/env-source.js';
import { envFilePath } from '../config/env-source.js';
import { loadGatewayConfig } from '../config/load.js';
import { formatAddress, redactedConfig } from '../config/redact.js';
import {
  ADMIN_LISTEN,
  API_KEYS,
  AUTH_METHOD,
  BASIC_CREDENTIALS,
  GATEWAY_ENV_FILE,
  LISTENER_SETTINGS,
  SETTINGS,
  type Setting,
  setValue,
} from '../config/settings.js';
import { type GatewayConfig, PLACEHOLDER_API_KEY } from '../config/types.js';
import { tlsFilesProblem } from '../listeners/tls-certificates.js';
import { EXIT_BAD_CONFIG } from '../serve.js';
import { ENV_FILE_FLAGS, ENV_FILE_HELP, type EnvFileOption, namedEnvFile } from './env-file-option.js';

interface CheckOptions extends EnvFileOption {
  readonly json?: boolean;
}

const PROTOCOL_LABEL = { h2c: 'gRPC / HTTP/2 cleartext', http1: 'HTTP/1.1' } as const;

const AUTH_LABEL = {
  'api-key': 'api-key (an API key: X-API-Key, Bearer, or as the Basic password)',
  'basic-auth': 'basic-auth (a Basic user and password)',
  any: 'any (an API key or a Basic user)',
} as const;

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** Warnings that do not make the configuration invalid but that an operator must see. */
function configWarnings(config: GatewayConfig): string[] {
  const warnings: string[] = [];
  if (config.placeholderKeyInUse) {
    warnings.push(
      `the stock placeholder API key "${PLACEHOLDER_API_KEY}" is ACCEPTED: anyone who has read the stock ` +
        'documentation can send and read data. Set ENVOY_API_KEYS (edge-gateway gen-key makes one).',
    );
  }
  const plain = config.basicCredentials.filter((credential) => credential.kind === 'plain');
  if (config.authMethod !== 'api-key' && plain.length > 0) {
    warnings.push(
      `${plural(plain.length, 'Basic user')} with a plaintext password (${plain
        .map((credential) => credential.user)
        .join(', ')}): store bcrypt hashes instead (edge-gateway hash-password <user>).`,
    );
  }
  if (config.listeners.every((listener) => listener.upstream === null)) {
    warnings.push('every data listener is off: the gateway would only serve its admin port.');
  }
  return warnings;
}

function describeKeys(config: GatewayConfig): string {
  if (config.authMethod === 'basic-auth') {
    return `${config.apiKeys.length} configured, not used with basic-auth`;
  }
  const identities = config.apiKeys.map(keyIdentity).join(', ');
  return `${config.apiKeys.length} (${identities})`;
}

function describeUsers(config: GatewayConfig): string {
  const users = config.basicCredentials;
  if (users.length === 0)
    return config.authMethod === 'api-key' ? 'none' : 'none: every Basic login is refused';
  const bcrypt = users.filter((credential) => credential.kind === 'bcrypt').length;
  const counts = `${users.length}: ${bcrypt} bcrypt, ${users.length - bcrypt} plaintext`;
  const names = ` (${users.map((credential) => credential.user).join(', ')})`;
  const unused = config.authMethod === 'api-key' && users.length > 0 ? ', not used with api-key' : '';
  return `${counts}${names}${unused}`;
}

/** Shown in their own sections above (auth, listeners), not again in the list of settings. */
const DESCRIBED_ABOVE = new Set<Setting<unknown>>([
  AUTH_METHOD,
  API_KEYS,
  BASIC_CREDENTIALS,
  ...LISTENER_SETTINGS.flatMap(({ listen, upstream }) => [listen, upstream]),
  ADMIN_LISTEN,
  GATEWAY_ENV_FILE,
]);

/**
 * Every other setting of the table with its value in force, whether it is the default, and
 * whether an edit applies live or needs a restart.
 */
function describeSettings(config: GatewayConfig, vars: EnvVars): string[] {
  const shown = SETTINGS.filter((setting) => !DESCRIBED_ABOVE.has(setting));
  const width = Math.max(...shown.map((setting) => setting.name.length));
  const valueWidth = Math.max(...shown.map((setting) => setting.inForce(config).length));
  return shown.map((setting) => {
    const value = setting.inForce(config);
    const origin = setValue(vars, setting.name) === undefined ? 'default' : 'set';
    return `  ${setting.name.padEnd(width)}  ${value.padEnd(valueWidth)}  (${origin}; ${setting.applies === 'live' ? 'applies live' : 'restart to change'})`;
  });
}

export interface ConfigReport {
  readonly config: GatewayConfig;
  /** The variables it was parsed from, to mark what is set. */
  readonly vars: EnvVars;
  readonly envFileFound: boolean;
  /** The parser's warnings (unknown variables). */
  readonly warnings: readonly string[];
}

/** The human-readable report of a valid configuration: what `serve` would do, no secret in it. */
export function describeConfig({ config, vars, envFileFound, warnings }: ConfigReport): string {
  const lines: string[] = [];
  for (const warning of [...warnings, ...configWarnings(config)]) lines.push(`WARNING: ${warning}`);
  if (lines.length > 0) lines.push('');

  lines.push(
    `env file: ${config.envFile} (${envFileFound ? 'found' : 'not found: defaults and environment only'})`,
  );
  lines.push('');
  lines.push('auth');
  lines.push(`  method       ${AUTH_LABEL[config.authMethod]}`);
  lines.push(`  API keys     ${describeKeys(config)}`);
  lines.push(`  Basic users  ${describeUsers(config)}`);
  lines.push('');
  lines.push('listeners');
  const width = Math.max(...config.listeners.map((listener) => listener.name.length), 'admin'.length);
  const addressWidth = Math.max(...config.listeners.map((listener) => formatAddress(listener.listen).length));
  for (const listener of config.listeners) {
    const name = listener.name.padEnd(width);
    if (listener.upstream === null) {
      lines.push(`  ${name}  off`);
    } else {
      const address = formatAddress(listener.listen).padEnd(addressWidth);
      lines.push(
        `  ${name}  ${address}  -> ${listener.upstream.origin}  (${PROTOCOL_LABEL[listener.protocol]})`,
      );
    }
  }
  lines.push(`  ${'admin'.padEnd(width)}  ${formatAddress(config.admin)}`);
  lines.push('');
  lines.push('settings');
  lines.push(...describeSettings(config, vars));
  return `${lines.join('\n')}\n`;
}

function runCheck(options: CheckOptions): void {
  const envFile = namedEnvFile(options, 'check');
  if (envFile === null) return;
  const loaded = loadGatewayConfig(process.env, envFile);
  if (!loaded.ok) {
    const file = envFilePath(process.env, envFile);
    const found = existsSync(file) ? 'found' : 'not found';
    process.stderr.write(
      `edge-gateway check: configuration is INVALID (${plural(loaded.errors.length, 'error')}; env file ${file}, ${found})\n`,
    );
    for (const error of loaded.errors) process.stderr.write(`  error: ${error}\n`);
    for (const warning of loaded.warnings ?? []) process.stderr.write(`  warning: ${warning}\n`);
    process.exitCode = EXIT_BAD_CONFIG;
    return;
  }
  const { config } = loaded;
  // serve refuses unusable certificate files before it starts; so does check.
  const tlsError = config.tls === null ? null : tlsFilesProblem(config.tls);
  if (tlsError !== null) {
    process.stderr.write(`edge-gateway check: configuration is INVALID (1 error)\n  error: ${tlsError}\n`);
    process.exitCode = EXIT_BAD_CONFIG;
    return;
  }
  if (options.json === true) {
    process.stdout.write(`${JSON.stringify(redactedConfig(config), null, 2)}\n`);
    return;
  }
  process.stdout.write(`edge-gateway check: configuration is valid\n\n`);
  process.stdout.write(
    describeConfig({
      config,
      vars: loaded.vars,
      envFileFound: existsSync(config.envFile),
      warnings: loaded.warnings,
    }),
  );
}

export function registerCheckCommand(program: Command): void {
  program
    .command('check')
    .summary('validate a configuration and show what serve would do')
    .description(
      [
        'Validate a configuration with the same loader as serve (the environment overlaid by the env file) ' +
          'and print what the gateway would do: listeners and their upstreams, auth method, number of API keys ' +
          'and Basic users, timeouts and the env file used. Keys, passwords and hashes are never printed.',
        'Exits 0 when the configuration is valid, 2 with every error listed on stderr, one per line, each ' +
          'naming its variable. The counterpart of `envoy --mode validate` and `promtool check config`.',
      ].join('\n\n'),
    )
    .option(ENV_FILE_FLAGS, ENV_FILE_HELP)
    .option('--json', 'print the effective configuration as JSON, secrets redacted (as admin /config_dump)')
    .addHelpText(
      'after',
      '\nExamples:\n  $ edge-gateway check --env /etc/edge-gateway/.env\n  $ edge-gateway check --json | jq .listeners',
    )
    .action((options: CheckOptions) => {
      runCheck(options);
    });
}
