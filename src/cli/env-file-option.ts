import { existsSync } from 'node:fs';

/**
 * `-f` / `--env`, never `--env-file`: Node (20 and 24 alike) reads a script argument spelled
 * `--env-file` as its own option, loads that file into the environment, and exits 9
 * ("node: <file>: not found") before our code runs when it is missing (nodejs/node#54232).
 */
export const ENV_FILE_FLAGS = '-f, --env <file>';
export const ENV_FILE_HELP = 'env file to read (default: $GATEWAY_ENV_FILE or ./.env)';

/** What commander gives for ENV_FILE_FLAGS. */
export interface EnvFileOption {
  readonly env?: string;
}

/**
 * The env file named with -f / --env, `undefined` when none was named, or `null` (after saying
 * so on stderr, exit code 2) when the named file does not exist: a missing default ./.env is
 * fine, a file the operator named and mistyped is not.
 */
export function namedEnvFile(options: EnvFileOption, command: string): string | undefined | null {
  if (options.env === undefined) return undefined;
  if (existsSync(options.env)) return options.env;
  process.stderr.write(
    `edge-gateway ${command}: env file ${options.env} (given with -f/--env) does not exist\n`,
  );
  process.exitCode = 2;
  return null;
}
