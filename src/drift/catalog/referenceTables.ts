/**
 * What keeps reference tables in sync, beyond tables and columns (read with the other relations):
 * primary keys, the sync triggers and functions on the access node, and every foreign table there
 * that reads a reference table's copy, declared or not.
 */
import type pg from 'pg';
import type { QualifiedName } from '../../plan/layout.js';

export interface CatalogPrimaryKey {
  readonly table: QualifiedName;
  readonly name: string;
  readonly columns: readonly string[];
}

export interface CatalogTrigger {
  readonly table: QualifiedName;
  readonly name: string;
  /** pg_trigger.tgenabled: `O` fires (origin and local), `D` disabled, `R` replica only, `A` always. */
  readonly enabled: string;
  /** pg_trigger.tgtype bits (row, before, insert, delete, update, truncate). */
  readonly type: number;
  readonly oldTable: string | undefined;
  readonly newTable: string | undefined;
  readonly function: QualifiedName;
}

export interface CatalogFunction {
  readonly function: QualifiedName;
  /** The body between the dollar quotes (pg_proc.prosrc). */
  readonly body: string;
  readonly securityDefiner: boolean;
}

/** A foreign table whose options name a remote table (a copy of a reference table, declared or not). */
export interface CatalogForeignTable {
  readonly table: QualifiedName;
  readonly server: string;
  readonly remote: QualifiedName;
}

export interface CatalogReferenceObjects {
  readonly primaryKeys: readonly CatalogPrimaryKey[];
  readonly triggers: readonly CatalogTrigger[];
  readonly functions: readonly CatalogFunction[];
  readonly foreignTables: readonly CatalogForeignTable[];
}

export const NO_REFERENCE_OBJECTS: CatalogReferenceObjects = { primaryKeys: [], triggers: [], functions: [], foreignTables: [] };

const names = (tables: readonly QualifiedName[]): [string[], string[]] => [tables.map((t) => t.schema), tables.map((t) => t.name)];

/** On a data node only the primary keys are read; on the access node triggers, functions and copies too. */
export async function readReferenceObjects(client: pg.Client, tables: readonly QualifiedName[], functions: readonly QualifiedName[], access: boolean): Promise<CatalogReferenceObjects> {
  if (tables.length === 0) return NO_REFERENCE_OBJECTS;
  const keys = await client.query<{ schema: string; table: string; name: string; columns: string[] }>(
    `SELECT n.nspname AS schema, c.relname AS table, con.conname AS name,
            ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.ord) AS columns
     FROM pg_catalog.pg_constraint con
     JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     JOIN unnest($1::text[], $2::text[]) AS w(nspname, relname) ON w.nspname = n.nspname AND w.relname = c.relname
     WHERE con.contype = 'p'
     ORDER BY 1, 2`,
    names(tables),
  );
  const primaryKeys = keys.rows.map((r) => ({ table: { schema: r.schema, name: r.table }, name: r.name, columns: r.columns }));
  if (!access) return { ...NO_REFERENCE_OBJECTS, primaryKeys };

  const triggers = await client.query<{ schema: string; table: string; name: string; enabled: string; type: number; old_table: string | null; new_table: string | null; fschema: string; fname: string }>(
    `SELECT n.nspname AS schema, c.relname AS table, t.tgname AS name, t.tgenabled::text AS enabled, t.tgtype::int AS type,
            t.tgoldtable AS old_table, t.tgnewtable AS new_table, pn.nspname AS fschema, p.proname AS fname
     FROM pg_catalog.pg_trigger t
     JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     JOIN unnest($1::text[], $2::text[]) AS w(nspname, relname) ON w.nspname = n.nspname AND w.relname = c.relname
     JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
     JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
     WHERE NOT t.tgisinternal
     ORDER BY 1, 2, 3`,
    names(tables),
  );
  const bodies = await client.query<{ schema: string; name: string; body: string; definer: boolean }>(
    `SELECT n.nspname AS schema, p.proname AS name, p.prosrc AS body, p.prosecdef AS definer
     FROM pg_catalog.pg_proc p
     JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
     JOIN unnest($1::text[], $2::text[]) AS w(nspname, proname) ON w.nspname = n.nspname AND w.proname = p.proname
     WHERE p.pronargs = 0
     ORDER BY 1, 2`,
    names(functions),
  );
  // Foreign tables reading any of the tables, wherever they are; partitions are shards, not copies.
  const copies = await client.query<{ schema: string; table: string; server: string; remote_schema: string; remote_name: string }>(
    `SELECT * FROM (
       SELECT n.nspname AS schema, c.relname AS table, s.srvname AS server,
              (SELECT o.option_value FROM pg_catalog.pg_options_to_table(ft.ftoptions) o WHERE o.option_name = 'schema_name') AS remote_schema,
              (SELECT o.option_value FROM pg_catalog.pg_options_to_table(ft.ftoptions) o WHERE o.option_name = 'table_name') AS remote_name
       FROM pg_catalog.pg_foreign_table ft
       JOIN pg_catalog.pg_class c ON c.oid = ft.ftrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
       WHERE NOT c.relispartition) f
     JOIN unnest($1::text[], $2::text[]) AS w(nspname, relname) ON w.nspname = f.remote_schema AND w.relname = f.remote_name
     ORDER BY 1, 2`,
    names(tables),
  );
  return {
    primaryKeys,
    triggers: triggers.rows.map((r) => ({
      table: { schema: r.schema, name: r.table },
      name: r.name,
      enabled: r.enabled,
      type: r.type,
      oldTable: r.old_table ?? undefined,
      newTable: r.new_table ?? undefined,
      function: { schema: r.fschema, name: r.fname },
    })),
    functions: bodies.rows.map((r) => ({ function: { schema: r.schema, name: r.name }, body: r.body, securityDefiner: r.definer })),
    foreignTables: copies.rows.map((r) => ({ table: { schema: r.schema, name: r.table }, server: r.server, remote: { schema: r.remote_schema, name: r.remote_name } })),
  };
}
