import { constants } from 'node:fs';
import { access, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcrypt';
import { stringify } from 'yaml';
import { freePort } from './ports.js';
import {
  answers200,
  removeTempDir,
  spawnTracked,
  type TrackedProcess,
  trackTempDir,
  waitUntilReady,
} from './processes.js';

/** A real backend process on 127.0.0.1, with its own temp data dir. */
export interface RunningService {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** What the process printed so far (stdout and stderr). */
  output(): string;
  /** Kills the process (SIGTERM, then SIGKILL after 5 s) and removes its data dir. Idempotent. */
  stop(): Promise<void>;
}

export const VICTORIA_METRICS_BINARY = '/usr/bin/victoria-metrics';
export const PROMETHEUS_BINARY = '/usr/bin/prometheus';

const START_ATTEMPTS = 3;

/** Fails (never skips) with the Debian package to install when `path` is not an executable. */
export async function requireBinary(path: string, debianPackage: string): Promise<void> {
  try {
    await access(path, constants.X_OK);
  } catch {
    throw new Error(
      `${path} is missing or not executable: the real-service tests need the Debian package "${debianPackage}" (apt-get install ${debianPackage})`,
    );
  }
}

interface ServiceLaunch {
  readonly name: string;
  readonly binary: string;
  readonly args: (port: number) => string[];
  /** URL path (and headers) that answers 200 once the service accepts requests. */
  readonly readyPath: string;
  readonly readyHeaders?: Record<string, string>;
  readonly dataDir: string;
  readonly startTimeoutMs: number;
}

/**
 * Starts the service on a free port, retrying with another port when something else grabbed the
 * port between `freePort()` and the service binding it.
 */
async function launch(spec: ServiceLaunch): Promise<RunningService> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await freePort();
    const tracked = spawnTracked(spec.binary, spec.args(port), { cwd: spec.dataDir });
    const url = `http://127.0.0.1:${port}`;
    try {
      await waitUntilReady(
        `${spec.name} (${spec.binary})`,
        () => answers200(`${url}${spec.readyPath}`, spec.readyHeaders),
        tracked,
        spec.startTimeoutMs,
      );
      return runningService(tracked, url, port, spec.dataDir);
    } catch (error) {
      await tracked.stop('SIGKILL');
      lastError = error;
      if (!/address already in use/i.test(tracked.output.text())) break;
    }
  }
  await removeTempDir(spec.dataDir);
  throw lastError;
}

function runningService(tracked: TrackedProcess, url: string, port: number, dataDir: string): RunningService {
  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    dataDir,
    output: () => tracked.output.text(),
    stop: () => {
      stopping ??= tracked.stop().then(() => removeTempDir(dataDir));
      return stopping;
    },
  };
}

async function makeDataDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `edge-gateway-${prefix}-`));
  trackTempDir(dir);
  return dir;
}

export interface VictoriaMetricsOptions {
  /** Extra command-line flags, e.g. `['-httpAuth.username=u', '-httpAuth.password=p']`. */
  readonly extraArgs?: readonly string[];
  readonly startTimeoutMs?: number;
}

export interface VictoriaMetricsService extends RunningService {
  /**
   * Makes everything ingested so far searchable now (`/internal/force_flush`). Version 1.79 only
   * flushes fresh samples to searchable parts about every 10 s and has no flag to shorten that.
   */
  forceFlush(): Promise<void>;
}

/**
 * Real VictoriaMetrics (Debian package 1.79). `-search.latencyOffset=0s` removes the 30 s delay
 * before recent points show up in queries and `-search.disableCache` keeps repeated queries
 * fresh; call `forceFlush()` after ingesting to query the samples at once.
 */
export async function startVictoriaMetrics(
  options: VictoriaMetricsOptions = {},
): Promise<VictoriaMetricsService> {
  await requireBinary(VICTORIA_METRICS_BINARY, 'victoria-metrics');
  const dataDir = await makeDataDir('vm');
  const service = await launch({
    name: 'VictoriaMetrics',
    binary: VICTORIA_METRICS_BINARY,
    args: (port) => [
      `-httpListenAddr=127.0.0.1:${port}`,
      `-storageDataPath=${join(dataDir, 'storage')}`,
      '-retentionPeriod=12',
      '-search.latencyOffset=0s',
      '-search.disableCache',
      ...(options.extraArgs ?? []),
    ],
    readyPath: '/health',
    dataDir,
    startTimeoutMs: options.startTimeoutMs ?? 15_000,
  });
  const forceFlush = async (): Promise<void> => {
    const response = await fetch(`${service.url}/internal/force_flush`, {
      signal: AbortSignal.timeout(5000),
    });
    const body = await response.text();
    if (response.status !== 200)
      throw new Error(`VictoriaMetrics force_flush answered ${response.status}: ${body}`);
  };
  return { ...service, forceFlush };
}

