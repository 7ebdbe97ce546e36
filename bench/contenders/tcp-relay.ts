import { join } from 'node:path';
import { spawnTree } from '../children.js';
import type { ContenderSpec } from '../types.js';
import { LOOPBACK, listeningContender, withFreePorts } from './common.js';
import { REPO_ROOT } from './gateway.js';

/**
 * bench/tcp-relay.ts: bytes copied socket to socket, no HTTP and no authentication. Not a proxy
 * anyone would deploy: the floor a Node.js proxy could reach on this machine, run in every
 * table so each contender shows how far it is from it (issue 13).
 */
export const tcpRelayContender: ContenderSpec = {
  id: 'tcp-relay',
  label: 'Node TCP relay (no HTTP, no auth: the floor)',
  kind: 'tcp-relay',
  protocols: ['grpc', 'http'],
  start: async (route, auth) =>
    withFreePorts(1, async ([listenPort]) => {
      const tracked = spawnTree(
        process.execPath,
        [
          '--import',
          'tsx',
          join(REPO_ROOT, 'bench', 'tcp-relay.ts'),
          String(listenPort),
          route.upstream.host,
          String(route.upstream.port),
        ],
        { cwd: REPO_ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production' } },
      );
      // The relay checks nothing: the workload's credential header passes through like any byte.
      const headers: Record<string, string> = auth.kind === 'api-key' ? { 'x-api-key': auth.key } : {};
      return listeningContender('TCP relay', tracked, { host: LOOPBACK, port: listenPort! }, headers);
    }),
};
