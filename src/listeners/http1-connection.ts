import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** A request Node handed over, waiting for its turn on its connection. */
export interface Http1Request {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly expectsContinue: boolean;
  /** When it arrived: its access-log duration includes the wait behind the requests before it. */
  readonly startedAt: number;
  /**
   * The client's address, read on arrival: undici destroys a request body it has sent, which
   * detaches `req.socket` before the exchange is recorded.
   */
  readonly client: string;
}

/**
 * Requests that may wait behind the one being served on a connection. Node parses every request
 * of a socket read at once; nginx and Envoy serve a connection's requests one at a time and stop
 * reading meanwhile, which is what the socket pause below does. More than this many in one read
 * is no client's honest pipelining: the connection is closed (issue 10 §2).
 */
export const MAX_PIPELINED_WAITING = 32;

/**
 * One client connection of an HTTP/1.1 port: the answer it is being served, the requests
 * pipelined behind it (forwarded one at a time, in order, so one connection never holds more
 * than one upstream request nor buffers many answers), and whether it ends after this answer.
 */
export class Http1Connection {
  /** The answer being written, from the serve() of its request to its 'close'. */
  current: ServerResponse | null = null;
  private currentRequest: Http1Request | null = null;
  /** This connection's current answer is its last: requests parsed behind it are not served. */
  closing = false;
  private readonly waiting: Http1Request[] = [];
  private pausedByUs = false;
  /** A raw answer (a 400 for a malformed request) that waits for the answer in progress. */
  private errorAnswer: string | null = null;

  constructor(
    readonly socket: Socket,
    private readonly serve: (request: Http1Request) => void,
    private readonly onPipeliningLimit: () => void,
  ) {}

  /** Serves `request` now, or queues it behind the answer in progress. */
  admit(request: Http1Request): void {
    if (this.socket.destroyed) return;
    if (this.closing || this.errorAnswer !== null) {
      // Nothing more is served on this connection: reading more of it is only work.
      this.socket.pause();
      return;
    }
    if (this.current === null) {
      this.start(request);
      return;
    }
    if (this.waiting.length >= MAX_PIPELINED_WAITING) {
      this.onPipeliningLimit();
      this.waiting.length = 0;
      this.socket.destroy();
      return;
    }
    this.waiting.push(request);
    if (!this.pausedByUs) {
      this.pausedByUs = true;
      this.socket.pause();
    }
  }

  /**
   * Answers a request Node could not parse once the answer in progress is out (so the client
   * reads the answers in the order of its requests), then closes.
   */
  answerErrorAfterCurrent(raw: string): void {
    // Still reading the current request: the error is in its own body, and this is its answer.
    if (this.current === null || this.currentRequest?.req.complete === false) {
      this.socket.end(raw);
      return;
    }
    this.errorAnswer ??= raw;
    this.waiting.length = 0;
  }

  private start(request: Http1Request): void {
    this.current = request.res;
    this.currentRequest = request;
    request.res.once('close', this.onAnswerClosed);
    this.serve(request);
  }

  private readonly onAnswerClosed = (): void => {
    this.current = null;
    this.currentRequest = null;
    if (this.socket.destroyed) {
      this.waiting.length = 0;
      return;
    }
    if (this.errorAnswer !== null) {
      this.socket.end(this.errorAnswer);
      return;
    }
    const next = this.waiting.shift();
    if (next !== undefined) {
      this.start(next);
      return;
    }
    if (this.pausedByUs) {
      this.pausedByUs = false;
      // Node pauses a socket itself while its answers wait to be written, and resumes it on
      // 'drain': reading must not start again before that.
      if (this.socket.writableNeedDrain) this.socket.once('drain', () => this.resumeIfIdle());
      else this.socket.resume();
    }
  };

  private resumeIfIdle(): void {
    if (!this.pausedByUs && !this.socket.destroyed) this.socket.resume();
  }
}
