import { connect } from 'node:http2';
import type { HostPort } from './types.js';

/** What a single request to a contender got: used to check it works and that it enforces auth. */
export interface ProbeResult {
  /** Answered successfully (2xx; for gRPC also grpc-status 0; plus the workload's own check). */
  readonly ok: boolean;
  /** Refused for lack of credentials (401/403; for gRPC also grpc-status 16 or 7). */
  readonly rejected: boolean;
  readonly summary: string;
}

/** One unary gRPC call with a pre-framed message; reads the status from trailers or trailers-only headers. */
export function grpcProbe(
  target: HostPort,
  path: string,
  headers: Readonly<Record<string, string>>,
  framedBody: Uint8Array,
): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const session = connect(`http://${target.host}:${target.port}`);
    let httpStatus: number | undefined;
    let grpcStatus: string | undefined;
    const timer = setTimeout(() => finish('no answer within 10 s'), 10_000);
    const finish = (error?: string): void => {
      clearTimeout(timer);
      session.destroy();
      const summary =
        error ?? `HTTP ${httpStatus ?? '-'}, grpc-status ${grpcStatus === undefined ? '-' : grpcStatus}`;
      resolve({
        ok: error === undefined && httpStatus === 200 && grpcStatus === '0',
        rejected:
          error === undefined &&
          (httpStatus === 401 || httpStatus === 403 || grpcStatus === '16' || grpcStatus === '7'),
        summary,
      });
    };
    session.on('error', (error) => finish(error.message));
    const stream = session.request({
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    });
    stream.on('response', (responseHeaders) => {
      httpStatus = Number(responseHeaders[':status']);
      const status = responseHeaders['grpc-status'];
      if (status !== undefined) grpcStatus = String(status);
    });
    stream.on('trailers', (trailers) => {
      const status = trailers['grpc-status'];
      if (status !== undefined) grpcStatus = String(status);
    });
    stream.on('data', () => {});
    stream.on('end', () => finish());
    stream.on('error', (error) => finish(error.message));
    stream.end(framedBody);
  });
}

export interface HttpProbeOptions {
  readonly method?: 'GET' | 'POST';
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: Uint8Array;
  /** Extra check on a 2xx body (e.g. the PromQL answer has every expected row). */
  readonly checkBody?: (body: string) => string | null;
}

export async function httpProbe(
  target: HostPort,
  path: string,
  options: HttpProbeOptions,
): Promise<ProbeResult> {
  try {
    const response = await fetch(`http://${target.host}:${target.port}${path}`, {
      method: options.method ?? 'GET',
      headers: options.headers,
      ...(options.body === undefined ? {} : { body: options.body }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = await response.text();
    const success = response.status >= 200 && response.status < 300;
    const problem = success && options.checkBody !== undefined ? options.checkBody(body) : null;
    return {
      ok: success && problem === null,
      rejected: response.status === 401 || response.status === 403,
      summary: `HTTP ${response.status}${problem === null ? '' : ` (${problem})`}`,
    };
  } catch (error) {
    return { ok: false, rejected: false, summary: (error as Error).message };
  }
}
