import { randomBytes } from 'node:crypto';
import { type Command, InvalidArgumentError } from 'commander';

/** 256 bits: as strong as any key a client could guess at, 43 URL-safe characters. */
const KEY_BYTES = 32;
const MAX_COUNT = 1000;

interface GenKeyOptions {
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

export function registerGenKeyCommand(program: Command): void {
  program
    .command('gen-key')
    .summary('print a new random API key (256 bits, URL-safe)')
    .description(
      [
        'Print a new random API key: 256 bits from the system CSPRNG, base64url-encoded (43 characters ' +
          'of A-Z a-z 0-9 - _), one per line.',
        'Add it to ENVOY_API_KEYS (comma-separated); the gateway picks up the edited env file by itself.',
      ].join('\n\n'),
    )
    .option('--count <n>', `how many keys to print, 1 to ${MAX_COUNT}`, parseCount, 1)
    .addHelpText(
      'after',
      '\nExample:\n  $ echo "ENVOY_API_KEYS=$(edge-gateway gen-key --count 2 | paste -sd, -)" >> .env',
    )
    .action((options: GenKeyOptions) => {
      const keys = Array.from({ length: options.count }, generateApiKey);
      process.stdout.write(`${keys.join('\n')}\n`);
    });
}
