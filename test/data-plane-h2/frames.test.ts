import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  CLIENT_PREFACE,
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
  settingsFrame,
  windowUpdateFrame,
} from '../../src/data-plane/h2/frames.js';

/** The frame-level HTTP/2 codec of issue 13's gRPC prototype (src/data-plane/h2/frames.ts). */

function readAll(reader: FrameReader, chunks: readonly Buffer[]): Frame[] {
  const out: Frame[] = [];
  for (const chunk of chunks) assert.equal(reader.push(chunk, out), null);
  return out;
}

const sample = (): Buffer[] => [
  settingsFrame([[0x3, 100]]),
  encodeFrame(FrameType.HEADERS, Flag.END_HEADERS, 1, Buffer.from('block')),
  encodeFrame(FrameType.DATA, Flag.END_STREAM, 1, Buffer.alloc(3000, 7)),
  windowUpdateFrame(0, 65_535),
  rstStreamFrame(3, ErrorCode.CANCEL),
  goawayFrame(5, ErrorCode.NO_ERROR),
];

describe('HTTP/2 frames', () => {
  test('frames come out whole and in order however the bytes are split (property)', () => {
    const wire = Buffer.concat([CLIENT_PREFACE, ...sample()]);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: wire.length - 1 }), { maxLength: 12 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let at = 0;
        for (const point of points) {
          chunks.push(wire.subarray(at, point));
          at = point;
        }
        chunks.push(wire.subarray(at));
        const frames = readAll(new FrameReader({ expectPreface: true }), chunks);
        assert.deepEqual(
          frames.map((frame) => [frame.type, frame.flags, frame.streamId, frame.payload.length]),
          [
            [FrameType.SETTINGS, 0, 0, 6],
            [FrameType.HEADERS, Flag.END_HEADERS, 1, 5],
            [FrameType.DATA, Flag.END_STREAM, 1, 3000],
            [FrameType.WINDOW_UPDATE, 0, 0, 4],
            [FrameType.RST_STREAM, 0, 3, 4],
            [FrameType.GOAWAY, 0, 0, 8],
          ],
        );
        assert.ok(
          Buffer.concat(frames.map((frame) => frame.raw)).equals(wire.subarray(CLIENT_PREFACE.length)),
        );
      }),
      { numRuns: 200 },
    );
  });

  test('a frame inside one chunk is a view of it, not a copy', () => {
    const chunk = Buffer.concat(sample());
    const frames = readAll(new FrameReader(), [chunk]);
    const data = frames[2]!;
    assert.equal(data.payload.buffer, chunk.buffer);
    data.payload[0] = 99;
    assert.equal(chunk[9 + 6 + 9 + 5 + 9], 99);
  });

  test('a wrong connection preface is a PROTOCOL_ERROR, even when it arrives a byte at a time', () => {
    const reader = new FrameReader({ expectPreface: true });
    const bad = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1');
    let error = null;
    for (let i = 0; i < bad.length && error === null; i++) error = reader.push(bad.subarray(i, i + 1), []);
    assert.equal(error?.code, ErrorCode.PROTOCOL_ERROR);
  });

  test('a frame over the advertised maximum size is a FRAME_SIZE_ERROR from its header alone', () => {
    const reader = new FrameReader({ maxFrameSize: 16_384 });
    const header = encodeFrame(FrameType.DATA, 0, 1, Buffer.alloc(16_385)).subarray(0, 9);
    assert.equal(reader.push(header, [])?.code, ErrorCode.FRAME_SIZE_ERROR);
  });

  test('a header block longer than a frame goes as HEADERS and CONTINUATIONs, END_HEADERS on the last only', () => {
    const block = Buffer.alloc(40_000, 1);
    const frames = readAll(new FrameReader(), encodeHeaderBlock(7, block, true, 16_384));
    assert.deepEqual(
      frames.map((frame) => [frame.type, frame.flags, frame.streamId, frame.payload.length]),
      [
        [FrameType.HEADERS, Flag.END_STREAM, 7, 16_384],
        [FrameType.CONTINUATION, 0, 7, 16_384],
        [FrameType.CONTINUATION, Flag.END_HEADERS, 7, 40_000 - 2 * 16_384],
      ],
    );
    assert.ok(Buffer.concat(frames.map((frame) => headerBlockFragment(frame)!)).equals(block));
  });

  test('header block fragment: padding and priority fields are taken off; padding past the payload is refused', () => {
    const fragment = Buffer.from('hpack');
    const padded = encodeFrame(
      FrameType.HEADERS,
      Flag.END_HEADERS | Flag.PADDED | Flag.PRIORITY,
      1,
      Buffer.concat([Buffer.from([3]), Buffer.alloc(5), fragment, Buffer.alloc(3)]),
    );
    const [frame] = readAll(new FrameReader(), [padded]);
    assert.equal(headerBlockFragment(frame!)?.toString(), 'hpack');
    const overPadded = encodeFrame(FrameType.HEADERS, Flag.PADDED, 1, Buffer.from([200, 1, 2]));
    const [bad] = readAll(new FrameReader(), [overPadded]);
    assert.equal(headerBlockFragment(bad!), null);
  });

  test('SETTINGS round-trip; a payload that is not a multiple of 6 is refused', () => {
    const [frame] = readAll(new FrameReader(), [
      settingsFrame([
        [0x1, 4096],
        [0x4, 1 << 20],
      ]),
    ]);
    assert.deepEqual(parseSettings(frame!.payload), [
      [0x1, 4096],
      [0x4, 1 << 20],
    ]);
    assert.equal(parseSettings(Buffer.alloc(7)), null);
  });
});
