/**
 * The routed writer's pure parts: COPY input parsers (rows found across chunk boundaries, the
 * space column read as PostgreSQL reads it, lines counted as it counts them), binary values to
 * text, gids, and what check says about a node that cannot take routed writes.
 */
import { describe, expect, it } from 'vitest';
import { binaryToText } from '../../src/codec/binaryText.js';
import { compareIngest } from '../../src/drift/compare/ingest.js';
import { routedBeginSql, ROUTING_SAVEPOINT } from '../../src/gateway/routedWrites.js';
import { GID_PREFIX, newGidPrefix, parseGid, participantGid, recordCommitSql } from '../../src/ingest/commitLog.js';
import { BINARY_HEADER, BinaryParser } from '../../src/ingest/formats/binary.js';
import { CsvParser } from '../../src/ingest/formats/csv.js';
import { InputError, type RowParser } from '../../src/ingest/formats/rows.js';
import { TextParser } from '../../src/ingest/formats/text.js';
import { parseArrayText } from '../../src/ingest/insert.js';
import { exactValues, ITEM, readValuesInsert } from '../../src/ingest/valuesText.js';
import { canonicalEncoding, DEFAULT_SETTINGS, settingMs } from '../../src/ingest/settings.js';
import { timeoutsSql } from '../../src/ingest/transaction.js';
import { planLayout } from '../../src/plan/layout.js';
import { shardLocksSql } from '../../src/route/lock.js';
import type { HypertableRoute } from '../../src/route/placement.js';
import { validateSpec } from '../../src/spec/validate.js';
import { render } from '../../src/sql/templates.js';

const utf8 = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

/** Every row the parser finds, fed `input` in pieces of `size` bytes. */
function rows(parser: RowParser, input: Buffer, size: number): { raw: string; key: string | null; line: number }[] {
  const out: { raw: string; key: string | null; line: number }[] = [];
  const sink = { row: (buf: Buffer, start: number, end: number, key: string | null, line: number) => out.push({ raw: buf.subarray(start, end).toString('latin1'), key, line }) };
  for (let i = 0; i < input.length; i += size) parser.push(input.subarray(i, i + size), sink);
  parser.end(sink);
  return out;
}

const text = (keyField = 1, header = false) => new TextParser({ delimiter: 9, nullString: Buffer.from('\\N'), keyField, keyName: 'k', header, decode: utf8 });
const csv = (keyField = 1, extra: Partial<ConstructorParameters<typeof CsvParser>[0]> = {}) =>
  new CsvParser({ delimiter: 44, quote: 34, escape: 34, nullString: Buffer.alloc(0), keyField, keyName: 'k', header: false, forceNull: false, forceNotNull: false, decode: utf8, ...extra });

describe('COPY text input', () => {
  const input = Buffer.from('1\tab\\tc\tx\n2\t\\N\ty\n3\tz\\\n\tw\n4\t\\101\\x42é\tend');
  for (const size of [1, 3, 7, 1000]) {
    it(`finds rows and de-escapes the key, in pieces of ${size} bytes`, () => {
      expect(rows(text(), input, size)).toEqual([
        { raw: '1\tab\\tc\tx\n', key: 'ab\tc', line: 1 },
        { raw: '2\t\\N\ty\n', key: null, line: 2 },
        // An escaped line end is data, not the end of the row.
        { raw: '3\tz\\\n\tw\n', key: 'z\n', line: 3 },
        // The last row gets a line end.
        { raw: '4\t\\101\\x42\xc3\xa9\tend\n', key: 'ABé', line: 4 },
      ]);
    });
  }

  it('keeps CRLF rows whole, skips a header, stops at \\.', () => {
    expect(rows(text(0, true), Buffer.from('k\r\na\r\nb\r\n\\.\r\nc\r\n'), 2)).toEqual([
      { raw: 'a\r\n', key: 'a', line: 2 },
      { raw: 'b\r\n', key: 'b', line: 3 },
    ]);
  });

  it('names the line of a row without the key column', () => {
    expect(() => rows(text(2), Buffer.from('1\t2\t3\n1\t2\n'), 100)).toThrow(new InputError(2, 'missing data for column "k"'));
  });
});

