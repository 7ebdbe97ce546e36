import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  connect,
  constants,
  type OutgoingHttpHeaders,
} from 'node:http2';

/** The per-stream flow-control window toward the upstream: 64 KiB, HTTP/2's default. */
export const UPSTREAM_STREAM_WINDOW_BYTES = 16 * 1024;

export interface Http2UpstreamOptions {
  readonly connectTimeoutMs: number;
  /** Sessions kept open to the upstream, at most. */
  readonly maxSessions: number;
  /** Streams put on one session before another is opened (bounded by the peer's own limit). */
  readonly streamsPerSession: number;
}

interface PooledSession {
  readonly session: ClientHttp2Session;
  active: number;
}

/**
 * HTTP/2 sessions to one upstream (the collector's gRPC port): streams are multiplexed over a
 * few long-lived sessions, a new one is opened only when the others are full, and a session that
 * fails, times out connecting or receives GOAWAY leaves the pool, so the next request reconnects.
 */
export class Http2SessionPool {
  private readonly sessions: PooledSession[] = [];
  sessionsOpened = 0;

  constructor(
    readonly origin: URL,
    private readonly options: Http2UpstreamOptions,
  ) {}

  get openSessions(): number {
    return this.sessions.length;
  }

  request(headers: OutgoingHttpHeaders, endStream: boolean): ClientHttp2Stream {
    const pooled = this.pick();
    pooled.active++;
    const stream = pooled.session.request(headers, { endStream });
    stream.once('close', () => {
      pooled.active--;
    });
    return stream;
  }

  close(): Promise<void> {
    const closing = this.sessions.splice(0).map(
      ({ session }) =>
        new Promise<void>((resolve) => {
          if (session.destroyed) return resolve();
          session.close(() => resolve());
        }),
    );
    return Promise.all(closing).then(() => undefined);
  }

  private pick(): PooledSession {
    let best: PooledSession | undefined;
    for (const candidate of this.sessions) {
      if (best === undefined || candidate.active < best.active) best = candidate;
    }
    if (
      best !== undefined &&
      (best.active < this.capacity(best) || this.sessions.length >= this.options.maxSessions)
    ) {
      return best;
    }
    return this.open();
  }

  private capacity(pooled: PooledSession): number {
    const peerLimit = pooled.session.remoteSettings?.maxConcurrentStreams ?? this.options.streamsPerSession;
    return Math.min(peerLimit, this.options.streamsPerSession);
  }

  private open(): PooledSession {
    const session = connect(this.origin, {
      // How much of each answer the upstream may send before the gateway has passed it on. Node
      // keeps the connection window open on its own as data arrives, so this per-stream window
      // is what bounds an answer waiting on a client that does not read (issue 10 §6: at 1 MiB,
      // 3,200 such streams held 3.3 GB). OTLP answers are a few bytes; large bodies go the other
      // way, where the upstream's own window governs.
      settings: { enablePush: false, initialWindowSize: UPSTREAM_STREAM_WINDOW_BYTES },
      maxSessionMemory: 64,
    });
    this.sessionsOpened++;
    const pooled: PooledSession = { session, active: 0 };
    this.sessions.push(pooled);
    const remove = (): void => {
      const index = this.sessions.indexOf(pooled);
      if (index !== -1) this.sessions.splice(index, 1);
    };
    const connectTimer = setTimeout(() => {
      session.destroy(
        Object.assign(new Error(`connect to ${this.origin.host} timed out`), {
          code: 'ERR_GATEWAY_CONNECT_TIMEOUT',
        }),
      );
    }, this.options.connectTimeoutMs);
    session.once('connect', () => {
      clearTimeout(connectTimer);
      // Larger connection window than the 64 KiB default, so big exports are not throttled.
      session.setLocalWindowSize(8 * 1024 * 1024);
    });
    session.once('close', () => {
      clearTimeout(connectTimer);
      remove();
    });
    session.once('goaway', remove);
    // Errors surface on the streams; the session itself only has to leave the pool.
    session.on('error', remove);
    session.unref();
    return pooled;
  }
}

export const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_INTERNAL_ERROR } = constants;
