/** The part of hpack.js (no published types) the HTTP/2 frame relay uses. */
declare module 'hpack.js' {
  interface HeaderField {
    name: string;
    value: string;
    neverIndex?: boolean;
  }
  interface TableOptions {
    table: { maxSize: number };
  }
  interface Decompressor {
    write(block: Buffer): boolean;
    execute(): void;
    read(): HeaderField | null;
    updateTableSize(size: number): void;
    on(event: 'error', listener: (error: Error) => void): this;
  }
  interface Compressor {
    write(headers: HeaderField[]): boolean;
    read(): Buffer | null;
    updateTableSize(size: number): void;
  }
  const hpack: {
    decompressor: { create(options: TableOptions): Decompressor };
    compressor: { create(options: TableOptions): Compressor };
  };
  export default hpack;
}
