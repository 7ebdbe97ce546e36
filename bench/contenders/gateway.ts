import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawnTree } from '../children.js';
import type { AuthScheme, ContenderSpec, Route, RunningContender, StoredPassword } from '../types.js';
import { LOOPBACK, waitReady, withFreePorts } from './common.js';

export const REPO_ROOT = new URL('../..', import.meta.url).pathname;
export const GATEWAY_CLI = join(REPO_ROOT, 'dist', 'cli.js');

const LISTENER_PREFIX = {
  'otlp-grpc': 'OTLP_GRPC',
  'otlp-http': 'OTLP_HTTP',
  victoriametrics: 'VICTORIAMETRICS',
} as const;

export interface GatewayContenderOptions {
  /** `WORKERS` for the multi-process gateway; unset runs the default single process. */
  readonly workers?: number;
  /** Extra node flags for the gateway process, e.g. `--cpu-prof`. */
  readonly nodeFlags?: readonly string[];
  /** The gateway's `cli.js` (default: this checkout's `dist/cli.js`). */
  readonly cli?: string;
  /** `LIMIT_STORE` (workloads 8 and 9); unset: the default, memory. */
  readonly limitStore?: string;
}

export function basicAuthorization(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** The headers a client sends to the gateway to authenticate as `auth` says. */
export function gatewayAuthHeaders(auth: AuthScheme): Record<string, string> {
  return auth.kind === 'api-key'
    ? { 'x-api-key': auth.key }
    : { authorization: basicAuthorization(auth.user, auth.password) };
}

/** The environment that configures the gateway for one route; every other listener is off. */
export function gatewayEnv(
  route: Route,
  auth: AuthScheme,
  listenPort: number,
  adminPort: number,
  options: GatewayContenderOptions,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    // Never read a developer's ./.env.
    GATEWAY_ENV_FILE: join(REPO_ROOT, 'bench', 'no-such-env-file'),
    ADMIN_LISTEN: `${LOOPBACK}:${adminPort}`,
    // nginx and vmauth are run without per-request logs too.
    ACCESS_LOG: 'off',
    LOG_LEVEL: 'warn',
    LOG_FORMAT: 'json',
  };
  for (const [listener, prefix] of Object.entries(LISTENER_PREFIX)) {
    env[`${prefix}_UPSTREAM`] = 'off';
    if (listener === route.listener) {
      env[`${prefix}_LISTEN`] = `${LOOPBACK}:${listenPort}`;
      env[`${prefix}_UPSTREAM`] = `http://${route.upstream.host}:${route.upstream.port}`;
    }
  }
  env.PROMETHEUS_UPSTREAM = 'off';
  if (auth.kind === 'api-key') {
    env.ENVOY_AUTH_METHOD = 'api-key';
    // A named key has scope read: enough for the tiny workload's /api/v1/status/buildinfo.
    const named = (name: string, key: string, options = 'scopes=read'): void => {
      env[`GATEWAY_KEY_${name.toUpperCase().replaceAll('-', '_')}`] = `${key}; ${options}`;
    };
    if (auth.named === undefined) env.ENVOY_API_KEYS = auth.key;
    else named(auth.named, auth.key, auth.namedOptions);
    for (const other of auth.alsoNamed ?? []) named(other.name, other.key);
  } else {
    env.ENVOY_AUTH_METHOD = 'basic-auth';
    const entry = (user: string, stored: StoredPassword): string =>
      `${user}:${stored.kind === 'bcrypt' ? stored.hash : auth.password}`;
    env.ENVOY_BASIC_AUTH_CREDENTIALS = [
      entry(auth.user, auth.stored),
      ...(auth.alsoConfigured ?? []).map((other) => entry(other.user, other.stored)),
    ].join(',');
  }
  if (options.workers !== undefined) env.WORKERS = String(options.workers);
  if (options.limitStore !== undefined) env.LIMIT_STORE = options.limitStore;
  return env;
}

/** `node dist/cli.js serve`: run `npm run build` first. */
export function gatewayContender(
  id: string,
  label: string,
  options: GatewayContenderOptions = {},
): ContenderSpec {
  return {
    id,
    label,
    kind: 'edge-gateway',
    protocols: ['grpc', 'http'],
    start: (route, auth) => startGateway(route, auth, options),
  };
}

export interface RunningGateway extends RunningContender {
  readonly admin: { readonly host: string; readonly port: number };
}

export async function startGateway(
  route: Route,
  auth: AuthScheme,
  options: GatewayContenderOptions = {},
): Promise<RunningGateway> {
  const cli = options.cli ?? GATEWAY_CLI;
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm run build\` first`);
  return withFreePorts(2, async ([listenPort, adminPort]) => {
    const env = gatewayEnv(route, auth, listenPort!, adminPort!, options);
    const tracked = spawnTree(process.execPath, [...(options.nodeFlags ?? []), cli, 'serve'], {
      env,
      cwd: REPO_ROOT,
    });
    const adminUrl = `http://${LOOPBACK}:${adminPort}/ready`;
    try {
      await waitReady('edge-gateway', tracked, async () => {
        const response = await fetch(adminUrl, { signal: AbortSignal.timeout(1000) });
        await response.arrayBuffer();
        return response.status === 200;
      });
    } catch (error) {
      await tracked.stop('SIGKILL');
      throw error;
    }
    const pid = tracked.child.pid ?? null;
    const authHeaders = gatewayAuthHeaders(auth);
    return {
      target: { host: LOOPBACK, port: listenPort! },
      admin: { host: LOOPBACK, port: adminPort! },
      authHeaders,
      pid,
      output: () => tracked.output.text(),
      // SIGTERM and time to drain, so that `--cpu-prof` can write its profile on exit.
      stop: async () => {
        await tracked.stop('SIGTERM', 10_000);
      },
    };
  });
}
