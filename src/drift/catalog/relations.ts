/**
 * The tables hypershard manages on a node: hypertable parents, shard tables (data nodes) and
 * foreign partitions (access node), looked up by name, plus every partition of the parents, so a
 * partition the spec does not know about is seen too.
 */
import type pg from 'pg';
import type { QualifiedName } from '../../plan/layout.js';

export type PartitionStrategy = 'hash' | 'range' | 'list';

export interface PartitionKey {
  readonly strategy: PartitionStrategy;
  /** Column names; an expression in the key shows as `(expression)`. */
  readonly columns: readonly string[];
}

export interface CatalogRelation {
  readonly table: QualifiedName;
  /** pg_class.relkind: `r` table, `p` partitioned table, `f` foreign table, … */
  readonly kind: string;
  /** The table it is a partition of, if any. */
  readonly parent: QualifiedName | undefined;
  /** pg_get_expr(relpartbound): `FOR VALUES WITH (modulus 4, remainder 0)`, `DEFAULT`. */
  readonly bound: string | undefined;
  readonly partitionKey: PartitionKey | undefined;
  /** Foreign tables: their server and options (`schema_name`, `table_name` …). */
  readonly server: string | undefined;
  readonly options: ReadonlyMap<string, string>;
}

const STRATEGIES: Readonly<Record<string, PartitionStrategy>> = { h: 'hash', r: 'range', l: 'list' };

export async function readRelations(client: pg.Client, names: readonly QualifiedName[], parents: readonly QualifiedName[]): Promise<CatalogRelation[]> {
  const { rows } = await client.query<{
    schema: string; name: string; kind: string; parent_schema: string | null; parent_name: string | null;
    bound: string | null; strategy: string | null; key_columns: string[] | null; server: string | null; options: string[] | null;
  }>(
    `WITH wanted AS (
       SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN unnest($1::text[], $2::text[]) AS w(nspname, relname) ON w.nspname = n.nspname AND w.relname = c.relname
       UNION
       SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
       JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
       JOIN unnest($3::text[], $4::text[]) AS w(nspname, relname) ON w.nspname = pn.nspname AND w.relname = p.relname
     )
     SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind,
            pn.nspname AS parent_schema, p.relname AS parent_name,
            pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound,
            pt.partstrat::text AS strategy,
            CASE WHEN pt.partrelid IS NOT NULL THEN ARRAY(
              SELECT coalesce(a.attname::text, '(expression)')
              FROM unnest(pt.partattrs::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, ord)
              LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
              ORDER BY k.ord) END AS key_columns,
            s.srvname AS server, ft.ftoptions AS options
     FROM wanted JOIN pg_catalog.pg_class c ON c.oid = wanted.oid
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_inherits i ON i.inhrelid = c.oid AND c.relispartition
     LEFT JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
     LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
     LEFT JOIN pg_catalog.pg_partitioned_table pt ON pt.partrelid = c.oid
     LEFT JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = c.oid
     LEFT JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
     ORDER BY 1, 2`,
    [names.map((n) => n.schema), names.map((n) => n.name), parents.map((n) => n.schema), parents.map((n) => n.name)],
  );
  return rows.map((r) => ({
    table: { schema: r.schema, name: r.name },
    kind: r.kind,
    parent: r.parent_schema === null || r.parent_name === null ? undefined : { schema: r.parent_schema, name: r.parent_name },
    bound: r.bound ?? undefined,
    partitionKey: r.strategy === null ? undefined : { strategy: STRATEGIES[r.strategy] ?? 'list', columns: r.key_columns ?? [] },
    server: r.server ?? undefined,
    options: optionMap(r.options),
  }));
}

/** `{key=value, …}` option arrays (srvoptions, ftoptions, umoptions, setconfig) as a map. */
export function optionMap(options: readonly string[] | null): Map<string, string> {
  const map = new Map<string, string>();
  for (const option of options ?? []) {
    const at = option.indexOf('=');
    if (at < 0) map.set(option, '');
    else map.set(option.slice(0, at), option.slice(at + 1));
  }
  return map;
}
