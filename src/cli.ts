#!/usr/bin/env node
import { Command } from 'commander';
import { serve } from './serve.js';

const program = new Command()
  .name('edge-gateway')
  .description('Authenticating edge gateway for the OpenTelemetry / Prometheus / VictoriaMetrics stack');

program
  .command('serve', { isDefault: true })
  .description('run the gateway (the default command)')
  .option('--env-file <file>', 'env file to read (default: $GATEWAY_ENV_FILE or ./.env)')
  .action(async (options: { envFile?: string }) => {
    await serve(options.envFile === undefined ? {} : { envFile: options.envFile });
  });

await program.parseAsync(process.argv);
