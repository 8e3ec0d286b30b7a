/**
 * Where each row of a distributed hypertable goes, read from the access node's catalogs rather
 * than assumed from the spec (a rebalance may have moved shards since it was written): the
 * partition key (column, type, operator class, collation), every partition's hash bound, its
 * foreign table's server and remote table, and the spec's data node that server points at.
 */
import { RoutingError } from '../errors.js';
import { fdwEndpoint, type QualifiedName } from '../plan/layout.js';
import type { Queryable } from '../rewrite/discover.js';
import type { ClusterSpec } from '../spec/schema.js';
import { quoteQualified } from '../sql/quote.js';
import { remainderOf, type Hash64 } from './hash.js';
import { TYPE_OID, type KeyColumnType } from './keyType.js';

/** The space column as the access node partitions on it. */
export interface KeyColumn extends KeyColumnType {
  readonly name: string;
  /** The type without its typmod, as SQL (`"pg_catalog"."bpchar"`, `"pg_catalog"."_int4"`). */
  readonly typeSql: string;
  /** The type's input function, quoted, and whether it takes (cstring, ioparam, typmod). */
  readonly inputFunction: string;
  readonly inputTakesTypmod: boolean;
  readonly ioParam: number;
  /** An array type (its input function returns anyarray), and its output function, quoted. */
  readonly array: boolean;
  readonly outputFunction: string;
  /** The partition key uses its type's default hash operator class. */
  readonly defaultOpclass: boolean;
  /** The partition key's extended hash support function, quoted. */
  readonly hashFunction: string;
  /** `COLLATE …` for the key, or '' for none or the database default. */
  readonly collate: string;
}

export interface RouteColumn {
  readonly name: string;
  readonly typeOid: number;
  readonly typmod: number;
  /** format_type with typmod, for messages. */
  readonly type: string;
  readonly notNull: boolean;
  /** A default on the access node's table (routing cannot evaluate it there). */
  readonly default: string | undefined;
  readonly generated: boolean;
}

export interface Partition {
  readonly oid: number;
  /** The access node's foreign table. */
  readonly table: QualifiedName;
  readonly modulus: number;
  readonly remainder: number;
  readonly server: string;
  /** The table on the data node the foreign table writes to (its schema_name / table_name options). */
  readonly remote: QualifiedName;
  /** Remote column names, where a column_name option renames one. */
  readonly remoteColumns: ReadonlyMap<string, string>;
  /** The spec's data node the server reaches. */
  readonly dataNode: string;
}

export interface HypertableRoute {
  readonly table: QualifiedName;
  readonly oid: number;
  readonly key: KeyColumn;
  readonly columns: readonly RouteColumn[];
  readonly partitions: readonly Partition[];
  /**
   * A digest of everything routing read (columns, partitions, their servers and options): equal
   * digests mean the route still holds, so a cached route is checked with one query.
   */
  readonly signature: string;
  /** Remainder of the greatest modulus → index into partitions, -1 where no partition takes it. */
  readonly byRemainder: Int32Array;
  readonly greatestModulus: number;
}

interface KeyRow {
  partstrat: string;
  partnatts: number;
  attname: string | null;
  atttypid: number;
  atttypmod: number;
  type_schema: string;
  type_name: string;
  input_schema: string;
  input_name: string;
  input_args: number;
  io_param: number;
  output_schema: string;
  output_name: string;
  is_array: boolean;
  hash_schema: string | null;
  hash_name: string | null;
  opcdefault: boolean;
  collation_oid: number;
  collation_schema: string | null;
  collation_name: string | null;
  deterministic: boolean | null;
}

const KEY_SQL = `
SELECT pt.partstrat::text AS partstrat, pt.partnatts::int AS partnatts, a.attname, a.atttypid::int AS atttypid, a.atttypmod,
       tn.nspname AS type_schema, t.typname AS type_name,
       ipn.nspname AS input_schema, ip.proname AS input_name, ip.pronargs::int AS input_args,
       opn.nspname AS output_schema, op.proname AS output_name, t.typcategory = 'A' AS is_array,
       (CASE WHEN t.typelem <> 0 THEN t.typelem ELSE t.oid END)::int AS io_param,
       hpn.nspname AS hash_schema, hp.proname AS hash_name, opc.opcdefault,
       pt.partcollation[0]::int AS collation_oid, cn.nspname AS collation_schema, co.collname AS collation_name,
       co.collisdeterministic AS deterministic
FROM pg_catalog.pg_partitioned_table pt
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0] AND pt.partattrs[0] <> 0
LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
LEFT JOIN pg_catalog.pg_proc ip ON ip.oid = t.typinput
LEFT JOIN pg_catalog.pg_namespace ipn ON ipn.oid = ip.pronamespace
LEFT JOIN pg_catalog.pg_proc op ON op.oid = t.typoutput
LEFT JOIN pg_catalog.pg_namespace opn ON opn.oid = op.pronamespace
LEFT JOIN pg_catalog.pg_opclass opc ON opc.oid = pt.partclass[0]
LEFT JOIN pg_catalog.pg_amproc ap ON ap.amprocfamily = opc.opcfamily AND ap.amproclefttype = opc.opcintype
      AND ap.amprocrighttype = opc.opcintype AND ap.amprocnum = 2
LEFT JOIN pg_catalog.pg_proc hp ON hp.oid = ap.amproc
LEFT JOIN pg_catalog.pg_namespace hpn ON hpn.oid = hp.pronamespace
LEFT JOIN pg_catalog.pg_collation co ON co.oid = pt.partcollation[0]
LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
WHERE pt.partrelid = $1`;

