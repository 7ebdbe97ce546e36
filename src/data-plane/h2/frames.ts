/**
 * HTTP/2 frames on the wire (RFC 9113 §4.1): a 9-octet header (24-bit length, type, flags,
 * reserved bit + 31-bit stream id) and a payload. The reader takes socket chunks as they come and
 * hands back whole frames; a frame that lies inside one chunk is a view of it (no copy), only a
 * frame split across chunks is assembled.
 */

export const FRAME_HEADER_LENGTH = 9;
export const DEFAULT_MAX_FRAME_SIZE = 16_384;
export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  /** The payload, a view of the socket's chunk where the frame lay inside one. */
  readonly payload: Buffer;
  /** Header and payload as they came, for passing the frame on unchanged. */
  readonly raw: Buffer;
}

/** A connection error (RFC 9113 §5.4.1): the connection ends with GOAWAY carrying `code`. */
export interface ConnectionError {
  readonly code: number;
  readonly reason: string;
}

/**
 * Cuts a byte stream into frames. With `expectPreface` the stream must start with the client
 * connection preface (the server side of a connection).
 */
export class FrameReader {
  /** The largest payload accepted (SETTINGS_MAX_FRAME_SIZE this side advertised). */
  maxFrameSize: number;
  private pending: Buffer | null = null;
  private prefaceLeft: number;

  constructor(options: { maxFrameSize?: number; expectPreface?: boolean } = {}) {
    this.maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    this.prefaceLeft = options.expectPreface ? CLIENT_PREFACE.length : 0;
  }

  /** Appends the frames complete after `chunk` to `out`; an error ends the connection. */
  push(chunk: Buffer, out: Frame[]): ConnectionError | null {
    let data = chunk;
    if (this.pending !== null) {
      data = Buffer.concat([this.pending, chunk]);
      this.pending = null;
    }
    let offset = 0;
    if (this.prefaceLeft > 0) {
      const seen = CLIENT_PREFACE.length - this.prefaceLeft;
      const take = Math.min(this.prefaceLeft, data.length);
      if (CLIENT_PREFACE.compare(data, 0, take, seen, seen + take) !== 0)
        return { code: ErrorCode.PROTOCOL_ERROR, reason: 'bad client connection preface' };
      this.prefaceLeft -= take;
      offset = take;
    }
    while (data.length - offset >= FRAME_HEADER_LENGTH) {
      const length = data.readUIntBE(offset, 3);
      if (length > this.maxFrameSize)
        return {
          code: ErrorCode.FRAME_SIZE_ERROR,
          reason: `frame of ${length} octets over ${this.maxFrameSize}`,
        };
      const end = offset + FRAME_HEADER_LENGTH + length;
      if (end > data.length) break;
      out.push({
        type: data[offset + 3]!,
        flags: data[offset + 4]!,
        streamId: data.readUInt32BE(offset + 5) & 0x7fff_ffff,
        payload: data.subarray(offset + FRAME_HEADER_LENGTH, end),
        raw: data.subarray(offset, end),
      });
      offset = end;
    }
    if (offset < data.length) this.pending = data.subarray(offset);
    return null;
  }
}

/** A frame's 9-octet header followed by `payload`, in one buffer. */
export function encodeFrame(type: number, flags: number, streamId: number, payload?: Buffer): Buffer {
  const length = payload?.length ?? 0;
  const frame = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + length);
  frame.writeUIntBE(length, 0, 3);
  frame[3] = type;
  frame[4] = flags;
  frame.writeUInt32BE(streamId & 0x7fff_ffff, 5);
  if (payload !== undefined) payload.copy(frame, FRAME_HEADER_LENGTH);
  return frame;
}

/** A header block as HEADERS plus as many CONTINUATION frames as `maxFrameSize` needs. */
export function encodeHeaderBlock(
  streamId: number,
  block: Buffer,
  endStream: boolean,
  maxFrameSize: number,
): Buffer[] {
  const frames: Buffer[] = [];
  let offset = 0;
  do {
    const end = Math.min(block.length, offset + maxFrameSize);
    const first = offset === 0;
    const flags = (end === block.length ? Flag.END_HEADERS : 0) | (first && endStream ? Flag.END_STREAM : 0);
    frames.push(
      encodeFrame(
        first ? FrameType.HEADERS : FrameType.CONTINUATION,
        flags,
        streamId,
        block.subarray(offset, end),
      ),
    );
    offset = end;
  } while (offset < block.length);
  return frames;
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(code, 0);
  return encodeFrame(FrameType.RST_STREAM, 0, streamId, payload);
}

export function goawayFrame(lastStreamId: number, code: number): Buffer {
  const payload = Buffer.allocUnsafe(8);
  payload.writeUInt32BE(lastStreamId & 0x7fff_ffff, 0);
  payload.writeUInt32BE(code, 4);
  return encodeFrame(FrameType.GOAWAY, 0, 0, payload);
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(increment & 0x7fff_ffff, 0);
  return encodeFrame(FrameType.WINDOW_UPDATE, 0, streamId, payload);
}

/** A SETTINGS payload's (id, value) pairs; null if its length is not a multiple of 6. */
export function parseSettings(payload: Buffer): [number, number][] | null {
  if (payload.length % 6 !== 0) return null;
  const settings: [number, number][] = [];
  for (let offset = 0; offset < payload.length; offset += 6)
    settings.push([payload.readUInt16BE(offset), payload.readUInt32BE(offset + 2)]);
  return settings;
}

export function settingsFrame(settings: readonly (readonly [number, number])[]): Buffer {
  const payload = Buffer.allocUnsafe(settings.length * 6);
  settings.forEach(([id, value], index) => {
    payload.writeUInt16BE(id, index * 6);
    payload.writeUInt32BE(value, index * 6 + 2);
  });
  return encodeFrame(FrameType.SETTINGS, 0, 0, payload);
}

/**
 * The header block fragment of a HEADERS frame: without its padding and priority fields; null
 * if the padding is longer than the payload (a connection error PROTOCOL_ERROR).
 */
export function headerBlockFragment(frame: Frame): Buffer | null {
  let start = 0;
  let end = frame.payload.length;
  if (frame.type === FrameType.HEADERS) {
    if (frame.flags & Flag.PADDED) {
      if (end < 1) return null;
      end -= frame.payload[0]!;
      start = 1;
    }
    if (frame.flags & Flag.PRIORITY) start += 5;
  }
  return start > end ? null : frame.payload.subarray(start, end);
}
