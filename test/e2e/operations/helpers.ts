import { rename, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { RunningGateway } from '../../support/gateway.js';
import { encodeTraceRequest } from '../../support/otlp-codec.js';
import { TRACE_EXPORT_PATH } from '../../support/otlp-receiver.js';
import { registerEnvFileSecrets } from '../../support/secrets.js';

/** Shared by the operations suites: env-file edits, metric scrapes, log lines. */

import { sleep, until } from '../../support/wait.js';

export { sleep, until };

export type EnvFileWrite = 'rename' | 'in-place';

let temporaryCounter = 0;

/**
 * Replaces the env file's content the way an editor does: `rename` writes a temporary file beside
 * it and renames it over (vim's default, `docker compose` bind mounts, Kubernetes Secrets), so the
 * file's inode changes; `in-place` truncates and rewrites the same inode (nano, `echo >`).
 */
export async function writeEnvFile(path: string, text: string, how: EnvFileWrite = 'rename'): Promise<void> {
  registerEnvFileSecrets(text);
  if (how === 'in-place') {
    await writeFile(path, text);
    return;
  }
  const temporary = join(dirname(path), `.${basename(path)}.${process.pid}.${++temporaryCounter}.tmp`);
  await writeFile(temporary, text);
  await rename(temporary, path);
}

export interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses the Prometheus text format (label values here never contain `"` or `,`). */
export function parseMetrics(text: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1] as string] = pair[2] as string;
    }
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

export class Metrics {
  constructor(readonly samples: readonly MetricSample[]) {}

  static async scrape(gateway: RunningGateway): Promise<Metrics> {
    const response = await fetch(`${gateway.url('admin')}/metrics`, { signal: AbortSignal.timeout(5000) });
    if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
    return new Metrics(parseMetrics(await response.text()));
  }

  has(name: string): boolean {
    return this.samples.some((sample) => sample.name === name);
  }

  /** The one sample of `name` carrying (at least) `labels`; undefined when there is none. */
  find(name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
    const matches = this.samples.filter(
      (sample) =>
        sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
    );
    if (matches.length > 1) {
      throw new Error(`${name}${JSON.stringify(labels)} matches ${matches.length} series: name more labels`);
    }
    return matches[0]?.value;
  }

  /** Like `find`, but a missing series is an error (counters that must exist), or 0 when `orZero`. */
  get(name: string, labels: Readonly<Record<string, string>> = {}, orZero = false): number {
    const value = this.find(name, labels);
    if (value !== undefined) return value;
    if (orZero) return 0;
    throw new Error(`no series ${name}${JSON.stringify(labels)}`);
  }
}

export async function metric(
  gateway: RunningGateway,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Promise<number> {
  return (await Metrics.scrape(gateway)).get(name, labels, true);
}

/** Waits until `gateway_config_reloads_total` reaches `count`; answers how long that took. */
export async function waitForReloads(
  gateway: RunningGateway,
  count: number,
  timeoutMs = 5000,
  counter = 'gateway_config_reloads_total',
): Promise<number> {
  const started = performance.now();
  await until(
    `${counter} >= ${count}`,
    async () => ((await metric(gateway, counter)) >= count ? true : undefined),
    timeoutMs,
    10,
  );
  return performance.now() - started;
}

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** The JSON log lines in `text` (anything else the process printed is skipped). */
export function logLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // a line cut by the output buffer bound, or not pino's
    }
  }
  return lines;
}

/** Log lines printed after `offset` characters of the gateway's output. */
export function logLinesSince(gateway: RunningGateway, offset: number): LogLine[] {
  return logLines(gateway.output().slice(offset));
}

/** Waits for `count` log lines matching `predicate` after `offset`, then answers them. */
export function waitForLogLines(
  gateway: RunningGateway,
  offset: number,
  predicate: (line: LogLine) => boolean,
  count = 1,
  timeoutMs = 5000,
): Promise<LogLine[]> {
  return until(
    `${count} matching log line(s)`,
    () => {
      const matching = logLinesSince(gateway, offset).filter(predicate);
      return matching.length >= count ? matching : undefined;
    },
    timeoutMs,
  );
}

/** An upstream that answers every request `200 OK` at once (a VictoriaMetrics `/health` stand-in). */
export async function startOkServer(): Promise<{
  url: string;
  requests: () => number;
  close(): Promise<void>;
}> {
  let requests = 0;
  const server: Server = createServer((request, response) => {
    requests++;
    request.resume();
    request.on('end', () => response.writeHead(200, { 'content-type': 'text/plain' }).end('OK'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One small OTLP trace export request, protobuf-encoded. */
export const EXPORT_BODY = Buffer.from(
  encodeTraceRequest({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'operations-suite' } }] },
        scopeSpans: [{ spans: [{ traceId: Buffer.alloc(16, 3), spanId: Buffer.alloc(8, 5), name: 'op' }] }],
      },
    ],
  }),
);

/** A grpc-js client of TraceService/Export over one HTTP/2 connection (the channel reuses it). */
export function grpcClient(gateway: RunningGateway): grpc.Client {
  return new grpc.Client(`127.0.0.1:${gateway.ports.grpc}`, grpc.credentials.createInsecure());
}

export interface GrpcOutcome {
  readonly code: number;
  readonly details: string;
}

/** One unary Export call with `metadata` (e.g. `{ 'x-api-key': KEY }`); answers its final status. */
export function grpcExport(
  client: grpc.Client,
  metadata: Readonly<Record<string, string>>,
  deadlineMs = 10_000,
): Promise<GrpcOutcome> {
  const md = new grpc.Metadata();
  for (const [key, value] of Object.entries(metadata)) md.set(key, value);
  return new Promise((resolve) => {
    const call = client.makeUnaryRequest(
      TRACE_EXPORT_PATH,
      (value: Buffer) => value,
      (value: Buffer) => value,
      EXPORT_BODY,
      md,
      { deadline: Date.now() + deadlineMs },
      () => undefined,
    );
    call.on('status', (status: grpc.StatusObject) => resolve({ code: status.code, details: status.details }));
  });
}

/**
 * Records every connectivity state a channel goes through, so a test can tell whether the
 * client ever lost its connection (anything after the first READY).
 */
export function watchConnectivity(client: grpc.Client): { readonly states: string[] } {
  const channel = client.getChannel();
  const states: string[] = [grpc.connectivityState[channel.getConnectivityState(true)] as string];
  const watch = (current: grpc.connectivityState): void => {
    channel.watchConnectivityState(current, Number.POSITIVE_INFINITY, (error) => {
      if (error) return;
      const next = channel.getConnectivityState(false);
      states.push(grpc.connectivityState[next] as string);
      if (next !== grpc.connectivityState.SHUTDOWN) watch(next);
    });
  };
  watch(channel.getConnectivityState(false));
  return { states };
}
