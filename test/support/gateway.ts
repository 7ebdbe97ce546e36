import type { ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseDotenv } from 'dotenv';
import { freePort } from './ports.js';
import {
  answers200,
  type ExitStatus,
  removeTempDir,
  spawnTracked,
  trackTempDir,
  waitUntilReady,
} from './processes.js';
import { registerCredentialVariables, registerEnvFileSecrets } from './secrets.js';

/** Runs the built gateway (`dist/cli.js serve`) as a real process on loopback ports. */

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Everything every gateway printed during the suite, so a test can grep it for leaked secrets. */
export const GATEWAY_OUTPUT_LOG = join(REPO_ROOT, 'test', 'artifacts', 'gateway-output.log');

export type GatewayListener = 'grpc' | 'http' | 'prometheus' | 'victoriametrics' | 'admin';

export const LISTEN_VARIABLES: Readonly<Record<GatewayListener, string>> = {
  grpc: 'OTLP_GRPC_LISTEN',
  http: 'OTLP_HTTP_LISTEN',
  prometheus: 'PROMETHEUS_LISTEN',
  victoriametrics: 'VICTORIAMETRICS_LISTEN',
  admin: 'ADMIN_LISTEN',
};

export interface StartGatewayOptions {
  /** The gateway's whole environment besides PATH and HOME (the parent's is not inherited). */
  readonly env: Readonly<Record<string, string>>;
  /** Content of the env file (`GATEWAY_ENV_FILE`); without it the file does not exist. */
  readonly envFileText?: string;
  /** Default 10 000. */
  readonly readyTimeoutMs?: number;
  /** Set to false for a gateway expected to exit (bad configuration): then only `exited` tells. */
  readonly waitForReady?: boolean;
  /** The Node binary that runs the gateway; default: the one running the tests. */
  readonly nodeBinary?: string;
  /** A command (and its arguments) that runs the gateway's command line, e.g. `prlimit --nofile=1024:1024`. */
  readonly wrapper?: readonly string[];
}

export interface RunningGateway {
  readonly ports: Readonly<Record<GatewayListener, number>>;
  /** `http://127.0.0.1:PORT` of a listener (also the gRPC exporter URL for `grpc`). */
  url(listener: GatewayListener): string;
  /** Path of the env file; write it to test hot reload. */
  readonly envFile: string;
  /** Everything printed so far, stdout and stderr. */
  output(): string;
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  readonly exited: Promise<ExitStatus>;
  /** Sends `signal`, waits for the exit (SIGKILL after 10 s), removes the temp env dir. */
  stop(signal?: NodeJS.Signals): Promise<ExitStatus>;
  readonly child: ChildProcess;
}

/** The port of `host:port` / `[v6]:port`, or undefined when the value has none. */
function portOf(address: string): number | undefined {
  const match = /:(\d+)$/.exec(address.trim());
  return match === null ? undefined : Number(match[1]);
}

function appendToOutputLog(chunk: string): void {
  appendFileSync(GATEWAY_OUTPUT_LOG, chunk);
}

export async function startGateway(options: StartGatewayOptions): Promise<RunningGateway> {
  const cli = join(REPO_ROOT, 'dist', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} does not exist: build the gateway first (npm run build)`);

  // Recorded for test/zz-no-secrets-in-output.test.ts, which greps all gateway output for them.
  registerCredentialVariables(options.env);
  if (options.envFileText !== undefined) registerEnvFileSecrets(options.envFileText);

  const envDir = await mkdtemp(join(tmpdir(), 'edge-gateway-env-'));
  trackTempDir(envDir);
  const envFile = options.env.GATEWAY_ENV_FILE ?? join(envDir, 'gateway.env');
  if (options.envFileText !== undefined) await writeFile(envFile, options.envFileText);

  // The env file wins over the environment in the gateway, so it does here too.
  const fromFile = options.envFileText === undefined ? {} : parseDotenv(options.envFileText);
  const listenEnv: Record<string, string> = {};
  const ports: Partial<Record<GatewayListener, number>> = {};
  const taken = new Set<number>();
  for (const [listener, variable] of Object.entries(LISTEN_VARIABLES) as [GatewayListener, string][]) {
    const given = fromFile[variable] ?? options.env[variable];
    let port = given === undefined ? undefined : portOf(given);
    if (given === undefined) {
      do port = await freePort();
      while (taken.has(port));
      listenEnv[variable] = `127.0.0.1:${port}`;
    }
    if (port !== undefined) {
      ports[listener] = port;
      taken.add(port);
    }
  }

  mkdirSync(join(REPO_ROOT, 'test', 'artifacts'), { recursive: true });
  // One process unless a test asks for a cluster: the child's pid is then the process that serves.
  const env: Record<string, string> = {
    GATEWAY_ENV_FILE: envFile,
    WORKERS: '1',
    ...listenEnv,
    ...options.env,
  };
  if (process.env.PATH !== undefined) env.PATH = process.env.PATH;
  if (process.env.HOME !== undefined) env.HOME = process.env.HOME;
  const node = options.nodeBinary ?? process.execPath;
  const [command = node, ...args] = [...(options.wrapper ?? []), node, cli, 'serve'];
  const tracked = spawnTracked(command, args, {
    cwd: REPO_ROOT,
    env,
    onOutput: appendToOutputLog,
  });

  let stopping: Promise<ExitStatus> | undefined;
  const stop = (signal: NodeJS.Signals = 'SIGTERM'): Promise<ExitStatus> => {
    stopping ??= tracked.stop(signal, 10_000).then(async (status) => {
      await removeTempDir(envDir);
      return status;
    });
    return stopping;
  };

  const resolvedPorts = ports as Record<GatewayListener, number>;
  const gateway: RunningGateway = {
    ports: resolvedPorts,
    url: (listener) => {
      const port = resolvedPorts[listener];
      if (port === undefined) throw new Error(`the port of the ${listener} listener is unknown`);
      return `http://127.0.0.1:${port}`;
    },
    envFile,
    output: () => tracked.output.text(),
    waitForOutput: (pattern, timeoutMs = 5000) => tracked.output.waitFor(pattern, timeoutMs, tracked.exited),
    exited: tracked.exited,
    stop,
    child: tracked.child,
  };

  if (options.waitForReady === false) return gateway;
  try {
    await waitUntilReady(
      'the gateway',
      () => answers200(`${gateway.url('admin')}/ready`),
      tracked,
      options.readyTimeoutMs ?? 10_000,
    );
  } catch (error) {
    await stop('SIGKILL');
    throw error;
  }
  return gateway;
}
