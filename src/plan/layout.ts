/**
 * The cluster layout: everything the SQL generator needs, derived from a validated spec. Pure;
 * the single place that decides names, shard placement and FDW servers.
 *
 * Layout (chosen by measurement, see README "Why this layout"): space first. On the access node a
 * hypertable is `PARTITION BY HASH (space)` with one postgres_fdw foreign table per shard; on the
 * data node that owns it, the shard is a local table `PARTITION BY RANGE (time)`. A GROUP BY that
 * contains the space column is then pushed whole to each shard.
 */
import { SpecError, type SpecIssue } from '../errors.js';
import { parseColumnType, type ColumnType } from '../spec/columnType.js';
import { parseFixedInterval, type FixedInterval } from '../spec/interval.js';
import type { ClusterSpec, HypertableSpec, Privilege, ReferenceTableSpec, RoleSpec } from '../spec/schema.js';
import { urlDatabase } from '../spec/url.js';
import { RESERVED_SCHEMA } from '../spec/validate.js';
import { derivedName, fdwServerName, nodeLastpointName, nodeViewName } from './names.js';

/** Schema that holds shard tables and chunks (data nodes) and foreign partitions (access node). */
export const INTERNAL_SCHEMA = RESERVED_SCHEMA;
/** Schema of the helpers TimescaleDB's functions call on the access node (every role may use it). */
export const COMPAT_SCHEMA = `${RESERVED_SCHEMA}_compat`;
/** node-pg-migrate history table, in INTERNAL_SCHEMA on every node. */
export const MIGRATIONS_TABLE = 'migrations';
/** Length of the timestamp suffix of chunk names: `_20261123T000000`. */
const CHUNK_SUFFIX_BYTES = 16;

export interface QualifiedName {
  readonly schema: string;
  readonly name: string;
}

export interface FdwServer {
  readonly name: string;
  readonly dataNode: string;
  /** Commit on the data nodes in parallel (PostgreSQL 15+; the migration checks the version). */
  readonly parallelCommit: boolean;
  /** CREATE SERVER options in a fixed order, values as text. */
  readonly options: readonly (readonly [string, string])[];
}

export interface Shard {
  readonly index: number;
  readonly modulus: number;
  readonly remainder: number;
  readonly dataNode: string;
  readonly server: string;
  /** Same name on the access node (foreign table) and on the data node (shard table). */
  readonly table: QualifiedName;
  /** Chunk names on the data node are `<chunkPrefix>_<YYYYMMDD>T<HHMMSS>` (UTC) and `<chunkPrefix>_default`. */
  readonly chunkPrefix: string;
  /**
   * With `lastpoint`: the view on the data node (the newest row of each space key of the shard)
   * and, under the same name, the access node's foreign table reading it. Undefined without.
   */
  readonly lastpoint: QualifiedName | undefined;
}

export interface Column {
  readonly name: string;
  readonly type: ColumnType;
  readonly notNull: boolean;
  /** Previous name, when the spec renames the column. */
  readonly renamedFrom: string | undefined;
}

export interface Index {
  readonly name: string;
  readonly method: string;
  /** Unique (btree, over the space and time columns at least): makes ON CONFLICT routable. */
  readonly unique: boolean;
  readonly columns: readonly { readonly name: string; readonly order: 'asc' | 'desc' }[];
}

export interface Hypertable {
  readonly table: QualifiedName;
  readonly columns: readonly Column[];
  readonly timeColumn: string;
  readonly spaceColumn: string;
  readonly chunkInterval: FixedInterval;
  readonly chunksBehind: number;
  readonly chunksAhead: number;
  /** Chunks entirely older than this are dropped by `maintain`; undefined keeps everything. */
  readonly retention: FixedInterval | undefined;
  readonly dataNodes: readonly string[];
  readonly shards: readonly Shard[];
  readonly indexes: readonly Index[];
  /** With `nodeViews`: one per data node holding shards, in data-node order; undefined without. */
  readonly nodeViews?: readonly NodeView[] | undefined;
}

/**
 * The UNION ALL of one data node's shards of a hypertable: a view on that data node and, under
 * the same name, the access node's foreign table reading it. The name is derived from the shard
 * set, so a move (which changes two nodes' sets) makes new views, and the access node switches
 * to them in the move's own transaction: a name the rewriter read always means the set it read.
 */
