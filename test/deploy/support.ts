import assert from 'node:assert/strict';
import { execFile, type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export type Component = 'otel-collector' | 'prometheus' | 'victoriametrics';
export type Profile = 'full' | 'no-prometheus' | 'no-collector' | 'no-vm' | 'vm-only' | 'prom-only';

/**
 * The stock meaning of each profile: which components it runs. The gateway runs in all of them.
 * This table is what the compose checks assert and what docs/deployment.md must show.
 */
export const PROFILE_COMPONENTS: Readonly<Record<Profile, readonly Component[]>> = {
  full: ['otel-collector', 'prometheus', 'victoriametrics'],
  'no-prometheus': ['otel-collector', 'victoriametrics'],
  'no-collector': ['prometheus', 'victoriametrics'],
  'no-vm': ['otel-collector', 'prometheus'],
  'vm-only': ['victoriametrics'],
  'prom-only': ['prometheus'],
};

export const PROFILES = Object.keys(PROFILE_COMPONENTS) as Profile[];

/** Which gateway listeners forward to which component, by the prefix of their variables. */
export const LISTENER_COMPONENT: Readonly<Record<string, Component>> = {
  OTLP_GRPC: 'otel-collector',
  OTLP_HTTP: 'otel-collector',
  PROMETHEUS: 'prometheus',
  VICTORIAMETRICS: 'victoriametrics',
};

/** The listeners a profile switches off: those whose component it does not run. */
export function listenersOffIn(profile: Profile): string[] {
  return Object.entries(LISTENER_COMPONENT)
    .filter(([, component]) => !PROFILE_COMPONENTS[profile].includes(component))
    .map(([prefix]) => prefix);
}

const DEBIAN_PACKAGE: Readonly<Record<string, string>> = {
  'docker-compose': 'docker-compose',
  promtool: 'prometheus',
  getent: 'libc-bin',
  sh: 'dash',
};

function failMissingTool(tool: string): never {
  const pkg = DEBIAN_PACKAGE[tool] ?? tool;
  assert.fail(`${tool} is not installed: install the Debian package ${pkg} (apt-get install ${pkg})`);
}

interface ToolOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Runs a tool that CI installs from Debian. A missing tool fails the test (naming the package to
 * install), it never skips it: a check that silently did not run is worse than a red one.
 */
export function runTool(
  tool: string,
  args: readonly string[],
  options: ToolOptions = {},
): SpawnSyncReturns<string> {
  const result = spawnSync(tool, args, { encoding: 'utf8', timeout: 60_000, ...options });
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT') failMissingTool(tool);
  if (result.error) throw result.error;
  return result;
}

export interface ToolResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** runTool without blocking, so that slow tools (docker-compose v1 takes a second or two) run side by side. */
export function runToolAsync(
  tool: string,
  args: readonly string[],
  options: ToolOptions = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(tool, args, { encoding: 'utf8', timeout: 60_000, ...options }, (error, stdout, stderr) => {
      const code = (error as NodeJS.ErrnoException | null)?.code;
      if (code === 'ENOENT') {
        try {
          failMissingTool(tool);
        } catch (failure) {
          reject(failure);
        }
        return;
      }
      if (error && typeof code !== 'number') {
        reject(error);
        return;
      }
      resolve({ status: typeof code === 'number' ? code : 0, stdout, stderr });
    });
  });
}

export function readRepoFile(relativePath: string): string {
  return readFileSync(join(REPO_ROOT, relativePath), 'utf8');
}

export function readRepoYaml(relativePath: string): unknown {
  return parse(readRepoFile(relativePath));
}

/** Narrows an unknown YAML value to a mapping, failing with the path that was expected to be one. */
export function mapping(value: unknown, where: string): Record<string, unknown> {
  assert.ok(
    value !== null && typeof value === 'object' && !Array.isArray(value),
    `${where} is not a mapping`,
  );
  return value as Record<string, unknown>;
}

export function list(value: unknown, where: string): unknown[] {
  assert.ok(Array.isArray(value), `${where} is not a list`);
  return value;
}

/** What the image's HEALTHCHECK and the Kubernetes probes ask: the admin port's readiness. */
export const READY_URL = 'http://127.0.0.1:9901/ready';

/**
 * Runs a probe command (`node -e <script>`, from the image's HEALTHCHECK or a Kubernetes exec
 * probe) with its admin URL replaced by a stand-in server's, and answers its exit code.
 */
export function runReadyProbe(argv: readonly string[], url: string): Promise<number> {
  const [program = '', flag = '', script = ''] = argv;
  assert.ok(script.includes(READY_URL), `the probe asks ${READY_URL}`);
  return new Promise((resolve) => {
    execFile(program, [flag, script.replace(READY_URL, url)], { timeout: 10_000 }, (error) => {
      resolve(error === null ? 0 : typeof error.code === 'number' ? error.code : -1);
    });
  });
}

/** A stand-in for the admin port: answers /ready with the status the test sets. */
export class StandInAdmin {
  status = 200;
  private readonly server: Server = createServer((_request, response) => {
    response.statusCode = this.status;
    response.end(this.status === 200 ? 'LIVE' : 'NOT READY');
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/ready`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A URL on which nothing listens (a port just released). */
export async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}/ready`;
}
