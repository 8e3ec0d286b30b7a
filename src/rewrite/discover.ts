/**
 * The rewriter's metadata read from the access node's catalogs, so an application needs nothing
 * but a connection. A distributed hypertable is a table `PARTITION BY HASH` on one column whose
 * partitions are all postgres_fdw foreign tables (hypershard creates them in `_hypershard`);
 * its shards' bounds come from the catalog, parsed with PostgreSQL's own grammar. Reference
 * tables are found by their copies' foreign tables and their sync triggers.
 */
import type { Node, ParseResult } from '@pgsql/types';
import type pg from 'pg';
import { parse } from 'pgsql-parser';
import { COMPAT_SCHEMA, INTERNAL_SCHEMA } from '../plan/layout.js';
import { derivedName, nodeLastpointName, nodeViewName } from '../plan/names.js';
import { optionMap } from '../route/placement.js';
import { TIME_DISTINCT_RATIO } from '../sql/accessNode.js';
import type { ClusterMetadata, DistributedTable, NodeTarget, ReferenceTable, ShardTarget, TableColumn } from './model.js';

/** What discovery needs of a connection: a pg Client, PoolClient or Pool will do. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

interface ColumnRow {
  name: string;
  type: string;
  not_null: boolean;
  time_distinct?: boolean;
}

interface HypertableRow {
  schema: string;
  name: string;
  space_column: string;
  columns: ColumnRow[] | null;
  partitions: { schema: string; name: string; server: string; bound: string }[];
}

/**
 * One query: hash-partitioned parents keyed on one column, whose partitions (at least one) are
 * all postgres_fdw foreign tables. A column counts as the time column when every partition has
 * the planner statistic hypershard sets on it (`n_distinct`, see accessNode.ts).
 */
const HYPERTABLES_SQL = `
SELECT n.nspname AS schema, c.relname AS name, k.attname AS space_column,
  (SELECT json_agg(json_build_object(
            'name', a.attname,
            'type', pg_catalog.format_type(a.atttypid, a.atttypmod),
            'not_null', a.attnotnull,
            'time_distinct', NOT EXISTS (
              SELECT FROM pg_catalog.pg_inherits i
              LEFT JOIN pg_catalog.pg_attribute pa ON pa.attrelid = i.inhrelid AND pa.attname = a.attname
              WHERE i.inhparent = c.oid AND NOT (coalesce(pa.attoptions, '{}') @> ARRAY['n_distinct=' || $1])))
          ORDER BY a.attnum)
   FROM pg_catalog.pg_attribute a
   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
  (SELECT json_agg(json_build_object(
            'schema', pn.nspname, 'name', p.relname, 'server', s.srvname,
            'bound', pg_catalog.pg_get_expr(p.relpartbound, p.oid))
          ORDER BY pn.nspname, p.relname)
   FROM pg_catalog.pg_inherits i
   JOIN pg_catalog.pg_class p ON p.oid = i.inhrelid
   JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
   JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = p.oid
   JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
   WHERE i.inhparent = c.oid) AS partitions
FROM pg_catalog.pg_partitioned_table pt
JOIN pg_catalog.pg_class c ON c.oid = pt.partrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute k ON k.attrelid = c.oid AND k.attnum = pt.partattrs[0]
WHERE pt.partstrat = 'h' AND pt.partnatts = 1
  AND EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid)
  AND NOT EXISTS (
    SELECT FROM pg_catalog.pg_inherits i
    JOIN pg_catalog.pg_class p ON p.oid = i.inhrelid
    LEFT JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = p.oid
    LEFT JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
    LEFT JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
    WHERE i.inhparent = c.oid AND (p.relkind <> 'f' OR w.fdwname IS DISTINCT FROM 'postgres_fdw'))
ORDER BY n.nspname, c.relname`;

/**
 * Reads every distributed hypertable and reference table of the access node `client` is
 * connected to, whatever the connected role may read: which role may have which table read
 * per shard is `readRoleAccess`'s (access.ts). Only the catalogs are read, so it is safe inside
 * an application's transaction.
 */