export interface BasicAuthCredentials {
  readonly username: string;
  readonly password: string;
}

export interface RemoteWriteTarget {
  /** e.g. `http://127.0.0.1:PORT/api/v1/write` (the gateway's VictoriaMetrics listener). */
  readonly url: string;
  /**
   * remote_write `headers:`. Debian's Prometheus 2.42 accepts them in the config but does not send
   * them (seen with a header-dumping server); use `bearerToken` or `basicAuth` to authenticate.
   */
  readonly headers?: Readonly<Record<string, string>>;
  readonly basicAuth?: BasicAuthCredentials;
  /** `authorization: {type: Bearer, credentials}`: sent as `Authorization: Bearer <token>`. */
  readonly bearerToken?: string;
}

export interface PrometheusOptions {
  /** `host:port` targets scraped every second. */
  readonly scrapeTargets?: readonly string[];
  /** Job label of the scraped targets; default `test`. */
  readonly jobName?: string;
  readonly remoteWrite?: RemoteWriteTarget;
  /**
   * Prometheus' own basic auth (`--web.config.file`), as the stock stack uses it on 9090. The
   * password is bcrypt-hashed into the web config; readiness is probed with these credentials.
   */
  readonly webConfig?: { readonly basicAuth: BasicAuthCredentials };
  readonly extraArgs?: readonly string[];
  readonly startTimeoutMs?: number;
}

/** The `prometheus.yml` written for `options` (exported so tests can see what was configured). */
export function prometheusConfig(options: PrometheusOptions): Record<string, unknown> {
  const config: Record<string, unknown> = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
  };
  if (options.scrapeTargets !== undefined && options.scrapeTargets.length > 0) {
    config.scrape_configs = [
      { job_name: options.jobName ?? 'test', static_configs: [{ targets: [...options.scrapeTargets] }] },
    ];
  }
  const remote = options.remoteWrite;
  if (remote !== undefined) {
    config.remote_write = [
      {
        url: remote.url,
        ...(remote.headers === undefined ? {} : { headers: { ...remote.headers } }),
        ...(remote.bearerToken === undefined
          ? {}
          : { authorization: { type: 'Bearer', credentials: remote.bearerToken } }),
        ...(remote.basicAuth === undefined
          ? {}
          : { basic_auth: { username: remote.basicAuth.username, password: remote.basicAuth.password } }),
        // Flush within a second and retry quickly, so tests see samples (or failures) fast.
        queue_config: { batch_send_deadline: '1s', min_backoff: '100ms', max_backoff: '1s' },
      },
    ];
  }
  return config;
}

/** Real Prometheus (Debian package 2.42). */
export async function startPrometheus(options: PrometheusOptions = {}): Promise<RunningService> {
  await requireBinary(PROMETHEUS_BINARY, 'prometheus');
  const dataDir = await makeDataDir('prometheus');
  const configFile = join(dataDir, 'prometheus.yml');
  await writeFile(configFile, stringify(prometheusConfig(options)));
  const args = [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dataDir, 'tsdb')}`];
  let readyHeaders: Record<string, string> | undefined;
  const auth = options.webConfig?.basicAuth;
  if (auth !== undefined) {
    const webConfigFile = join(dataDir, 'web.yml');
    const hash = await bcrypt.hash(auth.password, 4);
    await writeFile(webConfigFile, stringify({ basic_auth_users: { [auth.username]: hash } }));
    args.push(`--web.config.file=${webConfigFile}`);
    readyHeaders = {
      authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`,
    };
  }
  return launch({
    name: 'Prometheus',
    binary: PROMETHEUS_BINARY,
    args: (port) => [...args, `--web.listen-address=127.0.0.1:${port}`, ...(options.extraArgs ?? [])],
    readyPath: '/-/ready',
    ...(readyHeaders === undefined ? {} : { readyHeaders }),
    dataDir,
    startTimeoutMs: options.startTimeoutMs ?? 15_000,
  });
}
