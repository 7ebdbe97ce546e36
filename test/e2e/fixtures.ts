import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { type RunningGateway, startGateway } from '../support/gateway.js';
import { registerSecret } from '../support/secrets.js';

export interface Upstreams {
  readonly grpc?: string;
  readonly http?: string;
  readonly prometheus?: string;
  readonly victoriametrics?: string;
}

/**
 * Starts the gateway with every upstream either given or `off`: the compose defaults
 * (`otel-collector`, `prometheus`, ...) are DNS names, and tests talk to loopback only.
 */
export function startGatewayFor(
  upstreams: Upstreams,
  env: Readonly<Record<string, string>> = {},
  envFileText?: string,
  nodeBinary?: string,
): Promise<RunningGateway> {
  return startGateway({
    env: {
      OTLP_GRPC_UPSTREAM: upstreams.grpc ?? 'off',
      OTLP_HTTP_UPSTREAM: upstreams.http ?? 'off',
      PROMETHEUS_UPSTREAM: upstreams.prometheus ?? 'off',
      VICTORIAMETRICS_UPSTREAM: upstreams.victoriametrics ?? 'off',
      ...env,
    },
    ...(envFileText === undefined ? {} : { envFileText }),
    ...(nodeBinary === undefined ? {} : { nodeBinary }),
  });
}

/** Reads one sample of a metric from the admin port's Prometheus text. */
export async function metricValue(
  gateway: RunningGateway,
  name: string,
  labels: string = '',
): Promise<number> {
  const text = await (await fetch(`${gateway.url('admin')}/metrics`)).text();
  const line = text
    .split('\n')
    .find((candidate) => candidate.startsWith(`${name}${labels === '' ? ' ' : `{${labels}}`}`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** An `Authorization: Basic` value; the password is recorded as a secret that must never be printed. */
export function basic(user: string, password: string): string {
  registerSecret({ kind: 'password', value: password, user });
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/**
 * Established TCP connections to a local port, counted from the kernel's tables
 * (/proc/net/tcp{,6}): an independent view of how many connections a client really opened.
 */
export function establishedConnectionsTo(port: number): number {
  let count = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const remote = fields[2];
      const state = fields[3];
      if (remote === undefined || state !== '01') continue;
      if (Number.parseInt(remote.slice(remote.indexOf(':') + 1), 16) === port) count++;
    }
  }
  return count;
}

/**
 * One OTLP/HTTP export (an empty JSON one) with `key`, on a fresh connection so that a cluster
 * primary spreads such requests over its workers. Answers the status.
 */
export async function postOnFreshConnection(gateway: RunningGateway, key: string): Promise<number> {
  const dispatcher = new Agent({ pipelining: 0 });
  try {
    const response = await request(`${gateway.url('http')}/v1/traces`, {
      method: 'POST',
      headers: { 'x-api-key': key, 'content-type': 'application/json' },
      body: '{"resourceSpans":[]}',
      dispatcher,
    });
    await response.body.text();
    return response.statusCode;
  } finally {
    await dispatcher.close();
  }
}
