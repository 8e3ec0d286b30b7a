/**
 * COPY's binary format: the signature, flags and header extension, then tuples (a field count,
 * then per field a length, -1 for NULL, and the bytes), then -1. Each tuple goes to its shard as
 * it came; every COPY to a data node gets its own header and trailer.
 */
import { binaryToText } from '../../codec/binaryText.js';
import { InputError, joinCarry, type RowParser, type RowSink } from './rows.js';

export const BINARY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
/** What every COPY BINARY to a data node starts with: signature, no flags, no extension. */
export const BINARY_HEADER = Buffer.concat([BINARY_SIGNATURE, Buffer.alloc(8)]);
export const BINARY_TRAILER = Buffer.from([0xff, 0xff]);

export interface BinaryOptions {
  readonly keyField: number;
  readonly keyName: string;
  readonly keyType: number;
  /** Fields per tuple (the input's columns). */
  readonly fields: number;
  readonly decode: (bytes: Uint8Array) => string;
}

export class BinaryParser implements RowParser {
  readonly #o: BinaryOptions;
  #carry: Buffer | undefined;
  #headerDone = false;
  #line = 0;
  #ended = false;

  constructor(options: BinaryOptions) {
    this.#o = options;
  }

  get line(): number {
    return this.#line;
  }

  get ended(): boolean {
    return this.#ended;
  }

  push(chunk: Buffer, sink: RowSink): void {
    if (this.#ended) return;
    const buf = joinCarry(this.#carry, chunk);
    let at = 0;
    if (!this.#headerDone) {
      const header = this.#header(buf);
      if (header === -1) {
        this.#carry = buf;
        return;
      }
      at = header;
      this.#headerDone = true;
    }
    for (;;) {
      const end = this.#tuple(buf, at, sink);
      if (end === -1) break;
      at = end;
      if (this.#ended) return;
    }
    this.#carry = at < buf.length ? buf.subarray(at) : undefined;
  }

  end(): void {
    if (this.#ended) return;
    if (!this.#headerDone) throw new InputError(0, 'COPY file signature not recognized');
    // PostgreSQL accepts binary input that stops without the trailer only at a tuple boundary.
    if (this.#carry !== undefined && this.#carry.length > 0) throw new InputError(this.#line + 1, 'unexpected EOF in COPY data');
  }

  /** Offset past the header, -1 when incomplete. */
  #header(buf: Buffer): number {
    if (buf.length < 19) return -1;
    if (!buf.subarray(0, 11).equals(BINARY_SIGNATURE)) throw new InputError(0, 'COPY file signature not recognized');
    const flags = buf.readUInt32BE(11);
    if ((flags & 0x10000) !== 0) throw new InputError(0, 'COPY BINARY with OIDs is not supported');
    if ((flags & 0xfffe0000) !== 0) throw new InputError(0, 'unrecognized critical flags in COPY file header');
    const extension = buf.readUInt32BE(15);
    return buf.length < 19 + extension ? -1 : 19 + extension;
  }

  /** Offset past one tuple (or the trailer), -1 when incomplete. */
  #tuple(buf: Buffer, at: number, sink: RowSink): number {
    if (buf.length < at + 2) return -1;
    const count = buf.readInt16BE(at);
    if (count === -1) {
      this.#ended = true;
      return at + 2;
    }
    const line = this.#line + 1;
    if (count !== this.#o.fields) throw new InputError(line, `row field count is ${count}, expected ${this.#o.fields}`);
    let p = at + 2;
    let key: string | null | undefined;
    for (let f = 0; f < count; f += 1) {
      if (buf.length < p + 4) return -1;
      const len = buf.readInt32BE(p);
      p += 4;
      if (len < -1) throw new InputError(line, 'invalid field size');
      const size = Math.max(len, 0);
      if (buf.length < p + size) return -1;
      if (f === this.#o.keyField) {
        try {
          key = len === -1 ? null : binaryToText(this.#o.keyType, buf.subarray(p, p + size), this.#o.decode);
        } catch (error) {
          throw new InputError(line, `incorrect binary data format in column "${this.#o.keyName}": ${error instanceof Error ? error.message : String(error)}`);
        }
      }
      p += size;
    }
    this.#line = line;
    sink.row(buf, at, p, key ?? null, line);
    return p;
  }
}
