import type { FastifyInstance } from 'fastify';
import { createAdminServer, listenAdmin } from './admin/admin-server.js';
import { AuthState, activeCredentials } from './auth/auth-state.js';
import { BcryptVerifier } from './auth/bcrypt-verifier.js';
import { CredentialStore } from './auth/credential-store.js';
import { formatAddress, redactedConfig } from './config/redact.js';
import type { GatewayConfig, ListenerConfig } from './config/types.js';
import { GrpcListener } from './listeners/grpc.js';
import { Http1Listener } from './listeners/http1.js';
import { AccessLog } from './observability/access-log.js';
import type { Logger } from './observability/logger.js';
import { GatewayMetrics } from './observability/metrics.js';

type DataListener = Http1Listener | GrpcListener;

/**
 * The running gateway: one listener per enabled data port, the admin port, and the credentials
 * every listener reads from one shared cell.
 */
export class Gateway {
  readonly metrics = new GatewayMetrics();
  readonly bcrypt = new BcryptVerifier({
    cacheSize: 10_000,
    cacheTtlMs: 5 * 60_000,
    maxConcurrent: 2,
    maxQueued: 64,
  });
  readonly auth: AuthState;
  readonly listeners: DataListener[] = [];
  private admin: FastifyInstance | null = null;
  private listening = false;
  private stopping = false;

  private constructor(
    private config: GatewayConfig,
    private readonly logger: Logger,
  ) {
    this.auth = new AuthState(activeCredentials(new CredentialStore(config, this.bcrypt)));
    const accessLog = new AccessLog(logger, config.accessLog);
    for (const listener of config.listeners) {
      if (listener.upstream === null) continue;
      const options = {
        config: listener as ListenerConfig & { upstream: URL },
        auth: this.auth,
        metrics: this.metrics.forListener(listener.name, listener.upstream.host),
        accessLog,
        logger,
        connectTimeoutMs: config.upstreamConnectTimeoutMs,
        responseTimeoutMs: config.upstreamTimeoutMs,
      };
      this.listeners.push(
        listener.protocol === 'h2c' ? new GrpcListener(options) : new Http1Listener(options),
      );
    }
  }

  static async start(config: GatewayConfig, logger: Logger): Promise<Gateway> {
    const gateway = new Gateway(config, logger);
    await gateway.listen();
    return gateway;
  }

  get currentConfig(): GatewayConfig {
    return this.config;
  }

  get ready(): boolean {
    return this.listening && !this.stopping;
  }

  private async listen(): Promise<void> {
    const { config, logger } = this;
    this.admin = createAdminServer(this.metrics, {
      ready: () => this.ready,
      configDump: () => redactedConfig(this.config),
    });
    await listenAdmin(this.admin, config.admin);
    logger.info({ address: formatAddress(config.admin) }, 'admin listening');
    for (const listener of this.listeners) {
      await listener.listen();
      const { name, listen, upstream } = listener.options.config;
      logger.info(
        { listener: name, address: formatAddress(listen), upstream: upstream.origin },
        'listener ready',
      );
    }
    for (const listener of config.listeners) {
      if (listener.upstream === null)
        logger.info({ listener: listener.name }, 'listener off (upstream set to off)');
    }
    this.logAuthSummary();
    this.listening = true;
  }

  private logAuthSummary(): void {
    const { config, logger } = this;
    logger.info(
      {
        auth_method: config.authMethod,
        api_keys: config.apiKeys.length,
        basic_users: config.basicCredentials.length,
      },
      'authentication configured',
    );
    if (config.placeholderKeyInUse) {
      logger.warn(
        'THE PLACEHOLDER API KEY IS ACCEPTED: anyone who read the stock documentation can use this gateway. ' +
          'Set ENVOY_API_KEYS in the env file (edge-gateway gen-key makes a key).',
      );
    }
  }

  /** Stops accepting, lets in-flight requests finish, then closes the admin port. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await Promise.all(this.listeners.map((listener) => listener.close()));
    await this.admin?.close();
  }
}
