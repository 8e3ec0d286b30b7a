/**
 * The write guard of each shard (templates/data/create-write-guard-function.sql.hbs): its
 * function, and which shard tables have the statement trigger, enabled.
 */
import type pg from 'pg';
import { INTERNAL_SCHEMA, type QualifiedName } from '../../plan/layout.js';
import { WRITE_GUARD_TRIGGER } from '../../sql/dataNode.js';
import { quoteIdent } from '../../sql/quote.js';
import { nameKey } from '../model.js';

export interface CatalogWriteGuards {
  readonly function: boolean;
  /** nameKey of each existing shard table that has the trigger, enabled. */
  readonly guarded: ReadonlySet<string>;
}

/** The guards of `shards`, and which of them exist (nameKey: apply makes guards on those only). */
export async function readWriteGuards(client: pg.Client, shards: readonly QualifiedName[]): Promise<CatalogWriteGuards & { readonly existing: ReadonlySet<string> }> {
  const { rows } = await client.query<{ schema: string; name: string; guarded: boolean }>(
    `SELECT n.nspname AS schema, c.relname AS name,
       EXISTS (SELECT FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = $3 AND t.tgenabled <> 'D') AS guarded
     FROM unnest($1::text[], $2::text[]) AS w(nspname, relname)
     JOIN pg_catalog.pg_namespace n ON n.nspname = w.nspname
     JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = w.relname`,
    [shards.map((s) => s.schema), shards.map((s) => s.name), WRITE_GUARD_TRIGGER],
  );
  const { rows: fn } = await client.query<{ exists: boolean }>(`SELECT pg_catalog.to_regprocedure($1) IS NOT NULL AS exists`, [`${quoteIdent(INTERNAL_SCHEMA)}.refuse_ctid_writes()`]);
  const keys = (list: readonly { schema: string; name: string }[]): Set<string> => new Set(list.map((r) => nameKey({ schema: r.schema, name: r.name })));
  return { function: fn[0]?.exists === true, existing: keys(rows), guarded: keys(rows.filter((r) => r.guarded)) };
}