describe('COPY CSV input', () => {
  const input = Buffer.from('1,"a,""b""\nc",x\r\n2,,y\n3,"",z\n4,pl"ai"n,w\n5,last');
  for (const size of [1, 4, 1000]) {
    it(`finds rows with quoted line ends and reads NULL and quotes as PostgreSQL does, in pieces of ${size}`, () => {
      expect(rows(csv(), input, size).map((r) => [r.key, r.line])).toEqual([
        ['a,"b"\nc', 1],
        [null, 2], // unquoted empty: NULL
        ['', 3], // quoted empty: an empty string
        ['plain', 4], // a quote inside an unquoted field starts a quoted part
        ['last', 5],
      ]);
    });
  }

  it('FORCE_NULL and FORCE_NOT_NULL, another escape, an unterminated quote', () => {
    expect(rows(csv(1, { forceNull: true }), Buffer.from('1,""\n'), 10)[0]!.key).toBeNull();
    expect(rows(csv(1, { forceNotNull: true }), Buffer.from('1,\n'), 10)[0]!.key).toBe('');
    expect(rows(csv(1, { escape: 92 }), Buffer.from('1,"a\\"b\\\\c"\n'), 3)[0]!.key).toBe('a"b\\c');
    expect(() => rows(csv(), Buffer.from('1,"open\n2,x\n'), 100)).toThrow('unterminated CSV quoted field');
  });
});

describe('COPY binary input', () => {
  const field = (b: Buffer | null): Buffer => (b === null ? Buffer.from([0xff, 0xff, 0xff, 0xff]) : Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]));
  const tuple = (...fields: (Buffer | null)[]): Buffer => Buffer.concat([Buffer.from([0, fields.length]), ...fields.map(field)]);
  const int4 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeInt32BE(n);
    return b;
  };
  it('reads tuples across chunks, the key decoded from binary, and the trailer', () => {
    const input = Buffer.concat([BINARY_HEADER, tuple(Buffer.from('x'), int4(-7)), tuple(null, null), Buffer.from([0xff, 0xff])]);
    for (const size of [1, 5, 1000]) {
      const parser = new BinaryParser({ keyField: 1, keyName: 'k', keyType: 23, fields: 2, decode: utf8 });
      expect(rows(parser, input, size).map((r) => [r.key, r.line, r.raw.length])).toEqual([['-7', 1, 2 + 5 + 8], [null, 2, 2 + 4 + 4]]);
    }
  });
  it('refuses a wrong signature and a wrong field count', () => {
    expect(() => rows(new BinaryParser({ keyField: 0, keyName: 'k', keyType: 23, fields: 1, decode: utf8 }), Buffer.from('PGCOPY\nXXXXXXXXXXXXXXXXXXXXXXXX'), 100)).toThrow('COPY file signature not recognized');
    expect(() => rows(new BinaryParser({ keyField: 0, keyName: 'k', keyType: 23, fields: 1, decode: utf8 }), Buffer.concat([BINARY_HEADER, tuple(int4(1), int4(2))]), 100)).toThrow('row field count is 2, expected 1');
  });
});

