import { connect, type Socket } from 'node:net';

/**
 * A raw HTTP/2 client that writes frames byte by byte, for the attacks a well-behaved client
 * library refuses to send (floods, refused streams, oversized header blocks, CONTINUATION
 * chains). It reads just enough of the server's frames to tell GOAWAY, RST_STREAM and HEADERS
 * apart; header blocks are encoded with HPACK literals (no Huffman), never decoded.
 */

export const FRAME = {
  DATA: 0x0,
  HEADERS: 0x1,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header.writeUInt8(type, 3);
  header.writeUInt8(flags, 4);
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1); `high` holds the representation's flag bits. */
function hpackInteger(value: number, prefixBits: number, high: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([high | value]);
  const bytes = [high | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([hpackInteger(bytes.length, 7, 0x00), bytes]);
}

/** Literal header field without indexing, new name (RFC 7541 §6.2.2). */
export function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00]), hpackString(name), hpackString(value)]);
}

/** Literal header field with incremental indexing, new name: it enters the dynamic table (§6.2.1). */
export function literalIndexed(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x40]), hpackString(name), hpackString(value)]);
}

/** Indexed header field (§6.1): 62 is the newest dynamic-table entry. */
export function indexed(index: number): Buffer {
  return hpackInteger(index, 7, 0x80);
}

export const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

/** The header block of a gRPC request, plus extra fields. */
export function requestBlock(
  extra: Readonly<Record<string, string>> = {},
  more: Buffer[] = [],
  path = EXPORT_PATH,
): Buffer {
  const fields: Buffer[] = [
    literal(':method', 'POST'),
    literal(':scheme', 'http'),
    literal(':path', path),
    literal(':authority', '127.0.0.1'),
    literal('content-type', 'application/grpc'),
    literal('te', 'trailers'),
  ];
  for (const [name, value] of Object.entries(extra)) fields.push(literal(name, value));
  return Buffer.concat([...fields, ...more]);
}

export function headersFrame(streamId: number, block: Buffer, endStream: boolean, endHeaders = true): Buffer {
  return frame(
    FRAME.HEADERS,
    (endStream ? FLAG.END_STREAM : 0) | (endHeaders ? FLAG.END_HEADERS : 0),
    streamId,
    block,
  );
}

/** A header block as HEADERS plus CONTINUATION frames of at most 16 KiB (the default frame size). */
export function headerBlockFrames(streamId: number, block: Buffer, endStream: boolean): Buffer {
  const frames: Buffer[] = [];
  const size = 16 * 1024;
  for (let offset = 0; offset < block.length || offset === 0; offset += size) {
    const last = offset + size >= block.length;
    const part = block.subarray(offset, offset + size);
    frames.push(
      offset === 0
        ? headersFrame(streamId, part, endStream, last)
        : frame(FRAME.CONTINUATION, last ? FLAG.END_HEADERS : 0, streamId, part),
    );
  }
  return Buffer.concat(frames);
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code);
  return frame(FRAME.RST_STREAM, 0, streamId, payload);
}

export function settingsFrame(entries: ReadonlyArray<readonly [id: number, value: number]> = []): Buffer {
  const payload = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, value], i) => {
    payload.writeUInt16BE(id, i * 6);
    payload.writeUInt32BE(value, i * 6 + 2);
  });
  return frame(FRAME.SETTINGS, 0, 0, payload);
}

export function pingFrame(data = 0): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(data >>> 0, 4);
  return frame(FRAME.PING, 0, 0, payload);
}

/** A gRPC message frame (5-byte prefix, empty message) that ends the request. */
export function emptyGrpcMessage(streamId: number): Buffer {
  return frame(FRAME.DATA, FLAG.END_STREAM, streamId, Buffer.from([0, 0, 0, 0, 0]));
}

export interface GoAway {
  readonly lastStreamId: number;
  readonly code: number;
}

