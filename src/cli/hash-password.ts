import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import bcrypt from 'bcrypt';
import { type Command, InvalidArgumentError } from 'commander';
import { isCredentialName } from '../config/named-credentials.js';
import {
  addNamedCredentialOptions,
  type NamedCredentialOptions,
  namedCredentialLine,
  optionError,
  refuseWithout,
} from './named-credential-options.js';

export const DEFAULT_BCRYPT_COST = 12;
const MIN_COST = 4;
const MAX_COST = 15;
/** bcrypt ignores every byte after the 72nd: two passwords sharing them would both match. */
const BCRYPT_MAX_PASSWORD_BYTES = 72;
/** Exit code when no usable password was given (empty, mismatched, too long, input closed). */
const EXIT_NO_PASSWORD = 1;

interface HashPasswordOptions extends NamedCredentialOptions {
  readonly cost: number;
}

/** What is printed once the password is hashed. */
type Output =
  | { readonly kind: 'legacy'; readonly user: string | undefined }
  | { readonly kind: 'named'; readonly user: string; readonly line: (hash: string) => string };

class PasswordRejected extends Error {}

function parseCost(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('expected a whole number.');
  const cost = Number(text);
  if (cost < MIN_COST || cost > MAX_COST) {
    throw new InvalidArgumentError(`must be between ${MIN_COST} and ${MAX_COST}.`);
  }
  return cost;
}

/**
 * A user name must survive `ENVOY_BASIC_AUTH_CREDENTIALS` parsing unchanged: entries are split on
 * ',', user and password on the first ':', and each entry is trimmed.
 */
function parseUserName(text: string): string {
  if (text === '') throw new InvalidArgumentError('must not be empty.');
  if (text.includes(':') || text.includes(','))
    throw new InvalidArgumentError("must not contain ':' or ','.");
  if (text.trim() !== text) throw new InvalidArgumentError('must not start or end with whitespace.');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\x00-\x1f\x7f]/.test(text)) throw new InvalidArgumentError('must not contain control characters.');
  return text;
}

/**
 * Asks on the terminal, prompts on stderr, with nothing echoed: readline still edits the line
 * (backspace, Ctrl-U) but its output is muted. One interface for both questions, read as an
 * async iterator, so that a pasted "pw\npw\n" arriving in one chunk loses no line.
 */
async function askPasswordTwice(user: string | undefined): Promise<string> {
  const muted = new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
  const rl = createInterface({ input: process.stdin, output: muted, terminal: true });
  let interrupted = false;
  rl.on('SIGINT', () => {
    interrupted = true;
    rl.close();
  });
  const lines = rl[Symbol.asyncIterator]();
  const ask = async (prompt: string): Promise<string> => {
    process.stderr.write(prompt);
    const next = await lines.next();
    process.stderr.write('\n');
    if (next.done === true) {
      throw new PasswordRejected(interrupted ? 'interrupted' : 'input closed before a password was entered');
    }
    return next.value;
  };
  try {
    const password = await ask(`Password${user === undefined ? '' : ` for ${user}`}: `);
    if (password === '') return password;
    if ((await ask('Repeat password: ')) !== password) throw new PasswordRejected('the two passwords differ');
    return password;
  } finally {
    rl.close();
  }
}

/** The first line of a piped stdin, its line ending removed: `echo pw | edge-gateway hash-password`. */
async function readFirstLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    if ((chunk as Buffer).includes(0x0a)) break;
  }
  const text = Buffer.concat(chunks).toString('utf8');
  const newline = text.indexOf('\n');
  const line = newline === -1 ? text : text.slice(0, newline);
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

function readPassword(user: string | undefined): Promise<string> {
  return process.stdin.isTTY === true ? askPasswordTwice(user) : readFirstLine();
}

/**
 * Legacy `user:<hash>` for ENVOY_BASIC_AUTH_CREDENTIALS, or with --scopes a GATEWAY_USER_<NAME>
 * line (issue 12), whose name is the user name unless --name gives one. Decided, and refused,
 * before the password is asked for.
 */
