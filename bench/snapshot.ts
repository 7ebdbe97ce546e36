import { execFileSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trackTempDir } from '../test/support/processes.js';

export interface GatewaySnapshot {
  /** The full commit hash that was built. */
  readonly commit: string;
  readonly cli: string;
}

/**
 * Builds the gateway of one commit (its `src/` from `git archive`, compiled with this checkout's
 * TypeScript and node_modules) into a temp dir, so a benchmark measures exactly that commit even
 * while other work edits `src/` and rebuilds `dist/` in the same tree.
 */
export async function buildGatewaySnapshot(repoRoot: string, revision: string): Promise<GatewaySnapshot> {
  const commit = execFileSync('git', ['rev-parse', '--verify', `${revision}^{commit}`], {
    cwd: repoRoot,
    encoding: 'utf8',
  }).trim();
  const dir = await mkdtemp(join(tmpdir(), 'edge-gateway-bench-build-'));
  trackTempDir(dir);
  execFileSync(
    'sh',
    [
      '-c',
      'git archive "$1" src package.json tsconfig.json tsconfig.build.json | tar -x -C "$2"',
      'sh',
      commit,
      dir,
    ],
    { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'));
  execFileSync(
    process.execPath,
    [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: dir,
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  return { commit, cli: join(dir, 'dist', 'cli.js') };
}
