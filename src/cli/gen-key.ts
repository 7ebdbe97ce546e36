import { randomBytes } from 'node:crypto';
import { type Command, InvalidArgumentError } from 'commander';
import { scopeText } from '../config/credential-summary.js';
import { credentialName, SCOPES_HELP, sha256Hex } from '../config/named-credentials.js';
import type { Scope } from '../config/types.js';
import {
  addNamedCredentialOptions,
  type NamedCredentialOptions,
  namedCredentialLine,
  optionError,
  refuseWithout,
} from './named-credential-options.js';

/** 256 bits: as strong as any key a client could guess at, 43 URL-safe characters. */
const KEY_BYTES = 32;
const MAX_COUNT = 1000;

interface GenKeyOptions extends NamedCredentialOptions {
  readonly count: number;
}

function parseCount(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('expected a whole number.');
  const count = Number(text);
  if (count < 1 || count > MAX_COUNT) throw new InvalidArgumentError(`must be between 1 and ${MAX_COUNT}.`);
  return count;
}

/** A new API key: base64url has no '+', '/', '=' or ',' so it fits a header and ENVOY_API_KEYS as is. */
export function generateApiKey(): string {
  return randomBytes(KEY_BYTES).toString('base64url');
}

/**
 * A named key (issue 12): the key on stdout's first line, for the client, and the env file line
 * with only its digest on the second, for the gateway. The labels go to stderr, so that a script
 * reads exactly two lines and a person sees which is which.
 */
function printNamedKey(name: string, scopes: readonly Scope[], expires?: string): void {
  const key = generateApiKey();
  const line = namedCredentialLine({
    kind: 'key',
    name,
    secret: `sha256:${sha256Hex(key)}`,
    scopes,
    expires,
  });
  const until = expires === undefined ? '' : `, until ${expires}`;
  process.stderr.write(
    `# API key of ${credentialName(name)} (scopes ${scopeText(scopes)}${until}), shown only this once: give it to the client\n`,
  );
  process.stdout.write(`${key}\n`);
  process.stderr.write("# for the gateway's env file (only the key's SHA-256 digest; applies live):\n");
  process.stdout.write(`${line}\n`);
}

function runGenKey(options: GenKeyOptions, command: Command): void {
  const { name, scopes, expires } = options;
  if (name === undefined) {
    refuseWithout(
      command,
      '--name',
      { scopes, expires },
      'only a named key has scopes and an expiry (ENVOY_API_KEYS keys have scope all)',
    );
    const keys = Array.from({ length: options.count }, generateApiKey);
    process.stdout.write(`${keys.join('\n')}\n`);
    return;
  }
  if (scopes === undefined) {
    optionError(command, `--name needs --scopes: a named key must say what it may do (${SCOPES_HELP})`);
  }
  if (command.getOptionValueSource('count') === 'cli') {
    optionError(
      command,
      '--count makes keys for ENVOY_API_KEYS; a named key is one key (run gen-key once per name)',
    );
  }
  printNamedKey(name, scopes, expires);
}

export function registerGenKeyCommand(program: Command): void {
  const command = program
    .command('gen-key')
    .summary('print a new random API key, or a named key and its env file line')
    .description(
      [
        'Print a new random API key: 256 bits from the system CSPRNG, base64url-encoded (43 characters ' +
          'of A-Z a-z 0-9 - _), one per line.',
        'Without --name: add it to ENVOY_API_KEYS (comma-separated, scope all). With --name and --scopes: ' +
          'a named key. stdout then holds two lines, the key (give it to the client; it is not shown again) ' +
          "and the GATEWAY_KEY_<NAME> line for the gateway's env file, which holds only the key's SHA-256 " +
          'digest. Labels for both go to stderr.',
        'The gateway picks up the edited env file by itself.',
      ].join('\n\n'),
    )
    .option('--count <n>', `how many keys to print, 1 to ${MAX_COUNT} (not with --name)`, parseCount, 1);
  addNamedCredentialOptions(command, 'make a named key: GATEWAY_KEY_<NAME> (needs --scopes)')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ edge-gateway gen-key --name checkout-service --scopes ingest --expires 2027-03-31',
        '  # API key of checkout-service (scopes ingest, until 2027-03-31), shown only this once: give it to the client',
        '  <the new key: 43 characters of A-Z a-z 0-9 - _>',
        "  # for the gateway's env file (only the key's SHA-256 digest; applies live):",
        '  GATEWAY_KEY_CHECKOUT_SERVICE=sha256:<64 hex>; scopes=ingest; expires=2027-03-31',
        '',
        '  $ { read -r key; read -r line; } < <(edge-gateway gen-key --name grafana --scopes read 2>/dev/null)',
        '  $ echo "$line" >> .env   # and give "$key" to Grafana',
        '  $ echo "ENVOY_API_KEYS=$(edge-gateway gen-key --count 2 | paste -sd, -)" >> .env',
      ].join('\n'),
    )
    .action((options: GenKeyOptions, self: Command) => {
      runGenKey(options, self);
    });
}
