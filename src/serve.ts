import { loadGatewayConfig } from './config/load.js';
import { ConfigReloader } from './config/reloader.js';
import { Gateway } from './gateway.js';
import { createLogger } from './observability/logger.js';

export interface ServeOptions {
  readonly envFile?: string;
}

/** Exit code of a configuration that cannot be used (as `envoy --mode validate` and promtool do). */
export const EXIT_BAD_CONFIG = 2;

/**
 * Runs the gateway: live reload on env-file change, SIGHUP and POST /reload; graceful drain
 * and exit 0 on SIGTERM or SIGINT.
 */
export async function serve(options: ServeOptions): Promise<void> {
  const processEnv = { ...process.env };
  const loaded = loadGatewayConfig(processEnv, options.envFile);
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

  const reloader = new ConfigReloader({
    processEnv,
    envFile: config.envFile,
    initialFingerprint: loaded.fingerprint,
    apply: (next) => gateway.applyConfig(next),
    logger,
  });
  gateway.reloadHandler = () => reloader.reload('admin');
  gateway.reloadStatus = () => ({
    ok: reloader.lastReloadSuccessful,
    timestamp: reloader.lastSuccessTimestampSeconds,
    successes: reloader.successes,
    failures: reloader.failures,
  });
  reloader.start();
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: reloading the configuration');
    reloader.reload('signal');
  });
  logger.info({ env_file: config.envFile }, 'edge-gateway started; edits to the env file apply live');

  const shutdown = (signal: NodeJS.Signals): void => {
    logger.info({ signal, drain_timeout_ms: gateway.currentConfig.drainTimeoutMs }, 'draining');
    reloader.stop();
    gateway.stop().then(
      () => {
        logger.info('drained, exiting');
        logger.flush();
        process.exit(0);
      },
      (error: Error) => {
        logger.error({ err: error.message }, 'error while draining');
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
