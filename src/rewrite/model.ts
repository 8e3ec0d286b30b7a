/**
 * What the rewriter knows about a cluster, and what it reports back.
 *
 * The metadata is what postgres_fdw cannot know: which relations are distributed hypertables,
 * which column routes a row to its shard, and which foreign table reads each shard directly.
 * It comes from the spec (`metadataFromLayout`) or from the access node's catalogs
 * (`discoverMetadata`), so an application needs no configuration.
 */
import type { QualifiedName } from '../plan/layout.js';
import type { ZoneGrid } from './zoneGrid.js';

export interface ShardTarget {
  readonly index: number;
  readonly modulus: number;
  readonly remainder: number;
  /** The access node's foreign table for this shard (a partition of the hypertable). */
  readonly table: QualifiedName;
  /** The FDW server the foreign table uses; reference-table copies are matched by it. */
  readonly server: string;
  /** The access node's foreign table on this shard's lastpoint view (the newest row of each key), when the hypertable has them. */
  readonly lastpoint?: QualifiedName | undefined;
}

export interface TableColumn {
  readonly name: string;
  /** Canonical type name, e.g. `timestamptz`, `double precision`, `integer`, `text`. */
  readonly type: string;
  /** Declared NOT NULL; rewrites that would treat NULL differently need it. Unknown = false. */
  readonly notNull?: boolean;
}

export interface DistributedTable {
  readonly table: QualifiedName;
  readonly columns: readonly TableColumn[];
  readonly spaceColumn: string;
  /** Undefined when discovered from catalogs that do not say. */
  readonly timeColumn: string | undefined;
  readonly shards: readonly ShardTarget[];
  /**
   * With node views (src/sql/nodeViews.ts), one per data node holding shards: the access node's
   * foreign table reading the UNION ALL of those shards on that node. Only when every shard is in
   * exactly one of them; a query over many shards then asks each node once.
   */
  readonly nodes?: readonly NodeTarget[] | undefined;
}

/** A data node's shards of a hypertable read through one foreign table (a node view). */
export interface NodeTarget {
  readonly table: QualifiedName;
  /** The FDW server its foreign table uses, one of the node's: reference-table copies are matched by it. */
  readonly server: string;
  /** Indexes of the shards it reads. */
  readonly shards: readonly number[];
  /** The foreign table reading the UNION ALL of those shards' lastpoint views, when the node has one. */
  readonly lastpoint?: QualifiedName | undefined;
}

/** A small table kept identical on every data node, so joins with it can run next to a shard. */
export interface ReferenceTable {
  readonly table: QualifiedName;
  readonly columns: readonly TableColumn[];
  /** One foreign table per FDW server, reading that server's copy. */
  readonly copies: readonly { readonly server: string; readonly table: QualifiedName }[];
}

export interface ClusterMetadata {
  readonly hypertables: readonly DistributedTable[];
  readonly referenceTables: readonly ReferenceTable[];
  /**
   * For each hypertable's and reference table's name, every schema holding a relation of that
   * name (tables, views, temporary tables …), from the catalogs. An unqualified name resolves to
   * the first of them on the session's search path, so a view or temporary table of the same
   * name earlier on the path is not taken for the hypertable. Unknown (from a spec): only the
   * hypertables and reference tables themselves are considered.
   */
  readonly relationSchemas?: Readonly<Record<string, readonly string[]>>;
  /** Where hypershard's TimescaleDB functions (time_bucket, first, last) are, when the access node has them. */
  readonly timescaledb?: { readonly schema: string };
}

/**
 * What one role may have rewritten. A per-shard rewrite reads the shards' foreign tables (and
 * reference copies) directly, which carry no row-level security policy and no column
 * privileges of the hypertable: it is made only for a table the role may read whole, with no
 * policy applying to it. Keyed by `schema.name` of the hypertable or reference table; a
 * table missing from the map is refused.
 */
export interface RoleAccess {
  readonly role: string;
  /** undefined: the role may have the table read per shard; else why not. */
  readonly tables: ReadonlyMap<string, string | undefined>;
}

export interface RewriteOptions {
  /**
   * The session's TimeZone setting. `date_trunc` on timestamptz becomes `date_bin` only where
   * this makes them equal; when unknown, that rewrite is not made.
   */
  readonly timeZone?: string | undefined;
  /**
   * Schemas an unqualified name is looked up in, in order: the session's `current_schemas(true)`
   * (its temporary schema and pg_catalog where the server searches them), or the search_path.
   */
  readonly searchPath?: readonly string[] | undefined;
  /**
   * The role the statement runs as, and which tables it may have read per shard. Without it the
   * caller vouches for the role (the CLI's `rewrite`, from a spec); each per-shard rewrite still
   * checks at run time that the role may read the hypertable whole and that no row-level
   * security applies to it (see access.ts).
   */
  readonly access?: RoleAccess | undefined;
  /**
   * Where the session's zone (when it has daylight saving or odd offsets) keeps a fixed grid
   * (zoneGrid.ts, read from the access node): keys that read the zone are grouped per shard by
   * its buckets. Without it they are grouped per shard only in zones with a fixed offset.
   */
  readonly zoneGrid?: ZoneGrid | undefined;
}

/** The session's zone as the per-shard rewrites need it. */
export interface SessionZone {
  readonly timeZone?: string | undefined;
  readonly grid?: ZoneGrid | undefined;
}

export const REWRITE_KINDS = [
  'stable-expression',
  'time-bucket',
  'in-subquery',
  'partial-aggregate',
  'limit-per-shard',
  'distinct-on-per-shard',
  'shard-pinning',
  'reference-join',
  'distinct-as-group-by',
  'date-range',
  'local-field',
  'lastpoint',
  'boolean-test',
] as const;
export type RewriteKind = (typeof REWRITE_KINDS)[number];

export interface Rewrite {
  readonly kind: RewriteKind;
  /** One sentence: what was rewritten into what, e.g. `now() - '1 hour'::interval → an InitPlan constant`. */
  readonly detail: string;
}

/** A rewrite that was considered and not made, and why. */
export interface Unchanged {
  /** `privileges`: a per-shard rewrite not made because of what the role may see. */
  readonly kind: RewriteKind | 'statement' | 'privileges';
  readonly reason: string;
}

export interface RewriteResult {
  /** The rewritten SQL, or the input unchanged (byte for byte) when no rewrite applied. */
  readonly sql: string;
  readonly changed: boolean;
  /** True when the statement reads a distributed hypertable. */
  readonly touchesHypertable: boolean;
  readonly rewrites: readonly Rewrite[];
  readonly unchanged: readonly Unchanged[];
}