export interface NodeView {
  readonly dataNode: string;
  /** Shard indexes, ascending. */
  readonly shards: readonly number[];
  readonly view: QualifiedName;
  /** The FDW server the foreign table reads through: that of the node's first shard. */
  readonly server: string;
  /**
   * With per-shard lastpoint views too: the UNION ALL of this node's shards' lastpoint views, a view
   * on the data node and the access node's foreign table of the same name (one remote query a node).
   */
  readonly lastpoint?: QualifiedName | undefined;
}

/** One way the access node reads a data node's copy of a reference table. */
export interface ReferenceCopy {
  /** The FDW server it is read through: every server of the layout has a copy of every reference table. */
  readonly server: string;
  readonly dataNode: string;
  /** The access node's foreign table, `_hypershard.<table>_<server>`, reading the data node's copy. */
  readonly table: QualifiedName;
  /**
   * Whether sync writes the data node's copy through this one. Exactly one copy per data node is
   * the writer (the first of its servers by name): postgres_fdw opens one remote transaction per
   * server, and two of them writing one table in one local transaction would wait on each other.
   */
  readonly writer: boolean;
}

/**
 * A small table replicated to every data node. The access node holds the authoritative table;
 * each data node holds a copy under the same schema-qualified name, which statement-level
 * triggers on the access node keep equal in the writing transaction.
 */
export interface ReferenceTable {
  readonly table: QualifiedName;
  readonly columns: readonly Column[];
  readonly primaryKey: readonly string[];
  /** Name of the primary key constraint (and its index), the same on every node. */
  readonly primaryKeyName: string;
  /** One per FDW server of the layout, in server order. */
  readonly copies: readonly ReferenceCopy[];
  /** The access node's trigger function applying each change to every data node's copy. */
  readonly syncFunction: QualifiedName;
}

export interface Role {
  readonly name: string;
  readonly login: boolean;
  readonly inherit: boolean;
  readonly connectionLimit: number;
  readonly memberOf: readonly string[];
  readonly grants: readonly { readonly table: QualifiedName; readonly privileges: readonly Privilege[] }[];
}

/** TimescaleDB's functions on the access node: `schema` holds what users call, `helpers` what those call. */
export interface TimescaleFunctions {
  readonly schema: string;
  readonly helpers: string;
}

export interface ClusterLayout {
  readonly accessNode: string;
  readonly dataNodes: readonly string[];
  readonly serviceRole: string;
  /** The role standbys stream WAL as (LOGIN REPLICATION) on every data node; undefined without `replication`. */
  readonly replicationRole: string | undefined;
  readonly servers: readonly FdwServer[];
  readonly hypertables: readonly Hypertable[];
  readonly referenceTables: readonly ReferenceTable[];
  readonly roles: readonly Role[];
  /** Access-node database settings that pushdown needs, applied with ALTER DATABASE … SET. */
  readonly accessSettings: readonly (readonly [string, string])[];
  /** Settings of the FDW service role on every data node (ALTER ROLE … IN DATABASE … SET): how remote queries are planned. */
  readonly dataSettings: readonly (readonly [string, string])[];
  /** undefined when the spec turns them off. */
  readonly timescaledb: TimescaleFunctions | undefined;
}

/** Settings every access-node session gets, so users have pushdown without setting anything. */
export const ACCESS_NODE_SETTINGS: readonly (readonly [string, string])[] = [
  ['enable_partitionwise_aggregate', 'on'],
  ['enable_partitionwise_join', 'on'],
  ['enable_async_append', 'on'],
];

/**
 * Settings of the FDW service role on the data nodes, so the plans they choose for the access
 * node's queries are right. postgres_fdw reads every remote query through a cursor, and a cursor
 * is planned for its first 10% of rows (`cursor_tuple_fraction` 0.1): a whole-shard
 * `GROUP BY space_key, bucket` then got index scans under a Merge Append and a GroupAggregate,
 * 3.6× slower than the HashAggregate over sequential scans it gets when planned for every row
 * (100 hosts × 24 h, PostgreSQL 18; docs/benchmarks.md). The access node reads each cursor to
 * its end: a LIMIT it wants is in the remote query, where the planner sees it.
 * `random_page_cost` 1.1 (SSD-like): a shard holds a few hosts, so its time index is perfectly
 * correlated and the planner read a one-host hour through it, filtering 11k rows (1.3 ms), rather
 * than through the (space key, time) index (0.37 ms); routed one-host reads went from 4.9× to
 * 2.5× one node. Only postgres_fdw logs in as the service role, so nothing else is planned
 * differently.
 */
export const DATA_NODE_SETTINGS: readonly (readonly [string, string])[] = [
  ['cursor_tuple_fraction', '1'],
  ['random_page_cost', '1.1'],
];

/**
 * @throws SpecError when derived names collide (possible only with very long names).
 */
