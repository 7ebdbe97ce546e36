import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, Registry } from 'prom-client';
import type { EnvVars } from '../config/env-source.js';
import type { GatewayConfig } from '../config/types.js';
import type { DataPlane } from '../data-plane/data-plane.js';
import { aggregateCredentialMetrics, type MetricsJson } from '../observability/credential-report.js';
import type { Logger } from '../observability/logger.js';
import { counterFrom } from '../observability/metrics.js';
import { isCredentialMetricsMessage, isWorkerMessage, type PrimaryMessage } from './messages.js';

export interface FleetOptions {
  readonly workers: number;
  /** The env snapshot start-up validated: every worker is sent it once it is ready. */
  readonly vars: EnvVars;
  readonly logger: Logger;
}

/** Longest pause before replacing a worker that keeps dying right after it starts. */
const MAX_RESPAWN_DELAY_MS = 5000;

/**
 * A data plane of `node:cluster` workers sharing the listening sockets: forks them, sends each
 * validated configuration to every worker, sums their metrics, replaces a crashed worker, and
 * drains them all.
 */
export class FleetDataPlane implements DataPlane {
  private readonly ready = new Set<number>();
  private started = false;
  private stopping = false;
  private restarts = 0;
  private quickDeaths = 0;
  private vars: EnvVars;
  private readonly registry = new Registry();
  private readonly aggregator = new AggregatorRegistry();
  private credentialRequests = 0;

  constructor(private readonly options: FleetOptions) {
    this.vars = options.vars;
    counterFrom(
      this.registry,
      'gateway_worker_restarts_total',
      'Workers replaced after they died.',
      () => this.restarts,
    );
  }

  get serving(): boolean {
    return this.started && this.ready.size === this.options.workers;
  }

  get workers(): number {
    return this.ready.size;
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
  }

  apply(_config: GatewayConfig, vars: EnvVars): void {
    this.vars = vars;
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker !== undefined) this.send(worker, { type: 'edge-gateway:apply', vars });
    }
  }

  /** The fleet's own metrics and every worker's, summed. */
  async metricsText(): Promise<string> {
    return `${await this.registry.metrics()}\n${await this.aggregator.clusterMetrics()}`;
  }

  async credentialMetricsJson(): Promise<MetricsJson> {
    return aggregateCredentialMetrics(await this.workersCredentialMetrics());
  }

  /** Every worker finishes its in-flight requests; one still running well after the deadline is killed. */
  async stop(drainTimeoutMs: number): Promise<void> {
    this.stopping = true;
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
    }, drainTimeoutMs + 5000);
    await exited;
    clearTimeout(deadline);
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    const wasReady = this.ready.delete(worker.id);
    if (this.stopping || !this.started) return;
    this.restarts++;
    this.quickDeaths = wasReady ? 0 : this.quickDeaths + 1;
    const delay = Math.min(100 * 2 ** this.quickDeaths, MAX_RESPAWN_DELAY_MS);
    this.options.logger.error(
      { worker: worker.id, code, signal, respawn_in_ms: delay },
      'worker died; replacing it',
    );
    setTimeout(() => {
      if (!this.stopping) cluster.fork();
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
