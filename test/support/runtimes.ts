import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** A Node binary that runs the gateway in a test, with its version. */
export interface GatewayRuntime {
  readonly binary: string;
  readonly version: string;
}

/** The oldest Node major whose behaviour we still prove: issue 10's crash was Node 20's. */
const OLDEST_PROVEN_MAJOR = 20;

function versionOf(binary: string): string {
  return execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim().replace(/^v/, '');
}

/**
 * The runtimes a hostile test must hold on: the one running the suite (the image's, in CI) and
 * Node 20, from NODE20_BIN or /usr/bin/node. A missing Node 20 fails the test, never skips it:
 * `.ci/run` provides it.
 */
export function gatewayRuntimes(): readonly GatewayRuntime[] {
  const runtimes: GatewayRuntime[] = [{ binary: process.execPath, version: process.versions.node }];
  const oldest = process.env.NODE20_BIN ?? '/usr/bin/node';
  if (!existsSync(oldest))
    throw new Error(
      `Node ${OLDEST_PROVEN_MAJOR} is needed at ${oldest} (set NODE20_BIN): .ci/run installs it`,
    );
  const version = versionOf(oldest);
  if (Number(version.split('.')[0]) !== OLDEST_PROVEN_MAJOR)
    throw new Error(`${oldest} is Node ${version}, not Node ${OLDEST_PROVEN_MAJOR} (set NODE20_BIN)`);
  if (version !== process.versions.node) runtimes.push({ binary: oldest, version });
  return runtimes;
}
