/**
 * What the audit needs to know about the access node besides the plan: which foreign table is
 * which shard on which server, whether it has statistics, server and session settings, and the
 * volatility of functions seen in the plan.
 */
import type pg from 'pg';
import type { ClusterLayout } from '../plan/layout.js';

export interface ForeignTableInfo {
  readonly schema: string;
  readonly name: string;
  readonly server: string;
  /** Data node (from the layout) or the server's host:port. */
  readonly dataNode: string;
  readonly hypertable: string | undefined;
  readonly shardIndex: number | undefined;
  /** false when never analyzed (reltuples < 0). */
  readonly analyzed: boolean;
  /** The planner's row count for the table (reltuples; 0 when never analyzed). */
  readonly tableRows?: number;
  /** The reference table this foreign table reads a copy of (`schema.name`), per the layout: not a shard. */
  readonly referenceCopyOf?: string;
  /**
   * The hypertable (`schema.name`) whose lastpoint view (a shard's, or a node's) this foreign table
   * reads, per the layout: one row per space key, already reduced on the data node, not shard rows.
   */
  readonly lastpointOf?: string;
  /**
   * The shards (indexes) of `hypertable` whose UNION ALL on `dataNode` this foreign table reads (a
   * node view, per the layout): its rows are those shards' rows, raw like a shard's.
   */
  readonly nodeViewShards?: readonly number[];
  /** Rows postgres_fdw fetches per round trip (the table's or server's fetch_size); 100, its default, when unknown. */
  readonly fetchSize?: number;
}

export interface AuditCatalog {
  readonly serverVersionNum: number;
  readonly asyncAppend: boolean;
  /** Foreign tables by `schema.name`. */
  readonly foreignTables: ReadonlyMap<string, ForeignTableInfo>;
  /** Servers by name: whether async_capable is on. */
  readonly asyncServers: ReadonlyMap<string, boolean>;
  /** Most volatile class among a function's overloads with that many arguments, by `name/nargs`. */
  readonly volatility: ReadonlyMap<string, 'i' | 's' | 'v'>;
  /** The space column of each hypertable (`schema.name`), from the layout. */
  readonly spaceColumns?: ReadonlyMap<string, string>;
}

export async function readCatalog(client: pg.Client, layout: ClusterLayout | undefined, functionNames: readonly string[]): Promise<AuditCatalog> {
  // One after another: a pg client runs one query at a time.
  const settings = await client.query<{ num: string; async: string }>(`SELECT current_setting('server_version_num') AS num, current_setting('enable_async_append') AS async`);
  const tables = await client.query<{ schema: string; name: string; server: string; host: string | null; port: string | null; reltuples: number; fetch_size: string | null }>(
      `SELECT n.nspname AS schema, c.relname AS name, s.srvname AS server, c.reltuples,
              coalesce((SELECT split_part(o, '=', 2) FROM unnest(ft.ftoptions) o WHERE o LIKE 'fetch_size=%'),
                       (SELECT split_part(o, '=', 2) FROM unnest(s.srvoptions) o WHERE o LIKE 'fetch_size=%')) AS fetch_size,
              (SELECT split_part(o, '=', 2) FROM unnest(s.srvoptions) o WHERE o LIKE 'host=%') AS host,
              (SELECT split_part(o, '=', 2) FROM unnest(s.srvoptions) o WHERE o LIKE 'port=%') AS port
       FROM pg_foreign_table ft
       JOIN pg_class c ON c.oid = ft.ftrelid JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_foreign_server s ON s.oid = ft.ftserver`,
  );
  const servers = await client.query<{ name: string; async: boolean }>(
      `SELECT srvname AS name, coalesce((SELECT split_part(o, '=', 2) FROM unnest(srvoptions) o WHERE o LIKE 'async_capable=%'), 'false') = 'true' AS async FROM pg_foreign_server`,
  );
  const functions = await client.query<{ name: string; volatility: 'i' | 's' | 'v' }>(
    `SELECT proname || '/' || pronargs AS name, max(provolatile::text) AS volatility FROM pg_proc WHERE proname = ANY($1) GROUP BY proname, pronargs`,
    [functionNames],
  );
  const shards = new Map<string, { hypertable: string; shard: { dataNode: string; index: number } }>(
    (layout?.hypertables ?? []).flatMap((h) => h.shards.map((s) => [`${s.table.schema}.${s.table.name}`, { hypertable: `${h.table.schema}.${h.table.name}`, shard: s }] as const)),
  );
  const lastpoints = new Map<string, string>(
    (layout?.hypertables ?? []).flatMap((h) =>
      [...h.shards.map((s) => s.lastpoint), ...(h.nodeViews ?? []).map((v) => v.lastpoint)].flatMap((l) => (l === undefined ? [] : [[`${l.schema}.${l.name}`, `${h.table.schema}.${h.table.name}`] as const])),
    ),
  );
  const nodeViews = new Map<string, { hypertable: string; view: NonNullable<ClusterLayout['hypertables'][number]['nodeViews']>[number] }>(
    (layout?.hypertables ?? []).flatMap((h) => (h.nodeViews ?? []).map((v) => [`${v.view.schema}.${v.view.name}`, { hypertable: `${h.table.schema}.${h.table.name}`, view: v }] as const)),
  );
  const copies = new Map<string, string>((layout?.referenceTables ?? []).flatMap((r) => r.copies.map((c) => [`${c.table.schema}.${c.table.name}`, `${r.table.schema}.${r.table.name}`] as const)));
  // Nodes by their spec names: every FDW server the layout makes is on one data node.
  const serverNodes = new Map((layout?.servers ?? []).map((s) => [s.name, s.dataNode]));
  return {
    serverVersionNum: Number(settings.rows[0]?.num ?? 0),
    asyncAppend: settings.rows[0]?.async === 'on',
    foreignTables: new Map(
      tables.rows.map((t) => {
        const key = `${t.schema}.${t.name}`;
        const shard = shards.get(key);
        const node = nodeViews.get(key);
        return [
          key,
          {
            schema: t.schema,
            name: t.name,
            server: t.server,
            dataNode: shard?.shard.dataNode ?? node?.view.dataNode ?? serverNodes.get(t.server) ?? `${t.host ?? '?'}:${t.port ?? '5432'}`,
            hypertable: shard?.hypertable ?? node?.hypertable,
            shardIndex: shard?.shard.index,
            analyzed: t.reltuples >= 0,
            tableRows: Math.max(0, t.reltuples),
            ...(copies.has(key) ? { referenceCopyOf: copies.get(key) as string } : {}),
            ...(lastpoints.has(key) ? { lastpointOf: lastpoints.get(key) as string } : {}),
            ...(node === undefined ? {} : { nodeViewShards: node.view.shards }),
            ...(t.fetch_size === null ? {} : { fetchSize: Number(t.fetch_size) }),
          },
        ];
      }),
    ),
    asyncServers: new Map(servers.rows.map((s) => [s.name, s.async])),
    // 'v' > 's' > 'i' as text, so max() is the most volatile overload.
    volatility: new Map(functions.rows.map((f) => [f.name, f.volatility])),
    spaceColumns: new Map((layout?.hypertables ?? []).map((h) => [`${h.table.schema}.${h.table.name}`, h.spaceColumn])),
  };
}
