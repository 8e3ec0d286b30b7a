/**
 * What a COPY input parser hands on: each row's bytes as they came (passed to the data node
 * unchanged, so values are read there exactly as the access node would read them) and the text
 * of its space column, the only value routing needs to read.
 */

export interface RowSink {
  /**
   * `buf[start, end)`: the row's bytes including its line end (text, CSV) or the whole tuple
   * (binary), valid until the parser's next push; `key`: the space column's value as text, null
   * for SQL NULL; `line`: as PostgreSQL counts them.
   */
  row(buf: Buffer, start: number, end: number, key: string | null, line: number): void;
}

export interface RowParser {
  /** Parses what `chunk` completes; keeps the unfinished row for the next. @throws InputError */
  push(chunk: Buffer, sink: RowSink): void;
  /** The last row (without a line end) and checks the input ended cleanly. @throws InputError */
  end(sink: RowSink): void;
  /** Rows seen so far (the header counted), i.e. the last line number. */
  readonly line: number;
  /** The input ended with an end-of-data marker (`\.`): anything after it is ignored, as COPY does. */
  readonly ended: boolean;
}

/** A row the parser cannot read: its line and why, in PostgreSQL's words where it has them. */
export class InputError extends Error {
  readonly line: number;
  constructor(line: number, message: string) {
    super(message);
    this.line = line;
  }
}

/** COPY options of the input, as PostgreSQL takes them. */
export interface CopyFormat {
  readonly format: 'text' | 'csv' | 'binary';
  /** One byte. @default tab (text), comma (csv) */
  readonly delimiter?: string;
  /** @default `\N` (text), empty (csv) */
  readonly null?: string;
  /** CSV only. @default `"` */
  readonly quote?: string;
  /** CSV only. @default the quote */
  readonly escape?: string;
  /** The first line names the columns and is skipped; `match` (CSV and text, PostgreSQL 15+) also checks the names. */
  readonly header?: boolean | 'match';
  /** CSV: columns whose quoted null string is NULL too. */
  readonly forceNull?: readonly string[];
  /** CSV: columns whose unquoted null string is not NULL. */
  readonly forceNotNull?: readonly string[];
  /** The input's encoding (COPY's ENCODING): default the session's client_encoding. */
  readonly encoding?: string;
}

/** Concatenates the unfinished tail of the last chunk with the next one. */
export function joinCarry(carry: Buffer | undefined, chunk: Buffer): Buffer {
  return carry === undefined || carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
}
