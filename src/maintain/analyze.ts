/**
 * Statistics. On the access node, ANALYZE of a hypertable samples every foreign partition through
 * postgres_fdw: autovacuum never analyzes foreign tables, and the planner's pushdown choices
 * depend on their row counts. On a data node, the chunks that just received rows (autovacuum
 * would get to them, but not before the next queries).
 */
import type pg from 'pg';
import type { QualifiedName } from '../plan/layout.js';
import { quoteQualified } from '../sql/quote.js';

/** The tables that exist, in order (a hypertable not yet applied is reported, not analyzed). */
export async function existingTables(client: pg.Client, tables: readonly QualifiedName[]): Promise<QualifiedName[]> {
  const { rows } = await client.query<{ exists: boolean }>(
    `SELECT pg_catalog.to_regclass(t) IS NOT NULL AS exists FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i) ORDER BY i`,
    [tables.map((t) => quoteQualified(t.schema, t.name))],
  );
  return tables.filter((_, i) => rows[i]?.exists === true);
}

export async function analyzeTables(client: pg.Client, tables: readonly QualifiedName[]): Promise<void> {
  if (tables.length === 0) return;
  await client.query(`ANALYZE ${tables.map((t) => quoteQualified(t.schema, t.name)).join(', ')}`);
}
