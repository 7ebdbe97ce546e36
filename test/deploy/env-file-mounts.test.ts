import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { loadGatewayConfig } from '../../src/config/load.js';
import { ConfigReloader } from '../../src/config/reloader.js';
import { until } from '../support/wait.js';

/**
 * How the env file changes under each deployment, and that the gateway's reloader sees it:
 * - docker compose: the operator's editor (or a script) replaces .env by rename in the directory
 *   that is bind-mounted at /etc/edge-gateway;
 * - Kubernetes: the kubelet updates a Secret volume by writing a new timestamped directory and
 *   atomically renaming the `..data` symlink; `.env` itself is a symlink to `..data/.env` and is
 *   never written to, so no event names it.
 */
describe('the env file mounted as a directory is re-read when the deployment replaces it', () => {
  let dir: string;
  let reloader: ConfigReloader | undefined;

  afterEach(() => {
    reloader?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function watch(envFile: string): { keys: () => readonly string[] } {
    let keys: readonly string[] = [];
    const initial = loadGatewayConfig({}, envFile);
    assert.ok(initial.ok, JSON.stringify(initial));
    reloader = new ConfigReloader({
      processEnv: {},
      envFile,
      initial,
      apply: (config) => {
        keys = config.apiKeys;
        return [];
      },
      logger: pino({ level: 'silent' }),
    });
    reloader.start();
    return { keys: () => keys };
  }

  /** Polls every 50 ms for up to 5 s. */
  const eventually = async (condition: () => boolean, what: string): Promise<void> => {
    await until(what, condition, 5000, 50, false);
  };

  it('docker compose: .env replaced by rename in the mounted directory', async () => {
    dir = mkdtempSync(join(tmpdir(), 'edge-gateway-compose-mount-'));
    writeFileSync(join(dir, '.env'), 'ENVOY_API_KEYS=old-key\n');
    const gateway = watch(join(dir, '.env'));
    writeFileSync(join(dir, '.env.tmp'), 'ENVOY_API_KEYS=new-key\n');
    renameSync(join(dir, '.env.tmp'), join(dir, '.env'));
    await eventually(() => gateway.keys().includes('new-key'), 'the new key is in force');
    assert.deepEqual(gateway.keys(), ['new-key']);
  });

  it('Kubernetes: a Secret volume update (the kubelet swaps the ..data symlink)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'edge-gateway-secret-mount-'));
    const writeVersion = (version: string, content: string): void => {
      mkdirSync(join(dir, version));
      writeFileSync(join(dir, version, '.env'), content);
    };
    writeVersion('..2025_01_01_00_00_00.1', 'ENVOY_API_KEYS=old-key\n');
    symlinkSync('..2025_01_01_00_00_00.1', join(dir, '..data'));
    symlinkSync('..data/.env', join(dir, '.env'));
    const gateway = watch(join(dir, '.env'));

    writeVersion('..2025_01_01_00_01_00.2', 'ENVOY_API_KEYS=new-key\n');
    symlinkSync('..2025_01_01_00_01_00.2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    rmSync(join(dir, '..2025_01_01_00_00_00.1'), { recursive: true });

    await eventually(() => gateway.keys().includes('new-key'), 'the new key is in force');
    assert.deepEqual(gateway.keys(), ['new-key']);
  });
});
