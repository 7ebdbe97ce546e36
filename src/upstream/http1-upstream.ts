import { Pool } from 'undici';

export interface Http1UpstreamOptions {
  readonly connectTimeoutMs: number;
  /** Longest wait for response headers; also the longest silence inside a response body. */
  readonly responseTimeoutMs: number;
  /** Keep-alive connections kept per upstream, at most. */
  readonly connections: number;
}

/**
 * A keep-alive pool to one HTTP/1.1 upstream (an Envoy "cluster"). undici reuses sockets,
 * honours the upstream's `Keep-Alive: timeout` hint and retries nothing by itself.
 */
export function createHttp1Upstream(origin: URL, options: Http1UpstreamOptions): Pool {
  return new Pool(origin, {
    connections: options.connections,
    pipelining: 1,
    connectTimeout: options.connectTimeoutMs,
    headersTimeout: options.responseTimeoutMs,
    bodyTimeout: options.responseTimeoutMs,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 120_000,
    strictContentLength: true,
  });
}