export function planLayout(spec: ClusterSpec): ClusterLayout {
  const servers = new Map<string, FdwServer>();
  const serverFor = (dataNode: string, index: number): string => {
    // One server per (data node, shard slot): postgres_fdw keeps one connection per user
    // mapping, so shards on one node only run concurrently through distinct servers. Tables with
    // the same shard count and nodes share servers, so their co-located joins can be pushed.
    const name = fdwServerName(dataNode, index);
    if (!servers.has(name)) servers.set(name, makeServer(spec, dataNode, name));
    return name;
  };

  const hypertables = spec.hypertables.map((table) => planHypertable(spec, table, serverFor));
  if (spec.referenceTables.length > 0) {
    // Every data node holds a copy, so each needs a server the access node reaches it through,
    // also one no shard uses (yet): slot 0's, which its first shard would share.
    for (const node of spec.dataNodes) {
      if (![...servers.values()].some((s) => s.dataNode === node.name)) serverFor(node.name, 0);
    }
  }
  const sortedServers = [...servers.values()].sort((a, b) => compare(a.name, b.name));
  const referenceTables = spec.referenceTables.map((table) => planReferenceTable(table, sortedServers));
  const byName = new Map([...hypertables, ...referenceTables].map((h) => [h.table.name, h.table]));
  const roles = spec.roles.map((role) => planRole(role, byName));
  const layout: ClusterLayout = {
    accessNode: spec.accessNode.name,
    dataNodes: spec.dataNodes.map((n) => n.name),
    serviceRole: spec.fdw.serviceRole.name,
    replicationRole: spec.replication?.role.name,
    servers: sortedServers,
    hypertables,
    referenceTables,
    roles,
    accessSettings: ACCESS_NODE_SETTINGS,
    dataSettings: DATA_NODE_SETTINGS,
    timescaledb: spec.timescaledb.functions ? { schema: spec.timescaledb.schema, helpers: COMPAT_SCHEMA } : undefined,
  };
  checkCollisions(layout);
  return layout;
}

function planHypertable(spec: ClusterSpec, table: HypertableSpec, serverFor: (node: string, index: number) => string): Hypertable {
  const dataNodes = table.dataNodes ?? spec.dataNodes.map((n) => n.name);
  const shards: Shard[] = [];
  for (let index = 0; index < table.shards; index += 1) {
    // An explicit placement (written by rebalance after a move) overrides round-robin.
    const dataNode = table.placement?.[String(index)] ?? (dataNodes[index % dataNodes.length] as string);
    const name = derivedName(table.name, `_s${index}`);
    shards.push({
      index,
      modulus: table.shards,
      remainder: index,
      dataNode,
      server: serverFor(dataNode, index),
      table: { schema: INTERNAL_SCHEMA, name },
      chunkPrefix: derivedName(name, '', 63 - CHUNK_SUFFIX_BYTES),
      lastpoint: table.lastpoint === true ? { schema: INTERNAL_SCHEMA, name: derivedName(name, '_last') } : undefined,
    });
  }
  return {
    table: { schema: table.schema, name: table.name },
    columns: table.columns.map((c) => ({ name: c.name, type: parseColumnType(c.type) as ColumnType, notNull: c.notNull, renamedFrom: c.renamedFrom })),
    nodeViews: table.nodeViews === true ? nodeViewsOf(table.name, dataNodes, shards) : undefined,
    timeColumn: table.timeColumn,
    spaceColumn: table.spaceColumn,
    chunkInterval: parseFixedInterval(table.chunkInterval) as FixedInterval,
    chunksBehind: table.chunks.behind,
    chunksAhead: table.chunks.ahead,
    retention: table.retention === undefined ? undefined : (parseFixedInterval(table.retention) as FixedInterval),
    dataNodes,
    shards,
    indexes: table.indexes.map((index) => {
      const columns = index.columns.map((c) => (typeof c === 'string' ? { name: c, order: 'asc' as const } : { name: c.column, order: c.order }));
      return {
        name: index.name ?? derivedName(`${table.name}_${columns.map((c) => c.name).join('_')}`, '_idx'),
        method: index.method,
        unique: index.unique === true,
        columns,
      };
    }),
  };
}

/**
 * What the access node reads a hypertable through, besides its parent: the shards' foreign tables,
 * then the lastpoint views' and node views' (whoever may read the hypertable may read these).
 */
export function hypertableParts(h: Hypertable): QualifiedName[] {
  return [...h.shards.map((s) => s.table), ...h.shards.flatMap((s) => (s.lastpoint === undefined ? [] : [s.lastpoint])), ...(h.nodeViews ?? []).flatMap(nodeViewRelations)];
}

