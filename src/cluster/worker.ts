import { AggregatorRegistry } from 'prom-client';
import type { EnvVars } from '../config/env-source.js';
import { parseGatewayConfig } from '../config/parse.js';
import type { GatewayConfig } from '../config/types.js';
import { Gateway } from '../gateway.js';
import { credentialMetricsJson } from '../observability/credential-report.js';
import type { Logger } from '../observability/logger.js';
import { isPrimaryMessage, type WorkerMessage } from './messages.js';

/**
 * A cluster worker: the data listeners on sockets shared with its siblings, no admin port. The
 * primary owns configuration: it sends each validated env snapshot, which the worker parses and
 * applies; its metrics are read by the primary's AggregatorRegistry over IPC.
 */
export async function runWorker(config: GatewayConfig, logger: Logger): Promise<void> {
  let gateway: Gateway;
  try {
    gateway = await Gateway.start(config, logger, 'worker');
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    logger.fatal({ code }, `worker cannot start: ${message}`);
    logger.flush();
    process.exit(1);
  }
  // Answers the primary's metric requests with this worker's registry.
  new AggregatorRegistry();
  AggregatorRegistry.setRegistries([gateway.metrics.registry]);

  let draining = false;
  const drain = (): void => {
    if (draining) return;
    draining = true;
    gateway.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('message', (message: unknown) => {
    if (!isPrimaryMessage(message)) return;
    if (message.type === 'edge-gateway:drain') {
      drain();
      return;
    }
    if (message.type === 'edge-gateway:credential-metrics') {
      const { requestId } = message;
      credentialMetricsJson(gateway.metrics.registry).then(
        (metrics) => process.send?.({ type: 'edge-gateway:credential-metrics', requestId, metrics }),
        () => process.send?.({ type: 'edge-gateway:credential-metrics', requestId, metrics: [] }),
      );
      return;
    }
    applyVars(gateway, message.vars, config.envFile, logger);
  });
  // The primary drains the workers; a signal sent to the whole group (Ctrl-C) drains too.
  process.on('SIGTERM', drain);
  process.on('SIGINT', drain);
  process.on('SIGHUP', () => undefined);
  process.on('disconnect', drain);
  process.send?.({ type: 'edge-gateway:ready' } satisfies WorkerMessage);
}

function applyVars(gateway: Gateway, vars: EnvVars, envFile: string, logger: Logger): void {
  const parsed = parseGatewayConfig(vars, envFile);
  if (parsed.ok) gateway.applyConfig(parsed.config);
  else logger.error({ errors: parsed.errors }, 'worker could not apply the configuration the primary sent');
}
