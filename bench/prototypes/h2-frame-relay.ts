import { hash, timingSafeEqual } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import hpack from 'hpack.js';
import {
  CLIENT_PREFACE,
  type ConnectionError,
  ErrorCode,
  encodeFrame,
  encodeHeaderBlock,
  Flag,
  type Frame,
  FrameReader,
  FrameType,
  goawayFrame,
  headerBlockFragment,
  parseSettings,
  rstStreamFrame,
  Setting,
  settingsFrame,
  windowUpdateFrame,
} from '../../src/data-plane/h2/frames.js';

/**
 * Prototype of issue 13's frame-level HTTP/2 path for OTLP/gRPC on 4317: frames parsed here,
 * HPACK by hpack.js, one upstream connection per client connection with the same stream ids on
 * both legs, so DATA, WINDOW_UPDATE, PRIORITY and RST_STREAM pass unchanged (flow control is the
 * two peers', end to end). Every header block is decoded and re-encoded (the key checked and
 * removed, grpc-status read), nghttp2-like limits are counted. A measurement, not the gateway.
 *
 *   node --import tsx bench/prototypes/h2-frame-relay.ts <listen port> <upstream host> <upstream port> <api key>
 */

const [listenPort, upstreamHost, upstreamPort, apiKey] = process.argv.slice(2);
if (!listenPort || !upstreamHost || !upstreamPort || !apiKey) {
  process.stderr.write('usage: h2-frame-relay.ts <listen port> <upstream host> <upstream port> <api key>\n');
  process.exit(2);
}
const KEY_DIGEST = hash('sha256', apiKey, 'buffer');

const TABLE_SIZE = 4096; // what this relay's decoders advertise on both legs
const MAX_CONCURRENT_STREAMS = 100;
const MAX_HEADER_LIST_SIZE = 65_536; // decoded, RFC 9113 §6.5.2 accounting (name + value + 32)
const MAX_HEADER_FIELDS = 128; // node:http2's maxHeaderListPairs
const MAX_HEADER_BLOCK = 65_536; // encoded octets of HEADERS + CONTINUATION
const MAX_CONTINUATIONS = 8; // nghttp2 1.61 (CVE-2024-28182)
const MAX_SETTINGS_ENTRIES = 32; // nghttp2's max_settings
const MAX_UNACKED_SETTINGS = 10;
const RESET_BURST = 1000; // nghttp2's stream_reset_burst and _rate: a token bucket
const RESET_RATE_PER_S = 33;
const MAX_PINGS_PER_10S = 1000;
const HIGH_WATER = 256 * 1024; // pause the reading side past this much buffered on the other
const CONNECTION_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

type Fields = { name: string; value: string }[];

/** What the gateway's exchange record would hold for one stream. */
interface StreamRecord {
  readonly startedAt: number;
  requestBytes: number;
  responseBytes: number;
  grpcStatus: string | undefined;
  clientEnded: boolean;
  upstreamEnded: boolean;
}

/** Stands in for the gateway's metrics: one counter per grpc-status, summed durations. */
const finished = { streams: 0, rejected: 0, byGrpcStatus: new Map<string, number>(), seconds: 0 };

interface HeaderBlock {
  readonly streamId: number;
  readonly endStream: boolean;
  readonly parts: Buffer[];
  size: number;
  continuations: number;
}

/** One HPACK encoding context; hpack.js does not signal a size below its maximum, so this does. */
class Encoder {
  private readonly compressor = hpack.compressor.create({ table: { maxSize: TABLE_SIZE } });
  private sizeUpdate = -1;

  /** The peer's decoder announced `size` (SETTINGS_HEADER_TABLE_SIZE). */
  resize(size: number): void {
    const next = Math.min(size, TABLE_SIZE);
    this.compressor.updateTableSize(next); // at TABLE_SIZE hpack.js emits the update itself
    if (next < TABLE_SIZE) this.sizeUpdate = next;
  }