function chooseOutput(user: string | undefined, options: HashPasswordOptions, command: Command): Output {
  const { name, scopes, expires } = options;
  if (scopes === undefined) {
    refuseWithout(
      command,
      '--scopes',
      { name, expires },
      'a named user must say what it may do (ENVOY_BASIC_AUTH_CREDENTIALS users have scope all)',
    );
    return { kind: 'legacy', user };
  }
  if (user === undefined)
    optionError(command, '--scopes needs a user name: hash-password <user> --scopes ...');
  // The value of the line is split on ';', and dotenv ends an unquoted value at '#'.
  if (/[;#]/.test(user) || /^['"`]/.test(user)) {
    optionError(
      command,
      `the user name of a GATEWAY_USER_ line cannot hold ';' or '#' or start with a quote`,
    );
  }
  const credential = name ?? user;
  if (!isCredentialName(credential)) {
    optionError(
      command,
      `"${user}" cannot be a credential name (letters and digits in words joined by "-" or "_"): give one with --name`,
    );
  }
  return {
    kind: 'named',
    user,
    line: (hash) =>
      namedCredentialLine({ kind: 'user', name: credential, secret: `${user}:${hash}`, scopes, expires }),
  };
}

async function runHashPassword(output: Output, options: HashPasswordOptions): Promise<void> {
  let password: string;
  try {
    password = await readPassword(output.user);
    if (password === '') throw new PasswordRejected('empty password');
    if (Buffer.byteLength(password) > BCRYPT_MAX_PASSWORD_BYTES) {
      throw new PasswordRejected(
        `password is longer than ${BCRYPT_MAX_PASSWORD_BYTES} bytes; bcrypt would ignore the rest`,
      );
    }
  } catch (error) {
    if (!(error instanceof PasswordRejected)) throw error;
    process.stderr.write(`edge-gateway hash-password: ${error.message}, nothing hashed\n`);
    process.exitCode = EXIT_NO_PASSWORD;
    return;
  }
  const hash = await bcrypt.hash(password, options.cost);
  const line =
    output.kind === 'named' ? output.line(hash) : output.user === undefined ? hash : `${output.user}:${hash}`;
  process.stdout.write(`${line}\n`);
}

export function registerHashPasswordCommand(program: Command): void {
  const command = program
    .command('hash-password')
    .summary('hash a password with bcrypt, for a named user or ENVOY_BASIC_AUTH_CREDENTIALS')
    .description(
      [
        'Hash a password with bcrypt and print `user:<hash>` (only the hash when no user is given), ' +
          'ready to paste into ENVOY_BASIC_AUTH_CREDENTIALS (entries separated by commas).',
        'With --scopes (and --expires) it prints a named user instead, the line for the env file: ' +
          'GATEWAY_USER_<NAME>=user:<hash>; scopes=...; the name is the user name unless --name gives one.',
        'On a terminal the password is asked twice without echo, the prompts on stderr. Otherwise the ' +
          'first line of stdin is the password, its line ending removed.',
        'Exits 1 when the password is empty, mistyped or longer than bcrypt’s 72 bytes, 2 on a bad argument.',
      ].join('\n\n'),
    )
    .argument('[user]', "user name (no ':' or ',')", parseUserName)
    .option('--cost <n>', `bcrypt cost factor, ${MIN_COST} to ${MAX_COST}`, parseCost, DEFAULT_BCRYPT_COST);
  addNamedCredentialOptions(command, 'the credential name, GATEWAY_USER_<NAME> (default: the user name)')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  $ edge-gateway hash-password grafana --scopes read --expires 2027-03-31\n' +
        '  GATEWAY_USER_GRAFANA=grafana:$2b$12$<53 characters>; scopes=read; expires=2027-03-31\n' +
        '  $ edge-gateway hash-password alice\n' +
        '  $ printf \'%s\\n\' "$PASSWORD" | edge-gateway hash-password alice --cost 13',
    )
    .action(async (user: string | undefined, options: HashPasswordOptions, self: Command) => {
      await runHashPassword(chooseOutput(user, options, self), options);
    });
}