export async function discoverMetadata(client: Queryable): Promise<ClusterMetadata> {
  const { rows } = await client.query<HypertableRow>(HYPERTABLES_SQL, [TIME_DISTINCT_RATIO]);
  const lastpoints = await client.query<LastpointRow>(LASTPOINT_SQL, [INTERNAL_SCHEMA]);
  const servers = await client.query<ServerRow>(SERVERS_SQL);
  const endpoints = new Map(servers.rows.map((s) => [s.name, endpointOf(s.options)]));
  const hypertables: DistributedTable[] = [];
  for (const row of rows) {
    const table = await distributedTable(row);
    if (table !== undefined) hypertables.push(withNodes(withLastpoint(table, lastpoints.rows), lastpoints.rows, endpoints));
  }
  const references = await client.query<ReferenceRow>(REFERENCE_TABLES_SQL, [INTERNAL_SCHEMA]);
  const referenceTables: ReferenceTable[] = [];
  for (const r of references.rows) {
    referenceTables.push({ table: { schema: r.schema, name: r.name }, columns: await tableColumns(r.columns), copies: r.copies.map((c) => ({ server: c.server, table: { schema: c.schema, name: c.name } })) });
  }
  const names = [...new Set([...hypertables, ...referenceTables].map((t) => t.table.name))];
  const holders = await client.query<{ name: string; schemas: string[] }>(RELATION_SCHEMAS_SQL, [names]);
  const relationSchemas = Object.fromEntries(holders.rows.map((r) => [r.name, r.schemas]));
  const bookends = (await client.query<{ schema: string }>(BOOKENDS_SQL, [COMPAT_SCHEMA])).rows[0];
  return { hypertables, referenceTables, relationSchemas, ...(bookends === undefined ? {} : { timescaledb: { schema: bookends.schema } }) };
}

interface LastpointRow {
  name: string;
  server: string;
  options: string[] | null;
  columns: string[] | null;
}

/** Foreign tables in the internal schema that are not partitions: lastpoint tables among them (src/sql/lastpoint.ts). */
const LASTPOINT_SQL = `
SELECT f.relname AS name, s.srvname AS server, ft.ftoptions AS options,
  (SELECT pg_catalog.array_agg(a.attname::text || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)
   FROM pg_catalog.pg_attribute a WHERE a.attrelid = f.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
FROM pg_catalog.pg_foreign_table ft
JOIN pg_catalog.pg_class f ON f.oid = ft.ftrelid AND NOT f.relispartition
JOIN pg_catalog.pg_namespace fn ON fn.oid = f.relnamespace AND fn.nspname = $1
JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver`;

/**
 * The hypertable with each shard's lastpoint table, when every shard has one: named as the layout
 * names it, reading the view of that name through the shard's server, with the hypertable's
 * columns in order (one made before a column change is stale and not used).
 */
function withLastpoint(table: DistributedTable, rows: readonly LastpointRow[]): DistributedTable {
  const columns = rows.length === 0 ? [] : table.columns.map((c) => c.name);
  const byName = new Map(rows.map((r) => [r.name, r]));
  const shards = table.shards.map((s) => {
    const name = derivedName(s.table.name, '_last');
    const row = byName.get(name);
    const options = new Set(row?.options ?? []);
    const names = (row?.columns ?? []).map((c) => c.slice(0, c.indexOf(' ')));
    const fresh = row !== undefined && row.server === s.server && options.has(`schema_name=${s.table.schema}`) && options.has(`table_name=${name}`) && names.join('\u0000') === columns.join('\u0000');
    return fresh ? { ...s, lastpoint: { schema: s.table.schema, name } } : s;
  });
  return shards.every((s) => s.lastpoint !== undefined) ? { ...table, shards } : table;
}

interface ServerRow {
  name: string;
  options: string[] | null;
}

const SERVERS_SQL = 'SELECT srvname AS name, srvoptions AS options FROM pg_catalog.pg_foreign_server';

/** Where a server connects (host, port, database): the servers of one data node share it. */
function endpointOf(options: readonly string[] | null): string {
  const server = optionMap(options);
  return ['host', 'port', 'dbname'].map((key) => server.get(key) ?? '').join('\u0000');
}

/**
 * The hypertable with its node views (src/sql/nodeViews.ts), when each data node's shards (those
 * whose servers reach one endpoint) have the foreign table the layout names for that shard set:
 * reading the view of that name on a server of the same node, with the hypertable's columns in
 * order. The name stands for the set, so the union of the views is every shard once.
 */
