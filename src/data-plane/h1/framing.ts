import type { Socket } from 'node:net';

/**
 * HTTP/1.1 body framing as both legs write it (the client leg's answers, the upstream pool's
 * request bodies): a held head leaves with the first chunk, a chunked body gets its size line and
 * CRLF around each chunk, all in one corked write; a chunk of a Content-Length body after the head
 * is written as it is.
 */

const CRLF = '\r\n';

/** The last chunk of a chunked body (no trailers). */
export const LAST_CHUNK = Buffer.from(`0${CRLF}${CRLF}`, 'latin1');

/**
 * Writes `chunk` (not empty: chunked, that would end the body) behind `head`, if one is still
 * held. Returns what the socket's last write returned: false asks the writer to wait for 'drain'.
 */
export function writeBodyChunk(
  socket: Socket,
  head: string | null,
  chunk: Buffer,
  chunked: boolean,
): boolean {
  if (head === null && !chunked) return socket.write(chunk);
  socket.cork();
  if (head !== null) socket.write(head, 'latin1');
  let more: boolean;
  if (chunked) {
    socket.write(`${chunk.length.toString(16)}${CRLF}`, 'latin1');
    socket.write(chunk);
    more = socket.write(CRLF, 'latin1');
  } else more = socket.write(chunk);
  socket.uncork();
  return more;
}
