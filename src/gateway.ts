import { availableParallelism } from 'node:os';
import type { FastifyInstance } from 'fastify';
import { createAdminServer, listenAdmin } from './admin/admin-server.js';
import { listenMetrics } from './admin/metrics-server.js';
import { AuthState, activeCredentials } from './auth/auth-state.js';
import { BcryptVerifier } from './auth/bcrypt-verifier.js';
import { CredentialStore } from './auth/credential-store.js';
import { AuthFailureLimiter } from './auth/failure-limiter.js';
import { formatAddress, redactedConfig } from './config/redact.js';
import type { ReloadResult } from './config/reloader.js';
import { mergeReloadable, settingsNeedingRestart } from './config/restart-needed.js';
import type { GatewayConfig, ListenerConfig } from './config/types.js';
import { type LimitStores, openLimitStore } from './limits/open-limit-store.js';
import { connectionsPerListener, openFileLimit } from './listeners/connection-admission.js';
import { GRPC_UPSTREAM_SESSIONS, GrpcListener } from './listeners/grpc.js';
import { HTTP1_UPSTREAM_CONNECTIONS, Http1Listener } from './listeners/http1.js';
import type { ClientTimeouts } from './listeners/protection.js';
import { loadTlsMaterial, type TlsMaterial, TlsReloader } from './listeners/tls-certificates.js';
import { AccessLog } from './observability/access-log.js';
import { registerControlMetrics } from './observability/control-metrics.js';
import { CredentialMetrics } from './observability/credential-metrics.js';
import { credentialMetricsJson, credentialReport } from './observability/credential-report.js';
import { LimitMetrics } from './observability/limit-metrics.js';
import type { Logger } from './observability/logger.js';
import { GatewayMetrics } from './observability/metrics.js';

type DataListener = Http1Listener | GrpcListener;

/** How the admin port's POST /reload reaches the reloader, which lives beside the gateway. */
export type ReloadHandler = () => Promise<ReloadResult>;

/**
 * The running gateway: one listener per enabled data port, the admin port, and the credentials
 * every listener reads from one shared cell that a reload replaces.
 */
export class Gateway {
  readonly metrics = new GatewayMetrics();
  readonly credentialMetrics = new CredentialMetrics(this.metrics.registry);
  readonly bcrypt: BcryptVerifier;
  readonly auth: AuthState;
  /** Shared by every listener of this process; across processes only with LIMIT_STORE=redis. */
  readonly failureLimiter: AuthFailureLimiter;
  private readonly limitStores: LimitStores;
  private readonly tlsReloader: TlsReloader | null = null;
  readonly listeners: DataListener[] = [];
  private readonly accessLog: AccessLog;
  private admin: FastifyInstance | null = null;
  private metricsPort: FastifyInstance | null = null;
  private listening = false;
  private draining = false;
  private healthcheckFailed = false;
  reloadHandler: ReloadHandler | null = null;
  reloadStatus: () => { ok: boolean; timestamp: number; successes: number; failures: number } = () => ({
    ok: true,
    timestamp: this.startedAt / 1000,
    successes: 0,
    failures: 0,
  });
  private readonly startedAt = Date.now();

