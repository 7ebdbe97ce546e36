/** Shared vocabulary of the benchmark harness. */

export type WorkloadId =
  | 'otlp-grpc'
  | 'otlp-http'
  | 'promql'
  | 'tiny'
  | 'stream'
  | 'bcrypt'
  | 'scoped'
  | 'limits-tiny'
  | 'limits-otlp-http';

export const WORKLOAD_IDS: readonly WorkloadId[] = [
  'otlp-grpc',
  'otlp-http',
  'promql',
  'tiny',
  'stream',
  'bcrypt',
  'scoped',
  'limits-tiny',
  'limits-otlp-http',
];

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * What a workload asks a contender to front: the protocol the client speaks, the upstream the
 * requests go to, and which of the gateway's listeners stands in front of it.
 */
export interface Route {
  readonly protocol: 'grpc' | 'http';
  readonly listener: 'otlp-grpc' | 'otlp-http' | 'victoriametrics';
  readonly upstream: HostPort;
}

/** How clients authenticate to the contenders of one workload. */
export type AuthScheme =
  | {
      readonly kind: 'api-key';
      readonly key: string;
      /** Configured as the named credential GATEWAY_KEY_<named> (scope read) instead of in ENVOY_API_KEYS. */
      readonly named?: string;
      /** The options of the named credential's line (default `scopes=read`), e.g. a `rate=`. */
      readonly namedOptions?: string;
      /** More named keys the gateway is configured with (workload 7 runs both kinds in one process). */
      readonly alsoNamed?: readonly { readonly name: string; readonly key: string }[];
    }
  | {
      readonly kind: 'basic';
      readonly user: string;
      readonly password: string;
      /** What the gateway is configured with: the password itself or its bcrypt hash. */
      readonly stored: StoredPassword;
      /** More users the gateway is configured with (workload 6 runs both kinds in one process). */
      readonly alsoConfigured?: readonly { readonly user: string; readonly stored: StoredPassword }[];
    };

/** How a Basic password is configured: as itself or as its bcrypt hash. */
export type StoredPassword = { readonly kind: 'plain' } | { readonly kind: 'bcrypt'; readonly hash: string };

/** One contender, up and fronting one route. */
export interface RunningContender {
  /** Where the client connects. */
  readonly target: HostPort;
  /** Headers a client sends to be let through (none for the direct path). */
  readonly authHeaders: Readonly<Record<string, string>>;
  /** Root process whose tree's CPU and memory are measured; null for the direct path. */
  readonly pid: number | null;
  /** Recent output, for error messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface ContenderSpec {
  /** Stable id used in JSON and on the command line (`--contenders`). */
  readonly id: string;
  /** What the table shows. */
  readonly label: string;
  readonly kind: 'direct' | 'edge-gateway' | 'nginx' | 'vmauth' | 'node-minimal' | 'tcp-relay' | 'prototype';
  readonly protocols: readonly Route['protocol'][];
  start(route: Route, auth: AuthScheme): Promise<RunningContender>;
}

/** What one measured run of a load generator against one contender yields. */
export interface Measurement {
  /** Requests answered with a 2xx (and, where the upstream counts them, that reached it). */
  readonly succeeded: number;
  /** Requests answered with anything else, failed on the socket, or timed out. */
  readonly failed: number;
  readonly seconds: number;
  /** Latency percentiles in milliseconds (null where not measured, e.g. the single streaming request). */
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
  /** Request body bytes sent (streaming workload). */
  readonly bodyBytes?: number;
  /** Why requests failed, for the report. */
  readonly failureDetail?: string;
}
