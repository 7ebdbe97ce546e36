import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeTempDir, trackTempDir } from '../../test/support/processes.js';
import { spawnTree } from '../children.js';
import type { ContenderSpec, Route } from '../types.js';
import { LOOPBACK, listeningContender, withFreePorts } from './common.js';

export const VMAUTH_BINARY = '/usr/bin/vmauth';

/** One user, known by its bearer token, routed to the upstream (vmauth's `-auth.config`). */
export function vmauthConfig(route: Route, bearerToken: string): string {
  if (!/^[A-Za-z0-9._~+/=-]+$/.test(bearerToken)) throw new Error('bearer token must be a plain token');
  return `users:
  - bearer_token: "${bearerToken}"
    url_prefix: "http://${route.upstream.host}:${route.upstream.port}"
`;
}

/** VictoriaMetrics' own auth proxy, as the Debian package ships it. HTTP/1.1 only (no gRPC). */
export const vmauthContender: ContenderSpec = {
  id: 'vmauth',
  label: 'vmauth',
  kind: 'vmauth',
  protocols: ['http'],
  start: async (route, auth) => {
    if (auth.kind !== 'api-key') throw new Error('the vmauth contender is configured for bearer tokens only');
    const dir = await mkdtemp(join(tmpdir(), 'edge-gateway-bench-vmauth-'));
    trackTempDir(dir);
    const configFile = join(dir, 'auth.yml');
    await writeFile(configFile, vmauthConfig(route, auth.key));
    return withFreePorts(1, async ([listenPort]) => {
      const tracked = spawnTree(VMAUTH_BINARY, [
        `-auth.config=${configFile}`,
        `-httpListenAddr=${LOOPBACK}:${listenPort}`,
        '-loggerLevel=ERROR',
      ]);
      return listeningContender(
        'vmauth',
        tracked,
        { host: LOOPBACK, port: listenPort! },
        { authorization: `Bearer ${auth.key}` },
        () => removeTempDir(dir),
      );
    });
  },
};
