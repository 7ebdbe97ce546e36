import { runH2load } from './load/h2load.js';
import { streamUpload } from './load/stream.js';
import { runWrk } from './load/wrk.js';
import { OTLP_GRPC_EXPORT_PATH, SPANS_PER_BATCH } from './payload.js';
import { grpcProbe, httpProbe, type ProbeResult } from './probe.js';
import type { HostPort, Measurement, Route, RunningContender, WorkloadId } from './types.js';
import type { SinkProcess } from './upstreams.js';
import { PROMQL_QUERY, PROMQL_RESULT_ROWS } from './upstreams.js';

/**
 * The tiny request of workloads 4 and 6. Issue 5 names `GET /health`, but vmauth answers
 * `/health` (and `/-/healthy`, `/ping`) itself, without authentication and without reaching the
 * upstream, so its numbers would not be those of a proxy. `/api/v1/status/buildinfo` is as small
 * (VictoriaMetrics answers `{"status":"success","data":{}}` from memory) and every contender
 * authenticates and proxies it.
 */
export const TINY_PATH = '/api/v1/status/buildinfo';
export const PROMQL_PATH = `/api/v1/query?query=${encodeURIComponent(PROMQL_QUERY)}`;
export const IMPORT_PATH = '/api/v1/import';

export interface Fixtures {
  /** The OTLP batch as a gRPC message (workload 1) and raw protobuf (workload 2). */
  readonly grpcBodyFile: string;
  readonly grpcBody: Uint8Array;
  readonly protobufBodyFile: string;
  readonly protobufBody: Uint8Array;
  readonly sinks: SinkProcess;
  /** Seeded VictoriaMetrics (workloads 3, 4, 6). */
  readonly victoriaMetrics: () => Promise<HostPort>;
  readonly scratchDir: string;
  readonly streamBytes: number;
}

export interface Workload {
  readonly id: WorkloadId;
  readonly number: number;
  readonly title: string;
  /** What the throughput column counts. */
  readonly unit: 'spans/s' | 'req/s' | 'MiB/s';
  /** How the load is generated, for the report. */
  readonly load: string;
  readonly listener: Route['listener'];
  readonly protocol: Route['protocol'];
  /** Which sink counter must grow by every success (null: the upstream is VictoriaMetrics). */
  readonly sinkCounter: 'grpc' | 'http' | null;
  upstream(fixtures: Fixtures): Promise<HostPort>;
  probe(
    contender: RunningContender,
    headers: Readonly<Record<string, string>>,
    fixtures: Fixtures,
  ): Promise<ProbeResult>;
  measure(contender: RunningContender, durationS: number, fixtures: Fixtures): Promise<Measurement>;
  /** Throughput in `unit` of one measurement. */
  throughput(measurement: Measurement): number;
}

const GRPC_CLIENTS = 4;
const GRPC_STREAMS_PER_CLIENT = 4;
const OTLP_HTTP_CONNECTIONS = 16;
const PROMQL_CONNECTIONS = 16;
const TINY_CONNECTIONS = 64;
const TINY_THREADS = 2;

const url = (target: HostPort, path: string): string => `http://${target.host}:${target.port}${path}`;
const spansPerSecond = (m: Measurement): number => (m.succeeded * SPANS_PER_BATCH) / m.seconds;
const requestsPerSecond = (m: Measurement): number => m.succeeded / m.seconds;

const tinyWorkload = (
  id: 'tiny' | 'bcrypt' | 'scoped' | 'limits-tiny',
  number: number,
  title: string,
): Workload => ({
  id,
  number,
  title,
  unit: 'req/s',
  load:
    `wrk -t${TINY_THREADS} -c${TINY_CONNECTIONS} GET ${TINY_PATH} (HTTP/1.1 keep-alive) on VictoriaMetrics` +
    (id === 'bcrypt'
      ? '; each gateway process is configured with both users (`bench-plain`: the password, `bench-bcrypt`: its bcrypt hash, cost 10) and the rounds alternate between them'
      : id === 'scoped'
        ? '; each gateway process is configured with a legacy key (ENVOY_API_KEYS, scope all) and a named key (GATEWAY_KEY_BENCH_SCOPED, scopes=read) and the rounds alternate between them'
        : id === 'limits-tiny'
          ? LIMITS_LOAD
          : ''),
  listener: 'victoriametrics',
  protocol: 'http',
  sinkCounter: null,
  upstream: (fixtures) => fixtures.victoriaMetrics(),
  probe: (contender, headers) => httpProbe(contender.target, TINY_PATH, { headers }),
  measure: (contender, durationS, fixtures) =>
    runWrk({
      url: url(contender.target, TINY_PATH),
      method: 'GET',
      headers: contender.authHeaders,
      threads: TINY_THREADS,
      connections: TINY_CONNECTIONS,
      durationS,
      scratchDir: fixtures.scratchDir,
    }),
  throughput: requestsPerSecond,
});

/** Workloads 8 and 9 (issue 14): the credential has a rate= it never reaches, memory or Redis store. */
const LIMITS_LOAD =
  '; one gateway process (WORKERS=1) per store: a named key without limits, the same key with rate=100000/s (never reached) and LIMIT_STORE=memory, and with LIMIT_STORE=redis (a local redis-server)';

