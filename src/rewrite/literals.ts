/**
 * A statement's shape: its text with the plain literals (`'2024-01-01 08:00'`, `42`, `0.5`) cut
 * out, so statements that differ only in such values (a dashboard's time range on every refresh)
 * share one cache entry. A small scanner in JavaScript, since PostgreSQL's own (libpg_query's
 * scanSync, ~300 µs) costs more than the whole cached path may (~50 µs). It only has to find
 * literals the way PostgreSQL does; a shape's first statement is checked against PostgreSQL's
 * scanner before the shape is used (template.ts).
 *
 * Only literals whose every form scans to the same kind of token are cut out: single-quoted
 * strings with no quote or backslash inside and no prefix (E'', U&'', B'' …), integers below 10⁹
 * and decimals `d.d`. Everything else, whitespace and comments included, stays in the shape.
 */

export type LiteralClass = 'string' | 'integer' | 'decimal';

export interface Literal {
  /** UTF-16 offsets in the statement's text. */
  readonly start: number;
  readonly end: number;
  readonly kind: LiteralClass;
  readonly text: string;
}

export interface Shape {
  /** The text with each literal replaced by a mark of its class. */
  readonly key: string;
  readonly literals: readonly Literal[];
}

const MARKS: Record<LiteralClass, string> = { string: '\u0000s', integer: '\u0000i', decimal: '\u0000d' };
const PLAIN_STRING = /^'[^'\\]*'$/;
const PLAIN_INTEGER = /^(0|[1-9]\d{0,8})$/;
const PLAIN_DECIMAL = /^\d+\.\d+$/;

const isIdentChar = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 36 || c > 127;
const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/** The statement's shape; undefined when it holds a NUL (which no statement can), so no mark is ambiguous. */
export function shapeOf(sql: string): Shape | undefined {
  if (sql.includes('\u0000')) return undefined;
  const literals: Literal[] = [];
  const parts: string[] = [];
  let copied = 0;
  const n = sql.length;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === 39 /* ' */) {
      const end = stringEnd(sql, i);
      // E'…', B'…', X'…', N'…' and U&'…' are other kinds of constant.
      const prefixed = i > 0 && (isIdentChar(sql.charCodeAt(i - 1)) || sql.charCodeAt(i - 1) === 38 /* & */);
      const text = sql.slice(i, end);
      if (!prefixed && PLAIN_STRING.test(text)) {
        parts.push(sql.slice(copied, i), MARKS.string);
        literals.push({ start: i, end, kind: 'string', text });
        copied = end;
      }
      i = end;
    } else if (c === 34 /* " */) {
      i = quotedEnd(sql, i, 34);
    } else if (c === 45 /* - */ && sql.charCodeAt(i + 1) === 45) {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
    } else if (c === 47 /* / */ && sql.charCodeAt(i + 1) === 42 /* * */) {
      i = commentEnd(sql, i);
    } else if (c === 36 /* $ */) {
      i = dollarEnd(sql, i);
    } else if (isDigit(c) || (c === 46 /* . */ && isDigit(sql.charCodeAt(i + 1)))) {
      // A number, unless it continues an identifier or a parameter ($1) or another number.
      const start = i;
      while (i < n && (isIdentChar(sql.charCodeAt(i)) || sql.charCodeAt(i) === 46 || ((sql.charCodeAt(i) === 43 || sql.charCodeAt(i) === 45) && /[eE]/.test(sql[i - 1] ?? '')))) i += 1;
      const text = sql.slice(start, i);
      const kind: LiteralClass | undefined = PLAIN_INTEGER.test(text) ? 'integer' : PLAIN_DECIMAL.test(text) ? 'decimal' : undefined;
      const before = start > 0 ? sql.charCodeAt(start - 1) : 32;
      if (kind !== undefined && !isIdentChar(before) && before !== 46) {
        parts.push(sql.slice(copied, start), MARKS[kind]);
        literals.push({ start, end: i, kind, text });
        copied = i;
      }
    } else if (isIdentChar(c)) {
      while (i < n && isIdentChar(sql.charCodeAt(i))) i += 1;
    } else {
      i += 1;
    }
  }
  parts.push(sql.slice(copied));
  return { key: parts.join(''), literals };
}

/** After a single-quoted string starting at `i` (`''` inside is a quote; adjacent strings are separate here). */
function stringEnd(sql: string, i: number): number {
  return quotedEnd(sql, i, 39);
}

function quotedEnd(sql: string, i: number, quote: number): number {
  let k = i + 1;
  while (k < sql.length) {
    if (sql.charCodeAt(k) === quote) {
      if (sql.charCodeAt(k + 1) === quote) k += 2;
      else return k + 1;
    } else k += 1;
  }
  return sql.length;
}

/** After a (nested) block comment starting at `i`. */
function commentEnd(sql: string, i: number): number {
  let depth = 0;
  let k = i;
  while (k < sql.length) {
    if (sql.startsWith('/*', k)) {
      depth += 1;
      k += 2;
    } else if (sql.startsWith('*/', k)) {
      depth -= 1;
      k += 2;
      if (depth === 0) return k;
    } else k += 1;
  }
  return sql.length;
}

/** After a dollar-quoted string (`$tag$ … $tag$`) or a parameter (`$1`) starting at `i`. */
function dollarEnd(sql: string, i: number): number {
  const tag = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i, i + 64));
  if (tag === null || (i > 0 && isIdentChar(sql.charCodeAt(i - 1)))) {
    let k = i + 1;
    while (k < sql.length && isIdentChar(sql.charCodeAt(k))) k += 1;
    return k;
  }
  const close = sql.indexOf(tag[0], i + tag[0].length);
  return close < 0 ? sql.length : close + tag[0].length;
}
