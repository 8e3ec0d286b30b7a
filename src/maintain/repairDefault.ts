/**
 * Moving rows out of a shard's default chunk into proper chunks. PostgreSQL refuses to create a
 * partition whose range has rows in the default partition, so each chunk is built beside the
 * shard and attached once it holds its rows: CREATE TABLE (LIKE shard) — columns, NOT NULL and
 * the shard's bounds CHECK, which ATTACH requires — then DELETE … RETURNING into it, then
 * ATTACH PARTITION, which builds the shard's indexes on it. The caller runs all of a shard's moves
 * in one transaction holding the default chunk in EXCLUSIVE mode (writes wait, reads go on), so
 * no row can arrive in a range between its move and its ATTACH.
 */
import type pg from 'pg';
import type { QualifiedName } from '../plan/layout.js';
import { quoteIdent, quoteLiteral, quoteQualified } from '../sql/quote.js';
import { boundText, ORIGIN_EPOCH, type TimeRange } from './ranges.js';
import type { DefaultBin } from './shardPlan.js';

export interface DefaultRows {
  readonly bins: readonly DefaultBin[];
  /** Rows at ±infinity, which no chunk can hold. */
  readonly infiniteRows: number;
}

/**
 * Rows of a default chunk per chunk index. Computed with numeric epoch arithmetic rather than
 * date_bin, whose bins before the origin were off by one on older 14.x/15.x minor releases;
 * `extract(epoch …)` reads a timestamp as UTC, as timestamp chunks are bounded.
 */
export async function readDefaultRows(client: pg.Client, chunk: QualifiedName, timeColumn: string, strideSeconds: number): Promise<DefaultRows> {
  const time = quoteIdent(timeColumn);
  const { rows } = await client.query<{ bin: number | null; rows: number }>(
    `SELECT CASE WHEN pg_catalog.isfinite(${time}) THEN floor((extract(epoch FROM ${time}) - $1) / $2)::float8 END AS bin, count(*)::float8 AS rows
     FROM ONLY ${quoteQualified(chunk.schema, chunk.name)} GROUP BY 1 ORDER BY 1`,
    [ORIGIN_EPOCH, strideSeconds],
  );
  return {
    bins: rows.filter((r): r is { bin: number; rows: number } => r.bin !== null),
    infiniteRows: rows.filter((r) => r.bin === null).reduce((sum, r) => sum + r.rows, 0),
  };
}

/** Columns of a table in order, as the move lists them (never `*`: dropped columns differ between tables). */
export async function tableColumns(client: pg.Client, table: QualifiedName): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT attname AS name FROM pg_catalog.pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [quoteQualified(table.schema, table.name)],
  );
  return rows.map((r) => r.name);
}

export interface ChunkMove {
  readonly shard: QualifiedName;
  readonly defaultChunk: QualifiedName;
  readonly chunk: QualifiedName;
  readonly range: TimeRange;
  readonly timeColumn: string;
  /** The time column is `timestamp`: bounds are UTC wall-clock times. */
  readonly utc: boolean;
  readonly columns: readonly string[];
}

/** Builds the chunk, moves its rows out of the default chunk and attaches it; returns the rows moved. */
export async function moveIntoChunk(client: pg.Client, move: ChunkMove): Promise<number> {
  const shard = quoteQualified(move.shard.schema, move.shard.name);
  const chunk = quoteQualified(move.chunk.schema, move.chunk.name);
  const time = quoteIdent(move.timeColumn);
  const columns = move.columns.map(quoteIdent).join(', ');
  const cast = move.utc ? 'timestamp' : 'timestamptz';
  const from = boundText(move.range.from, move.utc);
  const to = boundText(move.range.to, move.utc);
  // No INCLUDING INDEXES: ATTACH creates the shard's indexes, after the rows are in.
  await client.query(
    `CREATE TABLE ${chunk} (LIKE ${shard} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION)`,
  );
  const moved = await client.query(
    `WITH moved AS (DELETE FROM ONLY ${quoteQualified(move.defaultChunk.schema, move.defaultChunk.name)}
                    WHERE ${time} >= $1::${cast} AND ${time} < $2::${cast} RETURNING ${columns})
     INSERT INTO ${chunk} (${columns}) SELECT ${columns} FROM moved`,
    [from, to],
  );
  await client.query(`ALTER TABLE ${shard} ATTACH PARTITION ${chunk} FOR VALUES FROM (${quoteLiteral(from)}) TO (${quoteLiteral(to)})`);
  return moved.rowCount ?? 0;
}
