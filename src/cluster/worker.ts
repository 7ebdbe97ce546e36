import { AggregatorRegistry } from 'prom-client';
import type { EnvVars } from '../config/env-source.js';
import { parseGatewayConfig } from '../config/parse.js';
import type { GatewayConfig } from '../config/types.js';
import { LocalDataPlane } from '../data-plane/local.js';
import type { Logger } from '../observability/logger.js';
import { isPrimaryMessage, type WorkerMessage } from './messages.js';

/**
 * A cluster worker: a local data plane on sockets shared with its siblings, no admin port. The
 * primary's control plane owns configuration: it sends each validated env snapshot, which the
 * worker parses and applies; its metrics are read by the primary's AggregatorRegistry over IPC.
 */
export async function runWorker(config: GatewayConfig, logger: Logger): Promise<void> {
  let dataPlane: LocalDataPlane;
  try {
    dataPlane = new LocalDataPlane(config, logger);
    await dataPlane.start();
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    logger.fatal({ code }, `worker cannot start: ${message}`);
    logger.flush();
    process.exit(1);
  }
  // Answers the primary's metric requests with this worker's registry.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([dataPlane.metrics.registry]);

  /** The DRAIN_TIMEOUT of the last configuration applied (it applies live). */
  let drainTimeoutMs = config.drainTimeoutMs;
  let draining = false;
  const drain = (): void => {
    if (draining) return;
    draining = true;
    dataPlane.stop(drainTimeoutMs).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  const apply = (vars: EnvVars): void => {
    const parsed = parseGatewayConfig(vars, config.envFile);
    if (!parsed.ok) {
      logger.error({ errors: parsed.errors }, 'worker could not apply the configuration the primary sent');
      return;
    }
    dataPlane.apply(parsed.config);
    drainTimeoutMs = parsed.config.drainTimeoutMs;
  };
  process.on('message', (message: unknown) => {
    if (!isPrimaryMessage(message)) return;
    if (message.type === 'edge-gateway:drain') {
      drain();
      return;
    }
    if (message.type === 'edge-gateway:credential-metrics') {
      const { requestId } = message;
      dataPlane.credentialMetricsJson().then(
        (metrics) => process.send?.({ type: 'edge-gateway:credential-metrics', requestId, metrics }),
        () => process.send?.({ type: 'edge-gateway:credential-metrics', requestId, metrics: [] }),
      );
      return;
    }
    apply(message.vars);
  });
  // The primary drains the workers; a signal sent to the whole group (Ctrl-C) drains too.
  process.on('SIGTERM', drain);
  process.on('SIGINT', drain);
  process.on('SIGHUP', () => undefined);
  process.on('disconnect', drain);
  process.send?.({ type: 'edge-gateway:ready' } satisfies WorkerMessage);
}
