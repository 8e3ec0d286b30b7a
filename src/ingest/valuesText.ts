/**
 * The fast reading of a multi-row INSERT: `INSERT INTO t [(cols)] VALUES (…), (…) [;]` whose items
 * are plain constants (strings, numbers, NULL, TRUE/FALSE, each optionally cast to a built-in
 * type), read from its text in one pass without a syntax tree. Each row becomes a line of COPY
 * text format, so the rows go to their shards as a routed COPY (src/ingest/copy.ts).
 *
 * Why not the parser: libpg_query (WebAssembly) parses and deparses a 1,000-row statement in tens
 * of milliseconds, more than the data nodes take to insert it (bench:ingest). Anything this reader
 * does not know (E'' strings, functions, DEFAULT, ON CONFLICT, RETURNING …) makes it return
 * undefined and the statement takes the exact, slower path.
 *
 * Exactness: a string constant is read by the column's input function, as COPY reads it. Numbers
 * and booleans are checked against the column types once they are known (exactValues): PostgreSQL
 * converts `1.5` into an integer column by rounding where COPY would refuse, so such a pairing is
 * left to the access node.
 */

/** What one column's items were, as bits: how the column type must read them. */
export const ITEM = { string: 1, integer: 2, decimal: 4, boolean: 8, null: 16 } as const;

export interface ValuesText {
  /** The target as written, identifiers folded as PostgreSQL folds them. */
  readonly schema: string | undefined;
  readonly name: string;
  /** The column list, when there is one. */
  readonly columns: readonly string[] | undefined;
  /** Items per row. */
  readonly width: number;
  readonly rows: number;
  /** The rows as COPY text-format lines. */
  readonly copyText: string;
  /** Per column: the ITEM bits seen. */
  readonly kinds: readonly number[];
  /** Per column: the built-in type OIDs its items were cast to. */
  readonly casts: readonly ReadonlySet<number>[];
  /** A column had a negative zero (`-0`, `-0.0`), which a float column reads unlike PostgreSQL's constant. */
  readonly negativeZero: readonly boolean[];
}

export interface ValuesTextOptions {
  /** standard_conforming_strings is on: a backslash in '…' is an ordinary character. Otherwise strings with one are not read here. */
  readonly standardStrings: boolean;
}

/** Cast type names (folded, words joined by one space, without pg_catalog.) → built-in type OID. */
const CAST_TYPES: ReadonlyMap<string, number> = new Map([
  ...['bool', 'boolean'].map((n) => [n, 16] as const),
  ...['int2', 'smallint'].map((n) => [n, 21] as const),
  ...['int4', 'int', 'integer'].map((n) => [n, 23] as const),
  ...['int8', 'bigint'].map((n) => [n, 20] as const),
  ...['float4', 'real'].map((n) => [n, 700] as const),
  ...['float8', 'float', 'double precision'].map((n) => [n, 701] as const),
  ...['numeric', 'decimal'].map((n) => [n, 1700] as const),
  ['text', 25],
  ...['varchar', 'character varying'].map((n) => [n, 1043] as const),
  ['date', 1082],
  ...['time', 'time without time zone'].map((n) => [n, 1083] as const),
  ...['timetz', 'time with time zone'].map((n) => [n, 1266] as const),
  ...['timestamp', 'timestamp without time zone'].map((n) => [n, 1114] as const),
  ...['timestamptz', 'timestamp with time zone'].map((n) => [n, 1184] as const),
  ['interval', 1186],
  ['uuid', 2950],
  ['json', 114],
  ['jsonb', 3802],
  ['bytea', 17],
  ['inet', 869],
  ['cidr', 650],
  ['macaddr', 829],
]);

/** Numeric types an integer constant reaches unchanged, and those a decimal one does. */
const INTEGER_READERS = new Set([20, 21, 23, 700, 701, 1700]);
const DECIMAL_READERS = new Set([700, 701, 1700]);
const FLOATS = new Set([700, 701]);

const enum C {
  tab = 9,
  lf = 10,
  cr = 13,
  space = 32,
  quote = 39,
  dquote = 34,
  lparen = 40,
  rparen = 41,
  star = 42,
  plus = 43,
  comma = 44,
  minus = 45,
  dot = 46,
  slash = 47,
  zero = 48,
  nine = 57,
  colon = 58,
  semicolon = 59,
  backslash = 92,
  underscore = 95,
}

