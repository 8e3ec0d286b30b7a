/**
 * What `status` reads from a node's live catalog: the shard tables a data node holds and their
 * size, and the hypertables and foreign partitions on the access node.
 */
import type pg from 'pg';
import { INTERNAL_SCHEMA } from '../plan/layout.js';

export interface ShardMeasure {
  readonly present: boolean;
  /** Leaf partitions: the chunks and the default chunk. */
  readonly partitions: number;
  /** pg_total_relation_size summed over the leaves (tables, indexes, TOAST). */
  readonly bytes: number;
  /** reltuples summed over the leaves; null when a leaf with data was never analyzed. */
  readonly rows: number | null;
}

/**
 * Measures shard tables of INTERNAL_SCHEMA by name. A shard is partitioned by time, so its size
 * is its leaves' (a partitioned table has no storage of its own). reltuples is -1 until a leaf is
 * first analyzed; a leaf with no pages is certainly empty and counts 0, any other is unknown.
 */
export async function measureShards(client: pg.Client, names: readonly string[]): Promise<Map<string, ShardMeasure>> {
  const { rows } = await client.query<{ name: string; present: boolean; partitions: number; bytes: number; rows: number; unanalyzed: number }>(
    `SELECT s.name, c.oid IS NOT NULL AS present,
            coalesce(t.partitions, 0)::int AS partitions, coalesce(t.bytes, 0)::float8 AS bytes,
            coalesce(t.rows, 0)::float8 AS rows, coalesce(t.unanalyzed, 0)::int AS unanalyzed
     FROM unnest($1::text[]) AS s(name)
     LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = $2
     LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = s.name AND c.relkind IN ('r', 'p')
     LEFT JOIN LATERAL (
       SELECT count(*) AS partitions,
              sum(pg_catalog.pg_total_relation_size(l.oid)) AS bytes,
              sum(greatest(l.reltuples, 0)::float8) AS rows,
              count(*) FILTER (WHERE l.reltuples < 0 AND pg_catalog.pg_relation_size(l.oid) > 0) AS unanalyzed
       FROM pg_catalog.pg_partition_tree(c.oid) p
       JOIN pg_catalog.pg_class l ON l.oid = p.relid
       WHERE p.isleaf
     ) t ON c.oid IS NOT NULL`,
    [names, INTERNAL_SCHEMA],
  );
  return new Map(
    rows.map((r) => [r.name, { present: r.present, partitions: r.partitions, bytes: r.bytes, rows: r.unanalyzed > 0 ? null : r.rows }]),
  );
}

export interface AccessTableMeasure {
  /** The hypertable exists as a partitioned table. */
  readonly present: boolean;
  readonly foreignPartitions: number;
  /** Foreign partitions with statistics (analyzed at least once: reltuples ≥ 0). */
  readonly analyzed: number;
}

/** In the order of `tables`. */
export async function measureAccessTables(client: pg.Client, tables: readonly { schema: string; name: string }[]): Promise<AccessTableMeasure[]> {
  const { rows } = await client.query<{ present: boolean; partitions: number; analyzed: number }>(
    `SELECT c.oid IS NOT NULL AS present,
            coalesce(f.partitions, 0)::int AS partitions, coalesce(f.analyzed, 0)::int AS analyzed
     FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS h(schema, name, i)
     LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = h.schema
     LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = h.name AND c.relkind = 'p'
     LEFT JOIN LATERAL (
       SELECT count(*) AS partitions, count(*) FILTER (WHERE p.reltuples >= 0) AS analyzed
       FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class p ON p.oid = i.inhrelid
       WHERE i.inhparent = c.oid AND p.relkind = 'f'
     ) f ON true
     ORDER BY h.i`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  return rows.map((r) => ({ present: r.present, foreignPartitions: r.partitions, analyzed: r.analyzed }));
}
