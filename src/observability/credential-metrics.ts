import { Counter, Gauge, type Registry } from 'prom-client';
import { type CredentialSummary, credentialSummaries } from '../config/credential-summary.js';
import type { GatewayConfig, ListenerName, Scope } from '../config/types.js';

type CounterChild = ReturnType<Counter<string>['labels']>;

export const CREDENTIAL_METRIC_NAMES = {
  requests: 'gateway_credential_requests_total',
  receivedBytes: 'gateway_credential_received_bytes_total',
  lastUsed: 'gateway_credential_last_used_timestamp_seconds',
  expiry: 'gateway_credential_expiry_timestamp_seconds',
  scopeDenials: 'gateway_credential_scope_denials_total',
} as const;

export type CodeClass = '2xx' | '3xx' | '4xx' | '5xx';
const CODE_CLASSES: readonly CodeClass[] = ['2xx', '3xx', '4xx', '5xx'];

/** HTTP status class; 1xx (never final here) counts as 2xx. */
export function httpCodeClass(status: number): CodeClass {
  return status >= 500 || status === 0 ? '5xx' : status >= 400 ? '4xx' : status >= 300 ? '3xx' : '2xx';
}

/**
 * The class of a gRPC call by its status, as grpc-gateway maps them to HTTP: the client's own
 * mistakes and refusals are 4xx, the server's faults 5xx.
 */
export function grpcCodeClass(grpcStatus: string | undefined, httpStatus: number): CodeClass {
  if (grpcStatus === undefined || grpcStatus === '') return httpCodeClass(httpStatus);
  switch (grpcStatus) {
    case '0':
      return '2xx';
    case '1': // CANCELLED
    case '3': // INVALID_ARGUMENT
    case '5': // NOT_FOUND
    case '6': // ALREADY_EXISTS
    case '7': // PERMISSION_DENIED
    case '8': // RESOURCE_EXHAUSTED
    case '9': // FAILED_PRECONDITION
    case '11': // OUT_OF_RANGE
    case '16': // UNAUTHENTICATED
      return '4xx';
    default:
      return '5xx';
  }
}

interface CredentialChildren {
  readonly byClass: Readonly<Record<CodeClass, CounterChild>>;
  readonly receivedBytes: CounterChild;
}

/**
 * What each configured credential did: requests by listener and status class, request bytes,
 * when it was last used, when it expires, and its scope denials. A series exists only for a
 * configured credential (a reload removes those of credentials that are gone), so the label
 * cardinality is bounded by the configuration, never by what clients send.
 */
export class CredentialMetrics {
  private readonly requests: Counter<'credential' | 'listener' | 'code_class'>;
  private readonly receivedBytes: Counter<'credential' | 'listener'>;
  private readonly scopeDenials: Counter<'credential' | 'scope'>;
  private known = new Map<string, CredentialSummary>();
  /** credential -> listener -> children: the request path resolves labels once. */
  private readonly children = new Map<string, Map<ListenerName, CredentialChildren>>();
  /** credential -> last use in ms: read at scrape time, so a request only stores a number. */
  private readonly lastUsed = new Map<string, number>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: CREDENTIAL_METRIC_NAMES.requests,
      help: 'Requests answered per configured credential, by listener and status class (gRPC: its status, mapped as grpc-gateway does).',
      labelNames: ['credential', 'listener', 'code_class'],
      registers,
    });
    this.receivedBytes = new Counter({
      name: CREDENTIAL_METRIC_NAMES.receivedBytes,
      help: 'Request body bytes received per configured credential, by listener.',
      labelNames: ['credential', 'listener'],
      registers,
    });
    this.scopeDenials = new Counter({
      name: CREDENTIAL_METRIC_NAMES.scopeDenials,
      help: 'Requests refused with 403 / PERMISSION_DENIED because the credential lacks the scope they need.',
      labelNames: ['credential', 'scope'],
      registers,
    });
    const lastUsed = this.lastUsed;
    new Gauge({
      name: CREDENTIAL_METRIC_NAMES.lastUsed,
      help: 'When a configured credential was last presented successfully (Unix seconds); absent until then.',
      labelNames: ['credential'],
      registers,
      // Workers each know their own last use: the cluster's is the latest.
      aggregator: 'max',
      collect() {
        this.reset();
        for (const [credential, at] of lastUsed) this.labels(credential).set(at / 1000);
      },
    });
    const known = (): Iterable<CredentialSummary> => this.known.values();
    new Gauge({
      name: CREDENTIAL_METRIC_NAMES.expiry,
      help: 'When a configured credential expires (Unix seconds); only credentials with expires= have one.',
      labelNames: ['credential'],
      registers,
      aggregator: 'max',
      collect() {
        this.reset();
        for (const summary of known()) {
          if (summary.expires !== null) this.labels(summary.name).set(Date.parse(summary.expires) / 1000);
        }
      },
    });
  }

  /** Takes the credentials of a (re)loaded configuration; series of credentials that are gone go too. */
  configure(config: GatewayConfig): void {
    const next = new Map(credentialSummaries(config).map((summary) => [summary.name, summary]));
    for (const name of this.known.keys()) {
      if (next.has(name)) continue;
      for (const listener of this.children.get(name)?.keys() ?? []) {
        for (const codeClass of CODE_CLASSES)
          this.requests.remove({ credential: name, listener, code_class: codeClass });
        this.receivedBytes.remove({ credential: name, listener });
      }
      for (const scope of ['ingest', 'read', 'admin'] as const)
        this.scopeDenials.remove({ credential: name, scope });
      this.children.delete(name);
      this.lastUsed.delete(name);
    }
    this.known = next;
  }

  /** A request answered for `credential` (an authenticated one). */
  request(credential: string, listener: ListenerName, codeClass: CodeClass, bytesIn: number): void {
    const children = this.childrenOf(credential, listener);
    if (children === undefined) return;
    children.byClass[codeClass].inc();
    if (bytesIn > 0) children.receivedBytes.inc(bytesIn);
  }

  /** The credential was presented and accepted now. */
  used(credential: string, at: number): void {
    if (this.known.has(credential)) this.lastUsed.set(credential, at);
  }

  denied(credential: string, scope: Scope): void {
    if (this.known.has(credential)) this.scopeDenials.labels(credential, scope).inc();
  }

  private childrenOf(credential: string, listener: ListenerName): CredentialChildren | undefined {
    let byListener = this.children.get(credential);
    if (byListener === undefined) {
      // A request admitted just before a reload removed its credential is not counted anew.
      if (!this.known.has(credential)) return undefined;
      byListener = new Map();
      this.children.set(credential, byListener);
    }
    let children = byListener.get(listener);
    if (children === undefined) {
      children = {
        byClass: Object.fromEntries(
          CODE_CLASSES.map((codeClass) => [codeClass, this.requests.labels(credential, listener, codeClass)]),
        ) as unknown as Record<CodeClass, CounterChild>,
        receivedBytes: this.receivedBytes.labels(credential, listener),
      };
      byListener.set(listener, children);
    }
    return children;
  }
}
