import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { type AdminHooks, createAdminServer, listenAdmin } from '../admin/admin-server.js';
import { listenMetrics } from '../admin/metrics-server.js';
import type { EnvVars } from '../config/env-source.js';
import { formatAddress, redactedConfig } from '../config/redact.js';
import { ConfigReloader, type ReloaderOptions, type ReloadResult } from '../config/reloader.js';
import { mergeReloadable, settingsNeedingRestart } from '../config/restart-needed.js';
import type { GatewayConfig } from '../config/types.js';
import { logConfigWarnings, unknownSettingWarnings } from '../config/unknown-settings.js';
import type { DataPlane } from '../data-plane/data-plane.js';
import { registerControlMetrics } from '../observability/control-metrics.js';
import { credentialReport } from '../observability/credential-report.js';
import type { Logger } from '../observability/logger.js';
import { logStarted, warnPlaceholder } from './start-up-log.js';

export interface ControlPlaneOptions {
  /** What start-up loaded, and the fingerprint of the env file bytes it was read from. */
  readonly initial: ReloaderOptions['initial'];
  readonly processEnv: EnvVars;
  readonly dataPlane: DataPlane;
  readonly logger: Logger;
}

/**
 * The one control plane, over the listeners of this process or a fleet of workers alike: the
 * configuration in force, the admin and metrics ports, the reloader (env-file watch, SIGHUP,
 * POST /reload) with its status, readiness and the drain.
 */
export class ControlPlane {
  private config: GatewayConfig;
  private readonly dataPlane: DataPlane;
  private readonly logger: Logger;
  private readonly reloader: ConfigReloader;
  /** Reload, readiness and placeholder-key metrics; the data plane serves the rest. */
  private readonly registry = new Registry();
  private admin: FastifyInstance | null = null;
  private metricsPort: FastifyInstance | null = null;
  private draining = false;
  private healthcheckFailed = false;

  constructor(options: ControlPlaneOptions) {
    const { initial, logger } = options;
    this.config = initial.config;
    this.dataPlane = options.dataPlane;
    this.logger = logger;
    this.reloader = new ConfigReloader({
      processEnv: options.processEnv,
      envFile: initial.config.envFile,
      initial,
      apply: (next, vars) => this.apply(next, vars),
      logger,
    });
    registerControlMetrics(this.registry, {
      reloadStatus: () => ({
        ok: this.reloader.lastReloadSuccessful,
        timestamp: this.reloader.lastSuccessTimestampSeconds,
        successes: this.reloader.successes,
        failures: this.reloader.failures,
      }),
      placeholderKeyInUse: () => this.config.placeholderKeyInUse,
      ready: () => this.ready,
      workers: () => this.dataPlane.workers,
    });
  }

  /** Ready for traffic: the whole data plane serving, not draining, not failed by an operator. */
  get ready(): boolean {
    return this.dataPlane.serving && !this.draining && !this.healthcheckFailed;
  }

  /** The DRAIN_TIMEOUT in force. */
  get drainTimeoutMs(): number {
    return this.config.drainTimeoutMs;
  }

  /** Opens the admin (and metrics) port, starts the data plane, then watches the env file. */
  async start(): Promise<void> {
    const { config, logger } = this;
    this.admin = createAdminServer(this.adminHooks(), config.admin);
    await listenAdmin(this.admin, config.admin);
    logger.info({ address: formatAddress(config.admin) }, 'admin listening');
    this.metricsPort = await listenMetrics(() => this.metricsText(), config.metricsListen);
    if (config.metricsListen !== null)
      logger.info({ address: formatAddress(config.metricsListen) }, 'metrics listening');
    await this.dataPlane.start();
    this.reloader.start();
    logStarted(logger, config, this.dataPlane.workers);
  }

  /** Reloads now, whether or not the env file changed. */
  reload(trigger: 'signal' | 'admin'): Promise<ReloadResult> {
    return this.reloader.reload(trigger);
  }

  /**
   * Graceful drain: /ready turns 503 at once, the data plane stops accepting and finishes what
   * is in flight (cut at DRAIN_TIMEOUT), then the admin port closes.
   */
  async stop(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.reloader.stop();
    await this.dataPlane.stop(this.config.drainTimeoutMs);
    await this.metricsPort?.close();
    await this.admin?.close();
  }

  /**
   * The reloader's apply step for a validated configuration: live settings take effect in the
   * data plane, the rest stays as it is until a restart. Answers the names of those settings.
   */
  private apply(next: GatewayConfig, vars: EnvVars): readonly string[] {
    logConfigWarnings(this.logger, unknownSettingWarnings(vars));
    const restartNeeded = settingsNeedingRestart(this.config, next);
    this.config = mergeReloadable(this.config, next);
    this.dataPlane.apply(next, vars);
    this.logger.level = next.logLevel;
    if (next.placeholderKeyInUse) warnPlaceholder(this.logger);
    return restartNeeded;
  }

  private async metricsText(): Promise<string> {
    return `${await this.registry.metrics()}\n${await this.dataPlane.metricsText()}`;
  }

  private adminHooks(): AdminHooks {
    return {
      metrics: () => this.metricsText(),
      ready: () => this.ready,
      configDump: () => redactedConfig(this.config),
      credentials: async () => credentialReport(this.config, await this.dataPlane.credentialMetricsJson()),
      reload: () => this.reload('admin'),
      setHealthcheckFailed: (failed) => {
        this.healthcheckFailed = failed;
        this.logger.warn(
          { ready: this.ready },
          failed ? 'health check failed by operator' : 'health check restored by operator',
        );
      },
    };
  }
}
