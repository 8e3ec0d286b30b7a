/**
 * What a data node's catalog says of a shard's chunks: every partition with its bound, size and
 * row estimate, and which one is the default. Bounds are read back from pg_get_expr(relpartbound)
 * and cast by the server itself, in a UTC session (see session.ts), so timestamp and timestamptz
 * chunks alike come back as epoch seconds.
 */
import type pg from 'pg';
import { INTERNAL_SCHEMA, type QualifiedName } from '../plan/layout.js';
import { quoteQualified } from '../sql/quote.js';
import type { TimeRange } from './ranges.js';

export interface CatalogChunk {
  /** Name of the shard table (in INTERNAL_SCHEMA) the chunk is a partition of. */
  readonly shard: string;
  readonly table: QualifiedName;
  readonly isDefault: boolean;
  /** pg_get_expr(relpartbound), e.g. `FOR VALUES FROM ('…') TO ('…')` or `DEFAULT`. */
  readonly range: string;
  /** The range bounds; undefined for the default chunk or a bound that is not two timestamps. */
  readonly bounds: TimeRange | undefined;
  /** pg_total_relation_size: table, indexes and TOAST. */
  readonly bytes: number;
  /** reltuples; -1 when never analyzed (PostgreSQL 14+). */
  readonly reltuples: number;
}

export interface ShardCatalog {
  /** Shard tables that exist (as partitioned tables). */
  readonly present: ReadonlySet<string>;
  /** Partitions of those shards, by shard, then lower bound, the default last. */
  readonly chunks: readonly CatalogChunk[];
}

/** Two quoted timestamps: a range chunk. MINVALUE / MAXVALUE bounds do not match and stay undefined. */
const RANGE_BOUND = String.raw`^FOR VALUES FROM \('([0-9][^']*)'\) TO \('([0-9][^']*)'\)$`;

/** Reads the chunks of the named shard tables of INTERNAL_SCHEMA. */
export async function readShardChunks(client: pg.Client, shards: readonly string[]): Promise<ShardCatalog> {
  const { rows: present } = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname = ANY ($2::text[]) AND c.relkind = 'p'`,
    [INTERNAL_SCHEMA, shards],
  );
  const { rows } = await client.query<{
    shard: string; schema: string; name: string; is_default: boolean; range: string;
    from_epoch: number | null; to_epoch: number | null; bytes: number; reltuples: number;
  }>(
    `SELECT p.relname AS shard, n.nspname AS schema, c.relname AS name, c.oid = pt.partdefid AS is_default,
            b.expr AS range,
            extract(epoch FROM (b.m[1])::timestamptz)::float8 AS from_epoch,
            extract(epoch FROM (b.m[2])::timestamptz)::float8 AS to_epoch,
            pg_catalog.pg_total_relation_size(c.oid)::float8 AS bytes, c.reltuples::float8 AS reltuples
     FROM pg_catalog.pg_class p
     JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
     JOIN pg_catalog.pg_partitioned_table pt ON pt.partrelid = p.oid
     JOIN pg_catalog.pg_inherits i ON i.inhparent = p.oid
     JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     CROSS JOIN LATERAL (SELECT pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS expr) e
     CROSS JOIN LATERAL (SELECT e.expr, pg_catalog.regexp_match(e.expr, $3) AS m) b
     WHERE pn.nspname = $1 AND p.relname = ANY ($2::text[]) AND p.relkind = 'p'
     ORDER BY p.relname, c.oid = pt.partdefid, from_epoch, c.relname`,
    [INTERNAL_SCHEMA, shards, RANGE_BOUND],
  );
  return {
    present: new Set(present.map((r) => r.name)),
    chunks: rows.map((r) => ({
      shard: r.shard,
      table: { schema: r.schema, name: r.name },
      isDefault: r.is_default,
      range: r.range,
      bounds: r.from_epoch === null || r.to_epoch === null ? undefined : { from: r.from_epoch, to: r.to_epoch },
      bytes: r.bytes,
      reltuples: r.reltuples,
    })),
  };
}

/** Exact row count of one table without its partitions (a default chunk). */
export async function countRows(client: pg.Client, table: QualifiedName): Promise<number> {
  const { rows } = await client.query<{ n: number }>(`SELECT count(*)::float8 AS n FROM ONLY ${quoteQualified(table.schema, table.name)}`);
  return rows[0]?.n ?? 0;
}
