import type { EnvVars } from '../config/env-source.js';

/** Primary → worker. */
export type PrimaryMessage =
  /** Apply this configuration (the env snapshot the primary validated; workers parse the same bytes). */
  | { readonly type: 'edge-gateway:apply'; readonly vars: EnvVars }
  /** Stop accepting, finish in-flight requests, exit 0. */
  | { readonly type: 'edge-gateway:drain' }
  /** Send your per-credential metrics (admin GET /credentials). */
  | { readonly type: 'edge-gateway:credential-metrics'; readonly requestId: number };

/** Worker → primary. */
export type WorkerMessage = { readonly type: 'edge-gateway:ready' };

/** Worker → primary: the answer to `edge-gateway:credential-metrics`. */
export interface CredentialMetricsMessage {
  readonly type: 'edge-gateway:credential-metrics';
  readonly requestId: number;
  readonly metrics: unknown[];
}

export function isPrimaryMessage(message: unknown): message is PrimaryMessage {
  const type = (message as { type?: unknown } | null)?.type;
  return (
    type === 'edge-gateway:apply' ||
    type === 'edge-gateway:drain' ||
    type === 'edge-gateway:credential-metrics'
  );
}

export function isCredentialMetricsMessage(message: unknown): message is CredentialMetricsMessage {
  const candidate = message as Partial<CredentialMetricsMessage> | null;
  return (
    candidate?.type === 'edge-gateway:credential-metrics' &&
    typeof candidate.requestId === 'number' &&
    Array.isArray(candidate.metrics)
  );
}

export function isWorkerMessage(message: unknown): message is WorkerMessage {
  return (message as { type?: unknown } | null)?.type === 'edge-gateway:ready';
}