function withNodes(table: DistributedTable, rows: readonly LastpointRow[], endpoints: ReadonlyMap<string, string>): DistributedTable {
  if (rows.length === 0) return table;
  const groups = new Map<string, ShardTarget[]>();
  for (const s of table.shards) {
    const endpoint = endpoints.get(s.server);
    if (endpoint === undefined) return table;
    groups.set(endpoint, [...(groups.get(endpoint) ?? []), s]);
  }
  const byName = new Map(rows.map((r) => [r.name, r]));
  const columns = table.columns.map((c) => c.name).join('\u0000');
  /** The foreign table `name`, when it reads the view of that name on `endpoint` with the hypertable's columns. */
  const fresh = (name: string, endpoint: string): LastpointRow | undefined => {
    const row = byName.get(name);
    const options = new Set(row?.options ?? []);
    const names = (row?.columns ?? []).map((c) => c.slice(0, c.indexOf(' ')));
    return row !== undefined && endpoints.get(row.server) === endpoint && options.has(`schema_name=${INTERNAL_SCHEMA}`) && options.has(`table_name=${name}`) && names.join('\u0000') === columns ? row : undefined;
  };
  const lastpoints = table.shards.every((s) => s.lastpoint !== undefined);
  const nodes: NodeTarget[] = [];
  for (const [endpoint, shards] of groups) {
    const indexes = shards.map((s) => s.index).sort((a, b) => a - b);
    const name = nodeViewName(table.table.name, indexes);
    const row = fresh(name, endpoint);
    if (row === undefined) return table;
    // Its lastpoint sibling, when the shards have lastpoint views and it was made (a cluster older than these has none).
    const lastpoint = lastpoints ? fresh(nodeLastpointName(table.table.name, indexes), endpoint) : undefined;
    nodes.push({ table: { schema: INTERNAL_SCHEMA, name }, server: row.server, shards: indexes, ...(lastpoint === undefined ? {} : { lastpoint: { schema: INTERNAL_SCHEMA, name: lastpoint.name } }) });
  }
  return { ...table, nodes };
}

/** The schema of hypershard's first aggregate (its transition function in the helpers' schema), if the access node has it. */
const BOOKENDS_SQL = `
SELECT n.nspname AS schema
FROM pg_catalog.pg_aggregate a
JOIN pg_catalog.pg_proc p ON p.oid = a.aggfnoid
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_proc t ON t.oid = a.aggtransfn
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.pronamespace
WHERE p.proname = 'first' AND tn.nspname = $1 AND t.proname = 'first_sfunc'
  AND EXISTS (SELECT FROM pg_catalog.pg_proc l JOIN pg_catalog.pg_aggregate la ON la.aggfnoid = l.oid WHERE l.proname = 'last' AND l.pronamespace = p.pronamespace)
ORDER BY 1 LIMIT 1`;

/** Schemas holding a relation a FROM clause can name (not an index, a composite type, a TOAST table), by name. */
const RELATION_SCHEMAS_SQL = `
SELECT c.relname AS name, pg_catalog.array_agg(DISTINCT n.nspname::text ORDER BY n.nspname::text) AS schemas
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = ANY($1::text[]) AND c.relkind NOT IN ('i', 'I', 'c', 't')
GROUP BY c.relname ORDER BY c.relname`;

interface ReferenceRow {
  schema: string;
  name: string;
  columns: ColumnRow[] | null;
  copies: { server: string; schema: string; name: string }[];
}

/**
 * Reference tables (see plan/layout.ts): a table kept in sync with every data node's copy by
 * triggers running hypershard's functions (in the internal schema), and, in that schema, one
 * postgres_fdw foreign table per server reading the copy, which has the same schema and name.
 */
const REFERENCE_TABLES_SQL = `
SELECT n.nspname AS schema, c.relname AS name,
  (SELECT json_agg(json_build_object(
            'name', a.attname, 'type', pg_catalog.format_type(a.atttypid, a.atttypmod), 'not_null', a.attnotnull)
          ORDER BY a.attnum)
   FROM pg_catalog.pg_attribute a
   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
  copies.copies
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL (
  SELECT json_agg(json_build_object('server', s.srvname, 'schema', fn.nspname, 'name', f.relname) ORDER BY s.srvname, f.relname) AS copies
  FROM pg_catalog.pg_foreign_table ft
  JOIN pg_catalog.pg_class f ON f.oid = ft.ftrelid AND NOT f.relispartition
  JOIN pg_catalog.pg_namespace fn ON fn.oid = f.relnamespace AND fn.nspname = $1
  JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
  JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw AND w.fdwname = 'postgres_fdw'
  WHERE ft.ftoptions @> ARRAY['schema_name=' || n.nspname, 'table_name=' || c.relname]
) AS copies
WHERE c.relkind = 'r' AND copies.copies IS NOT NULL
  AND EXISTS (
    SELECT FROM pg_catalog.pg_trigger t
    JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
    JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace
    WHERE t.tgrelid = c.oid AND NOT t.tgisinternal AND t.tgenabled <> 'D' AND pn.nspname = $1)
ORDER BY n.nspname, c.relname`;