const isDigit = (c: number): boolean => c >= C.zero && c <= C.nine;
const isIdentStart = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === C.underscore || c >= 128;
const isIdentChar = (c: number): boolean => isIdentStart(c) || isDigit(c) || c === 36; // $

/** Thrown inside the reader when the text is not of the shape it reads; never escapes it. */
class NotPlain extends Error {}
const NOT_PLAIN = new NotPlain();

class Reader {
  readonly #s: string;
  #i = 0;
  constructor(text: string) {
    this.#s = text;
  }

  get at(): number {
    return this.#i;
  }

  /** Skips whitespace and comments (nested block comments too, as PostgreSQL's scanner does). */
  skip(): void {
    const s = this.#s;
    for (;;) {
      const c = s.charCodeAt(this.#i);
      if (c === C.space || c === C.lf || c === C.tab || c === C.cr || c === 11 || c === 12) this.#i += 1;
      else if (c === C.minus && s.charCodeAt(this.#i + 1) === C.minus) {
        const end = s.indexOf('\n', this.#i);
        this.#i = end === -1 ? s.length : end + 1;
      } else if (c === C.slash && s.charCodeAt(this.#i + 1) === C.star) {
        let depth = 1;
        this.#i += 2;
        while (depth > 0) {
          if (this.#i >= s.length) throw NOT_PLAIN;
          if (s.charCodeAt(this.#i) === C.star && s.charCodeAt(this.#i + 1) === C.slash) {
            depth -= 1;
            this.#i += 2;
          } else if (s.charCodeAt(this.#i) === C.slash && s.charCodeAt(this.#i + 1) === C.star) {
            depth += 1;
            this.#i += 2;
          } else this.#i += 1;
        }
      } else return;
    }
  }

  peek(): number {
    return this.#s.charCodeAt(this.#i);
  }

  done(): boolean {
    return this.#i >= this.#s.length;
  }

  /** Consumes `c` (after skipping) or fails. */
  expect(c: number): void {
    this.skip();
    if (this.#s.charCodeAt(this.#i) !== c) throw NOT_PLAIN;
    this.#i += 1;
  }

  /** A bare word, folded to lower case (undefined when none starts here). Only ASCII is folded, as in UTF-8. */
  word(): string | undefined {
    this.skip();
    const s = this.#s;
    const start = this.#i;
    if (!isIdentStart(s.charCodeAt(start))) return undefined;
    let end = start + 1;
    while (end < s.length && isIdentChar(s.charCodeAt(end))) end += 1;
    this.#i = end;
    return s.slice(start, end).replace(/[A-Z]+/g, (m) => m.toLowerCase());
  }

  keyword(expected: string): void {
    if (this.word() !== expected) throw NOT_PLAIN;
  }

  /** An identifier, bare (folded) or double-quoted. */
  identifier(): string {
    this.skip();
    const s = this.#s;
    let name: string;
    if (s.charCodeAt(this.#i) === C.dquote) {
      this.#i += 1;
      name = this.#quoted('"');
    } else {
      const w = this.word();
      if (w === undefined) throw NOT_PLAIN;
      name = w;
    }
    // PostgreSQL truncates longer names (NAMEDATALEN); the exact path says what that resolves to.
    if (name.length === 0 || Buffer.byteLength(name) > 63) throw NOT_PLAIN;
    return name;
  }

  /** A '…' string's content ('' read as '), the reader just past its opening quote. */
  string(standardStrings: boolean): string {
    const out = this.#quoted("'");
    if (!standardStrings && out.includes('\\')) throw NOT_PLAIN;
    return out;
  }

  /** Text up to the closing `quote` (a doubled one read as one), the reader just past the opening one; it moves past the closing one. */
  #quoted(quote: string): string {
    const s = this.#s;
    let out = '';
    let i = this.#i;
    for (;;) {
      const end = s.indexOf(quote, i);
      if (end === -1) throw NOT_PLAIN;
      out += s.slice(i, end);
      if (s[end + 1] !== quote) {
        this.#i = end + 1;
        return out;
      }
      out += quote;
      i = end + 2;
    }
  }

  /** A number's text (with its sign) and whether it has a fraction or exponent; undefined when none starts here. */
  number(): { text: string; decimal: boolean } | undefined {
    const s = this.#s;
    const start = this.#i;
    let i = start;
    if (s.charCodeAt(i) === C.minus) i += 1;
    const digitsFrom = i;
    while (isDigit(s.charCodeAt(i))) i += 1;
    let decimal = false;
    if (s.charCodeAt(i) === C.dot) {
      decimal = true;
      i += 1;
      while (isDigit(s.charCodeAt(i))) i += 1;
    }
    const mantissa = s.slice(digitsFrom, i);
    if (mantissa === '' || mantissa === '.') {
      if (i === start) return undefined;
      throw NOT_PLAIN;
    }
    const e = s.charCodeAt(i);
    if (e === 101 || e === 69) {
      decimal = true;
      i += 1;
      if (s.charCodeAt(i) === C.plus || s.charCodeAt(i) === C.minus) i += 1;
      if (!isDigit(s.charCodeAt(i))) throw NOT_PLAIN;
      while (isDigit(s.charCodeAt(i))) i += 1;
    }
    // 0x1F, 1_000, 12abc: newer servers read some of these, older ones others; leave them to the server.
    const next = s.charCodeAt(i);
    if (isIdentChar(next) || next === C.dot) throw NOT_PLAIN;
    this.#i = i;
    return { text: s.slice(start, i), decimal };
  }

  /** `::type` casts after an item (the last one decides), as built-in type OIDs; undefined when there is none. */
  cast(): number | undefined {
    let oid: number | undefined;
    for (;;) {
      this.skip();
      if (this.#s.charCodeAt(this.#i) !== C.colon || this.#s.charCodeAt(this.#i + 1) !== C.colon) return oid;
      this.#i += 2;
      let name = this.word();
      if (name === 'pg_catalog') {
        this.expect(C.dot);
        name = this.word();
      }
      if (name === undefined) throw NOT_PLAIN;
      // Multi-word names: double precision, character varying, time(stamp) with(out) time zone.
      const words = [name];
      for (;;) {
        const save = this.#i;
        const w = this.word();
        if (w === undefined) break;
        if (!['precision', 'varying', 'with', 'without', 'time', 'zone'].includes(w)) {
          this.#i = save;
          break;
        }
        words.push(w);
      }
      this.skip();
      const c = this.#s.charCodeAt(this.#i);
      // A typmod, an array or a qualified name is another type than the column's: the exact path decides.
      if (c === C.lparen || c === 91 || c === C.dot) throw NOT_PLAIN;
      oid = CAST_TYPES.get(words.join(' '));
      if (oid === undefined) throw NOT_PLAIN;
    }
  }
}

/** Appends a value as COPY text format writes it. */
function copyField(value: string): string {
  if (!/[\\\t\n\r]/.test(value)) return value;
  return value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

/**
 * Reads `text` as one INSERT … VALUES of plain constants.
 * @returns the rows as COPY lines with what each column held, or undefined when it is another statement (then the exact path decides)
 */
export function readValuesInsert(text: string, options: ValuesTextOptions): ValuesText | undefined {
  try {
    return read(new Reader(text), options);
  } catch (error) {
    if (error instanceof NotPlain) return undefined;
    throw error;
  }
}

function read(r: Reader, options: ValuesTextOptions): ValuesText {
  r.keyword('insert');
  r.keyword('into');
  let schema: string | undefined;
  let name = r.identifier();
  r.skip();
  if (r.peek() === C.dot) {
    r.expect(C.dot);
    schema = name;
    name = r.identifier();
    r.skip();
    if (r.peek() === C.dot) throw NOT_PLAIN;
  }
  let columns: string[] | undefined;
  if (r.peek() === C.lparen) {
    r.expect(C.lparen);
    columns = [r.identifier()];
    for (;;) {
      r.skip();
      if (r.peek() === C.rparen) break;
      r.expect(C.comma);
      columns.push(r.identifier());
    }
    r.expect(C.rparen);
  }
  r.keyword('values');

  const lines: string[] = [];
  const kinds: number[] = [];
  const casts: Set<number>[] = [];
  const negativeZero: boolean[] = [];
  let width = -1;
  const fields: string[] = [];
  for (;;) {
    r.expect(C.lparen);
    fields.length = 0;
    for (;;) {
      r.skip();
      const column = fields.length;
      let kind: number;
      let value: string;
      const c = r.peek();
      if (c === C.quote) {
        r.expect(C.quote);
        kind = ITEM.string;
        value = copyField(r.string(options.standardStrings));
      } else if (isDigit(c) || c === C.minus || c === C.dot) {
        const n = r.number();
        if (n === undefined) throw NOT_PLAIN;
        kind = n.decimal ? ITEM.decimal : ITEM.integer;
        value = n.text;
        if (value.charCodeAt(0) === C.minus && /^-[0.]*(?:[eE]|$)/.test(value)) negativeZero[column] = true;
      } else {
        const w = r.word();
        if (w === 'null') {
          kind = ITEM.null;
          value = '\\N';
        } else if (w === 'true' || w === 'false') {
          kind = ITEM.boolean;
          value = w === 'true' ? 't' : 'f';
        } else throw NOT_PLAIN;
      }
      const cast = r.cast();
      if (width === -1) {
        kinds.push(0);
        casts.push(new Set());
      }
      if (column >= kinds.length) throw NOT_PLAIN; // longer than the first row: the server says so
      kinds[column] = (kinds[column] as number) | kind;
      if (cast !== undefined) {
        // A number or boolean cast to another kind of type is converted: not the column's input.
        if ((kind === ITEM.decimal && !DECIMAL_READERS.has(cast)) || (kind === ITEM.integer && !INTEGER_READERS.has(cast)) || (kind === ITEM.boolean && cast !== 16)) throw NOT_PLAIN;
        (casts[column] as Set<number>).add(cast);
      }
      fields.push(value);
      r.skip();
      if (r.peek() === C.comma) {
        r.expect(C.comma);
        continue;
      }
      r.expect(C.rparen);
      break;
    }
    if (width === -1) width = fields.length;
    else if (fields.length !== width) throw NOT_PLAIN;
    lines.push(fields.join('\t'));
    r.skip();
    if (r.peek() === C.comma) {
      r.expect(C.comma);
      continue;
    }
    break;
  }
  r.skip();
  if (r.peek() === C.semicolon) {
    r.expect(C.semicolon);
    r.skip();
  }
  if (!r.done()) throw NOT_PLAIN;
  // Fewer items than listed columns is an error the server words.
  if (columns !== undefined && width !== columns.length) throw NOT_PLAIN;
  return { schema, name, columns, width, rows: lines.length, copyText: `${lines.join('\n')}\n`, kinds, casts, negativeZero };
}

/**
 * Whether every item reaches its column as the access node would put it there: numbers only into
 * numeric columns that read them unchanged, booleans into boolean ones, casts only to the column's
 * own type (a cast to another type converts, and a NULL of another type may not be assignable).
 * @param types the type OID of each column the items go to, in order
 * @returns undefined, or why not
 */
export function exactValues(values: ValuesText, types: readonly number[]): string | undefined {
  for (let i = 0; i < values.width; i += 1) {
    const type = types[i] as number;
    const kinds = values.kinds[i] as number;
    for (const cast of values.casts[i] as ReadonlySet<number>) {
      if (cast !== type) return `an item of column ${i + 1} is cast to another type than its column's, which the access node would convert`;
    }
    if ((kinds & ITEM.integer) !== 0 && !INTEGER_READERS.has(type)) return `an integer constant for column ${i + 1} would be converted to its type by the access node`;
    if ((kinds & ITEM.decimal) !== 0 && !DECIMAL_READERS.has(type)) return `a decimal constant for column ${i + 1} would be converted to its type by the access node`;
    if ((kinds & ITEM.boolean) !== 0 && type !== 16) return `a boolean constant for column ${i + 1} would be converted to its type by the access node`;
    if (values.negativeZero[i] === true && FLOATS.has(type)) return `a negative zero for float column ${i + 1} is read as zero by the access node`;
  }
  return undefined;
}
