import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { Registry } from 'prom-client';
import type { ReloadResult } from '../config/reloader.js';
import type { ListenAddress } from '../config/types.js';

export interface AdminHooks {
  /** Prometheus text of every metric (a cluster primary aggregates its workers'). */
  metrics(): Promise<string>;
  /** True when every enabled listener is bound and the instance takes traffic. */
  ready(): boolean;
  configDump(): Record<string, unknown>;
  /** Settles once the env file held still and was judged (a few hundred ms). */
  reload(): Promise<ReloadResult>;
  setHealthcheckFailed(failed: boolean): void;
}

/**
 * The admin port (Envoy's 9901), bound to loopback by default. Fastify fits here: a handful of
 * low-traffic routes with JSON answers, far from the data path. Route names follow Envoy's
 * (`/ready`, `/stats/prometheus`, `/config_dump`, `/healthcheck/fail`, `/healthcheck/ok`).
 */
export function createAdminServer(hooks: AdminHooks): FastifyInstance {
  const app = Fastify({ logger: false });

  app.get('/ready', async (_request, reply) => {
    const ready = hooks.ready();
    return reply
      .code(ready ? 200 : 503)
      .type('text/plain')
      .send(ready ? 'LIVE' : 'NOT READY');
  });

  const serveMetrics = async (_request: unknown, reply: FastifyReply): Promise<string> => {
    reply.type(Registry.PROMETHEUS_CONTENT_TYPE);
    return hooks.metrics();
  };
  app.get('/metrics', serveMetrics);
  app.get('/stats/prometheus', serveMetrics);

  app.get('/config_dump', async (_request, reply) => reply.type('application/json').send(hooks.configDump()));

  app.post('/reload', async (_request, reply) => {
    const result = await hooks.reload();
    return reply.code(result.ok ? 200 : 400).send(result);
  });

  app.post('/healthcheck/fail', async (_request, reply) => {
    hooks.setHealthcheckFailed(true);
    return reply.type('text/plain').send('OK');
  });
  app.post('/healthcheck/ok', async (_request, reply) => {
    hooks.setHealthcheckFailed(false);
    return reply.type('text/plain').send('OK');
  });

  return app;
}

export async function listenAdmin(app: FastifyInstance, address: ListenAddress): Promise<void> {
  await app.listen({ host: address.host, port: address.port });
}
