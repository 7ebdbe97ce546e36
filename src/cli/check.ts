import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { keyIdentity } from '../auth/credential-store.js';
import {
  type CredentialSummary,
  credentialSummaries,
  ignoredCredentials,
  scopeText,
} from '../config/credential-summary.js';
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
import { type BasicCredential, type GatewayConfig, PLACEHOLDER_API_KEY } from '../config/types.js';
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

/** A credential that expires this soon is named in a warning (issue 12). */
const EXPIRY_WARNING_MS = 14 * 24 * 3600_000;

/** `2027-03-31` for midnight UTC, else `2027-03-31T18:00:00Z`. */
function formatInstant(ms: number): string {
  const iso = new Date(ms).toISOString();
  return iso.endsWith('T00:00:00.000Z') ? iso.slice(0, 10) : iso.replace('.000Z', 'Z');
}

const TIME_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['day', 24 * 3600_000],
  ['hour', 3600_000],
  ['minute', 60_000],
];

/** `4 days 23 hours`, `5 hours`, `1 minute`: the two largest whole units in `ms`. */
function timeSpan(ms: number): string {
  const first = TIME_UNITS.findIndex(([, size]) => ms >= size);
  const [unit, size] = TIME_UNITS[first] ?? [];
  if (unit === undefined || size === undefined) return 'less than a minute';
  const [nextUnit, nextSize] = TIME_UNITS[first + 1] ?? [];
  const rest = nextSize === undefined ? 0 : Math.floor((ms % size) / nextSize);
  const whole = plural(Math.floor(ms / size), unit);
  return rest === 0 || nextUnit === undefined ? whole : `${whole} ${plural(rest, nextUnit)}`;
}

interface Expiring {
  readonly summary: CredentialSummary;
  readonly expiresAt: number;
  /** Refused already. */
  readonly expired: boolean;
}

/** Named credentials the gateway accepts that have expired, or expire within EXPIRY_WARNING_MS of `now`. */
function expiring(summaries: readonly CredentialSummary[], now: number): Expiring[] {
  return summaries.flatMap((summary) => {
    const expiresAt = summary.expires === null ? null : Date.parse(summary.expires);
    if (expiresAt === null || expiresAt - now > EXPIRY_WARNING_MS) return [];
    return [{ summary, expiresAt, expired: expiresAt <= now }];
  });
}

/** How many accepted credentials are refused already because they have expired. */
function expiredCount(config: GatewayConfig, now: number): number {
  return expiring(credentialSummaries(config), now).filter(({ expired }) => expired).length;
}

function expiryWarnings(config: GatewayConfig, now: number): string[] {
  return expiring(credentialSummaries(config), now).map(({ summary, expiresAt, expired }) => {
    const which = `${summary.source} (${summary.name})`;
    return expired
      ? `${which}: EXPIRED ${timeSpan(now - expiresAt)} ago (${formatInstant(expiresAt)}) and refused since; remove it or give it a later expires=`
      : `${which}: expires in ${timeSpan(expiresAt - now)} (${formatInstant(expiresAt)}): rotate it before then`;
  });
}

/** Every Basic user the auth method accepts, legacy and named. */
function basicUsers(config: GatewayConfig): BasicCredential[] {
  return [
    ...config.basicCredentials,
    ...config.namedCredentials.flatMap(({ secret }) => (secret.kind === 'user' ? [secret.credential] : [])),
  ];
}

/** Warnings that do not make the configuration invalid but that an operator must see. */
function configWarnings(config: GatewayConfig, now: number): string[] {
  const warnings: string[] = [];
  if (config.placeholderKeyInUse) {
    warnings.push(
      `the stock placeholder API key "${PLACEHOLDER_API_KEY}" is ACCEPTED: anyone who has read the stock ` +
        'documentation can send and read data. Give each client a named key (edge-gateway gen-key --name ' +
        '<name> --scopes <scopes>), or set ENVOY_API_KEYS to keys of your own (edge-gateway gen-key).',
    );
  }
  const plain = basicUsers(config).filter((credential) => credential.kind === 'plain');
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
  warnings.push(...ignoredCredentials(config), ...expiryWarnings(config, now));
  return warnings;
}

function describeKeys(config: GatewayConfig): string {
  const named = config.namedCredentials.filter(({ secret }) => secret.kind === 'key').map(({ name }) => name);
  const count = config.apiKeys.length + named.length;
  if (config.authMethod === 'basic-auth') return `${count} configured, not used with basic-auth`;
  return count === 0 ? 'none' : `${count} (${[...config.apiKeys.map(keyIdentity), ...named].join(', ')})`;
}