/** A node view's relations (on its data node, and as foreign tables on the access node): the view, then its lastpoint view when it has one. */
export function nodeViewRelations(v: NodeView): QualifiedName[] {
  return v.lastpoint === undefined ? [v.view] : [v.view, v.lastpoint];
}

/** The node views of a hypertable whose shards are placed as `shards` says, one per data node holding any. */
export function nodeViewsOf(tableName: string, dataNodes: readonly string[], shards: readonly Pick<Shard, 'index' | 'dataNode' | 'server' | 'lastpoint'>[]): NodeView[] {
  const holders = [...new Set([...dataNodes, ...shards.map((s) => s.dataNode)])];
  return holders.flatMap((dataNode) => {
    const mine = shards.filter((s) => s.dataNode === dataNode).sort((a, b) => a.index - b.index);
    const first = mine[0];
    if (first === undefined) return [];
    const indexes = mine.map((s) => s.index);
    const view = { schema: INTERNAL_SCHEMA, name: nodeViewName(tableName, indexes) };
    const lastpoint = mine.every((s) => s.lastpoint !== undefined) ? { schema: INTERNAL_SCHEMA, name: nodeLastpointName(tableName, indexes) } : undefined;
    return [{ dataNode, shards: indexes, view, server: first.server, ...(lastpoint === undefined ? {} : { lastpoint }) }];
  });
}

function planReferenceTable(table: ReferenceTableSpec, servers: readonly FdwServer[]): ReferenceTable {
  const writers = new Set<string>();
  return {
    table: { schema: table.schema, name: table.name },
    columns: table.columns.map((c) => ({ name: c.name, type: parseColumnType(c.type) as ColumnType, notNull: c.notNull, renamedFrom: c.renamedFrom })),
    primaryKey: table.primaryKey,
    primaryKeyName: derivedName(table.name, '_pkey'),
    copies: servers.map((server) => {
      // Servers are in name order, so a node's writer is its first server.
      const writer = !writers.has(server.dataNode);
      writers.add(server.dataNode);
      return { server: server.name, dataNode: server.dataNode, table: { schema: INTERNAL_SCHEMA, name: derivedName(`${table.name}_${server.name}`, '') }, writer };
    }),
    syncFunction: { schema: INTERNAL_SCHEMA, name: derivedName(table.name, '_sync') },
  };
}

function planRole(role: RoleSpec, tables: ReadonlyMap<string, QualifiedName>): Role {
  return {
    name: role.name,
    login: role.login,
    inherit: role.inherit,
    connectionLimit: role.connectionLimit,
    memberOf: role.memberOf,
    grants: role.grants.map((g) => ({
      table: tables.get(g.on) as QualifiedName,
      // Canonical order, so the generated SQL does not depend on how the spec lists them.
      privileges: [...new Set(g.privileges)].sort(compare),
    })),
  };
}

function makeServer(spec: ClusterSpec, dataNode: string, name: string): FdwServer {
  const node = spec.dataNodes.find((n) => n.name === dataNode);
  if (node === undefined) throw new TypeError(`unknown data node ${dataNode}`);
  const fdw = spec.fdw;
  const endpoint = fdwEndpoint(node);
  const options: [string, string][] = [
    ['host', endpoint.host],
    ['port', endpoint.port],
    ['dbname', endpoint.dbname],
    ['async_capable', String(fdw.asyncCapable)],
    ['fetch_size', String(fdw.fetchSize)],
    ['batch_size', String(fdw.batchSize)],
    ['fdw_tuple_cost', String(fdw.fdwTupleCost)],
    ['fdw_startup_cost', String(fdw.fdwStartupCost)],
    ['keep_connections', 'true'],
    ...(node.standbys.length > 0 ? [['target_session_attrs', 'read-write'] as [string, string]] : []),
    ...timeoutOptions(fdw.timeouts),
  ];
  const extra = { ...fdw.connectionOptions, ...node.fdw?.options };
  for (const key of Object.keys(extra).sort(compare)) options.push([key, extra[key] as string]);
  return { name, dataNode, parallelCommit: fdw.parallelCommit, options };
}

/**
 * How a data node's FDW servers reach it: host, port (the primary first, then each standby: libpq
 * tries them in order and, with target_session_attrs=read-write, settles on the one that takes
 * writes, src/ha/) and dbname, as the server options hold them.
 */
