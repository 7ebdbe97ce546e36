import { constants, type Http2Session } from 'node:http2';
import { destroySessionAfter } from './http2-teardown.js';

/** What a client session did too much of. */
export type Http2Abuse = 'rapid_reset' | 'ping_flood' | 'settings_flood';

/**
 * Between an abuser's GOAWAY and the end of its connection. The end is a TCP reset (the flood's
 * frames are still arriving unread), and a reset makes the client's kernel drop what it has
 * received and not yet read, GOAWAY included: the client must have had time to read it. 100 ms
 * was too short for a busy client once (the PING-flood test saw the close with no GOAWAY and not
 * even the first PING ACKs); nghttp2 refuses new streams after the GOAWAY, so the second of grace
 * costs little.
 */
const GOAWAY_GRACE_MS = 1000;

export const HTTP2_ABUSES: readonly Http2Abuse[] = ['rapid_reset', 'ping_flood', 'settings_flood'];

/** A token bucket: `burst` events at once, refilled at `perSecond`. */
interface Budget {
  readonly burst: number;
  readonly perSecond: number;
}

/**
 * Per-session budgets, far above what a gRPC client does (grpc-js pings at most every few
 * seconds when keepalive is on, sends SETTINGS once or twice per connection and cancels a call
 * only when its deadline passes) and below nghttp2's own rapid-reset limit (burst 1000, 33/s),
 * so that this guard, which counts and logs, acts first.
 */
export const HTTP2_BUDGETS: Readonly<Record<Http2Abuse, Budget>> = {
  rapid_reset: { burst: 200, perSecond: 20 },
  ping_flood: { burst: 50, perSecond: 5 },
  settings_flood: { burst: 20, perSecond: 2 },
};

class TokenBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(private readonly budget: Budget) {
    this.tokens = budget.burst;
    this.refilledAt = performance.now();
  }

  /** Spends one token; false when the budget is exhausted. */
  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(
      this.budget.burst,
      this.tokens + ((now - this.refilledAt) / 1000) * this.budget.perSecond,
    );
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * Watches one client HTTP/2 session for the floods that cost a server without costing the
 * client: streams opened and cancelled at once (CVE-2023-44487, "rapid reset"), PING and SETTINGS
 * floods. A session over budget gets GOAWAY (ENHANCE_YOUR_CALM) and is closed at once; the
 * client's other sessions and every other client are unaffected. Node and nghttp2 already bound
 * what they can see on their own (concurrent streams, rejected streams, invalid frames, header
 * lists, CONTINUATION frames, unacknowledged control frames); this covers what they let through.
 */
export class Http2SessionGuard {
  private readonly resets = new TokenBucket(HTTP2_BUDGETS.rapid_reset);
  private readonly pings = new TokenBucket(HTTP2_BUDGETS.ping_flood);
  private readonly settings = new TokenBucket(HTTP2_BUDGETS.settings_flood);
  private closed = false;

  constructor(
    private readonly session: Http2Session,
    private readonly onAbuse: (abuse: Http2Abuse) => void,
  ) {
    session.on('ping', () => {
      if (!this.pings.take()) this.close('ping_flood');
    });
    session.on('remoteSettings', () => {
      if (!this.settings.take()) this.close('settings_flood');
    });
  }

  /** A stream the client reset before the gateway had answered it. */
  streamAborted(): void {
    if (!this.resets.take()) this.close('rapid_reset');
  }

  private close(abuse: Http2Abuse): void {
    if (this.closed) return;
    this.closed = true;
    this.onAbuse(abuse);
    // GOAWAY with the reason (Node 20's destroy() would send only NO_ERROR), then drop the
    // connection and every stream on it: the client has shown it will not use them honestly.
    // The grace (GOAWAY_GRACE_MS) lets the client read the GOAWAY before the close, which, with the
    // client's frames still arriving, turns into a TCP reset that would discard it.
    // GOAWAY goes out now, from inside the frame callback (submitting a frame is safe there), so
    // that nghttp2 refuses the rest of the read's new streams; the teardown waits (http2-teardown).
    this.session.goaway(constants.NGHTTP2_ENHANCE_YOUR_CALM);
    destroySessionAfter(this.session, GOAWAY_GRACE_MS);
  }
}
