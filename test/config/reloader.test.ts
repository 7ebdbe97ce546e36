import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { loadGatewayConfig } from '../../src/config/load.js';
import { ConfigReloader } from '../../src/config/reloader.js';
import type { GatewayConfig } from '../../src/config/types.js';

const dir = mkdtempSync(join(tmpdir(), 'reloader-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A reloader over a fresh env file, driven by reload() only (not started: no watch, no poll). */
function reloaderOver(text: string): { reloader: ConfigReloader; file: string; applied: GatewayConfig[] } {
  const file = join(dir, `env-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, text);
  const initial = loadGatewayConfig({}, file);
  assert.ok(initial.ok, JSON.stringify(initial));
  const applied: GatewayConfig[] = [];
  const reloader = new ConfigReloader({
    processEnv: {},
    envFile: file,
    initial,
    apply: (config) => {
      applied.push(config);
      return [];
    },
    logger: pino({ level: 'silent' }),
    stability: { intervalMs: 10, quietMs: 20, unterminatedQuietMs: 40, maxWaitMs: 500 },
  });
  return { reloader, file, applied };
}

describe('ConfigReloader', () => {
  test('changed says whether the new configuration differs from the one in force (issue 11 item 10)', async () => {
    const { reloader, file } = reloaderOver('ENVOY_API_KEYS=k1\n');
    assert.deepEqual(await reloader.reload('admin'), { ok: true, changed: false, restartNeeded: [] });
    writeFileSync(file, 'ENVOY_API_KEYS=k1,k2\n');
    assert.deepEqual(await reloader.reload('admin'), { ok: true, changed: true, restartNeeded: [] });
    // Another spelling of the same configuration.
    writeFileSync(file, '# rotated\nENVOY_API_KEYS=" k1 , k2 "\n');
    assert.deepEqual(await reloader.reload('admin'), { ok: true, changed: false, restartNeeded: [] });
    assert.equal(reloader.successes, 3);
  });

  test('a reload that would lower the gate is refused like an invalid edit (issue 10 §3)', async () => {
    const { reloader, file, applied } = reloaderOver('ENVOY_API_KEYS=k1\n');
    writeFileSync(file, '');
    const refused = await reloader.reload('admin');
    assert.equal(refused.ok, false);
    assert.match(
      refused.ok ? '' : (refused.errors[0] ?? ''),
      /^ENVOY_API_KEYS: the public placeholder_api_key/,
    );
    assert.equal(reloader.lastReloadSuccessful, false);
    assert.equal(reloader.failures, 1);
    assert.equal(applied.length, 0, 'nothing applied');
    // Once the file is whole again, the guard compares with what is in force, not with the refused file.
    writeFileSync(file, 'ENVOY_API_KEYS=k2\n');
    assert.deepEqual(await reloader.reload('admin'), { ok: true, changed: true, restartNeeded: [] });
    assert.equal(reloader.lastReloadSuccessful, true);
    assert.deepEqual(applied.at(-1)?.apiKeys, ['k2']);
  });

  test('reloads asked for at once run one after the other, each on a stable file', async () => {
    const { reloader, file, applied } = reloaderOver('ENVOY_API_KEYS=k1\n');
    writeFileSync(file, 'ENVOY_API_KEYS=k2\n');
    const results = await Promise.all([reloader.reload('admin'), reloader.reload('signal')]);
    assert.deepEqual(
      results.map((result) => result.ok && result.changed),
      [true, false],
    );
    assert.equal(applied.length, 2);
  });
});
