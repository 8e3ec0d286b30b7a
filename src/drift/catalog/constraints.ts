/** CHECK constraints of tables, with their expressions as the server prints them. */
import type pg from 'pg';
import type { QualifiedName } from '../../plan/layout.js';
import { groupByTable } from '../model.js';

export interface CatalogCheck {
  readonly name: string;
  /** pg_get_expr(conbin): printed under the session's search_path (`check` sets pg_catalog, so names come qualified). */
  readonly expression: string;
  readonly validated: boolean;
}

export async function readCheckConstraints(client: pg.Client, tables: readonly QualifiedName[]): Promise<Map<string, CatalogCheck[]>> {
  const { rows } = await client.query<{ schema: string; table: string; name: string; expression: string; validated: boolean }>(
    `SELECT n.nspname AS schema, c.relname AS table, k.conname AS name,
            pg_catalog.pg_get_expr(k.conbin, k.conrelid) AS expression, k.convalidated AS validated
     FROM pg_catalog.pg_constraint k
     JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     JOIN unnest($1::text[], $2::text[]) AS w(nspname, relname) ON w.nspname = n.nspname AND w.relname = c.relname
     WHERE k.contype = 'c'
     ORDER BY 1, 2, 3`,
    [tables.map((t) => t.schema), tables.map((t) => t.name)],
  );
  return groupByTable(rows, (r) => ({ name: r.name, expression: r.expression, validated: r.validated }));
}
