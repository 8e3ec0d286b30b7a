/**
 * Bound values written into a statement as literals (src/route/boundValues.ts): each one as its
 * declared type reads it, integers as numbers, quotes and backslashes inert; refused where an
 * untyped literal may resolve otherwise than the parameter, or a value cannot be text. Values in
 * binary format read as text by their types (textValues), or refused.
 */
import { describe, expect, it } from 'vitest';
import { inlinableType, inlineParameters, textValues } from '../../src/route/boundValues.js';

describe('inlineParameters', () => {
  it('writes declared types as casts, integers as numbers, NULL as NULL of its type', () => {
    expect(inlineParameters('SELECT a FROM t WHERE k = $1 AND ts >= $2 AND n IS DISTINCT FROM $3', [20, 1184, 25], ['-7', '2024-01-01 00:00:00+00', null])).toBe(
      `SELECT a FROM t WHERE k = ((-7)::pg_catalog.int8) AND ts >= ('2024-01-01 00:00:00+00'::pg_catalog.timestamptz) AND n IS DISTINCT FROM (NULL::pg_catalog.text)`,
    );
    // Too large for the rewriter's integer constants: a string cast, as written.
    expect(inlineParameters('SELECT a FROM t WHERE k = $1', [20], ['9223372036854775807'])).toBe(`SELECT a FROM t WHERE k = ('9223372036854775807'::pg_catalog.int8)`);
  });

  it('splices by the parser\'s byte positions: multi-byte text before a parameter, a `$n` in a literal or comment left alone, the same parameter twice', () => {
    expect(inlineParameters(`SELECT 'Zürich $1' AS x /* $1 */ FROM t WHERE k = $1 OR j = $1`, [23], ['5'])).toBe(`SELECT 'Zürich $1' AS x /* $1 */ FROM t WHERE k = ((5)::pg_catalog.int4) OR j = ((5)::pg_catalog.int4)`);
    expect(inlineParameters(`SELECT a[$1] FROM t WHERE k = $2`, [23, 23], ['1', '2'])).toBe(`SELECT a[((1)::pg_catalog.int4)] FROM t WHERE k = ((2)::pg_catalog.int4)`);
  });

  it('keeps a hostile value a literal', () => {
    const sql = inlineParameters('SELECT a FROM t WHERE name = $1', [25], ["x' OR '1' = '1'; DROP TABLE t; --\\"]);
    expect(sql).toBe(`SELECT a FROM t WHERE name = (E'x'' OR ''1'' = ''1''; DROP TABLE t; --\\\\'::pg_catalog.text)`);
  });

  it('leaves an undeclared type untyped where it resolves as the parameter: beside a column, in IN, BETWEEN, ANY, cast, or a LIMIT or OFFSET', () => {
    expect(inlineParameters('SELECT a FROM t WHERE k = $1 AND ts BETWEEN $2 AND $3 AND c IN ($4, $5) AND d = ANY ($6) AND $7::int > 0', [], ['1', 'a', 'b', 'c', 'd', '{1}', '2'])).toBe(
      `SELECT a FROM t WHERE k = '1' AND ts BETWEEN 'a' AND 'b' AND c IN ('c', 'd') AND d = ANY ('{1}') AND '2'::int > 0`,
    );
    expect(inlineParameters('SELECT a FROM t WHERE k = $1 ORDER BY a LIMIT $2 OFFSET $3', [], ['1', '10', '5'])).toBe(`SELECT a FROM t WHERE k = '1' ORDER BY a LIMIT '10' OFFSET '5'`);
    expect(inlineParameters('SELECT a FROM (SELECT a FROM t LIMIT $1) AS s FETCH FIRST $2 ROWS ONLY', [], ['3', '2'])).toBe(`SELECT a FROM (SELECT a FROM t LIMIT '3') AS s FETCH FIRST '2' ROWS ONLY`);
    // Elsewhere in a LIMIT (an expression of it), not.
    expect(inlineParameters('SELECT a FROM t LIMIT $1 + 1', [], ['3'])).toBeUndefined();
  });

  it('refuses an undeclared type elsewhere, an unknown type, binary or invalid text, a NUL, a count the statement does not take', () => {
    expect(inlineParameters('SELECT $1 AS x FROM t', [], ['a'])).toBeUndefined();
    expect(inlineParameters('SELECT a FROM t WHERE $1 = $2', [], ['a', 'a'])).toBeUndefined();
    expect(inlineParameters('SELECT a FROM t WHERE f($1)', [], ['a'])).toBeUndefined();
    expect(inlineParameters('SELECT a FROM t WHERE k = $1', [600], ['(1,2)'])).toBeUndefined();
    expect(inlineParameters('SELECT a FROM t WHERE k = $1', [25], [Buffer.from([0xff])])).toBeUndefined();
    expect(inlineParameters('SELECT a FROM t WHERE k = $1', [25], ['a\0b'])).toBeUndefined();
    expect(inlineParameters('SELECT a FROM t WHERE k = $2', [], ['1'])).toBeUndefined();
    expect(inlineParameters('SELECT a FROM t WHERE k = $1', [23, 23], ['1'])).toBeUndefined();
    expect(inlineParameters('SELECT 1; SELECT 2', [], [])).toBeUndefined();
    expect(inlineParameters('SELEC oops', [], [])).toBeUndefined();
    expect([0, 20, 1184, 1016].map(inlinableType)).toEqual([true, true, true, true]);
    expect([600, 16384].map(inlinableType)).toEqual([false, false]);
  });
});

