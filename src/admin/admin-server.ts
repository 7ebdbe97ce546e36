import Fastify, { type FastifyInstance } from 'fastify';
import type { ListenAddress } from '../config/types.js';
import type { GatewayMetrics } from '../observability/metrics.js';

export interface AdminHooks {
  /** True when every enabled listener is bound and the instance takes traffic. */
  ready(): boolean;
  configDump(): Record<string, unknown>;
}

/**
 * The admin port (Envoy's 9901), bound to loopback by default. Fastify fits here: a handful of
 * low-traffic routes with JSON answers, far from the data path.
 */
export function createAdminServer(metrics: GatewayMetrics, hooks: AdminHooks): FastifyInstance {
  const app = Fastify({ logger: false });

  app.get('/ready', async (_request, reply) => {
    const ready = hooks.ready();
    return reply
      .code(ready ? 200 : 503)
      .type('text/plain')
      .send(ready ? 'LIVE' : 'NOT READY');
  });

  const serveMetrics = async (_request: unknown, reply: import('fastify').FastifyReply): Promise<string> => {
    reply.type(metrics.registry.contentType);
    return metrics.registry.metrics();
  };
  app.get('/metrics', serveMetrics);
  app.get('/stats/prometheus', serveMetrics);

  app.get('/config_dump', async (_request, reply) => reply.type('application/json').send(hooks.configDump()));

  return app;
}

export async function listenAdmin(app: FastifyInstance, address: ListenAddress): Promise<void> {
  await app.listen({ host: address.host, port: address.port });
}
