import type { EnvVars } from '../config/env-source.js';

/** Primary → worker. */
export type PrimaryMessage =
  /** Apply this configuration (the env snapshot the primary validated; workers parse the same bytes). */
  | { readonly type: 'edge-gateway:apply'; readonly vars: EnvVars }
  /** Stop accepting, finish in-flight requests, exit 0. */
  | { readonly type: 'edge-gateway:drain' };

/** Worker → primary. */
export type WorkerMessage = { readonly type: 'edge-gateway:ready' };

export function isPrimaryMessage(message: unknown): message is PrimaryMessage {
  const type = (message as { type?: unknown } | null)?.type;
  return type === 'edge-gateway:apply' || type === 'edge-gateway:drain';
}

export function isWorkerMessage(message: unknown): message is WorkerMessage {
  return (message as { type?: unknown } | null)?.type === 'edge-gateway:ready';
}
