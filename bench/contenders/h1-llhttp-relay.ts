import { join } from 'node:path';
import { spawnTree } from '../children.js';
import type { ContenderSpec } from '../types.js';
import { LOOPBACK, listeningContender, withFreePorts } from './common.js';
import { REPO_ROOT } from './gateway.js';

/**
 * bench/prototypes/h1-llhttp-relay.ts: issue 13's HTTP/1.1 design as a prototype (heads by
 * llhttp, bodies relayed as views of the socket's chunks, a key check), to learn what the design
 * costs before the gateway is built on it. Not a proxy to deploy: runs only when `--contenders`
 * names it.
 */
function prototype(mode: 'raw' | 'node-server', id: string, label: string): ContenderSpec {
  return {
    id,
    label,
    kind: 'prototype',
    protocols: ['http'],
    start: async (route, auth) => {
      if (auth.kind !== 'api-key') throw new Error('the HTTP/1.1 prototype checks an X-API-Key only');
      return withFreePorts(1, async ([listenPort]) => {
        const tracked = spawnTree(
          process.execPath,
          [
            '--import',
            'tsx',
            join(REPO_ROOT, 'bench', 'prototypes', 'h1-llhttp-relay.ts'),
            String(listenPort),
            route.upstream.host,
            String(route.upstream.port),
            auth.key,
            mode,
          ],
          { cwd: REPO_ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production' } },
        );
        return listeningContender(
          'HTTP/1.1 prototype',
          tracked,
          { host: LOOPBACK, port: listenPort! },
          {
            'x-api-key': auth.key,
          },
        );
      });
    },
  };
}

export const h1LlhttpRelayContender = prototype(
  'raw',
  'h1-llhttp-relay',
  'prototype: HTTP/1.1 llhttp relay (key check)',
);
/** The same upstream leg behind node:http's server: which leg's machinery costs what. */
export const h1NodeServerContender = prototype(
  'node-server',
  'h1-node-server',
  'prototype: node:http server + llhttp upstream leg',
);
