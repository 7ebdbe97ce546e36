import { type Command, InvalidArgumentError } from 'commander';
import { scopeText } from '../config/credential-summary.js';
import {
  credentialVariable,
  isCredentialName,
  parseExpiry,
  parseScopes,
  SCOPES_HELP,
} from '../config/named-credentials.js';
import type { Scope } from '../config/types.js';

/*
 * --name, --scopes and --expires of gen-key and hash-password (issue 12): what they print is a
 * GATEWAY_KEY_<NAME> / GATEWAY_USER_<NAME> line, so each option reads its value with the same
 * rule as the env file parser, and refuses here what the gateway would refuse there.
 */

/** What commander gives for the options added by addNamedCredentialOptions. */
export interface NamedCredentialOptions {
  readonly name?: string;
  readonly scopes?: readonly Scope[];
  /** As given on the command line (it goes into the line as is), checked to be in the future. */
  readonly expires?: string;
}

function parseNameOption(text: string): string {
  if (!isCredentialName(text)) {
    throw new InvalidArgumentError(
      'expected letters and digits in words joined by single "-" or "_" (checkout-service).',
    );
  }
  return text;
}

function parseScopesOption(text: string): readonly Scope[] {
  const parsed = parseScopes(text);
  if (!parsed.ok)
    throw new InvalidArgumentError(`unknown scope "${parsed.unknown}" (expected ${SCOPES_HELP}).`);
  return parsed.scopes;
}

function parseExpiresOption(text: string): string {
  const expiresAt = parseExpiry(text);
  if (expiresAt === null) {
    throw new InvalidArgumentError(
      'expected a date (2027-03-31, from 00:00 UTC) or an RFC 3339 date-time (2027-03-31T18:00:00Z).',
    );
  }
  if (expiresAt <= Date.now()) {
    throw new InvalidArgumentError(
      `${new Date(expiresAt).toISOString()} is in the past: a new credential must expire in the future.`,
    );
  }
  return text;
}

export function addNamedCredentialOptions(command: Command, nameHelp: string): Command {
  return command
    .option('--name <name>', nameHelp, parseNameOption)
    .option(
      '--scopes <scopes>',
      `what it may do: ${SCOPES_HELP}, as scopes= in the env file`,
      parseScopesOption,
    )
    .option(
      '--expires <date>',
      'refused from then on: a date (2027-03-31, from 00:00 UTC) or an RFC 3339 date-time',
      parseExpiresOption,
    );
}

export interface NamedCredentialLine {
  readonly kind: 'key' | 'user';
  /** As given with --name (or the user name): credentialVariable makes the variable of it. */
  readonly name: string;
  /** `sha256:<hex>`, or `user:<bcrypt hash>`. */
  readonly secret: string;
  readonly scopes: readonly Scope[];
  readonly expires?: string;
}

/** `GATEWAY_KEY_CHECKOUT_SERVICE=sha256:<hex>; scopes=ingest; expires=2027-03-31`. */
export function namedCredentialLine({ kind, name, secret, scopes, expires }: NamedCredentialLine): string {
  const parts = [
    secret,
    `scopes=${scopeText(scopes)}`,
    ...(expires === undefined ? [] : [`expires=${expires}`]),
  ];
  return `${credentialVariable(kind, name)}=${parts.join('; ')}`;
}

/** A usage error as commander reports its own (stderr, exit 2), for what one option needs of another. */
export function optionError(command: Command, message: string): never {
  command.error(`error: ${message}`, { code: 'edge-gateway.usage', exitCode: 2 });
}

/** A usage error for the first of `given` that is set although `needed` is not. */
export function refuseWithout(
  command: Command,
  needed: string,
  given: Readonly<Record<string, unknown>>,
  why: string,
): void {
  const option = Object.keys(given).find((key) => given[key] !== undefined);
  if (option !== undefined) optionError(command, `--${option} needs ${needed}: ${why}`);
}
