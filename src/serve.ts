import { loadGatewayConfig } from './config/load.js';
import { Gateway } from './gateway.js';
import { createLogger } from './observability/logger.js';

export interface ServeOptions {
  readonly envFile?: string;
}

/** Exit code of a configuration that cannot be used (as `envoy --mode validate` and promtool do). */
export const EXIT_BAD_CONFIG = 2;

/** Runs the gateway until SIGTERM or SIGINT, then drains and exits 0. */
export async function serve(options: ServeOptions): Promise<void> {
  const loaded = loadGatewayConfig(process.env, options.envFile);
  if (!loaded.ok) {
    for (const error of loaded.errors) process.stderr.write(`edge-gateway: configuration error: ${error}\n`);
    process.exitCode = EXIT_BAD_CONFIG;
    return;
  }
  const { config } = loaded;
  const logger = createLogger({
    level: config.logLevel,
    pretty: config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stdout.isTTY === true),
  });
  let gateway: Gateway;
  try {
    gateway = await Gateway.start(config, logger);
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    logger.fatal({ code }, `cannot start: ${message}`);
    logger.flush();
    process.exit(1);
  }
  logger.info({ env_file: config.envFile }, 'edge-gateway started');

  const shutdown = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'stopping: draining in-flight requests');
    gateway.stop().then(
      () => {
        logger.info('stopped');
        logger.flush();
        process.exit(0);
      },
      (error: Error) => {
        logger.error({ err: error.message }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
