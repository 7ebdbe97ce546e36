import {
  type ClientHttp2Stream,
  constants,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import type { Admitted, BodyMeter } from '../auth/admission.js';
import { upstreamAnsweredText } from '../data-plane/core/answers.js';
import type { ExchangeRecord } from '../data-plane/core/exchange-record.js';
import { addForwardedHeaders, clientAddress } from '../data-plane/core/forwarding.js';
import {
  BAD_RESPONSE,
  classifyUpstreamError,
  failureLabel,
  TIMEOUT,
  upstreamFailureText,
} from '../data-plane/core/upstream-failure.js';
import type { RateRefusal } from '../limits/request-rate-limiter.js';
import { DROPPED_REQUEST_HEADERS, DROPPED_RESPONSE_HEADERS } from '../upstream/headers.js';
import { NGHTTP2_CANCEL } from '../upstream/http2-upstream.js';
import type { GrpcListener } from './grpc.js';
import {
  answerWhenRequestEnds,
  encodeGrpcMessage,
  GRPC_DEADLINE_EXCEEDED,
  GRPC_RESOURCE_EXHAUSTED,
  GRPC_UNAVAILABLE,
} from './grpc-answers.js';

/** A call as it arrived: what its exchange record is made of, besides how it ended. */
export interface GrpcCall {
  readonly stream: ServerHttp2Stream;
  readonly headers: IncomingHttpHeaders;
  readonly startedAt: number;
}

/** How a call ended: the fields of its ExchangeRecord that the listener and the exchange decide. */
export type GrpcEnding = Omit<
  ExchangeRecord,
  'method' | 'url' | 'client' | 'startedAt' | 'status' | 'bytesIn' | 'bytesOut'
> & {
  readonly bytesIn?: number;
  readonly bytesOut?: number;
};

/** gRPC statuses that mean the server failed (UNKNOWN, INTERNAL, DATA_LOSS). */
const SERVER_FAULT_STATUSES = new Set(['2', '13', '15']);

/**
 * Bytes one leg of a call may have waiting to be written before the other leg is paused. A
 * stream's own highWaterMark (16 KiB) is exactly one DATA frame: pausing at it costs a pause,
 * a write completion and a resume for every frame of a 190 KB export.
 */
export const WRITE_BUFFER_LIMIT = 256 * 1024;

/** Writes a chunk read from one leg to the other, pausing the reader while the writer is full. */
function relay(chunk: Buffer, from: Duplex, to: Duplex): void {
  to.write(chunk);
  if (to.writableLength > WRITE_BUFFER_LIMIT) {
    from.pause();
    to.once('drain', () => from.resume());
  }
}

function forwardedRequestHeaders(
  headers: IncomingHttpHeaders,
  listener: GrpcListener,
  stream: ServerHttp2Stream,
  identity: string,
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {
    ':method': headers[':method'],
    ':path': headers[':path'],
    ':scheme': listener.options.config.upstream.protocol === 'https:' ? 'https' : 'http',
    ':authority': listener.options.config.upstream.host,
  };
  for (const name in headers) {
    // Pseudo-headers are set above; `te: trailers` is the one TE value HTTP/2 allows, and gRPC needs it.
    if (name.charCodeAt(0) === 58 /* : */) continue;
    if (name === 'te' ? headers.te !== 'trailers' : DROPPED_REQUEST_HEADERS.has(name)) continue;
    out[name] = headers[name];
  }
  const previousFor = headers['x-forwarded-for'];
  addForwardedHeaders(
    Array.isArray(previousFor) ? previousFor.join(', ') : previousFor,
    {
      clientAddress: clientAddress(stream.session?.socket?.remoteAddress),
      proto: listener.proto,
      originalHost: headers[':authority'],
      identity,
    },
    (name, value) => {
      out[name] = value;
    },
  );
  return out;
}

function filterResponseHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (!DROPPED_RESPONSE_HEADERS.has(name)) out[name] = headers[name];
  }
  return out;
}

