/**
 * COPY's text format: a row per line (LF, CRLF or CR, set by the first line as PostgreSQL does),
 * fields split by the delimiter, backslash escapes (`\t`, `\n`, `\\`, `\ooo`, `\xhh` …), the
 * null string compared before de-escaping, `\.` alone on a line ends the data.
 */
import { InputError, joinCarry, type RowParser, type RowSink } from './rows.js';

const BACKSLASH = 0x5c;
const LF = 0x0a;
const CR = 0x0d;

export interface TextOptions {
  readonly delimiter: number;
  readonly nullString: Buffer;
  /** Index of the space column among the input's fields. */
  readonly keyField: number;
  readonly keyName: string;
  readonly header: boolean;
  readonly decode: (bytes: Uint8Array) => string;
  /** Header names, for HEADER MATCH. */
  readonly matchHeader?: readonly string[];
}

/** Whether the byte at `at` is escaped: preceded by an odd number of backslashes since `from`. */
function escaped(buf: Uint8Array, from: number, at: number): boolean {
  let n = 0;
  for (let i = at - 1; i >= from && buf[i] === BACKSLASH; i -= 1) n += 1;
  return n % 2 === 1;
}

/** Backslash sequences of the text format, decoded to bytes. */
export function deEscape(field: Uint8Array): Uint8Array {
  if (!field.includes(BACKSLASH)) return field;
  const out: number[] = [];
  for (let i = 0; i < field.length; i += 1) {
    const c = field[i] as number;
    if (c !== BACKSLASH || i + 1 >= field.length) {
      out.push(c);
      continue;
    }
    const n = field[++i] as number;
    switch (n) {
      case 0x62: out.push(0x08); break; // \b
      case 0x66: out.push(0x0c); break; // \f
      case 0x6e: out.push(0x0a); break; // \n
      case 0x72: out.push(0x0d); break; // \r
      case 0x74: out.push(0x09); break; // \t
      case 0x76: out.push(0x0b); break; // \v
      case 0x78: { // \x h[h]
        let v = 0;
        let k = 0;
        while (k < 2 && i + 1 < field.length && /[0-9a-fA-F]/.test(String.fromCharCode(field[i + 1] as number))) {
          v = v * 16 + Number.parseInt(String.fromCharCode(field[++i] as number), 16);
          k += 1;
        }
        if (k === 0) out.push(0x78);
        else out.push(v & 0xff);
        break;
      }
      default:
        if (n >= 0x30 && n <= 0x37) { // \o[o[o]]
          let v = n - 0x30;
          for (let k = 0; k < 2 && i + 1 < field.length && (field[i + 1] as number) >= 0x30 && (field[i + 1] as number) <= 0x37; k += 1) v = v * 8 + ((field[++i] as number) - 0x30);
          out.push(v & 0xff);
        } else {
          out.push(n); // any other character stands for itself
        }
    }
  }
  return Uint8Array.from(out);
}

export class TextParser implements RowParser {
  readonly #o: TextOptions;
  #carry: Buffer | undefined;
  #line = 0;
  #ended = false;
  /** The row terminator, known after the first line: LF, CR or CRLF (ends with LF). */
  #eol: 'lf' | 'cr' | 'crlf' | undefined;

  constructor(options: TextOptions) {
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
    // The last row has no line end: give it one (the data node may get more rows after it).
    const eol = this.#eol === 'cr' ? [CR] : this.#eol === 'crlf' ? [CR, LF] : [LF];
    const rest = Buffer.concat([this.#carry, Buffer.from(eol)]);
    this.#carry = undefined;
    this.#row(rest, 0, rest.length, sink);
  }

  /** The offset just past the row starting at `start`, or -1 when the row is not complete yet. */
  #rowEnd(buf: Buffer, start: number): number {
    const terminator = this.#eol === 'cr' ? CR : LF;
    let at = buf.indexOf(terminator, start);
    while (at !== -1 && escaped(buf, start, at)) at = buf.indexOf(terminator, at + 1);
    if (this.#eol === undefined) {
      // The first line decides, as PostgreSQL's CopyReadLineText: a bare CR before any LF means CR.
      let cr = buf.indexOf(CR, start);
      while (cr !== -1 && escaped(buf, start, cr)) cr = buf.indexOf(CR, cr + 1);
      if (cr !== -1 && (at === -1 || cr < at - 1)) {
        if (cr + 1 >= buf.length) return -1; // CR at the end: is an LF next?
        this.#eol = 'cr';
        return cr + 1;
      }
      if (at === -1) return -1;
      this.#eol = at > start && buf[at - 1] === CR && !escaped(buf, start, at - 1) ? 'crlf' : 'lf';
    }
    return at === -1 ? -1 : at + 1;
  }

  #row(buf: Buffer, start: number, end: number, sink: RowSink): void {
    this.#line += 1;
    let contentEnd = end;
    if (contentEnd > start && (buf[contentEnd - 1] === LF || (this.#eol === 'cr' && buf[contentEnd - 1] === CR))) contentEnd -= 1;
    if (this.#eol === 'crlf' && contentEnd > start && buf[contentEnd - 1] === CR) contentEnd -= 1;
    // "\." alone ends the data.
    if (contentEnd - start === 2 && buf[start] === BACKSLASH && buf[start + 1] === 0x2e) {
      this.#ended = true;
      return;
    }
    if (this.#line === 1 && this.#o.header) {
      if (this.#o.matchHeader !== undefined) this.#matchHeader(buf.subarray(start, contentEnd));
      return;
    }
    // The key field: skip keyField unescaped delimiters.
    let fieldStart = start;
    for (let f = 0; f < this.#o.keyField; f += 1) {
      let d = buf.indexOf(this.#o.delimiter, fieldStart);
      while (d !== -1 && d < contentEnd && escaped(buf, fieldStart, d)) d = buf.indexOf(this.#o.delimiter, d + 1);
      if (d === -1 || d >= contentEnd) throw new InputError(this.#line, `missing data for column "${this.#o.keyName}"`);
      fieldStart = d + 1;
    }
    let fieldEnd = buf.indexOf(this.#o.delimiter, fieldStart);
    while (fieldEnd !== -1 && fieldEnd < contentEnd && escaped(buf, fieldStart, fieldEnd)) fieldEnd = buf.indexOf(this.#o.delimiter, fieldEnd + 1);
    if (fieldEnd === -1 || fieldEnd > contentEnd) fieldEnd = contentEnd;
    const field = buf.subarray(fieldStart, fieldEnd);
    const key = field.length === this.#o.nullString.length && field.equals(this.#o.nullString) ? null : this.#o.decode(deEscape(field));
    sink.row(buf, start, end, key, this.#line);
  }

  #matchHeader(line: Buffer): void {
    const names: string[] = [];
    let from = 0;
    for (;;) {
      let d = line.indexOf(this.#o.delimiter, from);
      while (d !== -1 && escaped(line, from, d)) d = line.indexOf(this.#o.delimiter, d + 1);
      names.push(this.#o.decode(deEscape(line.subarray(from, d === -1 ? line.length : d))));
      if (d === -1) break;
      from = d + 1;
    }
    const expected = this.#o.matchHeader as readonly string[];
    if (names.length !== expected.length) throw new InputError(1, `wrong number of fields in header line: got ${names.length}, expected ${expected.length}`);
    names.forEach((n, i) => {
      if (n !== expected[i]) throw new InputError(1, `column name mismatch in header line field ${i + 1}: got "${n}", expected "${expected[i]}"`);
    });
  }
}