  private constructor(
    private config: GatewayConfig,
    private readonly logger: Logger,
    /** `single`: the whole gateway in this process. `worker`: data listeners only, under a cluster primary. */
    readonly role: 'single' | 'worker',
  ) {
    this.bcrypt = new BcryptVerifier({
      cacheSize: 10_000,
      cacheTtlMs: 5 * 60_000,
      maxConcurrent: bcryptThreads(config.workers),
      // A verification is needed once per credential and TTL: a short queue absorbs a burst of
      // honest first requests, and a flood of guesses beyond it fails fast instead of waiting.
      maxQueued: 16,
      cpuShare: BCRYPT_CPU_SHARE / Math.max(1, config.workers),
      // About four first-time checks of cost-12 hashes at once.
      burstMs: 1000,
    });
    this.auth = new AuthState(activeCredentials(new CredentialStore(config, this.bcrypt)));
    this.credentialMetrics.configure(config);
    this.accessLog = new AccessLog(logger, config.accessLog);
    this.limitStores = openLimitStore(config.limitStore, this.metrics.registry, logger);
    this.failureLimiter = new AuthFailureLimiter({
      shared: this.limitStores.failures,
      limit: config.authFailureLimit,
      windowMs: config.authFailureWindowMs,
      exempt: config.authFailureLimitExempt,
      maxTrackedAddresses: 100_000,
      onLimitReached: ({ address, failures, windowMs }) =>
        logger.warn(
          { client: address, auth_failures: failures, window_ms: windowMs },
          'client reached AUTH_FAILURE_LIMIT: its requests get 429 until its window ends',
        ),
    });
    const limits = new LimitMetrics(this.metrics.registry);
    const timeouts: ClientTimeouts = {
      headerMs: config.clientHeaderTimeoutMs,
      bodyMs: config.clientBodyTimeoutMs,
      idleMs: config.clientIdleTimeoutMs,
      sendMs: config.clientSendTimeoutMs,
    };
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
    const dataListeners = config.listeners.filter((listener) => listener.upstream !== null);
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
    const rates = this.limitStores.rates;
    for (const listener of dataListeners) {
      if (listener.upstream === null) continue;
      const options = {
        config: listener as ListenerConfig & { upstream: URL },
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
    this.registerStateMetrics();
  }

  static async start(
    config: GatewayConfig,
    logger: Logger,
    role: 'single' | 'worker' = 'single',
  ): Promise<Gateway> {
    const gateway = new Gateway(config, logger, role);
    await gateway.listen();
    return gateway;
  }

  get currentConfig(): GatewayConfig {
    return this.config;
  }

  /** Ready for traffic: every enabled listener bound, not draining, not failed by an operator. */
  get ready(): boolean {
    return this.listening && !this.draining && !this.healthcheckFailed;
  }

  /**
   * Applies a validated configuration: credentials, auth method and logging take effect for the
   * next request on every connection; listener and upstream changes are reported as needing a
   * restart. Answers the names of those settings.
   */
  applyConfig(next: GatewayConfig): readonly string[] {
    const restartNeeded = settingsNeedingRestart(this.config, next);
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
    // The reloader reports the reload, once for all workers under a cluster primary.
    this.config = mergeReloadable(this.config, next);
    if (next.placeholderKeyInUse && this.role === 'single') this.warnPlaceholder();
    return restartNeeded;
  }

  private async listen(): Promise<void> {
    const { config, logger } = this;
    if (this.role === 'single') await this.listenAdmin();
    for (const listener of this.listeners) {
      await listener.listen();
      const { name, listen, upstream } = listener.options.config;
      logger.info(
        { listener: name, address: formatAddress(listen), upstream: upstream.origin },
        'listener ready',
      );
    }
    this.tlsReloader?.start();
    if (this.role === 'single') {
      for (const listener of config.listeners) {
        if (listener.upstream === null)
          logger.info({ listener: listener.name }, 'listener off (upstream set to off)');
      }
      logger.info(
        {
          auth_method: config.authMethod,
          api_keys: config.apiKeys.length,
          basic_users: config.basicCredentials.length,
        },
        'authentication configured',
      );
      if (config.placeholderKeyInUse) this.warnPlaceholder();
    }
    this.listening = true;
  }

  private async listenAdmin(): Promise<void> {
    const { config, logger } = this;
    this.admin = createAdminServer(
      {
        metrics: () => this.metrics.registry.metrics(),
        ready: () => this.ready,
        configDump: () => redactedConfig(this.config),
        credentials: async () =>
          credentialReport(this.config, await credentialMetricsJson(this.metrics.registry)),
        reload: async () => this.reloadHandler?.() ?? { ok: false, errors: ['reloading is not enabled'] },
        setHealthcheckFailed: (failed) => {
          this.healthcheckFailed = failed;
          logger.warn(
            { ready: this.ready },
            failed ? 'health check failed by operator' : 'health check restored by operator',
          );
        },
      },
      config.admin,
    );
    await listenAdmin(this.admin, config.admin);
    logger.info({ address: formatAddress(config.admin) }, 'admin listening');
    this.metricsPort = await listenMetrics(() => this.metrics.registry.metrics(), config.metricsListen);
    if (config.metricsListen !== null)
      logger.info({ address: formatAddress(config.metricsListen) }, 'metrics listening');
  }

  private warnPlaceholder(): void {
    this.logger.warn(
      'THE PLACEHOLDER API KEY IS ACCEPTED: anyone who has read the stock documentation can use this gateway. ' +
        'Set ENVOY_API_KEYS in the env file (edge-gateway gen-key makes a key).',
    );
  }

  /**
   * Graceful drain: /ready turns 503 at once, listeners stop accepting, HTTP/2 sessions get
   * GOAWAY, in-flight requests finish (cut at DRAIN_TIMEOUT), then the admin port closes.
   */
  async stop(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.tlsReloader?.stop();
    const deadline = this.config.drainTimeoutMs;
    await Promise.all(this.listeners.map((listener) => listener.close(deadline)));
    await this.metricsPort?.close();
    await this.admin?.close();
    await this.limitStores.close();
  }

  private registerStateMetrics(): void {
    const { metrics } = this;
    if (this.role === 'single') {
      registerControlMetrics(metrics.registry, {
        reloadStatus: () => this.reloadStatus(),
        placeholderKeyInUse: () => this.config.placeholderKeyInUse,
        ready: () => this.ready,
        workers: () => 1,
      });
    }
    metrics.counterFrom(
      'gateway_bcrypt_cache_hits_total',
      'bcrypt verifications answered from the cache.',
      () => this.bcrypt.cacheHits,
    );
    metrics.counterFrom(
      'gateway_bcrypt_cache_misses_total',
      'bcrypt verifications that ran bcrypt.',
      () => this.bcrypt.cacheMisses,
    );
    metrics.counterFrom(
      'gateway_bcrypt_rejected_overload_total',
      'bcrypt verifications refused (503 / UNAVAILABLE) because the bcrypt queue was full or its CPU budget spent.',
      () => this.bcrypt.rejectedOverload,
    );
    metrics.gaugeFrom(
      'gateway_auth_failure_tracked_addresses',
      'Client addresses with authentication failures in their current AUTH_FAILURE_WINDOW.',
      null,
      () => this.failureLimiter.trackedAddresses,
    );
    const { tlsReloader } = this;
    if (tlsReloader !== null) {
      metrics.gaugeFrom(
        'gateway_tls_certificate_expiry_timestamp_seconds',
        'Unix time at which the served TLS certificate expires.',
        null,
        () => tlsReloader.current.notAfterSeconds,
        // A timestamp: summed over workers it would lie; the earliest one is what expires first.
        'min',
      );
      metrics.counterFrom(
        'gateway_tls_certificate_reloads_total',
        'TLS certificate and key pairs reloaded from TLS_CERT_FILE and TLS_KEY_FILE.',
        () => tlsReloader.reloads,
      );
      metrics.counterFrom(
        'gateway_tls_certificate_reload_failures_total',
        'Changed TLS files that could not be used (unreadable, not PEM, key not matching).',
        () => tlsReloader.failures,
      );
    }
    metrics.gaugeFrom('gateway_open_connections', 'Open client connections, by listener.', 'listener', () =>
      this.listeners.map((listener) => [listener.options.config.name, listener.openConnections] as const),
    );
    metrics.gaugeFrom(
      'gateway_upstream_http2_sessions',
      'Open HTTP/2 sessions to gRPC upstreams, by listener.',
      'listener',
      () =>
        this.listeners
          .filter((listener): listener is GrpcListener => listener instanceof GrpcListener)
          .map((listener) => [listener.options.config.name, listener.pool.openSessions] as const),
    );
  }
}

/**
 * Average share of one CPU that bcrypt may take, across all workers: a flood of wrong passwords
 * for a bcrypt user costs the machine at most this, while honest use (one comparison per
 * credential and 5 minutes) needs a small fraction of it.
 */
const BCRYPT_CPU_SHARE = 0.2;

/**
 * bcrypt threads per process: together, all workers may keep at most half of the CPUs busy with
 * bcrypt (at least one thread each), so that a flood of wrong passwords for a bcrypt user cannot
 * take the cores the request path needs.
 */
export function bcryptThreads(workers: number, cpus = availableParallelism()): number {
  return Math.max(1, Math.floor(cpus / 2 / Math.max(1, workers)));
}
