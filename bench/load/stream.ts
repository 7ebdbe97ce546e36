import { once } from 'node:events';
import { request } from 'node:http';
import type { HostPort, Measurement } from '../types.js';

export interface StreamOptions {
  readonly target: HostPort;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly totalBytes: number;
  readonly timeoutMs: number;
}

/** 1 MiB of VictoriaMetrics JSON-lines import data, sent again and again (generating it costs nothing per request). */
function importChunk(): Buffer {
  const line =
    '{"metric":{"__name__":"bench_stream","job":"bench","instance":"host-01"},"values":[1,2,3],"timestamps":[1700000000000,1700000015000,1700000030000]}\n';
  const chunk = Buffer.alloc(1024 * 1024, line);
  // End the chunk on a line boundary so concatenated chunks stay valid JSON lines.
  chunk[chunk.length - 1] = 0x0a;
  return chunk;
}

/**
 * One POST of `totalBytes` (with Content-Length) produced on the fly and written with
 * backpressure: nothing is buffered beyond the socket, nothing touches the disk.
 */
export async function streamUpload(options: StreamOptions): Promise<Measurement> {
  const chunk = importChunk();
  const started = performance.now();
  const req = request({
    host: options.target.host,
    port: options.target.port,
    method: 'POST',
    path: options.path,
    agent: false,
    headers: {
      ...options.headers,
      'content-type': 'application/json',
      'content-length': String(options.totalBytes),
    },
  });
  const timer = setTimeout(
    () => req.destroy(new Error(`no answer within ${options.timeoutMs} ms`)),
    options.timeoutMs,
  );
  const response = once(req, 'response') as Promise<[import('node:http').IncomingMessage]>;
  // An early answer (a 401 before the body) stops the writing; keep its rejection handled meanwhile.
  let answeredEarly = false;
  response.then(
    () => {
      answeredEarly = true;
    },
    () => {},
  );
  try {
    let sent = 0;
    while (sent < options.totalBytes && !req.destroyed && !answeredEarly) {
      const size = Math.min(chunk.length, options.totalBytes - sent);
      const ok = req.write(size === chunk.length ? chunk : chunk.subarray(0, size));
      sent += size;
      if (!ok) await Promise.race([once(req, 'drain'), response]);
    }
    if (answeredEarly) req.destroy();
    else req.end();
    const [res] = await response;
    res.resume();
    await once(res, 'end');
    const seconds = (performance.now() - started) / 1000;
    const ok = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300;
    return {
      succeeded: ok ? 1 : 0,
      failed: ok ? 0 : 1,
      seconds,
      p50Ms: null,
      p99Ms: null,
      bodyBytes: sent,
      ...(ok ? {} : { failureDetail: `stream: HTTP ${res.statusCode}` }),
    };
  } catch (error) {
    req.destroy();
    return {
      succeeded: 0,
      failed: 1,
      seconds: (performance.now() - started) / 1000,
      p50Ms: null,
      p99Ms: null,
      failureDetail: `stream: ${(error as Error).message}`,
    };
  } finally {
    clearTimeout(timer);
  }
}
