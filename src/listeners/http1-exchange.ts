import { performance } from 'node:perf_hooks';
import type { Admitted, BodyMeter } from '../auth/admission.js';
import { upstreamAnsweredText } from '../data-plane/core/answers.js';
import type { ExchangeRecord } from '../data-plane/core/exchange-record.js';
import {
  badHeadersError,
  classifyUpstreamError,
  failureLabel,
  upstreamFailureText,
} from '../data-plane/core/upstream-failure.js';
import type { ClientAnswer } from '../data-plane/h1/client-connection.js';
import type { UpstreamHandler } from '../data-plane/h1/upstream-pool.js';
import type { RateRefusal } from '../limits/request-rate-limiter.js';
import { downstreamResponseHeaders, upstreamRequestHeaders } from '../upstream/headers.js';
import type { Http1Listener, Http1Request } from './http1.js';

/**
 * How an exchange ended, beyond what its request says (method, target, client, arrival): the
 * fields of its ExchangeRecord that the listener and the exchange decide.
 */
export type Http1Ending = Omit<
  ExchangeRecord,
  'method' | 'url' | 'client' | 'startedAt' | 'status' | 'bytesIn' | 'bytesOut'
> & {
  readonly bytesIn?: number;
  readonly bytesOut?: number;
};

/** Headers of a short text answer, with its length: no chunked framing for a one-line body. */
export function textHeaders(
  text: string,
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> {
  return {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...extra,
  };
}

/**
 * One proxied request: the upstream pool's handler (src/data-plane/h1/upstream-pool.ts) that
 * writes the upstream's answer straight into the client's response, pausing the upstream when
 * the client is slow.
 */
export class ProxyExchange implements UpstreamHandler {
  private abortUpstream: ((error?: Error) => void) | null = null;
  private resumeUpstream: (() => void) | null = null;
  private status = 0;
  private pendingHeaders: string[] | null = null;
  private hideBody = false;
  private bytesIn = 0;
  private bytesOut = 0;
  private done = false;
  private sendTimer: NodeJS.Timeout | null = null;
  private forwardedAt = 0;
  private readonly res: ClientAnswer;

  private readonly identity: string;
  /** Gives back the credential's inflight= place (see Admission). */
  private readonly release: (() => void) | undefined;
  /** Takes a streamed body's bytes from the credential's bytes= budget, or null. */
  private readonly meter: BodyMeter | null;

  constructor(
    private readonly listener: Http1Listener,
    private readonly request: Http1Request,
    private readonly admitted: Admitted,
  ) {
    this.res = request.answer;
    this.identity = admitted.principal.identity;
    this.release = admitted.release;
    this.meter = admitted.meter;
  }

  start(): void {
    const { request, listener } = this;
    listener.options.metrics.inFlight.inc();
    this.res.onAbort(() => this.onClientClose());
    const withBody = request.hasBody;
    // Cuts a request whose body stops arriving for CLIENT_BODY_TIMEOUT: the clock runs only
    // while the gateway reads the body (not while the upstream is slow to take it), so an upload
    // that keeps sending, however long, and a slow answer after the body are never cut by it.
    if (withBody && !request.complete) request.watchBodySilence(() => this.onBodySilence());
    if (withBody && this.meter !== null) this.meterBody(this.meter);
    this.forwardedAt = performance.now();
    listener.pool.dispatch(
      {
        path: this.admitted.target,
        method: request.method,
        headers: upstreamRequestHeaders(
          request.rawHeaders,
          { connection: request.joinedHeader('connection') },
          {
            clientAddress: request.client,
            proto: listener.proto,
            originalHost: request.host,
            identity: this.identity,
            upstreamHost: listener.upstreamName,
          },
        ),
        body: withBody ? request.body : null,
      },
      this,
    );
  }

  private onBodySilence(): void {
    const { listener } = this;
    if (this.done) return;
    listener.options.protection.limits.clientTimeouts.body.inc();
    this.settle();
    this.abortUpstream?.(new Error('client body timeout'));
    listener.answerText(this.request, 408, 'request body timeout', this.ending('client body timeout'));
  }

  onConnect(abort: (error?: Error) => void): void {
    this.abortUpstream = abort;
    if (this.done) abort(new Error('client went away'));
  }

  onBodySent(bytes: number): void {
    this.bytesIn += bytes;
  }

  /** Set when the body crossed its credential's bytes= budget: how the exchange is answered. */
  private byteRefusal: RateRefusal | null = null;

  /**
   * A body whose bytes count against its credential's bytes= as they stream (no Content-Length):
   * each chunk is taken from the budget before the pool writes it. The chunk that crosses the
   * budget is never written; the body ends with an error instead, the pool aborts the upstream
   * request unfinished (so the upstream never takes it as a whole request), and the client gets
   * the same 429 as a declared body over the budget, on its still open connection.
   */
  private meterBody(meter: BodyMeter): void {
    this.request.body.gate = (chunk: Buffer): Error | null => {
      const refusal = meter(chunk.length);
      if (refusal === null) return null;
      this.byteRefusal = refusal;
      return new Error('credential byte limit');
    };
  }

  /** The body crossed its bytes= budget (see meterBody); its upstream request is aborted. */
  private cutOverBytes(refusal: RateRefusal): void {
    this.settle();
    if (this.res.headersSent) {
      this.res.destroy();
      this.listener.finish(this.request, this.status, this.ending('credential_limit:bytes'));
      return;
    }
    const { bytesIn, release } = this;
    this.listener.refuseOverCredentialLimit(this.request, refusal, this.identity, 'bytes', {
      bytesIn,
      release,
    });
  }

  /** The record fields this exchange decides. */
  private ending(error?: string): Http1Ending {
    return {
      identity: this.identity,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      error,
      release: this.release,
    };
  }

  onHeaders(statusCode: number, rawHeaders: string[], resume: () => void): boolean {
    if (statusCode < 200) return true;
    this.listener.options.metrics.upstreamLatency.observe((performance.now() - this.forwardedAt) / 1000);
    this.status = statusCode;
    this.resumeUpstream = resume;
    // Held until the first body bytes (Node would not send them earlier anyway): an upstream
    // that fails or hangs before sending any still gets a proper 502/504, not a cut connection.
    this.pendingHeaders = rawHeaders;
    this.hideBody = statusCode >= 500 && this.listener.options.protection.hideUpstreamErrors;
    return true;
  }

  /**
   * UPSTREAM_ERROR_BODIES=hide: an upstream's 5xx body (a stack trace, an internal path) is read
   * and dropped; the client gets the status, any Retry-After, and a short text of ours.
   */
  private answerHiddenError(): void {
    const raw = this.pendingHeaders ?? [];
    this.pendingHeaders = null;
    const text = upstreamAnsweredText(this.listener.upstreamName, this.status);
    const retryAfter = rawHeaderValue(raw, 'retry-after');
    this.res.writeHead(
      this.status,
      textHeaders(text, retryAfter === undefined ? {} : { 'retry-after': retryAfter }),
    );
    this.res.end(text);
    this.bytesOut = Buffer.byteLength(text);
    this.complete(this.status);
  }

  /** Writes the held status line and headers; false when the upstream's headers are unusable. */
  private flushHead(): boolean {
    const raw = this.pendingHeaders;
    if (raw === null) return true;
    this.pendingHeaders = null;
    try {
      this.res.writeHead(this.status, downstreamResponseHeaders(raw));
      return true;
    } catch {
      this.abortUpstream?.(badHeadersError());
      return false;
    }
  }

  onData(chunk: Buffer): boolean {
    if (this.hideBody) return true;
    if (!this.flushHead()) return false;
    this.bytesOut += chunk.length;
    if (this.res.write(chunk)) return true;
    this.res.onDrain(this.onClientDrain);
    this.sendTimer = setTimeout(this.onSendTimeout, this.listener.options.protection.timeouts.sendMs);
    return false;
  }

  private readonly onClientDrain = (): void => {
    this.clearSendTimer();
    this.resumeUpstream?.();
  };

  /**
   * The client has not taken the answer for CLIENT_SEND_TIMEOUT: the exchange is cut and its
   * upstream connection freed, so that clients that never read cannot hold the pool.
   */
  private readonly onSendTimeout = (): void => {
    this.sendTimer = null;
    if (this.done) return;
    this.listener.options.protection.limits.clientTimeouts.send.inc();
    this.complete(this.status, 'client send timeout');
    // A reset, not a FIN: the FIN would wait behind the unread bytes in the kernel's buffers,
    // which the client is not taking either.
    this.res.reset();
    this.abortUpstream?.(new Error('client send timeout'));
  };

  private clearSendTimer(): void {
    if (this.sendTimer !== null) {
      clearTimeout(this.sendTimer);
      this.sendTimer = null;
    }
  }

  onComplete(): void {
    if (this.hideBody) {
      this.answerHiddenError();
      return;
    }
    if (!this.flushHead()) {
      this.settleError(badHeadersError());
      return;
    }
    this.res.end();
    this.complete(this.status);
  }

  /** Called from socket and stream events of the upstream pool: a throw would take the process down. */
  onError(error: Error): void {
    try {
      this.settleError(error);
    } catch (failure) {
      this.listener.options.logger.error(
        { listener: this.listener.options.config.name, err: (failure as Error).message },
        'failed to answer an upstream error; connection cut',
      );
      this.res.destroy();
    }
  }

  private settleError(error: Error): void {
    if (this.done) return;
    if (this.byteRefusal !== null) {
      this.cutOverBytes(this.byteRefusal);
      return;
    }
    const { listener } = this;
    if (this.res.headersSent) {
      // Mid-body failure: the status line is gone, so the only honest signal is a cut connection.
      this.res.destroy();
      this.complete(this.status, failureLabel(error));
      return;
    }
    this.settle();
    if (this.res.destroyed || this.res.finished) {
      // The client went away first (and aborted the exchange), or its request broke and the
      // connection answered it: not the upstream's failure.
      listener.finish(this.request, 499, { ...this.ending('client closed'), bytesOut: 0 });
      return;
    }
    const failure = classifyUpstreamError(error);
    listener.options.metrics.upstreamErrors[failure.kind].inc();
    listener.answerText(
      this.request,
      failure.httpStatus,
      upstreamFailureText(failure, listener.upstreamName),
      { ...this.ending(failureLabel(error)), bytesOut: 0 },
    );
  }

  private onClientClose(): void {
    if (this.done || this.res.finished) return;
    this.abortUpstream?.(new Error('client went away'));
    this.complete(499, 'client closed');
  }

  /** The exchange's outcome is decided: it leaves the in-flight count and gives its upstream connection back. */
  private settle(): void {
    this.done = true;
    this.clearSendTimer();
    this.listener.options.metrics.inFlight.dec();
    this.listener.upstreamReleased();
  }

  private complete(status: number, error?: string): void {
    if (this.done) return;
    this.settle();
    this.listener.finish(this.request, status, this.ending(error));
  }
}

/** The value of a header in a flat [name, value, ...] list (first one), or undefined. */
function rawHeaderValue(raw: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) return raw[i + 1];
  }
  return undefined;
}