/** One raw connection: what it sent and what the server answered, frame type by frame type. */
export class H2Wire {
  readonly socket: Socket;
  /** The first GOAWAY the server sent (the one carrying its reason; a final NO_ERROR may follow). */
  goaway: GoAway | null = null;
  closed = false;
  /** Streams the server answered with HEADERS. */
  readonly answered = new Set<number>();
  /** RST_STREAM codes the server sent, by stream. */
  readonly resets = new Map<number, number>();
  pingAcks = 0;
  settingsAcks = 0;
  private buffer = Buffer.alloc(0);
  private readonly ready: Promise<void>;
  private readonly closedPromise: Promise<void>;

  constructor(port: number, options: { readonly localAddress?: string } = {}) {
    this.socket = connect({ port, host: '127.0.0.1', localAddress: options.localAddress });
    this.socket.setNoDelay(true);
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.once('error', reject);
    });
    this.closedPromise = new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.socket.on('error', () => undefined);
    this.socket.on('close', () => {
      this.closed = true;
    });
    this.socket.on('data', (chunk: Buffer) => this.read(chunk));
  }

  /** Connects and sends the connection preface and an empty SETTINGS frame. */
  async open(): Promise<this> {
    await this.ready;
    this.socket.write(Buffer.concat([PREFACE, settingsFrame()]));
    return this;
  }

  /** Writes frames; answers false when the socket is gone (the server closed it). */
  write(...frames: Buffer[]): boolean {
    if (this.closed || this.socket.destroyed) return false;
    this.socket.write(frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames));
    return true;
  }

  /** Resolves once the server closed the connection, or after `timeoutMs` (answers whether it closed). */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    if (this.closed) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([this.closedPromise, timeout]);
    clearTimeout(timer);
    return this.closed;
  }

  /** Waits until the socket's write buffer drained (the kernel took the bytes), bounded in time. */
  async drained(timeoutMs = 2000): Promise<void> {
    if (this.socket.writableLength === 0 || this.closed) return;
    await Promise.race([
      new Promise<void>((resolve) => this.socket.once('drain', () => resolve())),
      new Promise<void>((resolve) => setTimeout(resolve, timeoutMs)),
      this.closedPromise,
    ]);
  }

  /**
   * Sends a PING and waits for its ACK (or the connection's end), bounded in time: the server
   * acknowledges it only once it has processed every frame sent before it, so an attacker that
   * waits for it cannot get ahead of the server by more than what it sent since (on a loaded
   * machine, the kernel's socket buffers would otherwise take a whole attack before the server
   * read any of it).
   */
  async pinged(timeoutMs = 5000): Promise<void> {
    const acks = this.pingAcks;
    if (!this.write(pingFrame(acks + 1))) return;
    const deadline = Date.now() + timeoutMs;
    while (this.pingAcks === acks && !this.closed && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  private read(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    while (this.buffer.length >= 9) {
      const length = this.buffer.readUIntBE(0, 3);
      if (this.buffer.length < 9 + length) return;
      const type = this.buffer.readUInt8(3);
      const flags = this.buffer.readUInt8(4);
      const streamId = this.buffer.readUInt32BE(5) & 0x7fffffff;
      const payload = this.buffer.subarray(9, 9 + length);
      this.buffer = this.buffer.subarray(9 + length);
      this.onFrame(type, flags, streamId, payload);
    }
  }

  private onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    switch (type) {
      case FRAME.SETTINGS:
        if ((flags & FLAG.ACK) === 0) this.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
        else this.settingsAcks++;
        break;
      case FRAME.PING:
        if ((flags & FLAG.ACK) !== 0) this.pingAcks++;
        break;
      case FRAME.GOAWAY:
        this.goaway ??= { lastStreamId: payload.readUInt32BE(0) & 0x7fffffff, code: payload.readUInt32BE(4) };
        break;
      case FRAME.RST_STREAM:
        this.resets.set(streamId, payload.readUInt32BE(0));
        break;
      case FRAME.HEADERS:
        this.answered.add(streamId);
        break;
      default:
        break;
    }
  }
}
