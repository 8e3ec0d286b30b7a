/** Indexes defined on tables (the data nodes' local parents): columns, their order, method. */
import type pg from 'pg';
import type { QualifiedName } from '../../plan/layout.js';
import { groupByTable } from '../model.js';

export interface CatalogIndex {
  readonly name: string;
  readonly schema: string;
  readonly method: string;
  /** Key columns in order; an expression shows as `(expression)`. */
  readonly columns: readonly { readonly name: string; readonly order: 'asc' | 'desc' }[];
  readonly unique: boolean;
}

export async function readIndexes(client: pg.Client, tables: readonly QualifiedName[]): Promise<Map<string, CatalogIndex[]>> {
  const { rows } = await client.query<{ schema: string; table: string; name: string; index_schema: string; method: string; columns: string[]; descending: boolean[]; unique: boolean }>(
    `SELECT n.nspname AS schema, c.relname AS table, ic.relname AS name, icn.nspname AS index_schema, am.amname AS method,
            ARRAY(SELECT coalesce(a.attname::text, '(expression)')
                  FROM unnest(x.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord)
                  LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
                  WHERE k.ord <= x.indnkeyatts ORDER BY k.ord) AS columns,
            ARRAY(SELECT coalesce(pg_catalog.pg_index_column_has_property(x.indexrelid, k.ord::int, 'desc'), false)
                  FROM generate_series(1, x.indnkeyatts) AS k(ord) ORDER BY k.ord) AS descending,
            x.indisunique AS unique
     FROM pg_catalog.pg_index x
     JOIN pg_catalog.pg_class c ON c.oid = x.indrelid
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     JOIN pg_catalog.pg_class ic ON ic.oid = x.indexrelid
     JOIN pg_catalog.pg_namespace icn ON icn.oid = ic.relnamespace
     JOIN pg_catalog.pg_am am ON am.oid = ic.relam
     JOIN unnest($1::text[], $2::text[]) AS w(nspname, relname) ON w.nspname = n.nspname AND w.relname = c.relname
     ORDER BY 1, 2, 3`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  return groupByTable(
    rows,
    (r): CatalogIndex => ({
      name: r.name,
      schema: r.index_schema,
      method: r.method,
      columns: r.columns.map((name, i) => ({ name, order: r.descending[i] === true ? 'desc' : 'asc' })),
      unique: r.unique,
    }),
  );
}
