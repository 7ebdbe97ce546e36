import { createRequire } from 'node:module';

/**
 * llhttp, the HTTP/1.1 parser inside Node, in its WebAssembly build (the one undici ships and
 * parses its responses with), driven directly: the parser of issue 13's HTTP/1.1 data path, so far
 * used by its prototype (bench/prototypes/h1-llhttp-relay.ts). It parses heads and body framing,
 * strictly (no lenient flag is ever set: CL + TE, two Content-Lengths, bare LF, bad chunk sizes are
 * errors); callbacks hand out views into the caller's own chunk, so a body slice can be written on
 * without a copy. One WebAssembly instance serves every parser of the process: an `execute` from
 * inside another's callbacks is refused (the callbacks find their parser through module state).
 * The module is resolved from undici's package (pinned by package-lock.json), which ships it
 * without an `exports` map.
 */

const require = createRequire(import.meta.url);

/** The little of the WebAssembly JS API used here (the project's lib settings have no declarations of it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const WebAssembly = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface LlhttpExports {
  memory: { buffer: ArrayBuffer };
  llhttp_alloc(type: number): number;
  llhttp_free(ptr: number): void;
  llhttp_execute(ptr: number, data: number, len: number): number;
  llhttp_finish(ptr: number): number;
  llhttp_resume(ptr: number): void;
  llhttp_get_error_pos(ptr: number): number;
  llhttp_get_error_reason(ptr: number): number;
  llhttp_get_method(ptr: number): number;
  llhttp_get_http_major(ptr: number): number;
  llhttp_get_http_minor(ptr: number): number;
  malloc(size: number): number;
  free(ptr: number): void;
}

const constants = require('undici/lib/llhttp/constants.js') as {
  TYPE: { REQUEST: number; RESPONSE: number };
  ERROR: Record<string, number> & { OK: number; PAUSED: number; PAUSED_UPGRADE: number; USER: number };
  METHODS: Record<string, number>;
};
export const ERROR = constants.ERROR;
/** Method number → name (llhttp's numbering). */
export const METHOD_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(constants.METHODS).map(([name, code]) => [code, name]),
);

/** What a parser calls while it reads; a non-zero answer from onHeadersComplete skips the body. */
export interface ParserEvents {
  onMessageBegin(): number;
  onUrl(part: Buffer): number;
  onStatus(part: Buffer): number;
  onHeaderField(part: Buffer): number;
  onHeaderValue(part: Buffer): number;
  onHeadersComplete(statusCode: number, upgrade: boolean, keepAlive: boolean): number;
  onBody(part: Buffer): number;
  onMessageComplete(): number;
}

let current: Parser | null = null;
let currentChunk: Buffer | null = null;
let inputPtr = 0;
let inputSize = 0;

function view(at: number, len: number): Buffer {
  const chunk = currentChunk!;
  return chunk.subarray(at - inputPtr, at - inputPtr + len);
}

const module = (() => {
  try {
    return new WebAssembly.Module(require('undici/lib/llhttp/llhttp_simd-wasm.js'));
  } catch {
    return new WebAssembly.Module(require('undici/lib/llhttp/llhttp-wasm.js'));
  }
})();

const wasm = new WebAssembly.Instance(module, {
  env: {
    wasm_on_message_begin: () => current!.events.onMessageBegin(),
    wasm_on_url: (_p: number, at: number, len: number) => current!.events.onUrl(view(at, len)),
    wasm_on_status: (_p: number, at: number, len: number) => current!.events.onStatus(view(at, len)),
    wasm_on_header_field: (_p: number, at: number, len: number) =>
      current!.events.onHeaderField(view(at, len)),
    wasm_on_header_value: (_p: number, at: number, len: number) =>
      current!.events.onHeaderValue(view(at, len)),
    wasm_on_headers_complete: (_p: number, status: number, upgrade: number, keepAlive: number) =>
      current!.events.onHeadersComplete(status, upgrade === 1, keepAlive === 1),
    wasm_on_body: (_p: number, at: number, len: number) => current!.events.onBody(view(at, len)),
    wasm_on_message_complete: () => current!.events.onMessageComplete(),
  },
}).exports as unknown as LlhttpExports;

/**
 * The result of one `execute`: OK, or paused at `rest` (by a callback, or after a message that
 * asked for another protocol: CONNECT or an Upgrade request), or an error with llhttp's code and
 * reason.
 */
export type ExecuteResult =
  | { readonly kind: 'ok' }
  | { readonly kind: 'paused' | 'upgrade'; readonly rest: Buffer }
  | { readonly kind: 'error'; readonly code: number; readonly reason: string };

export class Parser {
  private ptr: number;

  constructor(
    kind: 'request' | 'response',
    readonly events: ParserEvents,
  ) {
    this.ptr = wasm.llhttp_alloc(kind === 'request' ? constants.TYPE.REQUEST : constants.TYPE.RESPONSE);
  }

  get method(): string {
    return METHOD_NAMES[wasm.llhttp_get_method(this.ptr)] ?? 'GET';
  }

  get httpMajor(): number {
    return wasm.llhttp_get_http_major(this.ptr);
  }

  get httpMinor(): number {
    return wasm.llhttp_get_http_minor(this.ptr);
  }

  /**
   * The peer ended its side: a message framed by the connection's end (a response with neither
   * Content-Length nor chunked) completes here; one cut short is an error.
   */
  finish(): ExecuteResult {
    if (current !== null) throw new Error('llhttp: finish() called from inside a parser callback');
    let code: number;
    current = this;
    try {
      code = wasm.llhttp_finish(this.ptr);
    } finally {
      current = null;
    }
    return this.result(code, Buffer.alloc(0));
  }

  execute(chunk: Buffer): ExecuteResult {
    if (current !== null) throw new Error('llhttp: execute() called from inside a parser callback');
    if (chunk.length > inputSize) {
      if (inputPtr) wasm.free(inputPtr);
      inputSize = Math.ceil(chunk.length / 65_536) * 65_536;
      inputPtr = wasm.malloc(inputSize);
    }
    new Uint8Array(wasm.memory.buffer, inputPtr, chunk.length).set(chunk);
    let code: number;
    current = this;
    currentChunk = chunk;
    try {
      code = wasm.llhttp_execute(this.ptr, inputPtr, chunk.length);
    } finally {
      current = null;
      currentChunk = null;
    }
    return this.result(code, chunk);
  }

  private result(code: number, chunk: Buffer): ExecuteResult {
    if (code === constants.ERROR.OK) return { kind: 'ok' };
    if (code === constants.ERROR.PAUSED || code === constants.ERROR.PAUSED_UPGRADE) {
      return {
        kind: code === constants.ERROR.PAUSED ? 'paused' : 'upgrade',
        rest: chunk.subarray(wasm.llhttp_get_error_pos(this.ptr) - inputPtr),
      };
    }
    const reasonPtr = wasm.llhttp_get_error_reason(this.ptr);
    const bytes = new Uint8Array(wasm.memory.buffer, reasonPtr);
    const reason = Buffer.from(bytes.subarray(0, bytes.indexOf(0))).toString('latin1');
    return { kind: 'error', code, reason };
  }

  resume(): void {
    wasm.llhttp_resume(this.ptr);
  }

  free(): void {
    if (this.ptr) wasm.llhttp_free(this.ptr);
    this.ptr = 0;
  }
}

/** Answer from a callback to pause the parser after this message (pipelined requests wait). */
export const PAUSE = constants.ERROR.PAUSED;
