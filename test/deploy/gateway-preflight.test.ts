import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, runTool } from './support.js';

const PREFLIGHT = join(REPO_ROOT, 'config', 'gateway', 'preflight.sh');

/**
 * config/gateway/preflight.sh under dash, with `getent` replaced by a stub that resolves exactly
 * the names in STUB_HOSTS (what Docker's DNS answers for the services that run), and `env` as the
 * command it execs so that the test sees what the gateway would have been started with.
 */
describe('config/gateway/preflight.sh (the gateway entrypoint in docker-compose.yaml)', () => {
  let stubDir: string;

  before(() => {
    stubDir = mkdtempSync(join(tmpdir(), 'edge-gateway-preflight-'));
    const getent = join(stubDir, 'getent');
    writeFileSync(
      getent,
      '#!/bin/sh\n[ "$1" = hosts ] || exit 2\nfor h in $STUB_HOSTS; do [ "$2" = "$h." ] && { echo "10.0.0.2 $h"; exit 0; }; done\nexit 2\n',
    );
    chmodSync(getent, 0o755);
  });

  after(() => rmSync(stubDir, { recursive: true, force: true }));

  function preflight(profileServices: string, running: string) {
    return runTool('sh', [PREFLIGHT, 'env'], {
      env: {
        PATH: `${stubDir}:${process.env.PATH}`,
        GATEWAY_PROFILE: 'no-vm',
        GATEWAY_PROFILE_SERVICES: profileServices,
        GATEWAY_PREFLIGHT_WAIT: '0',
        STUB_HOSTS: running,
        MARKER: 'exec-ed',
      },
    });
  }

  it('execs the gateway command, environment intact, when every service of the profile runs', () => {
    const result = preflight('otel-collector prometheus', 'otel-collector prometheus');
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stdout, /^MARKER=exec-ed$/m);
    assert.equal(result.stderr, '');
  });

  it('ignores services that run although the profile does not use them', () => {
    const result = preflight('prometheus', 'otel-collector prometheus victoriametrics');
    assert.equal(result.status, 0, result.stderr);
  });

  it('stops with exit 78 and says which service is missing and what to run instead', () => {
    const result = preflight('otel-collector prometheus victoriametrics', 'otel-collector prometheus');
    assert.equal(result.status, 78);
    assert.doesNotMatch(result.stdout, /MARKER/, 'the gateway must not start');
    assert.match(result.stderr, /not running after 0s: victoriametrics\./);
    assert.match(result.stderr, /COMPOSE_PROFILES=/);
  });

  it('waits for a service that resolves late (Docker restarting containers in any order)', () => {
    // The stub resolves nothing; with a 1 s wait the script retries once, then gives up.
    const started = Date.now();
    const result = runTool('sh', [PREFLIGHT, 'true'], {
      env: {
        PATH: `${stubDir}:${process.env.PATH}`,
        GATEWAY_PROFILE_SERVICES: 'victoriametrics',
        GATEWAY_PREFLIGHT_WAIT: '1',
        STUB_HOSTS: '',
      },
    });
    assert.equal(result.status, 78);
    assert.ok(Date.now() - started >= 900, 'it waited before giving up');
  });

  it('starts at once for a profile with no services to wait for', () => {
    const result = preflight('', '');
    assert.equal(result.status, 0, result.stderr);
  });
});
