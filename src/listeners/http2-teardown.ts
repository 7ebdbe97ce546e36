import type { Http2Session } from 'node:http2';

/*
 * A session must never be closed or destroyed from inside one of its own frame callbacks
 * (`stream`, `ping`, `remoteSettings`, a stream's `aborted`...): Node calls them while nghttp2
 * is still working through the frames of the same socket read, and on Node 20 a `close()` that
 * finds no open stream destroys the session under nghttp2's feet: glibc aborts the process with
 * heap corruption (issue 10 §1: 22 wrong-key HEADERS frames in one write past
 * AUTH_FAILURE_LIMIT). Every teardown a callback decides on waits for the next turn of the event
 * loop, when nghttp2 has returned.
 */

/** GOAWAY (NO_ERROR) and a graceful close, once nghttp2 is done with the current read. */
export function closeSessionOutsideCallbacks(session: Http2Session): void {
  setImmediate(() => {
    if (!session.closed && !session.destroyed) session.close();
  });
}

/** Drops the connection after `graceMs` (always outside nghttp2's callbacks: a timer runs it). */
export function destroySessionAfter(session: Http2Session, graceMs: number): void {
  setTimeout(() => session.destroy(), graceMs).unref();
}