export function fdwEndpoint(node: ClusterSpec['dataNodes'][number]): FdwEndpoint {
  // Read per router read (serverDataNode), where parsing every node's URLs again showed in profiles; a spec is never changed in place.
  let endpoint = ENDPOINTS.get(node);
  if (endpoint === undefined) {
    const members = [fdwAddress(node.url, node.fdw), ...node.standbys.map((s) => fdwAddress(s.url, s.fdw))];
    endpoint = {
      host: members.map((m) => m.host).join(','),
      port: members.map((m) => m.port).join(','),
      // The database the CLI connects to (validation makes sure the URL names one).
      dbname: node.fdw?.dbname ?? urlDatabase(node.url) ?? 'postgres',
    };
    ENDPOINTS.set(node, endpoint);
  }
  return endpoint;
}

interface FdwEndpoint {
  readonly host: string;
  readonly port: string;
  readonly dbname: string;
}
const ENDPOINTS = new WeakMap<ClusterSpec['dataNodes'][number], FdwEndpoint>();

/** Where the access node reaches a server: its `fdw` address, else the host and port of its URL. */
function fdwAddress(url: string, fdw: { host?: string | undefined; port?: number | undefined } | undefined): { host: string; port: string } {
  const parsed = new URL(url);
  return {
    host: fdw?.host ?? parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: String(fdw?.port ?? (parsed.port === '' ? 5432 : Number(parsed.port))),
  };
}

/** libpq options that make a connection to a data node notice that the node stopped answering. */
function timeoutOptions(timeouts: ClusterSpec['fdw']['timeouts']): [string, string][] {
  if (timeouts === false) return [];
  return [
    ['connect_timeout', String(timeouts.connect)],
    ['keepalives', '1'],
    ['keepalives_idle', String(timeouts.keepalivesIdle)],
    ['keepalives_interval', String(timeouts.keepalivesInterval)],
    ['keepalives_count', String(timeouts.keepalivesCount)],
    ['tcp_user_timeout', String(timeouts.tcpUserTimeout)],
  ];
}

function checkCollisions(layout: ClusterLayout): void {
  const issues: SpecIssue[] = [];
  /** Names in one namespace, each with the hypertable and the object of it that claimed it. */
  type Claims = Map<string, { owner: string; what: string }>;
  const claim = (seen: Claims, name: string, owner: string, what: string): void => {
    const other = seen.get(name);
    if (other === undefined) seen.set(name, { owner, what });
    else if (other.owner !== owner) {
      issues.push({ path: owner, message: `derived name ${JSON.stringify(name)} collides with the one of ${other.owner}; shorten one of the names` });
    } else if (other.what !== what) {
      // Within one hypertable: an index named like its table, or two indexes deriving one name.
      issues.push({ path: owner, message: `${what} and ${other.what} are both named ${JSON.stringify(name)}; give the index a name of its own` });
    }
  };
  const internal: Claims = new Map();
  const prefixes: Claims = new Map();
  const relations: Claims = new Map();
  layout.hypertables.forEach((h, t) => {
    const owner = `hypertables[${t}] (${h.table.name})`;
    for (const shard of h.shards) {
      claim(internal, shard.table.name, owner, `shard ${shard.index}`);
      claim(prefixes, shard.chunkPrefix, owner, `shard ${shard.index}`);
      if (shard.lastpoint !== undefined) claim(internal, shard.lastpoint.name, owner, `the lastpoint view of shard ${shard.index}`);
    }
    for (const v of h.nodeViews ?? []) {
      claim(internal, v.view.name, owner, `the node view on ${v.dataNode}`);
      if (v.lastpoint !== undefined) claim(internal, v.lastpoint.name, owner, `the node lastpoint view on ${v.dataNode}`);
    }
    // Indexes and tables share one namespace per schema.
    claim(relations, `${h.table.schema}.${h.table.name}`, owner, 'the hypertable');
    h.indexes.forEach((index, i) => claim(relations, `${h.table.schema}.${index.name}`, owner, `indexes[${i}]`));
  });
  const functions: Claims = new Map();
  layout.referenceTables.forEach((r, t) => {
    const owner = `referenceTables[${t}] (${r.table.name})`;
    claim(relations, `${r.table.schema}.${r.table.name}`, owner, 'the reference table');
    claim(relations, `${r.table.schema}.${r.primaryKeyName}`, owner, 'its primary key');
    for (const copy of r.copies) claim(internal, copy.table.name, owner, `the copy on ${copy.server}`);
    claim(functions, r.syncFunction.name, owner, 'its sync function');
  });
  if (issues.length > 0) throw new SpecError(issues);
}

/** Code-point order, independent of the locale, so output is byte-identical everywhere. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
