import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { AuthState, activeCredentials } from '../../src/auth/auth-state.js';
import { BcryptVerifier } from '../../src/auth/bcrypt-verifier.js';
import { CredentialStore } from '../../src/auth/credential-store.js';
import { AuthFailureLimiter } from '../../src/auth/failure-limiter.js';
import { parseGatewayConfig } from '../../src/config/parse.js';
import type { ListenerConfig } from '../../src/config/types.js';
import { InflightCounter } from '../../src/limits/inflight.js';
import { RequestRateLimiter } from '../../src/limits/request-rate-limiter.js';
import { GrpcListener } from '../../src/listeners/grpc.js';
import { Http1Listener } from '../../src/listeners/http1.js';
import { AccessLog } from '../../src/observability/access-log.js';
import { CredentialMetrics } from '../../src/observability/credential-metrics.js';
import { LimitMetrics } from '../../src/observability/limit-metrics.js';
import { GatewayMetrics } from '../../src/observability/metrics.js';

/**
 * One data listener of the gateway built in the test's own process from a parsed configuration,
 * bound to 127.0.0.1 port 0 in front of `upstream`: the listener classes tested without a
 * spawned dist/cli.js, with every part real (credential store, limits, metrics, access log).
 */
export interface InProcessListener {
  readonly url: string;
  readonly port: number;
  /** Access-log lines written so far, parsed. */
  readonly accessLog: Record<string, unknown>[];
  readonly metrics: GatewayMetrics;
  close(): Promise<void>;
}

export async function startListener(
  protocol: 'http1' | 'h2c',
  upstream: string,
  env: Record<string, string>,
): Promise<InProcessListener> {
  const parsed = parseGatewayConfig({ AUTH_FAILURE_LIMIT: '0', ...env }, '');
  if (!parsed.ok) throw new Error(parsed.errors.join('; '));
  const { config } = parsed;
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  const logger = pino({ level: 'info' }, sink);
  const bcrypt = new BcryptVerifier({ cacheSize: 100, cacheTtlMs: 60_000, maxConcurrent: 1, maxQueued: 4 });
  const metrics = new GatewayMetrics();
  const credentialMetrics = new CredentialMetrics(metrics.registry);
  credentialMetrics.configure(config);
  const name = protocol === 'h2c' ? 'otlp-grpc' : 'otlp-http';
  const listenerConfig = {
    name,
    protocol,
    listen: { host: '127.0.0.1', port: 0 },
    upstream: new URL(upstream),
  } as ListenerConfig & { upstream: URL };
  const options = {
    config: listenerConfig,
    auth: new AuthState(activeCredentials(new CredentialStore(config, bcrypt))),
    metrics: metrics.forListener(name, listenerConfig.upstream.host),
    credentialMetrics,
    accessLog: new AccessLog(logger, true),
    logger,
    connectTimeoutMs: 2000,
    responseTimeoutMs: 10_000,
    protection: {
      limiter: new AuthFailureLimiter({
        limit: config.authFailureLimit,
        windowMs: config.authFailureWindowMs,
        exempt: [],
        maxTrackedAddresses: 100,
      }),
      rates: new RequestRateLimiter(),
      inflight: new InflightCounter(),
      limits: new LimitMetrics(metrics.registry).forListener(name),
      timeouts: { headerMs: 5000, bodyMs: 5000, idleMs: 30_000, sendMs: 5000 },
      tls: null,
      hideUpstreamErrors: false,
      connections: { perClient: 0, perListener: 1000 },
    },
  };
  const listener = protocol === 'h2c' ? new GrpcListener(options) : new Http1Listener(options);
  await listener.listen();
  const { port } = listener.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    accessLog: lines,
    metrics,
    close: () => listener.close(1000),
  };
}
