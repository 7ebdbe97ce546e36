#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerCheckCommand } from './cli/check.js';
import { ENV_FILE_FLAGS, ENV_FILE_HELP, type EnvFileOption, namedEnvFile } from './cli/env-file-option.js';
import { registerGenKeyCommand } from './cli/gen-key.js';
import { registerHashPasswordCommand } from './cli/hash-password.js';
import { serve } from './serve.js';

/** Exit code of a command line commander rejects (unknown command or option, bad value). */
const EXIT_USAGE = 2;

const program = new Command()
  .name('edge-gateway')
  .description(
    'Authenticating edge gateway for the OpenTelemetry / Prometheus / VictoriaMetrics stack, ' +
      'a drop-in for the stock Envoy gateway. Without a command it runs the gateway (serve).',
  )
  // Set before the commands are added so that each inherits it: commander's errors are thrown, not exited on.
  .exitOverride();

program
  .command('serve', { isDefault: true })
  .summary('run the gateway (the default command)')
  .description(
    'Run the gateway until SIGTERM or SIGINT, then drain and exit 0. Exits 2 without starting when ' +
      'the configuration is invalid (edge-gateway check lists why).',
  )
  .option(ENV_FILE_FLAGS, ENV_FILE_HELP)
  .action(async (options: EnvFileOption) => {
    const envFile = namedEnvFile(options, 'serve');
    if (envFile === null) return;
    await serve(envFile === undefined ? {} : { envFile });
  });
registerCheckCommand(program);
registerHashPasswordCommand(program);
registerGenKeyCommand(program);

// commander hands any word that is not a command to the default command, which would answer
// "too many arguments for 'serve'" to a typo: name the real problem instead.
program.hook('preSubcommand', (_program, command) => {
  const [word] = program.args;
  if (command.name() === 'serve' && word !== undefined && word !== 'serve' && !word.startsWith('-')) {
    program.error(`error: unknown command '${word}' (see edge-gateway --help)`, {
      code: 'commander.unknownCommand',
      exitCode: EXIT_USAGE,
    });
  }
});

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (!(error instanceof CommanderError)) throw error;
  // commander has already printed its message (or the help / version asked for).
  process.exitCode = error.exitCode === 0 ? 0 : EXIT_USAGE;
}
