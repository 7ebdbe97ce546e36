import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import type { Redis } from 'ioredis';
import { Counter, Histogram, type Registry } from 'prom-client';
import { limitStoreText } from '../config/limit-store.js';
import { REDACTED } from '../config/redact.js';
import type { LimitStore } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import { gaugeFrom } from '../observability/metrics.js';
import type { LeaseGrant } from './leased-budget.js';

export type RedisStoreConfig = Extract<LimitStore, { kind: 'redis' }>;

/**
 * Longest wait for one Redis command. Requests never wait on Redis (leases are taken in the
 * background); this bounds how long a process goes on trusting a Redis that has stopped
 * answering before it falls back to its own memory store.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 50;
/** Commands failing in a row on a live connection before this process stops trusting Redis. */
const FAILURES_BEFORE_FALLBACK = 3;
/** Reconnection attempts are at most this far apart: shared again soon after Redis is back. */
const MAX_RECONNECT_DELAY_MS = 1000;
/** While connected but failing (timeouts), a PING this often tells when Redis answers again. */
const PROBE_INTERVAL_MS = 1000;

/*
 * A token bucket shared by every process, the same arithmetic as TokenBucket, with Redis' own
 * clock (replicas' clocks may differ): it grants up to the tokens asked, never going below zero,
 * and answers what it granted and what is left. A hand-written script because no well-kept
 * library has a Redis token bucket that grants part of what is asked (rate-limiter-flexible's
 * Redis limiters are fixed windows counted in whole seconds).
 */
const TAKE_LEASE = `
local capacity = tonumber(ARGV[1])
local perMs = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = capacity
  at = now
elseif now > at then
  tokens = math.min(capacity, tokens + (now - at) * perMs)
  at = now
end
local granted = math.max(0, math.min(want, math.floor(tokens)))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / perMs) + 1000)
return {granted, tostring(tokens)}
`;

interface LeaseCommands {
  takeLease(key: string, capacity: number, perMs: number, want: number): Promise<[number, string]>;
}

type Operation = 'lease' | 'failures' | 'probe' | 'connect';

/** Failures of one client address in the window all processes share. */
export interface SharedFailureCount {
  readonly failures: number;
  /** Milliseconds until the shared window ends. */
  readonly msLeft: number;
}

/**
 * The Redis of LIMIT_STORE, as the limiters use it: `up` says whether to trust it now; every
 * command is background work. A lost connection, or three commands in a row that fail or time
 * out, mark the store down (limits per process, one warning) until Redis answers again (one info
 * line).
 */
export class RedisLimitStore {
  /** Connected, and the last command answered. */
  up = false;
  private warned = false;
  private closed = false;
  private failuresInARow = 0;
  private probe: NodeJS.Timeout | null = null;
  private readonly client: Redis & LeaseCommands;
  private readonly text: string;
  private readonly upListeners: Array<() => void> = [];
  private readonly errors: Counter<'operation'>;
  private readonly latency: Histogram<'operation'>;

  constructor(
    private readonly store: RedisStoreConfig,
    registry: Registry,
    private readonly logger: Logger,
  ) {
    this.text = limitStoreText(store);
    const registers = [registry];
    gaugeFrom(
      registry,
      'gateway_limit_store_up',
      'Whether the LIMIT_STORE Redis answers (1) or each process limits on its own until it does (0); the lowest over workers.',
      null,
      () => (this.up ? 1 : 0),
      'min',
    );
    this.errors = new Counter({
      name: 'gateway_limit_store_errors_total',
      help: 'LIMIT_STORE Redis commands that failed or took longer than 50 ms, by operation (lease, failures, probe), and failed connection attempts (connect).',
      labelNames: ['operation'],
      registers,
    });
    this.latency = new Histogram({
      name: 'gateway_limit_store_latency_seconds',
      help: 'Time LIMIT_STORE Redis took to answer, by operation (lease, failures, probe); requests never wait for it.',
      labelNames: ['operation'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05],
      registers,
    });
    this.client = new (loadRedisClient())({
      host: store.host,
      port: store.port,
      ...(store.username === null ? {} : { username: store.username }),
      ...(store.password === null ? {} : { password: store.password }),
      db: store.db,
      // The system's CAs and NODE_EXTRA_CA_CERTS; SNI only for a name (RFC 6066 forbids an address).
      ...(store.tls ? { tls: isIP(store.host) === 0 ? { servername: store.host } : {} } : {}),
      connectionName: 'edge-gateway',
      keyPrefix: 'edge-gateway:',
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      connectTimeout: 1000,
      // A command is sent now or fails now: nothing queues behind a Redis that is away.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      retryStrategy: (attempt) => Math.min(100 * attempt, MAX_RECONNECT_DELAY_MS),
    }) as Redis & LeaseCommands;
    this.client.defineCommand('takeLease', { numberOfKeys: 1, lua: TAKE_LEASE });
    this.client.on('ready', () => this.markUp());
    this.client.on('error', (error: Error) => {
      this.errors.inc({ operation: 'connect' });
      this.markDown(error);
    });
    this.client.on('close', () => this.markDown(null));
  }

