import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import type { ListenAddress } from '../config/types.js';

/**
 * METRICS_LISTEN (issue 15): `GET /metrics` and nothing else, without credentials, so the stack's
 * own Prometheus can scrape the gateway while the admin port stays on loopback. The exposition is
 * the admin port's, summed over workers by the caller.
 */
export function createMetricsServer(metrics: () => Promise<string>): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/metrics', async (_request, reply) => {
    reply.type(Registry.PROMETHEUS_CONTENT_TYPE);
    return metrics();
  });
  app.setNotFoundHandler(async (_request, reply) =>
    reply.code(404).type('text/plain; charset=utf-8').send('only GET /metrics is served here\n'),
  );
  return app;
}

/** Starts the metrics port when METRICS_LISTEN is set; null when it is `off`. */
export async function listenMetrics(
  metrics: () => Promise<string>,
  address: ListenAddress | null,
): Promise<FastifyInstance | null> {
  if (address === null) return null;
  const app = createMetricsServer(metrics);
  await app.listen({ host: address.host, port: address.port });
  return app;
}