describe('binary values as text their input functions read back', () => {
  const hex = (h: string): Buffer => Buffer.from(h.replace(/ /g, ''), 'hex');
  it.each([
    [16, '01', 't'],
    [21, 'ff fe', '-2'],
    [20, '7fffffffffffffff', '9223372036854775807'],
    [700, '3dcccccd', '0.1'],
    [701, '3ff8000000000000', '1.5'],
    [701, '8000000000000000', '-0'],
    // numeric -123.45: 2 digits, weight 0, negative, dscale 2, digits 123 4500
    [1700, '0002 0000 4000 0002 007b 1194', '-123.45'],
    [1700, '0001 ffff 0000 0004 04d2', '0.1234'],
    [1700, '0000 0000 c000 0000', 'NaN'],
    [2950, 'a0eebc999c0b4ef8bb6d6bb9bd380a11', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'],
    [17, 'de ad', '\\xdead'],
    // Bytes from date_send, timestamp_send, interval_send on PostgreSQL 18.
    [1082, '0000223e', '2024-01-01'],
    [1082, 'fffff496', '1992-01-01'],
    [1082, 'fff49d7b', '0044-03-15 BC'],
    [1114, '0002b0de36b17890', '2024-01-01 10:00:00.25'],
    [1186, '00000002925cf46000000002fffffff4', 'P-12M2DT11045.5S'],
    [1184, '0000000000000001', '2000-01-01 00:00:00.000001+00'],
    [1186, '000000000098968000000001000000 0e'.replace(/ /g, ''), 'P14M1DT10S'],
    [869, '02 18 00 04 0a000100', '10.0.1.0/24'],
    [829, '08002b010203', '08:00:2b:01:02:03'],
    [3802, '01 7b7d', '{}'],
  ] as [number, string, string][])('type %i %s → %s', (oid, bytes, expected) => {
    expect(binaryToText(oid, hex(bytes))).toBe(expected);
  });

  it('arrays, with NULLs, quoting and bounds', () => {
    // int4[] {1,NULL}: ndim 1, hasnull 1, elem 23, dim 2 lbound 1
    expect(binaryToText(1007, hex('00000001 00000001 00000017 00000002 00000001 00000004 00000001 ffffffff'))).toBe('{1,NULL}');
    // text[] {"a b",""} with lower bound 0
    expect(binaryToText(1009, hex('00000001 00000000 00000019 00000002 00000000 00000003 612062 00000000'))).toBe('[0:1]={"a b",""}');
  });
});

describe('gids', () => {
  it('name the deciding access-node transaction and the participant', () => {
    const prefix = newGidPrefix('7201');
    expect(prefix).toMatch(new RegExp(`^${GID_PREFIX}7201_[0-9a-f]{16}$`));
    expect(parseGid(participantGid(prefix, 3))).toEqual({ prefix, xid: '7201', participant: 3 });
    expect(parseGid('hypershard_exec_0b1c_dn1')).toBeUndefined();
  });

  it("the commit record with its values written in (one message with the COMMIT), hostile node names quoted", () => {
    expect(recordCommitSql(`${GID_PREFIX}7_00000000000000ff`, ['dn1', "o'brien"])).toBe(
      `SELECT "_hypershard"."record_commit"('${GID_PREFIX}7_00000000000000ff'::pg_catalog.text, ARRAY['dn1', 'o''brien']::pg_catalog.text[])`,
    );
  });

  it('a routed write opens in one message: the block, the check, the guessed shard locks, then the signature read after them', () => {
    const table = { schema: 'public', name: "we'ird" };
    const route = { oid: 16384, partitions: [{ remainder: 1 }, { remainder: 0 }] } as unknown as HypertableRoute;
    const bare = routedBeginSql(true, 'metrics', undefined).split(';\n');
    expect(bare).toHaveLength(2);
    expect(bare[0]).toBe('BEGIN');
    expect(bare[1]).toContain("pg_catalog.to_regclass('metrics')");
    // The session's timeouts, which ParameterStatus does not report, read in the same message.
    expect(bare[1]).toContain("pg_catalog.current_setting('statement_timeout')");
    expect(bare[1]).toContain("pg_catalog.current_setting('lock_timeout')");
    const guessed = routedBeginSql(false, "public.\"we'ird\"", { table, route }).split(';\n');
    expect(guessed).toHaveLength(4);
    expect(guessed[0]).toBe(`SAVEPOINT ${ROUTING_SAVEPOINT}`);
    expect(guessed[1]).toContain(`pg_catalog.to_regclass('public."we''ird"')`);
    expect(guessed[2]).toBe(shardLocksSql(table, [0, 1], 'shared'));
    expect(guessed[3]).toContain('a.attrelid = 16384::pg_catalog.oid');
    expect(guessed[3]).not.toContain('$1');
  });

  it("the client's statement_timeout and lock_timeout: read as current_setting shows them, set locally on each participant, nothing when unset", () => {
    expect(['0', '250ms', '3s', '1min', '2h', '1d', 'soon'].map(settingMs)).toEqual([0, 250, 3000, 60_000, 7_200_000, 86_400_000, undefined]);
    expect(timeoutsSql(DEFAULT_SETTINGS)).toBe('');
    expect(timeoutsSql({ ...DEFAULT_SETTINGS, statementTimeoutMs: 0, lockTimeoutMs: 0 })).toBe('');
    expect(timeoutsSql({ ...DEFAULT_SETTINGS, statementTimeoutMs: 3000, lockTimeoutMs: 500 })).toBe('; SET LOCAL statement_timeout = 3000; SET LOCAL lock_timeout = 500');
  });

  it('client encodings: PostgreSQL spellings, and a clear refusal where a delimiter can hide in a character', () => {
    expect(canonicalEncoding('utf-8')).toBe('UTF8');
    expect(canonicalEncoding('Latin1')).toBe('LATIN1');
    expect(() => canonicalEncoding('SJIS')).toThrow('client encoding "SJIS" is not supported by routed writes');
  });
});

describe('check: routed writes', () => {
  it('warns about a data node without prepared transactions, reports a missing commit log and transactions left in doubt', () => {
    expect(compareIngest('data', { maxPreparedTransactions: 0, commitLog: true, inDoubt: 0 }).map((f) => f.kind)).toEqual(['warning']);
    expect(compareIngest('access', { maxPreparedTransactions: 0, commitLog: false, inDoubt: 0 }).map((f) => [f.kind, f.object])).toEqual([['missing', 'table _hypershard.commits']]);
    expect(compareIngest('data', { maxPreparedTransactions: 10, commitLog: true, inDoubt: 2 })[0]?.message).toContain('2 routed transactions were left prepared');
    expect(compareIngest('data', { maxPreparedTransactions: 10, commitLog: true, inDoubt: 0 })).toEqual([]);
  });
});

describe('unique indexes for routed upserts', () => {
  const spec = (index: Record<string, unknown>) => ({
    version: 1,
    accessNode: { name: 'access', url: 'postgres://postgres@a/app' },
    dataNodes: [{ name: 'dn1', url: 'postgres://postgres@b/app' }],
    fdw: { serviceRole: { password: { env: 'SVC' } } },
    hypertables: [{ name: 'm', columns: [{ name: 't', type: 'timestamptz', notNull: true }, { name: 'k', type: 'int', notNull: true }, { name: 'v', type: 'int' }], timeColumn: 't', spaceColumn: 'k', shards: 2, indexes: [index] }],
  });
  it('needs btree and the space and time columns, and renders CREATE UNIQUE INDEX', () => {
    expect(planLayout(validateSpec(spec({ columns: ['k', 't'], unique: true }))).hypertables[0]?.indexes[0]).toMatchObject({ unique: true, method: 'btree' });
    expect(() => validateSpec(spec({ columns: ['k', 'v'], unique: true }))).toThrow(/a unique index must include the space and time columns; add "t"/);
    expect(() => validateSpec(spec({ columns: ['k', 't'], unique: true, method: 'brin' }))).toThrow(/a unique index must use btree, not brin/);
    expect(render('data/create-index', { index: { name: 'm_k_t_idx', method: 'btree', unique: true, columns: [{ name: 'k', order: 'asc' }, { name: 't', order: 'asc' }] }, table: { schema: 'public', name: 'm' } })).toMatch(/^CREATE UNIQUE INDEX "?m_k_t_idx"? ON/);
  });
});

describe('parseArrayText (unnest parameters split by shard)', () => {
  it('reads one-dimensional array text as PostgreSQL does, and refuses the rest', () => {
    expect(parseArrayText('{}')).toEqual([]);
    expect(parseArrayText('{1, 2 ,3}')).toEqual(['1', '2', '3']);
    expect(parseArrayText('{"a b","c\\"d",NULL,"NULL",e\\,f, x y }')).toEqual(['a b', 'c"d', null, 'NULL', 'e,f', 'x y']);
    expect(parseArrayText('{{1},{2}}')).toMatch(/multidimensional/);
    expect(parseArrayText('[0:1]={1,2}')).toMatch(/explicit bounds/);
    expect(parseArrayText('{1,,2}')).toMatch(/empty/);
  });
});

describe('readValuesInsert (a multi-row INSERT … VALUES read without the parser)', () => {
  const read = (sql: string, standardStrings = true) => readValuesInsert(sql, { standardStrings });

  it('reads constants into COPY text lines, identifiers folded as PostgreSQL folds them', () => {
    const v = read(`insert /* c /* nested */ */ INTO Public."My ""T"" " (Time, "Dev", v, note) -- x
      VALUES ('2026-01-01T00:00:00Z'::timestamptz, -3, 1.5e3, 'it''s\ta\\b\nc'), ('x', 12, .5, NULL),(  '' , 0 , -2 , '\\N' ) ;  `);
    expect(v).toMatchObject({ schema: 'public', name: 'My "T" ', columns: ['time', 'Dev', 'v', 'note'], width: 4, rows: 3 });
    expect(v?.copyText).toBe("2026-01-01T00:00:00Z\t-3\t1.5e3\tit's\\ta\\\\b\\nc\nx\t12\t.5\t\\N\n\t0\t-2\t\\\\N\n");
    expect(v?.kinds).toEqual([ITEM.string, ITEM.integer, ITEM.decimal | ITEM.integer, ITEM.string | ITEM.null]);
    expect([...(v?.casts[0] ?? [])]).toEqual([1184]);
    expect(read("INSERT INTO t VALUES (true, 'a'::pg_catalog.text), (FALSE, 'b'::character varying::text)")?.copyText).toBe('t\ta\nf\tb\n');
    expect(read("INSERT INTO t VALUES ('x'::timestamp with time zone, 1::double precision)")?.casts.map((c) => [...c])).toEqual([[1184], [701]]);
  });

  it('leaves every other statement to the exact path', () => {
    for (const sql of [
      "INSERT INTO t VALUES (E'a\\tb')", // escape strings
      "INSERT INTO t VALUES ('a\\b')", // a backslash when standard_conforming_strings is off
      'INSERT INTO t VALUES (now())',
      'INSERT INTO t VALUES (DEFAULT)',
      'INSERT INTO t VALUES ($1)',
      'INSERT INTO t VALUES (1) RETURNING *',
      'INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING',
      'INSERT INTO t VALUES (1), (1, 2)',
      'INSERT INTO t (a, b) VALUES (1)',
      'INSERT INTO t VALUES (- 1)',
      'INSERT INTO t VALUES (0x1F)',
      'INSERT INTO t VALUES (1_000)',
      'INSERT INTO t VALUES (12abc)',
      "INSERT INTO t VALUES ('a' 'b')",
      "INSERT INTO t VALUES ('a'\n'b')",
      "INSERT INTO t VALUES ('a'::varchar(3))",
      "INSERT INTO t VALUES ('a'::char)",
      "INSERT INTO t VALUES ('{1}'::int[])",
      "INSERT INTO t VALUES ('a'::public.mytype)",
      'INSERT INTO t VALUES (1.5::int)',
      'INSERT INTO t VALUES (1::text)',
      'INSERT INTO t VALUES (true::text)',
      'INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)',
      'INSERT INTO db.s.t VALUES (1)',
      'WITH x AS (SELECT 1) INSERT INTO t VALUES (1)',
      'INSERT INTO t SELECT 1',
      "INSERT INTO t VALUES ('unterminated)",
      'INSERT INTO t VALUES (1) /* unterminated',
      `INSERT INTO ${'x'.repeat(64)} VALUES (1)`,
    ]) {
      expect(read(sql, sql !== "INSERT INTO t VALUES ('a\\b')"), sql).toBeUndefined();
    }
  });

  it('exactValues: numbers only where the column reads them unchanged, casts only to the column type', () => {
    const check = (sql: string, types: number[]) => exactValues(read(sql) as NonNullable<ReturnType<typeof read>>, types);
    expect(check("INSERT INTO t VALUES (1, 2.5, 'x', true, NULL, 3)", [23, 701, 1184, 16, 20, 1700])).toBeUndefined();
    expect(check('INSERT INTO t VALUES (1.5)', [23])).toMatch(/decimal constant for column 1/);
    expect(check('INSERT INTO t VALUES (1)', [25])).toMatch(/integer constant/);
    expect(check('INSERT INTO t VALUES (true)', [25])).toMatch(/boolean constant/);
    expect(check("INSERT INTO t VALUES ('x'::timestamp)", [1184])).toMatch(/cast to another type/);
    expect(check('INSERT INTO t VALUES (NULL::int)', [1184])).toMatch(/cast to another type/);
    expect(check('INSERT INTO t VALUES (-0.0), (1)', [701])).toMatch(/negative zero/);
    expect(check('INSERT INTO t VALUES (-0.0), (1)', [1700])).toBeUndefined();
    expect(check('INSERT INTO t VALUES (-0.01)', [701])).toBeUndefined();
  });
});
