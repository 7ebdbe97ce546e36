import cluster from 'node:cluster';
import { FleetDataPlane } from './cluster/fleet.js';
import { runWorker } from './cluster/worker.js';
import { loadGatewayConfig } from './config/load.js';
import { logConfigWarnings } from './config/unknown-settings.js';
import { ControlPlane } from './control/control-plane.js';
import { LocalDataPlane } from './data-plane/local.js';
import { tlsFilesProblem } from './listeners/tls-certificates.js';
import { createLogger, type Logger } from './observability/logger.js';

export interface ServeOptions {
  readonly envFile?: string;
}

/** Exit code of a configuration that cannot be used (as `envoy --mode validate` and promtool do). */
export const EXIT_BAD_CONFIG = 2;

/**
 * Runs the gateway: the control plane over the listeners of this process (`WORKERS=1`), or,
 * in a node:cluster primary, over workers sharing the listening sockets (each runs only a data
 * plane). Live reload on env-file change, SIGHUP and POST /reload; graceful drain and exit 0 on
 * SIGTERM or SIGINT.
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
  // Checked before any process is forked: a worker that cannot load them would die and be
  // replaced forever.
  const tlsError = config.tls === null || cluster.isWorker ? null : tlsFilesProblem(config.tls);
  if (tlsError !== null) {
    process.stderr.write(`edge-gateway: configuration error: ${tlsError}\n`);
    process.exitCode = EXIT_BAD_CONFIG;
    return;
  }
  const logger = createLogger({
    level: config.logLevel,
    pretty: config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stdout.isTTY === true),
  });
  // A worker's primary has said them already.
  if (!cluster.isWorker) logConfigWarnings(logger, loaded.warnings);
  if (cluster.isWorker) {
    await runWorker(config, logger.child({ worker: cluster.worker?.id }));
    return;
  }
  let control: ControlPlane | null = null;
  try {
    control = new ControlPlane({
      initial: loaded,
      processEnv,
      dataPlane:
        config.workers > 1
          ? new FleetDataPlane({ workers: config.workers, vars: loaded.vars, logger })
          : new LocalDataPlane(config, logger),
      logger,
    });
    await control.start();
  } catch (error) {
    await control?.stop().catch(() => undefined);
    fatal(logger, error);
  }
  onSignals(logger, control);
}

function onSignals(logger: Logger, control: ControlPlane): void {
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: reloading the configuration');
    void control.reload('signal');
  });
  const shutdown = (signal: NodeJS.Signals): void => {
    logger.info({ signal, drain_timeout_ms: control.drainTimeoutMs }, 'draining');
    control.stop().then(
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

function fatal(logger: Logger, error: unknown): never {
  const { code, message } = error as NodeJS.ErrnoException;
  logger.fatal({ code }, `cannot start: ${message}`);
  logger.flush();
  process.exit(1);
}