/** One proxied gRPC call: client stream <-> upstream stream, headers, data and trailers. */
export class GrpcExchange {
  private upstream: ClientHttp2Stream | null = null;
  private trailers: OutgoingHttpHeaders | null = null;
  private grpcStatus: string | undefined;
  private bytesIn = 0;
  private bytesOut = 0;
  private timer: NodeJS.Timeout | null = null;
  /** The call's outcome is decided (an answer may still wait for the end of the request). */
  private settled = false;
  private done = false;
  private forwardedAt = 0;
  private readonly stream: ServerHttp2Stream;
  private readonly headers: IncomingHttpHeaders;

  private readonly identity: string;
  /** Gives back the credential's inflight= place (see Admission). */
  private readonly release: (() => void) | undefined;
  /** Takes the request's bytes from the credential's bytes= budget as they arrive, or null. */
  private readonly meter: BodyMeter | null;

  constructor(
    private readonly listener: GrpcListener,
    private readonly call: GrpcCall,
    private readonly flags: number,
    admitted: Admitted,
  ) {
    this.stream = call.stream;
    this.headers = call.headers;
    this.identity = admitted.principal.identity;
    this.release = admitted.release;
    this.meter = admitted.meter;
  }

  start(): void {
    const { stream, listener } = this;
    listener.options.metrics.inFlight.inc();
    const endStream = (this.flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0 || stream.readableEnded;
    this.forwardedAt = performance.now();
    let upstream: ClientHttp2Stream;
    try {
      upstream = listener.pool.request(
        forwardedRequestHeaders(this.headers, listener, stream, this.identity),
        endStream,
      );
    } catch (error) {
      this.failBeforeResponse(error);
      return;
    }
    this.upstream = upstream;
    this.timer = setTimeout(() => this.onTimeout(), listener.options.responseTimeoutMs);

    upstream.on('response', (headers, flags) => this.onResponse(headers, flags));
    upstream.on('trailers', (trailers) => {
      this.trailers = this.hideServerFault(filterResponseHeaders(trailers));
      const status = trailers['grpc-status'];
      if (status !== undefined) this.grpcStatus = String(status);
    });
    upstream.on('data', (chunk: Buffer) => this.forwardResponseData(chunk));
    upstream.on('end', () => {
      if (stream.headersSent && !stream.writableEnded) stream.end();
    });
    upstream.on('error', (error: Error) => this.onUpstreamError(error));
    upstream.on('close', () => this.onUpstreamClose());

    stream.on('wantTrailers', () => {
      // An upstream that ends the call without a grpc-status has failed it.
      const trailers = this.trailers ?? this.failureTrailers(GRPC_UNAVAILABLE, this.failedText());
      // A stream reset meanwhile refuses trailers; a throw in an event handler would end the process.
      if (!stream.destroyed && !stream.closed) stream.sendTrailers(trailers);
    });
    stream.on('close', () => this.onClientClose());
    if (!endStream) {
      stream.on('data', this.forwardRequestData);
      stream.on('end', () => upstream.end());
    }
  }

  private sendTimer: NodeJS.Timeout | null = null;

  /** Upstream to client, paused while the client does not take it, and cut after CLIENT_SEND_TIMEOUT. */
  private forwardResponseData(chunk: Buffer): void {
    const { stream, upstream, listener } = this;
    this.bytesOut += chunk.length;
    this.timer?.refresh();
    stream.write(chunk);
    if (upstream === null || this.sendTimer !== null) return;
    if (stream.writableLength <= listener.writeBufferLimit(stream.session)) return;
    upstream.pause();
    this.sendTimer = setTimeout(this.onSendTimeout, listener.options.protection.timeouts.sendMs);
    stream.once('drain', this.onClientDrain);
  }

  private readonly onClientDrain = (): void => {
    this.clearSendTimer();
    this.upstream?.resume();
  };

  /** The client has not taken the answer for CLIENT_SEND_TIMEOUT: both legs are reset. */
  private readonly onSendTimeout = (): void => {
    this.sendTimer = null;
    if (this.done) return;
    this.listener.options.protection.limits.clientTimeouts.send.inc();
    this.upstream?.close(NGHTTP2_CANCEL);
    this.complete('client send timeout');
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  };

  private clearSendTimer(): void {
    if (this.sendTimer !== null) {
      clearTimeout(this.sendTimer);
      this.sendTimer = null;
    }
  }

  private upstreamCorked = false;
  private readonly uncorkUpstream = (): void => {
    this.upstreamCorked = false;
    this.upstream?.uncork();
  };

  private readonly forwardRequestData = (chunk: Buffer): void => {
    const upstream = this.upstream;
    if (upstream === null) return;
    this.bytesIn += chunk.length;
    if (this.meter !== null) {
      const refusal = this.meter(chunk.length);
      if (refusal !== null) {
        this.cutOverBytes(refusal);
        return;
      }
    }
    // DATA frames read from one socket read arrive back to back: one writev for all of them.
    if (!this.upstreamCorked) {
      this.upstreamCorked = true;
      upstream.cork();
      process.nextTick(this.uncorkUpstream);
    }
    relay(chunk, this.stream, upstream);
  };

  /**
   * The request crossed its credential's bytes= budget: the upstream stream is cancelled (the
   * collector never takes a cut message as an export) and the call gets RESOURCE_EXHAUSTED with
   * RetryInfo, like a request refused at the door; its answer, when already under way, ends
   * with that status in its trailers.
   */
  private cutOverBytes(refusal: RateRefusal): void {
    if (this.settled) return;
    this.settled = true;
    this.clearTimer();
    this.stream.off('data', this.forwardRequestData);
    this.upstream?.close(NGHTTP2_CANCEL);
    const ending = { identity: this.identity, error: 'credential_limit:bytes' };
    if (this.stream.headersSent) {
      this.failAfterResponse(GRPC_RESOURCE_EXHAUSTED, refusal.text, ending.error);
      return;
    }
    this.done = true;
    this.clearSendTimer();
    this.listener.options.metrics.inFlight.dec();
    this.listener.refuseOverCredentialLimit(this.call, refusal, {
      ...ending,
      bytesIn: this.bytesIn,
      release: this.release,
    });
  }

  private onResponse(headers: IncomingHttpHeaders, flags: number): void {
    const { stream } = this;
    this.listener.options.metrics.upstreamLatency.observe((performance.now() - this.forwardedAt) / 1000);
    if (stream.destroyed || this.settled) return;
    const trailersOnly = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    if (trailersOnly && headers['grpc-status'] !== undefined)
      this.grpcStatus = String(headers['grpc-status']);
    // From here on UPSTREAM_TIMEOUT is the longest silence between response messages: an
    // upstream that sends headers and then hangs does not hold the call forever.
    if (trailersOnly) this.clearTimer();
    else this.timer?.refresh();
    try {
      stream.respond(
        trailersOnly ? this.hideServerFault(filterResponseHeaders(headers)) : filterResponseHeaders(headers),
        trailersOnly ? { endStream: true } : { waitForTrailers: true },
      );
    } catch (error) {
      this.upstream?.close(NGHTTP2_CANCEL);
      this.failBeforeResponse(error);
    }
  }

  private onTimeout(): void {
    this.timer = null;
    if (this.settled) return;
    this.listener.options.metrics.upstreamErrors.timeout.inc();
    const text = upstreamFailureText(TIMEOUT, this.listener.upstreamName);
    if (this.stream.headersSent) this.failAfterResponse(GRPC_DEADLINE_EXCEEDED, text, 'timeout');
    else this.answer(GRPC_DEADLINE_EXCEEDED, text, 'timeout');
    this.upstream?.close(NGHTTP2_CANCEL);
  }

  private onUpstreamError(error: Error): void {
    if (this.settled) return;
    if (!this.stream.headersSent) {
      this.failBeforeResponse(error);
      return;
    }
    this.listener.options.metrics.upstreamErrors.bad_response.inc();
    this.failAfterResponse(GRPC_UNAVAILABLE, this.failedText(), failureLabel(error));
  }

  /**
   * The upstream broke the call after its response headers went out: the client still gets a
   * proper gRPC ending, trailers with the status, instead of a bare stream reset.
   */
  private failAfterResponse(grpcStatus: number, message: string, error: string): void {
    const { stream } = this;
    this.trailers = this.failureTrailers(grpcStatus, message);
    this.grpcStatus = String(grpcStatus);
    if (!stream.destroyed && !stream.writableEnded) stream.end();
    this.complete(error);
  }

  /**
   * With UPSTREAM_ERROR_BODIES=hide, the grpc-message of a status that means the upstream itself
   * failed (UNKNOWN, INTERNAL, DATA_LOSS: where stack traces and internals turn up) is replaced by
   * a short text naming the upstream and the status. Other statuses keep their message: it tells
   * the client what to do (RESOURCE_EXHAUSTED, UNAVAILABLE, INVALID_ARGUMENT, ...).
   */
  private hideServerFault(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
    const status = String(headers['grpc-status'] ?? '');
    if (!this.listener.options.protection.hideUpstreamErrors || !SERVER_FAULT_STATUSES.has(status))
      return headers;
    headers['grpc-message'] = encodeGrpcMessage(
      upstreamAnsweredText(this.listener.upstreamName, `grpc-status ${status}`),
    );
    return headers;
  }

  private failureTrailers(grpcStatus: number, message: string): OutgoingHttpHeaders {
    return { 'grpc-status': String(grpcStatus), 'grpc-message': encodeGrpcMessage(message) };
  }

  private failedText(): string {
    return upstreamFailureText(BAD_RESPONSE, this.listener.upstreamName);
  }

  private onUpstreamClose(): void {
    this.clearTimer();
    const { stream } = this;
    if (this.settled) return;
    if (!stream.headersSent) {
      // Closed (RST_STREAM) before any answer.
      this.failBeforeResponse(
        Object.assign(new Error('upstream reset the stream'), { code: 'ERR_UPSTREAM_RESET' }),
      );
      return;
    }
    if (!stream.writableEnded && !stream.destroyed) {
      // Closed or reset before its trailers: the call failed upstream.
      this.listener.options.metrics.upstreamErrors.bad_response.inc();
      this.failAfterResponse(GRPC_UNAVAILABLE, this.failedText(), 'upstream closed mid-response');
      return;
    }
    this.complete();
  }

  private onClientClose(): void {
    const upstream = this.upstream;
    if (upstream !== null && !upstream.closed && !upstream.destroyed) upstream.close(NGHTTP2_CANCEL);
    this.complete(
      this.stream.rstCode !== 0 && this.stream.rstCode !== undefined ? 'client reset' : undefined,
    );
  }

  private failBeforeResponse(error: unknown): void {
    if (this.settled) return;
    const failure = classifyUpstreamError(error);
    this.listener.options.metrics.upstreamErrors[failure.kind].inc();
    this.answer(
      failure.grpcStatus,
      upstreamFailureText(failure, this.listener.upstreamName),
      failureLabel(error),
    );
  }

  private answer(grpcStatus: number, message: string, error: string): void {
    if (this.settled) return;
    this.settled = true;
    this.clearTimer();
    this.grpcStatus = String(grpcStatus);
    // Nothing more goes upstream; the rest of the request is read and dropped.
    this.stream.off('data', this.forwardRequestData);
    answerWhenRequestEnds(this.stream, { grpcStatus, message }, () => this.complete(error));
  }

  private complete(error?: string): void {
    if (this.done) return;
    this.done = true;
    this.settled = true;
    this.clearTimer();
    this.clearSendTimer();
    const { listener } = this;
    listener.options.metrics.inFlight.dec();
    listener.finish(this.call, {
      grpcStatus: this.grpcStatus,
      identity: this.identity,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      error,
      release: this.release,
    });
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}