describe('textValues', () => {
  const int4 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };
  it('reads binary values by their types (declared, or as the access node resolved them), text and NULL as they are', () => {
    // 2024-01-01 00:00:00 UTC: microseconds since 2000-01-01.
    const ts = Buffer.alloc(8);
    ts.writeBigInt64BE(757_382_400_000_000n);
    // int4[] {7, -2}: one dimension, no NULLs, element type 23, length 2 from 1.
    const array = Buffer.concat([int4(1), int4(0), int4(23), int4(2), int4(1), int4(4), int4(7), int4(4), int4(-2)]);
    const values = textValues([23, 1184, 1007, 25, 25, 0], [1, 1, 1, 0, 1, 0], [int4(42), ts, array, "it's", Buffer.from('Zürich', 'utf8'), null]);
    expect(values).toEqual(['42', '2024-01-01 00:00:00+00', '{7,-2}', "it's", 'Zürich', null]);
    expect(inlineParameters('SELECT a FROM t WHERE k = $1 AND ts >= $2 AND k = ANY ($3) AND n = $4 AND m = $5 AND $6::int IS NULL', [23, 1184, 1007, 25, 25, 0], values as string[])).toBe(
      "SELECT a FROM t WHERE k = ((42)::pg_catalog.int4) AND ts >= ('2024-01-01 00:00:00+00'::pg_catalog.timestamptz) AND k = ANY (('{7,-2}'::pg_catalog.int4[])) AND n = ('it''s'::pg_catalog.text) AND m = ('Zürich'::pg_catalog.text) AND NULL::int IS NULL",
    );
  });

  it('refuses binary of an undeclared type or one without a decoder, malformed bytes, and text that is not UTF-8', () => {
    expect(textValues([0], [1], [int4(1)])).toBeUndefined();
    expect(textValues([600], [1], [Buffer.alloc(16)])).toBeUndefined();
    expect(textValues([23], [1], [Buffer.alloc(3)])).toBeUndefined();
    expect(textValues([25], [1], [Buffer.from([0xff, 0xfe])])).toBeUndefined();
    // A text-format value readBind left as bytes (not UTF-8).
    expect(textValues([25], [0], [Buffer.from([0xc3])])).toBeUndefined();
  });
});
