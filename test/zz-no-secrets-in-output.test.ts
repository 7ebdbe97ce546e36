import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import bcrypt from 'bcrypt';
import { request } from 'undici';
import { basic, startGatewayFor } from './e2e/fixtures.js';
import {
  grpcClient,
  grpcExport,
  startOkServer,
  until,
  waitForReloads,
  writeEnvFile,
} from './e2e/operations/helpers.js';
import { GATEWAY_OUTPUT_LOG, type RunningGateway, startGateway } from './support/gateway.js';
import { type OtlpReceiver, startOtlpReceiver } from './support/otlp-receiver.js';
import {
  readUsedSecrets,
  registerSecret,
  revealingForms,
  SECRETS_USED_FILE,
  type UsedSecret,
} from './support/secrets.js';

/**
 * Runs last (`npm test` sorts the files; `zz` sorts after every directory): greps everything
 * every gateway printed during the suite (`test/artifacts/gateway-output.log`) for every key,
 * password, bcrypt hash and base64 credential any test handed to a gateway or presented to one
 * (`test/artifacts/secrets-used.jsonl`). It first makes a gateway print all it can itself —
 * trace level, JSON and pretty, good and bad credentials of every kind, reloads good and bad, a
 * refused start — so it is never vacuous, also when run on its own.
 */

/** Shorter values (a test's one-letter key) match by chance anywhere in a log and prove nothing. */
const MIN_CHECKABLE_LENGTH = 6;

const RUN = randomBytes(4).toString('hex');
const secret = (name: string): string => `zz-${name}-${RUN}-${randomBytes(12).toString('base64url')}`;
const KEY = secret('key');
const NEXT_KEY = secret('next-key');
const PLAIN_USER_PASSWORD = `${secret('zed-pw')}:with colon`;
const BCRYPT_USER_PASSWORD = secret('yan-pw');
const NAMED_KEY = secret('named-key');
const DIGESTED_KEY = secret('digested-key');
const NAMED_PASSWORD = secret('nia-pw');
const sha256Hex = (text: string): string => createHash('sha256').update(text).digest('hex');
/** Named credentials (issue 12): a plain key, a key held as its digest, a user; scopes differ. */
const NAMED_ENTRIES =
  `GATEWAY_KEY_NAMED_APP=${NAMED_KEY}; scopes=ingest\n` +
  `GATEWAY_KEY_DIGESTED=sha256:${sha256Hex(DIGESTED_KEY)}; scopes=read; expires=2099-12-31\n` +
  `GATEWAY_USER_NIA=nia:${NAMED_PASSWORD}; scopes=read\n`;
const keyIdentity = (key: string): string =>
  `key-${createHash('sha256').update(key).digest('hex').slice(0, 8)}`;

async function exerciseGateway(gateway: RunningGateway, receiver: OtlpReceiver): Promise<void> {
  const vm = gateway.url('victoriametrics');
  const send = async (headers: Record<string, string | string[]>, path = '/health'): Promise<number> => {
    const response = await request(`${vm}${path}`, { headers });
    await response.body.text();
    return response.statusCode;
  };
  assert.equal(await send({ 'x-api-key': KEY }, `/health?api_key=${KEY}`), 200);
  assert.equal(await send({ authorization: `Bearer ${KEY}` }), 200);
  assert.equal(await send({ authorization: basic('browser', KEY) }), 200);
  assert.equal(await send({ authorization: basic('zed', PLAIN_USER_PASSWORD) }), 200);
  assert.equal(await send({ authorization: basic('yan', BCRYPT_USER_PASSWORD) }), 200);
  assert.equal(await send({ authorization: basic('yan', BCRYPT_USER_PASSWORD) }), 200);
  assert.equal(await send({ 'x-api-key': `${KEY}-wrong` }), 401);
  assert.equal(await send({ 'x-api-key': [KEY, NEXT_KEY] }), 401);
  assert.equal(await send({ authorization: basic('zed', `${PLAIN_USER_PASSWORD}x`) }), 401);
  assert.equal(await send({ authorization: basic('yan', `${BCRYPT_USER_PASSWORD}-wrong`) }), 401);
  assert.equal(await send({ authorization: `Basic ${Buffer.from(KEY).toString('base64')}` }), 401);
  // Named credentials: allowed, refused for scope (403), refused as unknown (401).
  assert.equal(await send({ 'x-api-key': DIGESTED_KEY }), 200);
  assert.equal(await send({ authorization: basic('nia', NAMED_PASSWORD) }), 200);
  assert.equal(await send({ 'x-api-key': NAMED_KEY }), 403);
  assert.equal(await send({ authorization: `Bearer ${NAMED_KEY}` }, '/api/v1/admin/tsdb/delete_series'), 403);
  assert.equal(await send({ authorization: basic('nia', `${NAMED_PASSWORD}-wrong`) }), 401);
  const credentials = await (await fetch(`${gateway.url('admin')}/credentials`)).text();
  for (const leaked of [
    NAMED_KEY,
    DIGESTED_KEY,
    NAMED_PASSWORD,
    sha256Hex(NAMED_KEY),
    sha256Hex(DIGESTED_KEY),
    KEY,
  ]) {
    assert.ok(!credentials.includes(leaked), `/credentials: ${credentials}`);
  }
  const client = grpcClient(gateway);
  try {
    assert.equal((await grpcExport(client, { 'x-api-key': KEY })).code, 0);
    assert.equal((await grpcExport(client, { authorization: basic('zed', PLAIN_USER_PASSWORD) })).code, 0);
    assert.equal((await grpcExport(client, { 'x-api-key': `${KEY}-wrong` })).code, 16);
    assert.equal((await grpcExport(client, { 'x-api-key': NAMED_KEY })).code, 0);
    assert.equal((await grpcExport(client, { 'x-api-key': DIGESTED_KEY })).code, 7);
  } finally {
    client.close();
  }
  assert.ok(receiver.requestLog.length >= 2);
}

