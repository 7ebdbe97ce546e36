import cluster from 'node:cluster';
import { ClusterPrimary } from './cluster/primary.js';
import { runWorker } from './cluster/worker.js';
import type { EnvVars } from './config/env-source.js';
import { type LoadResult, loadGatewayConfig } from './config/load.js';
import { ConfigReloader } from './config/reloader.js';
import type { GatewayConfig } from './config/types.js';
import { logConfigWarnings, unknownSettingWarnings } from './config/unknown-settings.js';
import { Gateway } from './gateway.js';
import { tlsFilesProblem } from './listeners/tls-certificates.js';
import { createLogger, type Logger } from './observability/logger.js';

export interface ServeOptions {
  readonly envFile?: string;
}

/** Exit code of a configuration that cannot be used (as `envoy --mode validate` and promtool do). */
export const EXIT_BAD_CONFIG = 2;

/**
 * Runs the gateway: in this process (`WORKERS=1`), or as a node:cluster primary with workers
 * sharing the listening sockets. Live reload on env-file change, SIGHUP and POST /reload;
 * graceful drain and exit 0 on SIGTERM or SIGINT.
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
  if (config.workers > 1) {
    await runPrimary(loaded, config, processEnv, logger);
    return;
  }
  await runSingle(loaded, config, processEnv, logger);
}

async function runSingle(
  loaded: LoadResult,
  config: GatewayConfig,
  processEnv: EnvVars,
  logger: Logger,
): Promise<void> {
  let gateway: Gateway;
  try {
    gateway = await Gateway.start(config, logger);
  } catch (error) {
    fatal(logger, error);
  }
  const reloader = new ConfigReloader({
    processEnv,
    envFile: config.envFile,
    initial: { config, vars: loaded.vars, fingerprint: loaded.fingerprint },
    apply: (next, vars) => {
      logConfigWarnings(logger, unknownSettingWarnings(vars));
      return gateway.applyConfig(next);
    },
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
  logger.info({ env_file: config.envFile }, 'edge-gateway started; edits to the env file apply live');
  onSignals(
    logger,
    config,
    () => void reloader.reload('signal'),
    async () => {
      reloader.stop();
      await gateway.stop();
    },
  );
}

async function runPrimary(
  loaded: LoadResult,
  config: GatewayConfig,
  processEnv: EnvVars,
  logger: Logger,
): Promise<void> {
  const primary = new ClusterPrimary({
    config,
    vars: loaded.vars,
    fingerprint: loaded.fingerprint,
    processEnv,
    workers: config.workers,
    logger,
  });
  try {
    await primary.start();
  } catch (error) {
    await primary.stop().catch(() => undefined);
    fatal(logger, error);
  }
  onSignals(
    logger,
    config,
    () => primary.reload(),
    () => primary.stop(),
  );
}

function onSignals(
  logger: Logger,
  config: GatewayConfig,
  reload: () => void,
  drain: () => Promise<void>,
): void {
  process.on('SIGHUP', () => {
    logger.info('SIGHUP: reloading the configuration');
    reload();
  });
  const shutdown = (signal: NodeJS.Signals): void => {
    logger.info({ signal, drain_timeout_ms: config.drainTimeoutMs }, 'draining');
    drain().then(
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