const COLUMNS_SQL = `
SELECT a.attname AS name, a.atttypid::int AS type_oid, a.atttypmod AS typmod,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS "default", a.attgenerated <> '' AS generated
FROM pg_catalog.pg_attribute a
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`;

const PARTITIONS_SQL = `
SELECT c.oid::int AS oid, n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind,
       pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS bound,
       s.srvname AS server, w.fdwname AS wrapper, s.srvoptions AS server_options, ft.ftoptions AS table_options,
       (SELECT pg_catalog.json_object_agg(a.attname, a.attfdwoptions) FROM pg_catalog.pg_attribute a
         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attfdwoptions IS NOT NULL) AS column_options
FROM pg_catalog.pg_inherits i
JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = c.oid
LEFT JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
LEFT JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
WHERE i.inhparent = $1
ORDER BY n.nspname, c.relname`;

interface PartitionRow {
  oid: number;
  schema: string;
  name: string;
  relkind: string;
  bound: string | null;
  server: string | null;
  wrapper: string | null;
  server_options: string[] | null;
  table_options: string[] | null;
  column_options: Record<string, string[]> | null;
}

/** `key=value` option arrays as PostgreSQL stores them. */
/** A catalog's `key=value` options list (srvoptions, ftoptions, attfdwoptions) as a map. */
export function optionMap(list: readonly string[] | null): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of list ?? []) {
    const eq = item.indexOf('=');
    if (eq > 0) out.set(item.slice(0, eq), item.slice(eq + 1));
  }
  return out;
}

/** Every catalog fact a route depends on, digested; $1 is the hypertable's oid. */
export const ROUTE_SIGNATURE_SQL = `
SELECT pg_catalog.md5(concat_ws('|',
  (SELECT string_agg(concat_ws(':', a.attnum, a.attname, a.atttypid, a.atttypmod, a.attnotnull, a.attgenerated, d.adbin IS NOT NULL), ',' ORDER BY a.attnum)
     FROM pg_catalog.pg_attribute a LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT string_agg(concat_ws(':', c.oid, c.relname, pg_catalog.pg_get_expr(c.relpartbound, c.oid), s.srvname,
                               array_to_string(ft.ftoptions, ','), array_to_string(s.srvoptions, ',')), ';' ORDER BY c.oid)
     FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
     LEFT JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = c.oid
     LEFT JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
    WHERE i.inhparent = $1))) AS signature`;

/** ROUTE_SIGNATURE_SQL for one hypertable, its oid written in (for a message of several statements). */
export function routeSignatureSql(oid: number): string {
  if (!Number.isSafeInteger(oid) || oid <= 0) throw new TypeError(`not an oid: ${oid}`);
  return ROUTE_SIGNATURE_SQL.replaceAll('$1', `${oid}::pg_catalog.oid`);
}

const BOUND = /^FOR VALUES WITH \(modulus (\d+), remainder (\d+)\)$/i;

/**
 * Reads how the access node routes rows of `table`.
 * @throws RoutingError when it is not a hash-partitioned table whose partitions are all
 * postgres_fdw foreign tables on servers that point at data nodes of the spec.
 */
export async function readRoute(access: Queryable, spec: ClusterSpec, table: QualifiedName): Promise<HypertableRoute> {
  const name = `${table.schema}.${table.name}`;
  const { rows: found } = await access.query<{ oid: number | null }>('SELECT pg_catalog.to_regclass($1)::oid::int AS oid', [quoteQualified(table.schema, table.name)]);
  const oid = found[0]?.oid ?? null;
  if (oid === null) throw new RoutingError(`${name} does not exist on the access node`);
  const key = await readKeyColumn(access, oid, name);
  const { rows: columnRows } = await access.query<{ name: string; type_oid: number; typmod: number; type: string; not_null: boolean; default: string | null; generated: boolean }>(COLUMNS_SQL, [oid]);
  const columns = columnRows.map((c) => ({ name: c.name, typeOid: c.type_oid, typmod: c.typmod, type: c.type, notNull: c.not_null, default: c.default ?? undefined, generated: c.generated }));

  const { rows: partitionRows } = await access.query<PartitionRow>(PARTITIONS_SQL, [oid]);
  if (partitionRows.length === 0) throw new RoutingError(`${name} has no partitions on the access node`);
  const partitions = partitionRows.map((p) => partitionOf(p, spec, name));
  const { rows: signature } = await access.query<{ signature: string }>(ROUTE_SIGNATURE_SQL, [oid]);
  const greatestModulus = Math.max(...partitions.map((p) => p.modulus));
  const byRemainder = new Int32Array(greatestModulus).fill(-1);
  partitions.forEach((p, i) => {
    // A partition with a smaller modulus takes every remainder of the greatest it divides into.
    for (let r = p.remainder; r < greatestModulus; r += p.modulus) byRemainder[r] = i;
  });
  return { table, oid, key, columns, partitions, byRemainder, greatestModulus, signature: signature[0]?.signature ?? '' };
}