describe('no secret in anything a gateway printed during the suite', () => {
  let okServer: Awaited<ReturnType<typeof startOkServer>>;
  let receiver: OtlpReceiver;

  before(async () => {
    registerSecret({ kind: 'api-key', value: `${KEY}-wrong` });
    registerSecret({ kind: 'password', value: `${PLAIN_USER_PASSWORD}x`, user: 'zed' });
    registerSecret({ kind: 'password', value: `${BCRYPT_USER_PASSWORD}-wrong`, user: 'yan' });
    registerSecret({ kind: 'password', value: BCRYPT_USER_PASSWORD, user: 'yan' });
    registerSecret({ kind: 'api-key', value: DIGESTED_KEY });
    registerSecret({ kind: 'password', value: `${NAMED_PASSWORD}-wrong`, user: 'nia' });
    const hash = await bcrypt.hash(BCRYPT_USER_PASSWORD, 10);
    okServer = await startOkServer();
    receiver = await startOtlpReceiver();
    const envFileText =
      `ENVOY_AUTH_METHOD=any\nENVOY_API_KEYS=${KEY}\n` +
      `ENVOY_BASIC_AUTH_CREDENTIALS=zed:${PLAIN_USER_PASSWORD},yan:${hash}\nAUTH_FAILURE_LIMIT=0\n` +
      NAMED_ENTRIES;
    const upstreams = { victoriametrics: okServer.url, grpc: receiver.grpcUrl };

    // JSON at trace level: everything the gateway can say.
    const gateway = await startGatewayFor(upstreams, { LOG_LEVEL: 'trace' }, envFileText);
    try {
      await exerciseGateway(gateway, receiver);
      // A good reload with new secrets, SIGHUP and POST /reload, then bad contents that carry
      // secret material in the broken entries.
      await writeEnvFile(gateway.envFile, envFileText.replace(KEY, `${KEY}, ${NEXT_KEY}`));
      await waitForReloads(gateway, 1);
      gateway.child.kill('SIGHUP');
      await waitForReloads(gateway, 2);
      assert.equal((await fetch(`${gateway.url('admin')}/reload`, { method: 'POST' })).status, 200);
      const brokenHash = hash.slice(0, 45);
      // An entry without ':' (a password pasted alone) and a cut hash: both recorded as secrets.
      await writeEnvFile(
        gateway.envFile,
        `ENVOY_AUTH_METHOD=basic-auth\nENVOY_BASIC_AUTH_CREDENTIALS=${secret('pasted-alone')},yan:${brokenHash}\n`,
      );
      await waitForReloads(gateway, 1, 5000, 'gateway_config_reload_failures_total');
      const bad = await fetch(`${gateway.url('admin')}/reload`, { method: 'POST' });
      assert.equal(bad.status, 400);
      const dump = await (await fetch(`${gateway.url('admin')}/config_dump`)).text();
      assert.ok(!dump.includes(KEY) && !dump.includes(PLAIN_USER_PASSWORD) && !dump.includes(hash.slice(7)));
      assert.ok(!dump.includes(sha256Hex(DIGESTED_KEY)) && !dump.includes(NAMED_PASSWORD));
    } finally {
      await gateway.stop();
    }

    // Human-readable output.
    const pretty = await startGatewayFor(
      upstreams,
      { LOG_LEVEL: 'trace', LOG_FORMAT: 'pretty' },
      envFileText,
    );
    try {
      await exerciseGateway(pretty, receiver);
    } finally {
      await pretty.stop();
    }

    // A start refused for a bad configuration prints its errors to stderr.
    const refused = await startGateway({
      env: {
        // Never the compose defaults (DNS names), even for a start that is refused.
        OTLP_GRPC_UPSTREAM: 'off',
        OTLP_HTTP_UPSTREAM: 'off',
        PROMETHEUS_UPSTREAM: 'off',
        VICTORIAMETRICS_UPSTREAM: 'off',
        ENVOY_AUTH_METHOD: 'basic-auth',
        ENVOY_BASIC_AUTH_CREDENTIALS: `zed:${PLAIN_USER_PASSWORD},yan:${hash.slice(0, 50)}`,
        ENVOY_API_KEYS: `${KEY}, ${KEY}`,
      },
      waitForReady: false,
    });
    const exit = await refused.exited;
    assert.equal(exit.code, 2, refused.output());
    await until('the refused start to print its errors', () =>
      /configuration error/.test(refused.output()) ? true : undefined,
    );
  });
  after(async () => {
    await okServer?.close();
    await receiver?.stop();
  });

  test('no key, password, bcrypt hash or base64 credential appears in the output log', (t) => {
    assert.ok(existsSync(GATEWAY_OUTPUT_LOG), `${GATEWAY_OUTPUT_LOG} was not written`);
    const log = readFileSync(GATEWAY_OUTPUT_LOG, 'utf8');
    // The log holds what this file's own gateways printed: the check below is not vacuous.
    assert.ok(log.includes(keyIdentity(KEY)), 'the access lines of this run are in the log');
    assert.ok(log.includes('configuration reload rejected'), 'the rejected reload of this run is in the log');

    const secrets = readUsedSecrets();
    assert.ok(
      secrets.some((s) => s.value === KEY),
      `${SECRETS_USED_FILE} lists this run's secrets`,
    );
    // Every spelling of every secret, indexed by its first characters, then one pass over the log:
    // the artifacts of repeated local runs grow, and one indexOf per spelling would grow with both.
    const spellingsByPrefix = new Map<string, { form: string; used: UsedSecret }[]>();
    let checked = 0;
    const tooShort = new Set<string>();
    for (const used of secrets) {
      for (const form of revealingForms(used)) {
        if (form.length < MIN_CHECKABLE_LENGTH) {
          tooShort.add(form);
          continue;
        }
        checked++;
        const prefix = form.slice(0, MIN_CHECKABLE_LENGTH);
        const bucket = spellingsByPrefix.get(prefix) ?? [];
        bucket.push({ form, used });
        spellingsByPrefix.set(prefix, bucket);
      }
    }
    const leaks: string[] = [];
    for (let at = 0; at + MIN_CHECKABLE_LENGTH <= log.length; at++) {
      const bucket = spellingsByPrefix.get(log.slice(at, at + MIN_CHECKABLE_LENGTH));
      if (bucket === undefined) continue;
      for (const { form, used } of bucket) {
        if (!log.startsWith(form, at)) continue;
        const context = log.slice(Math.max(0, at - 80), at + form.length + 80).replaceAll(form, '<SECRET>');
        leaks.push(
          `${used.kind}${used.user === undefined ? '' : ` of ${used.user}`} (${form.length} chars): …${context}…`,
        );
      }
    }
    t.diagnostic(
      `${secrets.length} secrets, ${checked} spellings checked against ${log.length} characters of output; ` +
        `${tooShort.size} spellings shorter than ${MIN_CHECKABLE_LENGTH} characters not checkable`,
    );
    assert.ok(checked >= 20, `only ${checked} spellings checked`);
    assert.deepEqual(leaks.slice(0, 10), [], `${leaks.length} secret(s) printed by a gateway`);
  });
});
