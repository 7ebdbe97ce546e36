import { isIP } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Registry } from 'prom-client';
import type { ReloadResult } from '../config/reloader.js';
import type { ListenAddress } from '../config/types.js';

export interface AdminHooks {
  /** Prometheus text of every metric (a cluster primary aggregates its workers'). */
  metrics(): Promise<string>;
  /** True when every enabled listener is bound and the instance takes traffic. */
  ready(): boolean;
  configDump(): Record<string, unknown>;
  /** Every configured credential, its scopes and expiry, last use and requests (summed over workers). */
  credentials(): Promise<Record<string, unknown>>;
  /** Settles once the env file held still and was judged (a few hundred ms). */
  reload(): Promise<ReloadResult>;
  setHealthcheckFailed(failed: boolean): void;
}

/**
 * The admin port (Envoy's 9901), bound to loopback by default. Fastify fits here: a handful of
 * low-traffic routes with JSON answers, far from the data path. Route names follow Envoy's
 * (`/ready`, `/stats/prometheus`, `/config_dump`, `/healthcheck/fail`, `/healthcheck/ok`).
 */
export function createAdminServer(hooks: AdminHooks, address: ListenAddress): FastifyInstance {
  const app = Fastify({ logger: false });
  app.addHook('onRequest', async (request, reply) => {
    if (request.method === 'GET' || request.method === 'HEAD') return;
    const refusal = crossSiteRefusal(request, address);
    if (refusal !== null) return reply.code(403).type('text/plain').send(refusal);
  });

  app.get('/', async (request, reply) => {
    if (prefersHtml(request.headers.accept)) return reply.type('text/html; charset=utf-8').send(indexHtml());
    return reply.type('text/plain; charset=utf-8').send(indexText());
  });
  app.setNotFoundHandler(async (request, reply) =>
    reply
      .code(404)
      .type('text/plain; charset=utf-8')
      .send(`no admin endpoint ${request.method} ${request.url.split('?')[0]}; GET / lists them\n`),
  );

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

  app.get('/credentials', async (_request, reply) =>
    reply.type('application/json').send(await hooks.credentials()),
  );

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

/** Every admin endpoint, as Envoy's admin lists its own at `/`. */
const ENDPOINTS: ReadonlyArray<readonly [method: string, path: string, what: string]> = [
  ['GET', '/', 'this list'],
  ['GET', '/ready', '200 LIVE when every listener is bound and taking traffic, else 503'],
  ['GET', '/metrics', 'Prometheus metrics (also /stats/prometheus)'],
  ['GET', '/config_dump', 'the configuration in force as JSON, secrets redacted'],
  ['GET', '/credentials', 'every credential by name: scopes, expiry, last use, requests per listener'],
  ['POST', '/reload', 're-read the env file now'],
  ['POST', '/healthcheck/fail', 'answer 503 on /ready (take the instance out of a load balancer)'],
  ['POST', '/healthcheck/ok', 'undo /healthcheck/fail'],
];

function indexText(): string {
  const width = Math.max(...ENDPOINTS.map(([method, path]) => method.length + path.length + 1));
  return `edge-gateway admin\n\n${ENDPOINTS.map(([method, path, what]) => `${`${method} ${path}`.padEnd(width)}  ${what}`).join('\n')}\n`;
}

function indexHtml(): string {
  const rows = ENDPOINTS.map(
    ([method, path, what]) =>
      `<tr><td>${method}</td><td>${method === 'GET' ? `<a href="${path}">${path}</a>` : path}</td><td>${what}</td></tr>`,
  ).join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>edge-gateway admin</title></head><body><h1>edge-gateway admin</h1><table>${rows}</table></body></html>`;
}

/** A browser asks for HTML first; curl accepts anything. */
function prefersHtml(accept: string | undefined): boolean {
  return accept?.split(',')[0]?.trim().startsWith('text/html') === true;
}

/**
 * Why a state-changing admin request is refused, or null. A browser on the operator's machine
 * can POST to 127.0.0.1:9901 from any page (issue 10 §6): such requests carry an `Origin`, or,
 * through DNS rebinding, a `Host` that names the attacker's domain. curl and scripts send neither.
 */
function crossSiteRefusal(request: FastifyRequest, address: ListenAddress): string | null {
  if (request.headers.origin !== undefined) return 'cross-origin admin requests are refused';
  let host: URL;
  try {
    host = new URL(`http://${request.headers.host ?? ''}`);
  } catch {
    return 'admin requests need the admin address as Host';
  }
  const hostname = host.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = host.port === '' ? 80 : Number(host.port);
  const wildcard = address.host === '0.0.0.0' || address.host === '::';
  const named = hostname === 'localhost' || hostname === address.host || (wildcard && isIP(hostname) !== 0);
  return named && port === address.port ? null : 'admin requests need the admin address as Host';
}