const otlpHttpWorkload: Workload = {
  id: 'otlp-http',
  number: 2,
  title: 'OTLP/HTTP export (the same batch, application/x-protobuf)',
  unit: 'spans/s',
  load: `wrk -t1 -c${OTLP_HTTP_CONNECTIONS} POST /v1/traces into a discarding HTTP sink`,
  listener: 'otlp-http',
  protocol: 'http',
  sinkCounter: 'http',
  upstream: async (fixtures) => ({ host: '127.0.0.1', port: fixtures.sinks.ports.http }),
  probe: (contender, headers, fixtures) =>
    httpProbe(contender.target, '/v1/traces', {
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', ...headers },
      body: fixtures.protobufBody,
    }),
  measure: (contender, durationS, fixtures) =>
    runWrk({
      url: url(contender.target, '/v1/traces'),
      method: 'POST',
      headers: { 'content-type': 'application/x-protobuf', ...contender.authHeaders },
      bodyFile: fixtures.protobufBodyFile,
      threads: 1,
      connections: OTLP_HTTP_CONNECTIONS,
      durationS,
      scratchDir: fixtures.scratchDir,
    }),
  throughput: spansPerSecond,
};

export const WORKLOADS: readonly Workload[] = [
  {
    id: 'otlp-grpc',
    number: 1,
    title: 'OTLP/gRPC export (512-span ExportTraceServiceRequest)',
    unit: 'spans/s',
    load: `h2load -c${GRPC_CLIENTS} -m${GRPC_STREAMS_PER_CLIENT} (16 concurrent streams), POST ${OTLP_GRPC_EXPORT_PATH} into a discarding gRPC sink`,
    listener: 'otlp-grpc',
    protocol: 'grpc',
    sinkCounter: 'grpc',
    upstream: async (fixtures) => ({ host: '127.0.0.1', port: fixtures.sinks.ports.grpc }),
    probe: (contender, headers, fixtures) =>
      grpcProbe(contender.target, OTLP_GRPC_EXPORT_PATH, headers, fixtures.grpcBody),
    measure: (contender, durationS, fixtures) =>
      runH2load({
        url: url(contender.target, OTLP_GRPC_EXPORT_PATH),
        headers: { 'content-type': 'application/grpc', te: 'trailers', ...contender.authHeaders },
        bodyFile: fixtures.grpcBodyFile,
        threads: 1,
        clients: GRPC_CLIENTS,
        streamsPerClient: GRPC_STREAMS_PER_CLIENT,
        durationS,
        scratchDir: fixtures.scratchDir,
      }),
    throughput: spansPerSecond,
  },
  otlpHttpWorkload,
  {
    id: 'promql',
    number: 3,
    title: 'PromQL query through 8428',
    unit: 'req/s',
    load: `wrk -t1 -c${PROMQL_CONNECTIONS} GET /api/v1/query \`${PROMQL_QUERY}\` on VictoriaMetrics holding 3000 series`,
    listener: 'victoriametrics',
    protocol: 'http',
    sinkCounter: null,
    upstream: (fixtures) => fixtures.victoriaMetrics(),
    probe: (contender, headers) =>
      httpProbe(contender.target, PROMQL_PATH, {
        headers,
        checkBody: (body) => {
          const rows = (JSON.parse(body) as { data?: { result?: unknown[] } }).data?.result?.length ?? 0;
          return rows === PROMQL_RESULT_ROWS ? null : `${rows} result rows, expected ${PROMQL_RESULT_ROWS}`;
        },
      }),
    measure: (contender, durationS, fixtures) =>
      runWrk({
        url: url(contender.target, PROMQL_PATH),
        method: 'GET',
        headers: contender.authHeaders,
        threads: 1,
        connections: PROMQL_CONNECTIONS,
        durationS,
        scratchDir: fixtures.scratchDir,
      }),
    throughput: requestsPerSecond,
  },
  tinyWorkload('tiny', 4, 'Tiny request, 64 keep-alive connections'),
  {
    id: 'stream',
    number: 5,
    title: 'Streaming import: one large /api/v1/import body',
    unit: 'MiB/s',
    load: 'one POST /api/v1/import (Content-Length, generated on the fly) into a discarding HTTP sink',
    listener: 'victoriametrics',
    protocol: 'http',
    sinkCounter: 'http',
    upstream: async (fixtures) => ({ host: '127.0.0.1', port: fixtures.sinks.ports.http }),
    probe: (contender, headers) =>
      httpProbe(contender.target, IMPORT_PATH, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: Buffer.from('{"metric":{"__name__":"probe"},"values":[1],"timestamps":[1700000000000]}\n'),
      }),
    measure: (contender, _durationS, fixtures) =>
      streamUpload({
        target: contender.target,
        path: IMPORT_PATH,
        headers: contender.authHeaders,
        totalBytes: fixtures.streamBytes,
        timeoutMs: 180_000,
      }),
    throughput: (m) => (m.succeeded === 0 ? 0 : (m.bodyBytes ?? 0) / (1024 * 1024) / m.seconds),
  },
  tinyWorkload('bcrypt', 6, 'Basic auth: bcrypt hashes versus plaintext passwords (workload 4)'),
  tinyWorkload('scoped', 7, 'A named, scoped key versus a legacy key (workload 4)'),
  tinyWorkload(
    'limits-tiny',
    8,
    'A rate= limit not reached, memory and Redis store, versus no limit (workload 4)',
  ),
  {
    ...otlpHttpWorkload,
    id: 'limits-otlp-http',
    number: 9,
    title: 'A rate= limit not reached, memory and Redis store, versus no limit (workload 2)',
    load: `${otlpHttpWorkload.load}${LIMITS_LOAD}`,
  },
];
