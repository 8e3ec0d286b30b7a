/** Columns of tables as the catalog has them: name, `format_type()` and NOT NULL. */
import type pg from 'pg';
import type { QualifiedName } from '../../plan/layout.js';
import { groupByTable } from '../model.js';

export interface CatalogColumn {
  readonly name: string;
  /** format_type(atttypid, atttypmod), e.g. `timestamp with time zone`, `numeric(12,2)`. */
  readonly type: string;
  readonly notNull: boolean;
}

/** Columns by table (nameKey), in attribute order; tables that do not exist are absent. */
export async function readColumns(client: pg.Client, tables: readonly QualifiedName[]): Promise<Map<string, CatalogColumn[]>> {
  const { rows } = await client.query<{ schema: string; table: string; name: string; type: string; not_null: boolean }>(
    `SELECT n.nspname AS schema, c.relname AS table, a.attname AS name,
            pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null
     FROM pg_catalog.pg_attribute a
     JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     JOIN unnest($1::text[], $2::text[]) AS w(nspname, relname) ON w.nspname = n.nspname AND w.relname = c.relname
     WHERE a.attnum > 0 AND NOT a.attisdropped
     ORDER BY n.nspname, c.relname, a.attnum`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  return groupByTable(rows, (r) => ({ name: r.name, type: r.type, notNull: r.not_null }));
}