  encode(fields: Fields): Buffer {
    this.compressor.write(fields);
    const block = this.compressor.read() ?? Buffer.alloc(0);
    if (this.sizeUpdate < 0) return block;
    const prefix = integer(this.sizeUpdate, 5, 0x20);
    this.sizeUpdate = -1;
    return Buffer.concat([prefix, block]);
  }
}

/** An HPACK integer (RFC 7541 §5.1) with an `prefixBits`-bit prefix under `mask`. */
function integer(value: number, prefixBits: number, mask: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([mask | value]);
  const octets = [mask | max];
  let rest = value - max;
  while (rest >= 128) {
    octets.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  octets.push(rest);
  return Buffer.from(octets);
}

/** One HPACK decoding context; null when the block does not decode (COMPRESSION_ERROR). */
class Decoder {
  private readonly decompressor = hpack.decompressor.create({ table: { maxSize: TABLE_SIZE } });
  private failed = false;
  listSize = 0;

  constructor() {
    this.decompressor.on('error', () => {
      this.failed = true;
    });
  }

  decode(block: Buffer): Fields | null {
    this.decompressor.write(block);
    this.decompressor.execute();
    const fields: Fields = [];
    let size = 0;
    for (let field = this.decompressor.read(); field !== null; field = this.decompressor.read()) {
      size += field.name.length + field.value.length + 32;
      fields.push({ name: field.name, value: field.value });
    }
    this.listSize = size;
    return this.failed ? null : fields;
  }
}

/** Output toward one socket; frames that lie side by side in one read become one buffer. */
function pass(out: Buffer[], raw: Buffer): void {
  const last = out[out.length - 1];
  if (last !== undefined && last.buffer === raw.buffer && last.byteOffset + last.length === raw.byteOffset)
    out[out.length - 1] = Buffer.from(last.buffer, last.byteOffset, last.length + raw.length);
  else out.push(raw);
}

function authorized(fields: Fields): boolean {
  let ok = false;
  for (const field of fields)
    if (field.name === 'x-api-key') ok = timingSafeEqual(hash('sha256', field.value, 'buffer'), KEY_DIGEST);
  return ok;
}

/** RFC 9113 §8.2-8.3 checks of a request head the upstream would otherwise have to make. */
function validRequest(fields: Fields): boolean {
  let regular = false;
  let method = false;
  let path = false;
  for (const { name, value } of fields) {
    if (name.startsWith(':')) {
      if (regular) return false;
      if (name === ':method') method = true;
      else if (name === ':path') path = value.length > 0;
      else if (name !== ':scheme' && name !== ':authority') return false;
    } else {
      regular = true;
      if (name !== name.toLowerCase() || CONNECTION_HEADERS.has(name)) return false;
      if (name === 'te' && value !== 'trailers') return false;
    }
  }
  return method && path;
}

const REJECTION_FIELDS: Fields = [
  { name: ':status', value: '200' },
  { name: 'content-type', value: 'application/grpc' },
  { name: 'grpc-status', value: '16' },
  { name: 'grpc-message', value: 'missing or invalid API key' },
];

class Connection {
  private readonly clientReader = new FrameReader({ expectPreface: true });
  private readonly upstreamReader = new FrameReader();
  private readonly fromClient = new Decoder();
  private readonly fromUpstream = new Decoder();
  private readonly toClient = new Encoder();
  private readonly toUpstream = new Encoder();
  private readonly clientOut: Buffer[] = [];
  /**
   * Whether the server preface (the upstream's SETTINGS, rewritten) went to the client: until it
   * has, nothing else may (a refusal, a PING ACK), so clientOut is held.
   */
  private clientGreeted = false;
  private readonly upstreamOut: Buffer[] = [CLIENT_PREFACE];
  private readonly frames: Frame[] = [];
  private readonly streams = new Map<number, StreamRecord>();
  private clientBlock: HeaderBlock | null = null;
  private upstreamBlock: HeaderBlock | null = null;
  private clientMaxFrame = 16_384; // what the client accepts; its SETTINGS say
  private upstreamMaxFrame = 16_384;
  private lastStreamId = 0;
  private unackedSettings = 0;
  private resetTokens = RESET_BURST;
  private resetRefilledAt = performance.now();
  private pings = 0;
  private pingWindowStart = performance.now();
  private closed = false;
  private readonly blocked = new Map<Socket, number>();

  constructor(
    private readonly client: Socket,
    private readonly upstream: Socket,
  ) {
    client.on('data', (chunk: Buffer) => this.read(chunk, true));
    upstream.on('data', (chunk: Buffer) => this.read(chunk, false));
    for (const socket of [client, upstream]) {
      socket.on('error', () => this.destroy());
      socket.on('close', () => this.destroy());
      socket.on('end', () => this.destroy());
    }
    this.flush();
  }

  private read(chunk: Buffer, fromClient: boolean): void {
    const frames = this.frames;
    frames.length = 0;
    const error = (fromClient ? this.clientReader : this.upstreamReader).push(chunk, frames);
    let failure: ConnectionError | null = null;
    for (const frame of frames) {
      failure = fromClient ? this.clientFrame(frame) : this.upstreamFrame(frame);
      if (failure !== null) break;
    }
    failure ??= error;
    if (failure !== null) this.fail(failure, fromClient);
    this.flush();
  }

  private clientFrame(frame: Frame): ConnectionError | null {
    if (this.clientBlock !== null) return this.continuation(frame, true);
    const stream = this.streams.get(frame.streamId);
    switch (frame.type) {
      case FrameType.DATA:
        if (frame.streamId === 0) return protocolError('DATA on stream 0');
        if (stream === undefined) {
          // Never forwarded (refused) or already closed: the upstream will not return this credit.
          if (frame.payload.length > 0) this.clientOut.push(windowUpdateFrame(0, frame.payload.length));
          return null;
        }
        stream.requestBytes += frame.payload.length;
        pass(this.upstreamOut, frame.raw);
        if (frame.flags & Flag.END_STREAM) this.end(frame.streamId, stream, true);
        return null;
      case FrameType.HEADERS:
        if (frame.streamId === 0 || frame.streamId % 2 === 0)
          return protocolError('HEADERS on a bad stream id');
        return this.startBlock(frame, true);
      case FrameType.RST_STREAM:
        if (!this.takeResetToken()) return { code: ErrorCode.ENHANCE_YOUR_CALM, reason: 'rapid reset' };
        if (stream !== undefined) {
          pass(this.upstreamOut, frame.raw);
          this.finish(frame.streamId, stream);
        }
        return null;
      case FrameType.SETTINGS:
        return this.settings(frame, true);
      case FrameType.PING:
        return this.ping(frame, this.clientOut, true);
      case FrameType.PRIORITY:
      case FrameType.WINDOW_UPDATE:
        if (frame.streamId === 0 || stream !== undefined) pass(this.upstreamOut, frame.raw);
        return null;
      case FrameType.GOAWAY:
        pass(this.upstreamOut, frame.raw);
        return null;
      case FrameType.CONTINUATION:
      case FrameType.PUSH_PROMISE:
        return protocolError(`frame type ${frame.type} from the client`);
      default:
        return null; // unknown extension frames are ignored (RFC 9113 §4.1)
    }
  }

  private upstreamFrame(frame: Frame): ConnectionError | null {
    if (this.upstreamBlock !== null) return this.continuation(frame, false);
    const stream = this.streams.get(frame.streamId);
    switch (frame.type) {
      case FrameType.DATA:
        if (stream !== undefined) stream.responseBytes += frame.payload.length;
        pass(this.clientOut, frame.raw);
        if (stream !== undefined && frame.flags & Flag.END_STREAM) this.end(frame.streamId, stream, false);
        return null;
      case FrameType.HEADERS:
        return this.startBlock(frame, false);
      case FrameType.RST_STREAM:
        pass(this.clientOut, frame.raw);
        if (stream !== undefined) this.finish(frame.streamId, stream);
        return null;
      case FrameType.SETTINGS:
        return this.settings(frame, false);
      case FrameType.PING:
        return this.ping(frame, this.upstreamOut, false);
      case FrameType.PUSH_PROMISE:
      case FrameType.CONTINUATION:
        return protocolError(`frame type ${frame.type} from the upstream`);
      default:
        pass(this.clientOut, frame.raw);
        return null;
    }
  }

  private startBlock(frame: Frame, fromClient: boolean): ConnectionError | null {
    const fragment = headerBlockFragment(frame);
    if (fragment === null) return protocolError('padding longer than the HEADERS payload');
    const block: HeaderBlock = {
      streamId: frame.streamId,
      endStream: (frame.flags & Flag.END_STREAM) !== 0,
      parts: [fragment],
      size: fragment.length,
      continuations: 0,
    };
    if (frame.flags & Flag.END_HEADERS) return this.headerBlock(block, fromClient);
    if (fromClient) this.clientBlock = block;
    else this.upstreamBlock = block;
    return null;
  }

  private continuation(frame: Frame, fromClient: boolean): ConnectionError | null {
    const block = (fromClient ? this.clientBlock : this.upstreamBlock)!;
    if (frame.type !== FrameType.CONTINUATION || frame.streamId !== block.streamId)
      return protocolError('header block interrupted');
    block.parts.push(frame.payload);
    block.size += frame.payload.length;
    if (++block.continuations > MAX_CONTINUATIONS || block.size > MAX_HEADER_BLOCK)
      return { code: ErrorCode.ENHANCE_YOUR_CALM, reason: 'header block too long' };
    if (!(frame.flags & Flag.END_HEADERS)) return null;
    if (fromClient) this.clientBlock = null;
    else this.upstreamBlock = null;
    return this.headerBlock(block, fromClient);
  }

  private headerBlock(block: HeaderBlock, fromClient: boolean): ConnectionError | null {
    const encoded = block.parts.length === 1 ? block.parts[0]! : Buffer.concat(block.parts, block.size);
    const decoder = fromClient ? this.fromClient : this.fromUpstream;
    const fields = decoder.decode(encoded);
    if (fields === null) return { code: ErrorCode.COMPRESSION_ERROR, reason: 'header block does not decode' };
    const { streamId, endStream } = block;
    const stream = this.streams.get(streamId);
    if (!fromClient) {
      for (const field of fields)
        if (field.name === 'grpc-status' && stream !== undefined) stream.grpcStatus = field.value;
      this.clientOut.push(
        ...encodeHeaderBlock(streamId, this.toClient.encode(fields), endStream, this.clientMaxFrame),
      );
      if (stream !== undefined && endStream) this.end(streamId, stream, false);
      return null;
    }
    const oversized = decoder.listSize > MAX_HEADER_LIST_SIZE || fields.length > MAX_HEADER_FIELDS;
    if (stream !== undefined) {
      // Trailers of an open request.
      if (oversized) return this.refuse(streamId, ErrorCode.PROTOCOL_ERROR);
      const forwarded = fields.filter((field) => field.name !== 'x-api-key');
      this.upstreamOut.push(
        ...encodeHeaderBlock(streamId, this.toUpstream.encode(forwarded), endStream, this.upstreamMaxFrame),
      );
      if (endStream) this.end(streamId, stream, true);
      return null;
    }
    if (streamId <= this.lastStreamId) return protocolError('HEADERS on a closed stream');
    this.lastStreamId = streamId;
    if (oversized || !validRequest(fields)) return this.refuse(streamId, ErrorCode.PROTOCOL_ERROR);
    if (this.streams.size >= MAX_CONCURRENT_STREAMS) return this.refuse(streamId, ErrorCode.REFUSED_STREAM);
    if (!authorized(fields)) {
      finished.rejected++;
      this.clientOut.push(
        ...encodeHeaderBlock(streamId, this.toClient.encode(REJECTION_FIELDS), true, this.clientMaxFrame),
      );
      if (!endStream) this.clientOut.push(rstStreamFrame(streamId, ErrorCode.NO_ERROR));
      return null;
    }
    const forwarded: Fields = [];
    for (const field of fields) if (field.name !== 'x-api-key') forwarded.push(field);
    forwarded.push(
      { name: 'x-forwarded-for', value: this.client.remoteAddress ?? 'unknown' },
      { name: 'x-forwarded-proto', value: 'http' },
      { name: 'x-authenticated-user', value: 'bench' },
    );
    this.streams.set(streamId, {
      startedAt: performance.now(),
      requestBytes: 0,
      responseBytes: 0,
      grpcStatus: undefined,
      clientEnded: endStream,
      upstreamEnded: false,
    });
    this.upstreamOut.push(
      ...encodeHeaderBlock(streamId, this.toUpstream.encode(forwarded), endStream, this.upstreamMaxFrame),
    );
    return null;
  }

  /** A stream error on a stream the upstream never saw: answered here, never forwarded. */
  private refuse(streamId: number, code: number): null {
    this.clientOut.push(rstStreamFrame(streamId, code));
    return null;
  }

  private settings(frame: Frame, fromClient: boolean): ConnectionError | null {
    const out = fromClient ? this.upstreamOut : this.clientOut;
    if (frame.streamId !== 0) return protocolError('SETTINGS on a stream');
    if (frame.flags & Flag.ACK) {
      if (!fromClient) this.unackedSettings = Math.max(0, this.unackedSettings - 1);
      pass(out, frame.raw);
      return null;
    }
    const entries = parseSettings(frame.payload);
    if (entries === null) return { code: ErrorCode.FRAME_SIZE_ERROR, reason: 'SETTINGS length' };
    if (entries.length > MAX_SETTINGS_ENTRIES)
      return { code: ErrorCode.ENHANCE_YOUR_CALM, reason: 'too many settings' };
    if (fromClient && ++this.unackedSettings > MAX_UNACKED_SETTINGS)
      return { code: ErrorCode.ENHANCE_YOUR_CALM, reason: 'SETTINGS flood' };
    let concurrencySeen = false;
    for (const entry of entries) {
      const [id, value] = entry;
      if (id === Setting.HEADER_TABLE_SIZE) {
        // The sender's decoder is this relay's encoder toward it; the other peer decodes what
        // this relay's decoder advertises.
        (fromClient ? this.toClient : this.toUpstream).resize(value);
        entry[1] = TABLE_SIZE;
      } else if (id === Setting.MAX_FRAME_SIZE) {
        if (value < 16_384 || value > 16_777_215) return protocolError('SETTINGS_MAX_FRAME_SIZE');
        if (fromClient) {
          this.clientMaxFrame = value;
          this.upstreamReader.maxFrameSize = value;
        } else {
          this.upstreamMaxFrame = value;
          this.clientReader.maxFrameSize = value;
        }
      } else if (id === Setting.INITIAL_WINDOW_SIZE && value > 0x7fff_ffff) {
        return { code: ErrorCode.FLOW_CONTROL_ERROR, reason: 'SETTINGS_INITIAL_WINDOW_SIZE' };
      } else if (id === Setting.ENABLE_PUSH && fromClient) {
        entry[1] = 0; // a PUSH_PROMISE would carry a header block for no one
      } else if (id === Setting.MAX_CONCURRENT_STREAMS && !fromClient) {
        entry[1] = Math.min(value, MAX_CONCURRENT_STREAMS);
        concurrencySeen = true;
      }
    }
    if (!fromClient && !concurrencySeen)
      entries.push([Setting.MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS]);
    if (!fromClient && !this.clientGreeted) {
      out.unshift(settingsFrame(entries));
      this.clientGreeted = true;
    } else out.push(settingsFrame(entries));
    return null;
  }

  /** PING is hop by hop: this relay answers each leg's pings itself. */
  private ping(frame: Frame, answerTo: Buffer[], fromClient: boolean): ConnectionError | null {
    if (frame.streamId !== 0) return protocolError('PING on a stream');
    if (frame.payload.length !== 8) return { code: ErrorCode.FRAME_SIZE_ERROR, reason: 'PING length' };
    if (frame.flags & Flag.ACK) return null;
    if (fromClient) {
      const now = performance.now();
      if (now - this.pingWindowStart > 10_000) {
        this.pingWindowStart = now;
        this.pings = 0;
      }
      if (++this.pings > MAX_PINGS_PER_10S)
        return { code: ErrorCode.ENHANCE_YOUR_CALM, reason: 'PING flood' };
    }
    answerTo.push(encodeFrame(FrameType.PING, Flag.ACK, 0, frame.payload));
    return null;
  }

  private takeResetToken(): boolean {
    const now = performance.now();
    this.resetTokens = Math.min(
      RESET_BURST,
      this.resetTokens + ((now - this.resetRefilledAt) / 1000) * RESET_RATE_PER_S,
    );
    this.resetRefilledAt = now;
    if (this.resetTokens < 1) return false;
    this.resetTokens--;
    return true;
  }

  private end(streamId: number, stream: StreamRecord, byClient: boolean): void {
    if (byClient) stream.clientEnded = true;
    else stream.upstreamEnded = true;
    if (stream.clientEnded && stream.upstreamEnded) this.finish(streamId, stream);
  }

  private finish(streamId: number, stream: StreamRecord): void {
    this.streams.delete(streamId);
    const status = stream.grpcStatus ?? 'none';
    finished.streams++;
    finished.byGrpcStatus.set(status, (finished.byGrpcStatus.get(status) ?? 0) + 1);
    finished.seconds += (performance.now() - stream.startedAt) / 1000;
  }

  private fail(error: ConnectionError, byClient: boolean): void {
    process.stderr.write(`connection error from the ${byClient ? 'client' : 'upstream'}: ${error.reason}\n`);
    this.clientOut.push(goawayFrame(this.lastStreamId, byClient ? error.code : ErrorCode.INTERNAL_ERROR));
    this.clientGreeted = true;
    this.flush();
    this.closed = true;
    this.client.end();
    this.upstream.destroy();
  }

  private flush(): void {
    if (this.closed) return;
    write(this.upstream, this.upstreamOut);
    if (this.clientGreeted) write(this.client, this.clientOut);
    if (this.upstream.writableLength > HIGH_WATER) this.block(this.client, this.upstream);
    if (this.client.writableLength > HIGH_WATER) {
      this.block(this.upstream, this.client);
      this.block(this.client, this.client); // its own answers (PING, refusals) pile up too
    }
  }

  /** Pauses `reader` until `writer` drains; a reader blocked twice waits for both. */
  private block(reader: Socket, writer: Socket): void {
    const count = this.blocked.get(reader) ?? 0;
    this.blocked.set(reader, count + 1);
    if (count === 0) reader.pause();
    writer.once('drain', () => {
      const left = (this.blocked.get(reader) ?? 1) - 1;
      this.blocked.set(reader, left);
      if (left === 0 && !this.closed) reader.resume();
    });
  }

  private destroy(): void {
    this.closed = true;
    this.client.destroy();
    this.upstream.destroy();
    for (const [streamId, stream] of this.streams) this.finish(streamId, stream);
  }
}

function protocolError(reason: string): ConnectionError {
  return { code: ErrorCode.PROTOCOL_ERROR, reason };
}

/** One write per read: several buffers go out corked, as one writev. */
function write(socket: Socket, out: Buffer[]): void {
  if (out.length === 0) return;
  if (out.length === 1) socket.write(out[0]!);
  else {
    socket.cork();
    for (const buffer of out) socket.write(buffer);
    socket.uncork();
  }
  out.length = 0;
}

const server = createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host: upstreamHost, port: Number(upstreamPort), noDelay: true });
  new Connection(client, upstream);
});
server.listen(Number(listenPort), '127.0.0.1', () =>
  process.stdout.write(`h2 frame relay listening on ${listenPort}\n`),
);
process.on('SIGTERM', () => {
  const statuses = [...finished.byGrpcStatus].map(([status, count]) => `${status}=${count}`).join(' ');
  process.stdout.write(
    `streams ${finished.streams}, rejected ${finished.rejected}, grpc-status ${statuses}\n`,
  );
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
});
