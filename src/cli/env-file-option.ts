/**
 * `-f` as well as `--env-file`: Node 20 looks at a script argument spelled `--env-file` too and
 * exits 9 ("node: <file>: not found") before our code runs when that file is missing
 * (nodejs/node#54232); `-f <file>` reaches the CLI whatever the file's state.
 */
export const ENV_FILE_FLAGS = '-f, --env-file <file>';
export const ENV_FILE_HELP = 'env file to read (default: $GATEWAY_ENV_FILE or ./.env)';
