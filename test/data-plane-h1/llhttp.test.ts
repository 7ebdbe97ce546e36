import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type ExecuteResult, PAUSE, Parser, type ParserEvents } from '../../src/data-plane/h1/llhttp.js';

/** What a parser reported, in order, as readable events. */
class Recorder implements ParserEvents {
  readonly events: string[] = [];
  url = '';
  fields: string[] = [];
  values: string[] = [];
  body: Buffer[] = [];
  keepAlive: boolean[] = [];
  pauseAfterMessage = false;
  private inValue = false;

  constructor(private readonly parser: () => Parser) {}

  onMessageBegin(): number {
    this.events.push('begin');
    return 0;
  }
  onUrl(part: Buffer): number {
    this.url += part.toString('latin1');
    return 0;
  }
  onStatus(): number {
    return 0;
  }
  onHeaderField(part: Buffer): number {
    if (this.inValue || this.fields.length === 0) {
      this.fields.push('');
      this.values.push('');
    }
    this.fields[this.fields.length - 1] += part.toString('latin1');
    this.inValue = false;
    return 0;
  }
  onHeaderValue(part: Buffer): number {
    this.values[this.values.length - 1] += part.toString('latin1');
    this.inValue = true;
    return 0;
  }
  onHeadersComplete(_status: number, _upgrade: boolean, keepAlive: boolean): number {
    this.events.push(`head ${this.parser().method} ${this.url}`);
    this.keepAlive.push(keepAlive);
    return 0;
  }
  onBody(part: Buffer): number {
    this.body.push(part);
    return 0;
  }
  onMessageComplete(): number {
    this.events.push('complete');
    this.url = '';
    this.inValue = false;
    return this.pauseAfterMessage ? PAUSE : 0;
  }
}

/** Callbacks that accept everything, but for `overrides`. */
function ignoring(overrides: Partial<ParserEvents>): ParserEvents {
  const accept = () => 0;
  return {
    onMessageBegin: accept,
    onUrl: accept,
    onStatus: accept,
    onHeaderField: accept,
    onHeaderValue: accept,
    onHeadersComplete: accept,
    onBody: accept,
    onMessageComplete: accept,
    ...overrides,
  };
}

