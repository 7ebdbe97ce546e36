import type { ContenderSpec } from '../types.js';

/** The client talks to the upstream itself: the physical limit every proxy is compared with. */
export const directContender: ContenderSpec = {
  id: 'direct',
  label: 'direct',
  kind: 'direct',
  protocols: ['grpc', 'http'],
  start: async (route) => ({
    target: route.upstream,
    authHeaders: {},
    pid: null,
    output: () => '',
    stop: async () => {},
  }),
};
