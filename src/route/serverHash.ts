/**
 * The exact fallback: the server reads a key value with the column's own input function and
 * typmod (what COPY does, so `varchar(4)` rejects 'abcdef' instead of cutting it) under the
 * session's DateStyle, TimeZone and IntervalStyle, and hashes it with the partition key's hash
 * support function and collation. One round trip per batch of distinct values; results cached.
 */
import type { Queryable } from '../rewrite/discover.js';
import { fromBigInt, type Hash64 } from './hash.js';
import type { KeyColumn } from './placement.js';

/** HASH_PARTITION_SEED as the int8 the hash support functions take. */
const SEED_SQL = '8816678312871386365';

export function serverHashSql(key: KeyColumn): string {
  const read = key.inputTakesTypmod
    ? `${key.inputFunction}(v.x::pg_catalog.cstring, ${key.ioParam}, ${key.typmod})`
    : `${key.inputFunction}(v.x::pg_catalog.cstring)`;
  // array_in returns anyarray, which takes no cast and no collation: its output (exact, in the
  // same session) is read again as the array type, its typmod already applied.
  const input = key.array ? `${key.outputFunction}(${read})::pg_catalog.text` : read;
  const value = `(${input})::${key.typeSql}${key.collate}`;
  // hash_record_extended of a one-column row is that column's type's default extended hash
  // (PostgreSQL 14+), called through fmgr: no SQL signature to match (bytea's takes `internal`
  // before 18, boolean's is "char"'s). A partition key with another operator class calls its own.
  const hash = key.defaultOpclass ? `pg_catalog.hash_record_extended(ROW(${value}), ${SEED_SQL})` : `${key.hashFunction}(${value}, ${SEED_SQL})`;
  return `SELECT ${hash}::text AS h
FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS v(x, i) ORDER BY v.i`;
}

/** A value the server's input function rejected, with its message. */
export class KeyValueError extends Error {
  readonly value: string;
  readonly code: string | undefined;
  constructor(value: string, message: string, code: string | undefined) {
    super(message);
    this.value = value;
    this.code = code;
  }
}

/**
 * Hashes `values` on the server: one query for all; when one is invalid (the query fails), each
 * is asked alone so the bad ones get their own error and the rest their hash.
 */
export async function serverHashes(server: Queryable, key: KeyColumn, values: readonly string[]): Promise<(Hash64 | KeyValueError)[]> {
  const sql = serverHashSql(key);
  try {
    const { rows } = await server.query<{ h: string }>(sql, [values]);
    return rows.map((r) => fromBigInt(BigInt(r.h)));
  } catch (error) {
    if (values.length === 1) {
      const e = error as { message?: string; code?: string };
      return [new KeyValueError(values[0] as string, e.message ?? String(error), e.code)];
    }
    // Only data errors (class 22: invalid input, out of range) are about a value; anything else
    // (a broken connection, a missing function) is the caller's to report.
    if (!((error as { code?: string }).code ?? '').startsWith('22')) throw error;
    const out: (Hash64 | KeyValueError)[] = [];
    for (const value of values) out.push(...(await serverHashes(server, key, [value])));
    return out;
  }
}
