/**
 * The default chunk of each shard and the rows it holds: rows outside every time chunk land
 * there, where range pruning cannot skip them and `maintain` has to move them.
 */
import type pg from 'pg';
import type { QualifiedName } from '../../plan/layout.js';
import { errorMessage } from '../../errors.js';
import { quoteIdent, quoteQualified } from '../../sql/quote.js';

export interface CatalogDefaultChunk {
  readonly shard: QualifiedName;
  readonly chunk: QualifiedName;
  readonly rows: number;
  /** Oldest and newest time in it, as text; undefined when empty. */
  readonly from: string | undefined;
  readonly to: string | undefined;
  /** Why its rows could not be counted (a lock held too long, a missing time column). */
  readonly error?: string;
}

/** Default partitions of the shards that exist; a shard without one is absent from the result. */
export async function readDefaultChunks(client: pg.Client, shards: readonly { readonly table: QualifiedName; readonly timeColumn: string }[]): Promise<CatalogDefaultChunk[]> {
  const { rows: defaults } = await client.query<{ shard_schema: string; shard_name: string; schema: string; name: string }>(
    `SELECT pn.nspname AS shard_schema, p.relname AS shard_name, n.nspname AS schema, c.relname AS name
     FROM pg_catalog.pg_partitioned_table pt
     JOIN pg_catalog.pg_class p ON p.oid = pt.partrelid
     JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
     JOIN unnest($1::text[], $2::text[]) AS w(nspname, relname) ON w.nspname = pn.nspname AND w.relname = p.relname
     JOIN pg_catalog.pg_class c ON c.oid = pt.partdefid
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     ORDER BY 1, 2`,
    [shards.map((s) => s.table.schema), shards.map((s) => s.table.name)],
  );
  const chunks: CatalogDefaultChunk[] = [];
  for (const d of defaults) {
    const shard = shards.find((s) => s.table.schema === d.shard_schema && s.table.name === d.shard_name);
    if (shard === undefined) continue;
    const time = quoteIdent(shard.timeColumn);
    const chunk = { schema: d.schema, name: d.name };
    try {
      const { rows } = await client.query<{ rows: string; from: string | null; to: string | null }>(
        `SELECT count(*) AS rows, min(${time})::text AS from, max(${time})::text AS to FROM ONLY ${quoteQualified(d.schema, d.name)}`,
      );
      const row = rows[0];
      chunks.push({ shard: shard.table, chunk, rows: Number(row?.rows ?? 0), from: row?.from ?? undefined, to: row?.to ?? undefined });
    } catch (error) {
      // Outside a transaction a failed query leaves the session usable: report it, go on.
      chunks.push({ shard: shard.table, chunk, rows: 0, from: undefined, to: undefined, error: errorMessage(error) });
    }
  }
  return chunks;
}