function parse(kind: 'request' | 'response', ...chunks: (string | Buffer)[]) {
  let parser: Parser | undefined;
  const recorder = new Recorder(() => parser!);
  parser = new Parser(kind, recorder);
  let result: ExecuteResult = { kind: 'ok' };
  for (const chunk of chunks) {
    result = parser.execute(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
    if (result.kind !== 'ok') break;
  }
  parser.free();
  return { recorder, result };
}

const CRLF = '\r\n';
const GET = `GET /v1/traces?x=1 HTTP/1.1${CRLF}Host: gw${CRLF}X-API-Key: k${CRLF}${CRLF}`;

describe('llhttp binding', () => {
  test('a request head: method, url, fields and values, keep-alive', () => {
    const { recorder, result } = parse('request', GET);
    assert.deepEqual(result, { kind: 'ok' });
    assert.deepEqual(recorder.events, ['begin', 'head GET /v1/traces?x=1', 'complete']);
    assert.deepEqual(recorder.fields, ['Host', 'X-API-Key']);
    assert.deepEqual(recorder.values, ['gw', 'k']);
    assert.deepEqual(recorder.keepAlive, [true]);
  });

  test('any split of the bytes into chunks gives the same head and body', () => {
    const body = Buffer.alloc(3000, 'b');
    const wire = Buffer.concat([
      Buffer.from(
        `POST /v1/traces HTTP/1.1${CRLF}Host: gw${CRLF}Content-Length: ${body.length}${CRLF}${CRLF}`,
      ),
      body,
    ]);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: wire.length - 1 }), { maxLength: 8 }), (cuts) => {
        const at = [0, ...cuts.sort((a, b) => a - b), wire.length];
        const chunks = at.slice(1).map((end, i) => wire.subarray(at[i], end));
        const { recorder, result } = parse('request', ...chunks);
        assert.equal(result.kind, 'ok');
        assert.deepEqual(recorder.events, ['begin', 'head POST /v1/traces', 'complete']);
        assert.deepEqual(recorder.fields, ['Host', 'Content-Length']);
        assert.ok(Buffer.concat(recorder.body).equals(body));
      }),
    );
  });

  test('body slices are views into the caller’s chunk, not copies', () => {
    const chunk = Buffer.from(`POST / HTTP/1.1${CRLF}Content-Length: 4${CRLF}${CRLF}abcd`);
    const { recorder } = parse('request', chunk);
    assert.equal(recorder.body.length, 1);
    assert.equal(recorder.body[0]!.buffer, chunk.buffer);
    assert.equal(recorder.body[0]!.toString(), 'abcd');
  });

  test('chunked bodies are decoded; chunk framing never reaches onBody', () => {
    const { recorder, result } = parse(
      'request',
      `POST / HTTP/1.1${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}3${CRLF}abc${CRLF}`,
      `2${CRLF}de${CRLF}0${CRLF}${CRLF}`,
    );
    assert.equal(result.kind, 'ok');
    assert.equal(Buffer.concat(recorder.body).toString(), 'abcde');
    assert.deepEqual(recorder.events.at(-1), 'complete');
  });

  test('a pause after a message hands back the pipelined rest, and resume continues there', () => {
    let parser: Parser | undefined;
    const recorder = new Recorder(() => parser!);
    recorder.pauseAfterMessage = true;
    parser = new Parser('request', recorder);
    const second = `GET /second HTTP/1.1${CRLF}${CRLF}`;
    const first = parser.execute(Buffer.from(GET + second));
    assert.equal(first.kind, 'paused');
    assert.equal(first.kind === 'paused' && first.rest.toString(), second);
    parser.resume();
    const next = parser.execute(first.kind === 'paused' ? first.rest : Buffer.alloc(0));
    assert.equal(next.kind, 'paused');
    assert.deepEqual(recorder.events, [
      'begin',
      'head GET /v1/traces?x=1',
      'complete',
      'begin',
      'head GET /second',
      'complete',
    ]);
    parser.free();
  });

  test('Connection: close and HTTP/1.0 are not keep-alive', () => {
    assert.deepEqual(
      parse('request', `GET / HTTP/1.1${CRLF}Connection: close${CRLF}${CRLF}`).recorder.keepAlive,
      [false],
    );
    assert.deepEqual(parse('request', `GET / HTTP/1.0${CRLF}${CRLF}`).recorder.keepAlive, [false]);
  });

  // The framing ambiguities request smuggling is made of: each must be an error, never a guess.
  const smuggling: Record<string, string> = {
    'Content-Length and Transfer-Encoding together': `POST / HTTP/1.1${CRLF}Content-Length: 3${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}0${CRLF}${CRLF}`,
    'two different Content-Lengths': `POST / HTTP/1.1${CRLF}Content-Length: 3${CRLF}Content-Length: 4${CRLF}${CRLF}abcd`,
    'a Content-Length that is not a number': `POST / HTTP/1.1${CRLF}Content-Length: 3a${CRLF}${CRLF}abc`,
    'chunked not the last transfer coding': `POST / HTTP/1.1${CRLF}Transfer-Encoding: chunked, gzip${CRLF}${CRLF}0${CRLF}${CRLF}`,
    'a chunk size that is not hex': `POST / HTTP/1.1${CRLF}Transfer-Encoding: chunked${CRLF}${CRLF}zz${CRLF}ab${CRLF}0${CRLF}${CRLF}`,
    'a bare LF ending a header line': `GET / HTTP/1.1\nHost: gw\n\n`,
    'a space before the colon': `GET / HTTP/1.1${CRLF}Host : gw${CRLF}${CRLF}`,
    'a NUL in a header value': `GET / HTTP/1.1${CRLF}Host: g\u0000w${CRLF}${CRLF}`,
    'obs-fold (a continuation line)': `GET / HTTP/1.1${CRLF}X-A: a${CRLF} folded${CRLF}${CRLF}`,
  };
  for (const [what, wire] of Object.entries(smuggling)) {
    test(`refused: ${what}`, () => {
      const { result, recorder } = parse('request', wire);
      assert.equal(result.kind, 'error', `parsed as ${JSON.stringify(recorder.events)}`);
      assert.ok(result.kind === 'error' && result.reason.length > 0, 'llhttp gives a reason');
    });
  }

  test('a request line without a version parses as HTTP/0.9: the version is the caller’s to refuse', () => {
    let version = '';
    let parser: Parser | undefined;
    parser = new Parser(
      'request',
      ignoring({
        onHeadersComplete: () => {
          version = `${parser!.httpMajor}.${parser!.httpMinor}`;
          return 0;
        },
      }),
    );
    assert.equal(parser.execute(Buffer.from(`GET /${CRLF}${CRLF}`)).kind, 'ok');
    assert.equal(version, '0.9');
    parser.free();
  });

  test('an execute from inside a callback is refused (one instance, one current parser)', () => {
    let inner: Parser | undefined;
    const nested = ignoring({
      onHeadersComplete: () => {
        assert.throws(() => inner!.execute(Buffer.from(GET)), /inside a parser callback/);
        return 0;
      },
    });
    inner = new Parser('request', nested);
    const outer = new Parser('request', nested);
    assert.equal(outer.execute(Buffer.from(GET)).kind, 'ok');
    outer.free();
    inner.free();
  });

  test('a response: status, body by Content-Length, then the next response on the same connection', () => {
    const { recorder, result } = parse(
      'response',
      `HTTP/1.1 200 OK${CRLF}Content-Length: 2${CRLF}${CRLF}okHTTP/1.1 204 No Content${CRLF}${CRLF}`,
    );
    assert.equal(result.kind, 'ok');
    assert.equal(recorder.events.filter((e) => e === 'complete').length, 2);
    assert.equal(Buffer.concat(recorder.body).toString(), 'ok');
  });
});
