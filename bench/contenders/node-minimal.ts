import { join } from 'node:path';
import { spawnTree } from '../children.js';
import type { ContenderSpec } from '../types.js';
import { LOOPBACK, listeningContender, withFreePorts } from './common.js';
import { REPO_ROOT } from './gateway.js';

/**
 * bench/node-minimal-proxy.ts: the smallest honest Node.js proxy (a key compared, headers passed),
 * a reference point that shows which part of the gateway's cost is Node's and which its own.
 * Not one of the contenders: it runs only when `--contenders` names it.
 */
export const nodeMinimalContender: ContenderSpec = {
  id: 'node-minimal',
  label: 'minimal Node proxy (reference)',
  kind: 'node-minimal',
  protocols: ['grpc', 'http'],
  start: async (route, auth) => {
    if (auth.kind !== 'api-key') throw new Error('the minimal Node proxy checks an X-API-Key only');
    return withFreePorts(1, async ([listenPort]) => {
      const tracked = spawnTree(
        process.execPath,
        [
          '--import',
          'tsx',
          join(REPO_ROOT, 'bench', 'node-minimal-proxy.ts'),
          route.protocol,
          String(listenPort),
          `${route.upstream.host}:${route.upstream.port}`,
          auth.key,
        ],
        { cwd: REPO_ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production' } },
      );
      return listeningContender(
        'minimal Node proxy',
        tracked,
        { host: LOOPBACK, port: listenPort! },
        {
          'x-api-key': auth.key,
        },
      );
    });
  },
};
