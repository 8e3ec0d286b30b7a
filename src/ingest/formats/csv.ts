/**
 * COPY's CSV format: fields split by the delimiter, quoted fields (which may hold delimiters and
 * line ends) with the escape character before a quote, NULL as the unquoted null string (empty
 * by default; FORCE_NULL and FORCE_NOT_NULL change that per column), a row per line end outside
 * quotes, and `\.` alone on a line ending the data.
 */
import { InputError, joinCarry, type RowParser, type RowSink } from './rows.js';

const LF = 0x0a;
const CR = 0x0d;

export interface CsvOptions {
  readonly delimiter: number;
  readonly quote: number;
  readonly escape: number;
  readonly nullString: Buffer;
  readonly keyField: number;
  readonly keyName: string;
  readonly header: boolean;
  readonly forceNull: boolean;
  readonly forceNotNull: boolean;
  readonly decode: (bytes: Uint8Array) => string;
  readonly matchHeader?: readonly string[];
}

interface Field {
  readonly bytes: Uint8Array;
  readonly quoted: boolean;
}

export class CsvParser implements RowParser {
  readonly #o: CsvOptions;
  #carry: Buffer | undefined;
  #line = 0;
  #ended = false;
  /** The next quote at or after the last row start in the current buffer (Infinity: none), so each row does not search to the end. */
  #nextQuote = -1;
  #quoteBuf: Buffer | undefined;

  constructor(options: CsvOptions) {
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
    let start = 0;
    for (;;) {
      const end = this.#rowEnd(buf, start);
      if (end === -1) break;
      this.#row(buf, start, end, sink);
      start = end;
      if (this.#ended) return;
    }
    this.#carry = start < buf.length ? buf.subarray(start) : undefined;
  }

  end(sink: RowSink): void {
    if (this.#ended || this.#carry === undefined || this.#carry.length === 0) return;
    const rest = this.#carry;
    this.#carry = undefined;
    if (this.#rowEnd(rest, 0, true) === -1) throw new InputError(this.#line + 1, 'unterminated CSV quoted field');
    this.#row(Buffer.concat([rest, Buffer.from([LF])]), 0, rest.length + 1, sink);
  }

  /** Just past the row's line end (outside quotes), or -1 when it has not arrived; `atEnd`: the input ends here. */
  #rowEnd(buf: Buffer, start: number, atEnd = false): number {
    const { quote, escape } = this.#o;
    const lf = buf.indexOf(LF, start);
    // Fast path: no quote before the line end.
    if (this.#quoteBuf !== buf || this.#nextQuote < start) {
      const q = buf.indexOf(quote, start);
      this.#nextQuote = q === -1 ? Infinity : q;
      this.#quoteBuf = buf;
    }
    const q = this.#nextQuote;
    if (q === Infinity || (lf !== -1 && q > lf)) return lf === -1 ? (atEnd ? buf.length : -1) : lf + 1;
    // As CopyReadLineText: every quote toggles (a doubled quote toggles twice); with a distinct
    // escape, inside quotes it makes the next quote or escape data.
    let inQuotes = false;
    for (let i = start; i < buf.length; i += 1) {
      const c = buf[i] as number;
      if (inQuotes && escape !== quote && c === escape) {
        if (i + 1 >= buf.length) return atEnd ? -1 : -1;
        const next = buf[i + 1];
        if (next === quote || next === escape) i += 1;
      } else if (c === quote) {
        inQuotes = !inQuotes;
      } else if (c === LF && !inQuotes) {
        return i + 1;
      }
    }
    return atEnd && !inQuotes ? buf.length : -1;
  }

  #row(buf: Buffer, start: number, end: number, sink: RowSink): void {
    this.#line += 1;
    let contentEnd = end;
    if (buf[contentEnd - 1] === LF) contentEnd -= 1;
    if (contentEnd > start && buf[contentEnd - 1] === CR) contentEnd -= 1;
    if (contentEnd - start === 2 && buf[start] === 0x5c && buf[start + 1] === 0x2e) {
      this.#ended = true;
      return;
    }
    if (this.#line === 1 && this.#o.header) {
      if (this.#o.matchHeader !== undefined) this.#matchHeader(buf.subarray(start, contentEnd));
      return;
    }
    const field = this.#field(buf, start, contentEnd, this.#o.keyField);
    if (field === undefined) throw new InputError(this.#line, `missing data for column "${this.#o.keyName}"`);
    sink.row(buf, start, end, this.#value(field), this.#line);
  }

  #value(field: Field): string | null {
    const n = this.#o.nullString;
    const isNullString = field.bytes.length === n.length && (n.length === 0 || Buffer.from(field.bytes.buffer, field.bytes.byteOffset, field.bytes.byteLength).equals(n));
    if (isNullString && (field.quoted ? this.#o.forceNull : !this.#o.forceNotNull)) return null;
    return this.#o.decode(field.bytes);
  }

  /** The n-th field of a row (0-based), de-quoted as CopyReadAttributesCSV does; undefined when the row has fewer. */
  #field(buf: Buffer, start: number, end: number, n: number): Field | undefined {
    const { delimiter, quote, escape } = this.#o;
    let i = start;
    for (let f = 0; ; f += 1) {
      const fieldStart = i;
      let quoted = false;
      let out: number[] | undefined;
      while (i < end) {
        const c = buf[i] as number;
        if (c === delimiter) break;
        if (c !== quote) {
          out?.push(c);
          i += 1;
          continue;
        }
        // A quote, anywhere in the field, starts a quoted part.
        if (out === undefined) out = Array.from(buf.subarray(fieldStart, i));
        quoted = true;
        i += 1;
        while (i < end) {
          const d = buf[i] as number;
          if (d === escape && i + 1 < end && (buf[i + 1] === quote || buf[i + 1] === escape)) {
            out.push(buf[i + 1] as number);
            i += 2;
          } else if (d === quote) {
            i += 1;
            break;
          } else {
            out.push(d);
            i += 1;
          }
        }
      }
      if (f === n) return out === undefined ? { bytes: buf.subarray(fieldStart, i), quoted } : { bytes: Uint8Array.from(out), quoted };
      if (i >= end) return undefined;
      i += 1; // past the delimiter
    }
  }

  #matchHeader(line: Buffer): void {
    const names: string[] = [];
    for (let f = 0; ; f += 1) {
      const field = this.#field(line, 0, line.length, f);
      if (field === undefined) break;
      names.push(this.#o.decode(field.bytes));
    }
    const expected = this.#o.matchHeader as readonly string[];
    if (names.length !== expected.length) throw new InputError(1, `wrong number of fields in header line: got ${names.length}, expected ${expected.length}`);
    names.forEach((name, i) => {
      if (name !== expected[i]) throw new InputError(1, `column name mismatch in header line field ${i + 1}: got "${name}", expected "${expected[i]}"`);
    });
  }
}