  /** Called each time the store comes up: budgets start again from fresh leases. */
  onUp(listener: () => void): void {
    this.upListeners.push(listener);
  }

  /** Takes up to `want` tokens from the shared bucket `key` (capacity, refill per second). */
  async lease(key: string, capacity: number, perSecond: number, want: number): Promise<LeaseGrant> {
    const [granted, left] = await this.timed('lease', () =>
      this.client.takeLease(key, capacity, perSecond / 1000, want),
    );
    return { granted: Number(granted), left: Number(left) };
  }

  /**
   * Adds one failure of `key` to the window every process shares; the window starts at the
   * first failure and lasts `windowMs`, whichever process saw it.
   */
  async addFailure(key: string, windowMs: number): Promise<SharedFailureCount> {
    const results = await this.timed('failures', () =>
      this.client.multi().set(key, 0, 'PX', windowMs, 'NX').incr(key).pttl(key).exec(),
    );
    const failures = Number(results?.[1]?.[1]);
    const msLeft = Number(results?.[2]?.[1]);
    if (!Number.isFinite(failures) || !Number.isFinite(msLeft)) throw new Error('unexpected answer');
    return { failures, msLeft: msLeft < 0 ? windowMs : msLeft };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopProbe();
    this.client.disconnect();
  }

  private async timed<T>(operation: Operation, command: () => Promise<T>): Promise<T> {
    const started = process.hrtime.bigint();
    try {
      const result = await command();
      this.latency.observe({ operation }, Number(process.hrtime.bigint() - started) / 1e9);
      this.failuresInARow = 0;
      return result;
    } catch (error) {
      this.errors.inc({ operation });
      // A lost connection is known at once; a command that timed out on a live connection may be
      // this process's own stalled event loop: only several in a row mean Redis is slow.
      this.failuresInARow++;
      if (this.client.status !== 'ready' || this.failuresInARow >= FAILURES_BEFORE_FALLBACK)
        this.markDown(error as Error);
      throw error;
    }
  }

  private markUp(): void {
    if (this.closed || this.up) return;
    this.up = true;
    this.failuresInARow = 0;
    this.stopProbe();
    if (this.warned) {
      this.warned = false;
      this.logger.info({ limit_store: this.text }, 'LIMIT_STORE answers again: limits are shared again');
    }
    for (const listener of this.upListeners) listener();
  }

  private markDown(error: Error | null): void {
    if (this.closed) return;
    this.up = false;
    if (!this.warned) {
      this.warned = true;
      this.logger.warn(
        { limit_store: this.text, error: error === null ? 'connection closed' : this.scrub(error.message) },
        'LIMIT_STORE does not answer: each process limits on its own until it does',
      );
    }
    // Connected but failing (a timeout): only a command that answers tells it is back.
    this.probe ??= setInterval(() => {
      if (this.client.status !== 'ready') return;
      this.timed('probe', () => this.client.ping()).then(
        () => this.markUp(),
        () => undefined,
      );
    }, PROBE_INTERVAL_MS).unref();
  }

  private stopProbe(): void {
    if (this.probe !== null) clearInterval(this.probe);
    this.probe = null;
  }

  /** An error message with the password taken out, should a client library ever include it. */
  private scrub(message: string): string {
    const { password } = this.store;
    return password === null || password === '' ? message : message.split(password).join(REDACTED);
  }
}

/**
 * ioredis, loaded only by a process that has a Redis LIMIT_STORE: with LIMIT_STORE=memory (the
 * default) the client and its dependencies are never loaded, and cost that process no memory.
 */
function loadRedisClient(): typeof Redis {
  return (createRequire(import.meta.url)('ioredis') as { Redis: typeof Redis }).Redis;
}
