import cluster, { type Worker } from 'node:cluster';
import type { FastifyInstance } from 'fastify';
import { AggregatorRegistry, Registry } from 'prom-client';
import { createAdminServer, listenAdmin } from '../admin/admin-server.js';
import { listenMetrics } from '../admin/metrics-server.js';
import type { EnvVars } from '../config/env-source.js';
import { formatAddress, redactedConfig } from '../config/redact.js';
import { ConfigReloader } from '../config/reloader.js';
import { mergeReloadable, settingsNeedingRestart } from '../config/restart-needed.js';
import type { GatewayConfig } from '../config/types.js';
import { logConfigWarnings, unknownSettingWarnings } from '../config/unknown-settings.js';
import { registerControlMetrics } from '../observability/control-metrics.js';
import { aggregateCredentialMetrics, credentialReport } from '../observability/credential-report.js';
import type { Logger } from '../observability/logger.js';
import { counterFrom } from '../observability/metrics.js';
import { isCredentialMetricsMessage, isWorkerMessage, type PrimaryMessage } from './messages.js';

export interface PrimaryOptions {
  readonly config: GatewayConfig;
  readonly vars: EnvVars;
  readonly fingerprint: string | null;
  readonly processEnv: EnvVars;
  readonly workers: number;
  readonly logger: Logger;
}

/** Longest pause before replacing a worker that keeps dying right after it starts. */
const MAX_RESPAWN_DELAY_MS = 5000;

/**
 * The `node:cluster` primary: forks the workers (which share the listening sockets), owns the
 * admin port, the env-file reloader and readiness, sends every validated configuration to every
 * worker, aggregates their metrics, replaces a crashed worker, and drains them all on SIGTERM.
 */
export class ClusterPrimary {
  private readonly ready = new Set<number>();
  private draining = false;
  private healthcheckFailed = false;
  private started = false;
  private restarts = 0;
  private quickDeaths = 0;
  private config: GatewayConfig;
  private vars: EnvVars;
  private readonly registry = new Registry();
  private readonly aggregator = new AggregatorRegistry();
  private credentialRequests = 0;
  private admin: FastifyInstance | null = null;
  private metricsPort: FastifyInstance | null = null;
  private readonly reloader: ConfigReloader;

  constructor(private readonly options: PrimaryOptions) {
    this.config = options.config;
    this.vars = options.vars;
    this.reloader = new ConfigReloader({
      processEnv: options.processEnv,
      envFile: options.config.envFile,
      initial: { config: options.config, vars: options.vars, fingerprint: options.fingerprint },
      apply: (next, vars) => this.apply(next, vars),
      logger: options.logger,
    });
    registerControlMetrics(this.registry, {
      reloadStatus: () => ({
        ok: this.reloader.lastReloadSuccessful,
        timestamp: this.reloader.lastSuccessTimestampSeconds,
        successes: this.reloader.successes,
        failures: this.reloader.failures,
      }),
      placeholderKeyInUse: () => this.config.placeholderKeyInUse,
      ready: () => this.isReady,
      workers: () => this.ready.size,
    });
    counterFrom(
      this.registry,
      'gateway_worker_restarts_total',
      'Workers replaced after they died.',
      () => this.restarts,
    );
  }

  get isReady(): boolean {
    return (
      this.started && this.ready.size === this.options.workers && !this.draining && !this.healthcheckFailed
    );
  }

