import { join } from 'node:path';
import { spawnTree } from '../children.js';
import type { ContenderSpec } from '../types.js';
import { LOOPBACK, listeningContender, withFreePorts } from './common.js';
import { REPO_ROOT } from './gateway.js';

/**
 * bench/prototypes/h2-frame-relay.ts: issue 13's frame-level HTTP/2 path as a prototype (frames
 * parsed by hand, hpack.js, the key checked, nghttp2-like limits), measured before it is built
 * into the gateway. Runs only when `--contenders` names it.
 */
export const h2FrameRelayContender: ContenderSpec = {
  id: 'h2-frame-relay',
  label: 'prototype: HTTP/2 frame relay (hpack.js, key check)',
  kind: 'prototype',
  protocols: ['grpc'],
  start: async (route, auth) => {
    if (auth.kind !== 'api-key') throw new Error('the HTTP/2 frame relay checks an X-API-Key only');
    return withFreePorts(1, async ([listenPort]) => {
      const tracked = spawnTree(
        process.execPath,
        [
          '--import',
          'tsx',
          join(REPO_ROOT, 'bench', 'prototypes', 'h2-frame-relay.ts'),
          String(listenPort),
          route.upstream.host,
          String(route.upstream.port),
          auth.key,
        ],
        { cwd: REPO_ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production' } },
      );
      return listeningContender(
        'HTTP/2 frame relay',
        tracked,
        { host: LOOPBACK, port: listenPort! },
        {
          'x-api-key': auth.key,
        },
      );
    });
  },
};
