import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { RunningGateway } from '../../support/gateway.js';
import { freePort } from '../../support/ports.js';
import { startGatewayFor } from '../fixtures.js';
import {
  type LogLine,
  Metrics,
  startOkServer,
  waitForLogLines,
  waitForReloads,
  writeEnvFile,
} from './helpers.js';

/**
 * Issue 11 item 10: what the README's rotation steps and an operator read after a reload, the
 * same with WORKERS=1 and WORKERS=2: the reload log line with its key counts, gateway_workers,
 * POST /reload's `changed`, and the bytes of a 503 in the access log.
 */

const key = (name: string): string => `reload-reporting-${name}-${randomBytes(12).toString('hex')}`;
const RELOADED = 'configuration reloaded';

for (const workers of [1, 2]) {
  describe(`WORKERS=${workers}: reload reporting (issue 11 item 10)`, () => {
    let okServer: Awaited<ReturnType<typeof startOkServer>>;
    let gateway: RunningGateway;
    let closedPort: number;
    let reloads = 0;
    const oldKey = key('old');
    const newKey = key('new');
    const file = (keys: string): string => `ENVOY_API_KEYS=${keys}\nAUTH_FAILURE_LIMIT=0\n`;

    /** Writes `text` and answers the reload line it produced. */
    const reloadLineOf = async (text: string): Promise<LogLine> => {
      const offset = gateway.output().length;
      await writeEnvFile(gateway.envFile, text);
      await waitForReloads(gateway, ++reloads, 2000);
      const [line] = await waitForLogLines(gateway, offset, (candidate) => candidate.msg === RELOADED);
      return line as LogLine;
    };

    before(async () => {
      okServer = await startOkServer();
      closedPort = await freePort();
      gateway = await startGatewayFor(
        { victoriametrics: okServer.url, prometheus: `http://127.0.0.1:${closedPort}` },
        { WORKERS: String(workers) },
        file(oldKey),
      );
    });
    after(async () => {
      await gateway?.stop();
      await okServer?.close();
    });

    test('the reload log line has keys_added and keys_removed (README rotation step 3)', async () => {
      const added = await reloadLineOf(file(`${oldKey}, ${newKey}`));
      assert.deepEqual(
        { ...added, time: undefined, pid: undefined, hostname: undefined },
        {
          level: 30,
          time: undefined,
          pid: undefined,
          hostname: undefined,
          service: 'edge-gateway',
          trigger: 'file',
          changed: true,
          auth_method: 'api-key',
          api_keys: 2,
          basic_users: 0,
          keys_added: 1,
          keys_removed: 0,
          msg: RELOADED,
        },
      );
      const removed = await reloadLineOf(file(newKey));
      assert.equal(removed.keys_added, 0);
      assert.equal(removed.keys_removed, 1);
      assert.equal(removed.api_keys, 1);
    });

    test('gateway_workers is exported, with the number of processes serving', async () => {
      assert.equal((await Metrics.scrape(gateway)).get('gateway_workers'), workers);
    });

    test('POST /reload answers changed:false when the file says what is in force', async () => {
      const response = await fetch(`${gateway.url('admin')}/reload`, { method: 'POST' });
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { ok: true, changed: false, restartNeeded: [] });
      reloads++;
    });

    test('the access log counts the body of a 503 in bytes_out', async () => {
      const offset = gateway.output().length;
      const response = await fetch(`${gateway.url('prometheus')}/-/ready`, {
        headers: { 'x-api-key': newKey },
      });
      const body = Buffer.from(await response.arrayBuffer());
      assert.equal(response.status, 503);
      assert.ok(body.length > 0, 'the 503 has a body');
      const [line] = await waitForLogLines(gateway, offset, (candidate) => candidate.log === 'access');
      assert.equal(line?.status, 503);
      assert.equal(line?.bytes_out, body.length);
    });
  });
}
