import { AuthState, activeCredentials } from '../auth/auth-state.js';
import type { BcryptVerifier } from '../auth/bcrypt-verifier.js';
import { CredentialStore } from '../auth/credential-store.js';
import type { AuthFailureLimiter } from '../auth/failure-limiter.js';
import { formatAddress } from '../config/redact.js';
import type { GatewayConfig, ListenerConfig } from '../config/types.js';
import { connectionsPerListener, openFileLimit } from '../listeners/connection-admission.js';
import { GRPC_UPSTREAM_SESSIONS, GrpcListener } from '../listeners/grpc.js';
import { HTTP1_UPSTREAM_CONNECTIONS, Http1Listener } from '../listeners/http1.js';
import type { ClientTimeouts } from '../listeners/protection.js';
import { loadTlsMaterial, type TlsMaterial, TlsReloader } from '../listeners/tls-certificates.js';
import { AccessLog } from '../observability/access-log.js';
import { CredentialMetrics } from '../observability/credential-metrics.js';
import { credentialMetricsJson, type MetricsJson } from '../observability/credential-report.js';
import { LimitMetrics } from '../observability/limit-metrics.js';
import type { Logger } from '../observability/logger.js';
import { GatewayMetrics } from '../observability/metrics.js';
import { bcryptVerifierFor } from './bcrypt-budget.js';
import type { DataPlane } from './data-plane.js';
import { buildLimiters } from './limiters.js';
import { registerLocalMetrics } from './local-metrics.js';

type DataListener = Http1Listener | GrpcListener;

/**
 * The data plane of one process: one listener per enabled data port, and the credentials every
 * listener reads from one shared cell that a reload replaces. It runs alone under the control
 * plane (`WORKERS=1`) or in each cluster worker.
 */
export class LocalDataPlane implements DataPlane {
  readonly metrics = new GatewayMetrics();
  private readonly credentialMetrics = new CredentialMetrics(this.metrics.registry);
  private readonly bcrypt: BcryptVerifier;
  private readonly auth: AuthState;
  private readonly failureLimiter: AuthFailureLimiter;
  private readonly closeLimitStore: () => Promise<void>;
  private readonly tlsReloader: TlsReloader | null = null;
  private readonly listeners: DataListener[] = [];
  private readonly accessLog: AccessLog;
  private listening = false;

  /** Throws when the TLS files cannot be loaded. */
  constructor(
    config: GatewayConfig,
    private readonly logger: Logger,
  ) {
    this.bcrypt = bcryptVerifierFor(config.workers);
    this.auth = new AuthState(activeCredentials(new CredentialStore(config, this.bcrypt)));
    this.credentialMetrics.configure(config);
    this.accessLog = new AccessLog(logger, config.accessLog);
    const { rates, inflight, failureLimiter, close } = buildLimiters(config, logger, this.metrics.registry);
    this.closeLimitStore = close;
    this.failureLimiter = failureLimiter;
    let tls: TlsMaterial | null = null;
    if (config.tls !== null) {
      const loaded = loadTlsMaterial(config.tls);
      if (!loaded.ok) throw new Error(loaded.error);
      tls = loaded.material;
      this.tlsReloader = new TlsReloader({
        files: config.tls,
        initial: loaded.material,
        initialFingerprint: loaded.fingerprint,
        apply: (material) => {
          for (const listener of this.listeners) listener.setCertificate(material);
        },
        logger,
      });
    }
    const limits = new LimitMetrics(this.metrics.registry);
    const timeouts: ClientTimeouts = {
      headerMs: config.clientHeaderTimeoutMs,
      bodyMs: config.clientBodyTimeoutMs,
      idleMs: config.clientIdleTimeoutMs,
      sendMs: config.clientSendTimeoutMs,
    };
    const dataListeners = config.listeners.filter(
      (listener): listener is ListenerConfig & { upstream: URL } => listener.upstream !== null,
    );
    const connections = {
      perClient: config.maxConnectionsPerClient,
      perListener: connectionsPerListener(
        openFileLimit(),
        dataListeners.length,
        dataListeners.reduce(
          (sum, listener) =>
            sum + (listener.protocol === 'h2c' ? GRPC_UPSTREAM_SESSIONS : HTTP1_UPSTREAM_CONNECTIONS),
          0,
        ),
      ),
    };
    for (const listener of dataListeners) {
      const options = {
        config: listener,
        auth: this.auth,
        metrics: this.metrics.forListener(listener.name, listener.upstream.host),
        credentialMetrics: this.credentialMetrics,
        accessLog: this.accessLog,
        logger,
        connectTimeoutMs: config.upstreamConnectTimeoutMs,
        responseTimeoutMs: config.upstreamTimeoutMs,
        protection: {
          limiter: this.failureLimiter,
          rates,
          inflight,
          limits: limits.forListener(listener.name),
          timeouts,
          tls,
          hideUpstreamErrors: config.upstreamErrorBodies === 'hide',
          connections,
        },
      };
      this.listeners.push(
        listener.protocol === 'h2c' ? new GrpcListener(options) : new Http1Listener(options),
      );
    }
    registerLocalMetrics(this.metrics, {
      bcrypt: this.bcrypt,
      failureLimiter,
      tlsReloader: this.tlsReloader,
      listeners: this.listeners,
    });
  }

  get serving(): boolean {
    return this.listening;
  }

  get workers(): number {
    return 1;
  }

  async start(): Promise<void> {
    for (const listener of this.listeners) {
      await listener.listen();
      const { name, listen, upstream } = listener.options.config;
      this.logger.info(
        { listener: name, address: formatAddress(listen), upstream: upstream.origin },
        'listener ready',
      );
    }
    this.tlsReloader?.start();
    this.listening = true;
  }

  /**
   * Credentials, auth method, limits and logging take effect for the next request on every
   * connection; listener and upstream changes wait for a restart.
   */
  apply(next: GatewayConfig): void {
    const store = new CredentialStore(next, this.bcrypt);
    this.auth.current = activeCredentials(store);
    this.credentialMetrics.configure(next);
    this.bcrypt.retainOnly(store.bcryptHashes);
    this.failureLimiter.configure({
      limit: next.authFailureLimit,
      windowMs: next.authFailureWindowMs,
      exempt: next.authFailureLimitExempt,
    });
    this.accessLog.enabled = next.accessLog;
    this.logger.level = next.logLevel;
  }

  metricsText(): Promise<string> {
    return this.metrics.registry.metrics();
  }

  credentialMetricsJson(): Promise<MetricsJson> {
    return credentialMetricsJson(this.metrics.registry);
  }

  /** Listeners stop accepting, HTTP/2 sessions get GOAWAY, in-flight requests finish (cut at the deadline). */
  async stop(drainTimeoutMs: number): Promise<void> {
    this.tlsReloader?.stop();
    await Promise.all(this.listeners.map((listener) => listener.close(drainTimeoutMs)));
    await this.closeLimitStore();
  }
}