/** The partition key of a hash-partitioned table. @throws RoutingError for other tables. */
export async function readKeyColumn(access: Queryable, oid: number, name: string): Promise<KeyColumn> {
  const { rows: keys } = await access.query<KeyRow>(KEY_SQL, [oid]);
  const k = keys[0];
  if (k === undefined || k.partstrat !== 'h') throw new RoutingError(`${name} on the access node is not partitioned by hash`);
  if (k.partnatts !== 1 || k.attname === null) throw new RoutingError(`${name} is partitioned by ${k.partnatts} columns or an expression; routing reads one space column`);
  if (k.hash_name === null || k.hash_schema === null) throw new RoutingError(`${name}: the partition key's operator class has no extended hash function`);
  const collate = k.collation_oid === 0 || k.collation_oid === 100 || k.collation_name === null || k.collation_schema === null
    ? ''
    : ` COLLATE ${quoteQualified(k.collation_schema, k.collation_name)}`;
  return {
    name: k.attname,
    typeOid: k.atttypid,
    typmod: k.atttypmod,
    native: k.opcdefault && (k.collation_oid === 0 || k.deterministic === true),
    // By its catalog name: format_type's `character` would mean character(1).
    typeSql: quoteQualified(k.type_schema, k.type_name),
    inputFunction: quoteQualified(k.input_schema, k.input_name),
    inputTakesTypmod: k.input_args === 3,
    ioParam: k.io_param,
    array: k.is_array,
    outputFunction: quoteQualified(k.output_schema, k.output_name),
    defaultOpclass: k.opcdefault,
    hashFunction: quoteQualified(k.hash_schema, k.hash_name),
    collate,
  };
}

function partitionOf(p: PartitionRow, spec: ClusterSpec, parent: string): Partition {
  const what = `partition ${p.schema}.${p.name} of ${parent}`;
  if (p.relkind !== 'f' || p.server === null) throw new RoutingError(`${what} is not a foreign table; routing writes only to data nodes`);
  if (p.wrapper !== 'postgres_fdw') throw new RoutingError(`${what} uses foreign data wrapper ${p.wrapper ?? '?'}, not postgres_fdw`);
  const bound = BOUND.exec(p.bound ?? '');
  if (bound === null) throw new RoutingError(`${what} has bound ${p.bound ?? 'none'}, not a hash bound`);
  const server = optionMap(p.server_options);
  const node = serverDataNode(spec, p.server_options);
  if (node === undefined) {
    throw new RoutingError(`${what} is read through server ${p.server} (${server.get('host') ?? ''}:${server.get('port') ?? '5432'}/${server.get('dbname') ?? ''}), which is no data node of the spec`);
  }
  const remoteColumns = new Map<string, string>();
  for (const [column, list] of Object.entries(p.column_options ?? {})) {
    const remote = optionMap(list).get('column_name');
    if (remote !== undefined) remoteColumns.set(column, remote);
  }
  return {
    oid: p.oid,
    table: { schema: p.schema, name: p.name },
    modulus: Number(bound[1]),
    remainder: Number(bound[2]),
    server: p.server,
    remote: remoteTable({ schema: p.schema, name: p.name }, p.table_options),
    remoteColumns,
    dataNode: node.name,
  };
}

/** The spec's data node a FDW server's options (`key=value`, as in pg_foreign_server.srvoptions) point at. */
export function serverDataNode(spec: ClusterSpec, serverOptions: readonly string[] | null): ClusterSpec['dataNodes'][number] | undefined {
  const server = optionMap(serverOptions);
  // Host and port may list a primary and its standbys (src/ha/); they match as written.
  const host = server.get('host') ?? '';
  const port = server.get('port') ?? '5432';
  const dbname = server.get('dbname') ?? '';
  return spec.dataNodes.find((n) => {
    const e = fdwEndpoint(n);
    return e.host === host && e.port === port && e.dbname === dbname;
  });
}

/** The table on the data node a foreign table reads (its schema_name / table_name options, else its own name). */
export function remoteTable(table: QualifiedName, tableOptions: readonly string[] | null): QualifiedName {
  const o = optionMap(tableOptions);
  return { schema: o.get('schema_name') ?? table.schema, name: o.get('table_name') ?? table.name };
}

/** The partition a row hash goes to (index into route.partitions), or -1 when none takes it. */
export function partitionForHash(route: HypertableRoute, rowHash: Hash64): number {
  return route.byRemainder[remainderOf(rowHash, route.greatestModulus)] ?? -1;
}

export function isTextKey(key: KeyColumnType): boolean {
  return key.typeOid === TYPE_OID.text || key.typeOid === TYPE_OID.varchar || key.typeOid === TYPE_OID.bpchar;
}