  async start(): Promise<void> {
    const { logger, workers } = this.options;
    cluster.on('message', (worker, message) => {
      if (!isWorkerMessage(message)) return;
      this.ready.add(worker.id);
      // The worker read the env file itself at start; make sure it runs what the primary validated.
      this.send(worker, { type: 'edge-gateway:apply', vars: this.vars });
    });
    cluster.on('exit', (worker, code, signal) => this.onExit(worker, code, signal));
    // A message to a worker that has just died (a metrics scrape, a reload) fails with EPIPE on
    // the worker object; unhandled, that error would end the primary and every other worker.
    cluster.on('fork', (worker) =>
      worker.on('error', (error: NodeJS.ErrnoException) =>
        logger.debug({ worker: worker.id, code: error.code }, 'message to a worker failed'),
      ),
    );
    const allReady = new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (this.ready.size === workers) {
          cluster.off('message', check);
          cluster.off('exit', failEarly);
          resolve();
        }
      };
      const failEarly = (worker: Worker, code: number | null): void => {
        if (!this.ready.has(worker.id)) reject(new Error(`a worker exited during start-up (code ${code})`));
      };
      cluster.on('message', check);
      cluster.on('exit', failEarly);
    });
    for (let i = 0; i < workers; i++) cluster.fork();
    await allReady;
    this.started = true;

    this.admin = createAdminServer(
      {
        metrics: () => this.clusterMetrics(),
        ready: () => this.isReady,
        configDump: () => redactedConfig(this.config),
        credentials: async () =>
          credentialReport(
            this.config,
            await aggregateCredentialMetrics(await this.workersCredentialMetrics()),
          ),
        reload: () => this.reloader.reload('admin'),
        setHealthcheckFailed: (failed) => {
          this.healthcheckFailed = failed;
          logger.warn(
            { ready: this.isReady },
            failed ? 'health check failed by operator' : 'health check restored by operator',
          );
        },
      },
      this.config.admin,
    );
    await listenAdmin(this.admin, this.config.admin);
    this.metricsPort = await listenMetrics(() => this.clusterMetrics(), this.config.metricsListen);
    this.reloader.start();
    logger.info(
      {
        workers,
        admin: formatAddress(this.config.admin),
        metrics: this.config.metricsListen === null ? 'off' : formatAddress(this.config.metricsListen),
        auth_method: this.config.authMethod,
        api_keys: this.config.apiKeys.length,
        basic_users: this.config.basicCredentials.length,
      },
      'edge-gateway started; edits to the env file apply live',
    );
    if (this.config.placeholderKeyInUse) {
      logger.warn(
        'THE PLACEHOLDER API KEY IS ACCEPTED: anyone who has read the stock documentation can use this gateway. ' +
          'Set ENVOY_API_KEYS in the env file (edge-gateway gen-key makes a key).',
      );
    }
  }

  reload(): void {
    void this.reloader.reload('signal');
  }

  /** Drains every worker (each finishes its in-flight requests), then closes the admin port. */
  async stop(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    this.reloader.stop();
    const workers = Object.values(cluster.workers ?? {}).filter(
      (worker): worker is Worker => worker !== undefined,
    );
    const exited = Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve) =>
            worker.isDead() ? resolve() : worker.once('exit', () => resolve()),
          ),
      ),
    );
    for (const worker of workers) this.send(worker, { type: 'edge-gateway:drain' });
    const deadline = setTimeout(() => {
      for (const worker of workers) if (!worker.isDead()) worker.process.kill('SIGKILL');
    }, this.config.drainTimeoutMs + 5000);
    await exited;
    clearTimeout(deadline);
    await this.metricsPort?.close();
    await this.admin?.close();
  }

  /** The primary's own metrics and every worker's, summed. */
  private async clusterMetrics(): Promise<string> {
    return `${await this.registry.metrics()}\n${await this.aggregator.clusterMetrics()}`;
  }

  private apply(next: GatewayConfig, vars: EnvVars): readonly string[] {
    logConfigWarnings(this.options.logger, unknownSettingWarnings(vars));
    const restartNeeded = settingsNeedingRestart(this.config, next);
    this.config = mergeReloadable(this.config, next);
    this.vars = vars;
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker !== undefined) this.send(worker, { type: 'edge-gateway:apply', vars });
    }
    return restartNeeded;
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    const wasReady = this.ready.delete(worker.id);
    if (this.draining || !this.started) return;
    this.restarts++;
    this.quickDeaths = wasReady ? 0 : this.quickDeaths + 1;
    const delay = Math.min(100 * 2 ** this.quickDeaths, MAX_RESPAWN_DELAY_MS);
    this.options.logger.error(
      { worker: worker.id, code, signal, respawn_in_ms: delay },
      'worker died; replacing it',
    );
    setTimeout(() => {
      if (!this.draining) cluster.fork();
    }, delay).unref();
  }

  /**
   * Every live worker's per-credential metrics, asked over IPC; a worker that does not answer
   * within 2 s (it is dying) is left out rather than holding the admin request.
   */
  private workersCredentialMetrics(): Promise<unknown[][]> {
    const requestId = ++this.credentialRequests;
    const workers = Object.values(cluster.workers ?? {}).filter(
      (worker): worker is Worker => worker?.isConnected() === true,
    );
    return new Promise((resolve) => {
      const answers: unknown[][] = [];
      const finish = (): void => {
        clearTimeout(timer);
        cluster.off('message', collect);
        resolve(answers);
      };
      const collect = (_worker: Worker, message: unknown): void => {
        if (!isCredentialMetricsMessage(message) || message.requestId !== requestId) return;
        answers.push(message.metrics);
        if (answers.length === workers.length) finish();
      };
      const timer = setTimeout(finish, 2000);
      cluster.on('message', collect);
      if (workers.length === 0) finish();
      for (const worker of workers) this.send(worker, { type: 'edge-gateway:credential-metrics', requestId });
    });
  }

  private send(worker: Worker, message: PrimaryMessage): void {
    if (worker.isConnected()) worker.send(message);
  }
}