async function distributedTable(row: HypertableRow): Promise<DistributedTable | undefined> {
  const bounds = await Promise.all(row.partitions.map((p) => hashBound(p.bound)));
  if (bounds.some((b) => b === undefined)) return undefined;
  const moduli = new Set(bounds.map((b) => (b as HashBound).modulus));
  const shards: ShardTarget[] = row.partitions
    .map((p, i) => ({ ...(bounds[i] as HashBound), table: { schema: p.schema, name: p.name }, server: p.server }))
    .sort((a, b) => a.modulus - b.modulus || a.remainder - b.remainder)
    // hypershard numbers a shard by its remainder; mixed moduli (not hypershard's) by position.
    .map((s, i) => ({ index: moduli.size === 1 ? s.remainder : i, ...s }));
  const columns = await tableColumns(row.columns);
  const times: string[] = [];
  for (const [i, c] of (row.columns ?? []).entries()) {
    const type = await parseType(c.type);
    if (c.time_distinct === true && !type.array && TIME_TYPES.has(type.base ?? '')) times.push(columns[i]?.name ?? '');
  }
  return {
    table: { schema: row.schema, name: row.name },
    columns,
    spaceColumn: row.space_column,
    timeColumn: times.length === 1 ? times[0] : undefined,
    shards,
  };
}

async function tableColumns(rows: readonly ColumnRow[] | null): Promise<TableColumn[]> {
  const columns: TableColumn[] = [];
  for (const c of rows ?? []) columns.push({ name: c.name, type: (await parseType(c.type)).text, notNull: c.not_null });
  return columns;
}

interface HashBound {
  readonly modulus: number;
  readonly remainder: number;
}

/** `FOR VALUES WITH (modulus 4, remainder 1)` → { modulus: 4, remainder: 1 }, by PostgreSQL's grammar. */
async function hashBound(bound: string): Promise<HashBound | undefined> {
  const node = await parseStatement(`CREATE TABLE p PARTITION OF t ${bound}`);
  const spec = node !== undefined && 'CreateStmt' in node ? node.CreateStmt.partbound : undefined;
  if (spec?.strategy !== 'h' || spec.modulus === undefined) return undefined;
  return { modulus: spec.modulus, remainder: spec.remainder ?? 0 };
}

/** Internal type names as the spec writes them (`int4` → `integer`), for built-in types. */
const SPEC_NAMES: Readonly<Record<string, string>> = {
  int2: 'smallint', int4: 'integer', int8: 'bigint', float4: 'real', float8: 'double precision',
  bool: 'boolean', bpchar: 'char', varchar: 'varchar', numeric: 'numeric', text: 'text', uuid: 'uuid',
  json: 'json', jsonb: 'jsonb', bytea: 'bytea', date: 'date', time: 'time', timetz: 'timetz',
  timestamp: 'timestamp', timestamptz: 'timestamptz', interval: 'interval', inet: 'inet', cidr: 'cidr', macaddr: 'macaddr',
};
const TIME_TYPES = new Set(['timestamp', 'timestamptz']);

/**
 * `format_type()` output in the spec's spelling: `timestamp(3) with time zone` → `timestamptz(3)`,
 * `character varying(64)[]` → `varchar(64)[]`. Other types keep format_type's text.
 */
export async function canonicalType(formatted: string): Promise<string> {
  return (await parseType(formatted)).text;
}

interface ParsedType {
  readonly text: string;
  /** The spec's base name (`timestamptz`), for built-in types. */
  readonly base: string | undefined;
  readonly array: boolean;
}

async function parseType(formatted: string): Promise<ParsedType> {
  const node = await parseStatement(`SELECT NULL::${formatted}`);
  const target = node !== undefined && 'SelectStmt' in node ? node.SelectStmt.targetList?.[0] : undefined;
  const cast = target !== undefined && 'ResTarget' in target ? target.ResTarget.val : undefined;
  const typeName = cast !== undefined && 'TypeCast' in cast ? cast.TypeCast.typeName : undefined;
  const names = (typeName?.names ?? []).map((n) => ('String' in n ? n.String.sval : undefined));
  const name = names.length === 2 && names[0] === 'pg_catalog' ? SPEC_NAMES[names[1] ?? ''] : undefined;
  const modifiers = (typeName?.typmods ?? []).map((m) => ('A_Const' in m ? m.A_Const.ival?.ival : undefined));
  // interval's modifier is a field mask (`day to second`), not a number to print back.
  const array = (typeName?.arrayBounds ?? []).length > 0;
  if (typeName === undefined || name === undefined || modifiers.some((m) => m === undefined) || (name === 'interval' && modifiers.length > 0)) {
    return { text: formatted, base: name, array };
  }
  return { text: `${name}${modifiers.length > 0 ? `(${modifiers.join(',')})` : ''}${array ? '[]' : ''}`, base: name, array };
}

async function parseStatement(sql: string): Promise<Node | undefined> {
  try {
    return ((await parse(sql)) as ParseResult).stmts?.[0]?.stmt;
  } catch {
    return undefined;
  }
}