function describeUsers(config: GatewayConfig): string {
  const users = basicUsers(config);
  if (users.length === 0)
    return config.authMethod === 'api-key' ? 'none' : 'none: every Basic login is refused';
  const bcrypt = users.filter((credential) => credential.kind === 'bcrypt').length;
  const counts = `${users.length}: ${bcrypt} bcrypt, ${users.length - bcrypt} plaintext`;
  const names = ` (${users.map((credential) => credential.user).join(', ')})`;
  const unused = config.authMethod === 'api-key' && users.length > 0 ? ', not used with api-key' : '';
  return `${counts}${names}${unused}`;
}

/**
 * The credentials the gateway accepts, one row each: never a secret or a digest (a legacy key
 * shows as key-<8 hex>, its identity header). Then, once, how to leave the legacy variables.
 */
function describeCredentials(config: GatewayConfig, now: number): string[] {
  const summaries = credentialSummaries(config);
  if (summaries.length === 0) return ['  none'];
  const soon = new Map(expiring(summaries, now).map((entry) => [entry.summary, entry]));
  // The limits column (issue 14) only when some credential has limits.
  const withLimits = summaries.some((summary) => summary.limits !== undefined);
  const rows = summaries.map((summary) => {
    const entry = soon.get(summary);
    const expiresAt = summary.expires === null ? null : Date.parse(summary.expires);
    const when = entry === undefined ? '' : entry.expired ? ' (EXPIRED)' : ' (soon)';
    return [
      summary.name,
      summary.kind,
      scopeText(summary.scopes),
      expiresAt === null ? 'never' : formatInstant(expiresAt) + when,
      summary.source + (summary.placeholder === true ? ' (the stock placeholder)' : ''),
      ...(withLimits ? [summary.limits ?? 'none'] : []),
    ];
  });
  const table = [['name', 'kind', 'scopes', 'expires', 'source', ...(withLimits ? ['limits'] : [])], ...rows];
  const widths =
    table[0]?.map((_, column) => Math.max(...table.map((row) => row[column]?.length ?? 0))) ?? [];
  const lines = table.map((row) =>
    `  ${row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ')}`.trimEnd(),
  );
  const legacy = summaries.filter((summary) => summary.legacy && summary.placeholder !== true);
  if (legacy.length > 0) {
    const commands = [
      ...(legacy.some(({ kind }) => kind === 'key')
        ? ['edge-gateway gen-key --name <name> --scopes <scopes>']
        : []),
      ...(legacy.some(({ kind }) => kind === 'user')
        ? ['edge-gateway hash-password <user> --scopes <scopes>']
        : []),
    ];
    const sources = [...new Set(legacy.map(({ source }) => source))].join(' and ');
    lines.push(
      `  hint: ${plural(legacy.length, 'credential')} from ${sources} may do everything (scope all) and never expire;`,
      '        move each to a named credential with only the scopes it needs:',
      ...commands.map((command) => `          ${command}`),
    );
  }
  return lines;
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
  /** What expiries are measured against. */
  readonly now: number;
}

/** The human-readable report of a valid configuration: what `serve` would do, no secret in it. */
export function describeConfig({ config, vars, envFileFound, warnings, now }: ConfigReport): string {
  const lines: string[] = [];
  for (const warning of [...warnings, ...configWarnings(config, now)]) lines.push(`WARNING: ${warning}`);
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
  lines.push('credentials');
  lines.push(...describeCredentials(config, now));
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
  const now = Date.now();
  // Valid all the same: an expired credential is refused, and the gateway starts without it.
  const expired = expiredCount(config, now);
  const but =
    expired === 0
      ? ''
      : `, but ${plural(expired, 'credential')} ${expired === 1 ? 'has' : 'have'} EXPIRED and ${expired === 1 ? 'is' : 'are'} refused (see WARNING below)`;
  process.stdout.write(`edge-gateway check: configuration is valid${but}\n\n`);
  process.stdout.write(
    describeConfig({
      config,
      vars: loaded.vars,
      envFileFound: existsSync(config.envFile),
      warnings: loaded.warnings,
      now,
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
          'and Basic users, timeouts and the env file used, and a table of the credentials it accepts: name, ' +
          'kind, scopes, expiry and the variable each comes from. Keys, digests, passwords and hashes are never printed.',
        'Warns about credentials that have expired (refused, but the configuration stays valid) or expire ' +
          'within 14 days, and hints at moving ENVOY_API_KEYS / ENVOY_BASIC_AUTH_CREDENTIALS to named credentials.',
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
