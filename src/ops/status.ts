/**
 * `status`: per node, whether it answers and what it holds — a data node's shards (the layout's,
 * checked against its catalog) with their size and row estimates, the access node's hypertables
 * and foreign partitions — plus how evenly the data is spread. Read-only; never throws for a node:
 * an unreachable one is reported and the others still are.
 */
import { errorMessage, NodeUnsupportedError } from '../errors.js';
import { connectNode, DEFAULT_CONNECT_TIMEOUT_MS, type ConnectOptions, type NodeConnection } from '../nodes/connect.js';
import { nodeTargets, type NodeTarget } from '../nodes/targets.js';
import { planLayout, type ClusterLayout, type Hypertable } from '../plan/layout.js';
import { replicationStatus, type StandbyStatus } from '../ha/checkReplication.js';
import type { ClusterSpec } from '../spec/schema.js';
import { skew, type Skew } from './skew.js';
import { measureAccessTables, measureShards } from './statusCatalog.js';

export interface ShardStatus {
  /** `schema.name` of the hypertable. */
  readonly hypertable: string;
  readonly index: number;
  /** `_hypershard.<shard>`, the same name on the data node and the access node. */
  readonly table: string;
  /** The shard table exists on the node; null when the node could not be asked. */
  readonly present: boolean | null;
  /** Leaf partitions (chunks and the default chunk). */
  readonly partitions: number | null;
  /** pg_total_relation_size summed over the leaves. */
  readonly bytes: number | null;
  /** reltuples summed over the leaves; null when unknown (a leaf with data never analyzed). */
  readonly rows: number | null;
}

/** A shard table found on a data node the layout does not place it on (left over, or restored there). */
export interface StrayShard {
  readonly hypertable: string;
  readonly index: number;
  readonly table: string;
  /** Where the layout places it. */
  readonly owner: string;
}

interface NodeStatusBase {
  readonly node: string;
  /** false when the node could not be reached or logged into within the timeout. */
  readonly reachable: boolean;
  /** Why the node could not be reached or read. */
  readonly error?: string;
  readonly serverVersion?: string;
}

export interface DataNodeStatus extends NodeStatusBase {
  readonly role: 'data';
  /** The shards the layout places here, with what the node's catalog says of them. */
  readonly shards: readonly ShardStatus[];
  readonly strayShards: readonly StrayShard[];
  /** Sums over `shards`; null when not measured (or, for rows, unknown for a shard). */
  readonly bytes: number | null;
  readonly rows: number | null;
}

export interface AccessHypertableStatus {
  readonly hypertable: string;
  /** Shards in the layout, i.e. the foreign partitions the access node should have. */
  readonly shards: number;
  /** The partitioned table exists; null when the node could not be asked. */
  readonly present: boolean | null;
  readonly foreignPartitions: number | null;
  /** Foreign partitions that have statistics (ANALYZE on the access node; autovacuum never does it). */
  readonly analyzedForeignPartitions: number | null;
}

export interface AccessNodeStatus extends NodeStatusBase {
  readonly role: 'access';
  readonly hypertables: readonly AccessHypertableStatus[];
}

export type NodeStatus = DataNodeStatus | AccessNodeStatus;

export interface HypertableTotals {
  readonly hypertable: string;
  readonly shards: number;
  /** Shards whose node answered; the sums cover only these. */
  readonly shardsMeasured: number;
  readonly bytes: number;
  /** null when the rows of a measured shard are unknown. */
  readonly rows: number | null;
}

export interface StatusResult {
  /** Every node reached and read. */
  readonly ok: boolean;
  /** Data nodes in spec order, then the access node. */
  readonly nodes: readonly NodeStatus[];
  /**
   * Spread over the data nodes that hold shards and were measured (`nodes` of each says which);
   * null when none was. Rows skew is null too when a node's row estimate is unknown.
   */
  readonly skew: { readonly bytes: Skew | null; readonly rows: Skew | null };
  readonly hypertables: readonly HypertableTotals[];
  /** Each standby of each data node: state, lag in bytes and seconds (src/ha/). */
  readonly standbys: readonly StandbyStatus[];
}

export type StatusOptions = Pick<ConnectOptions, 'timeoutMs'>;

/**
 * @throws SpecError or SecretError before any node is contacted.
 */
export async function status(spec: ClusterSpec, specFile: string, options: StatusOptions = {}): Promise<StatusResult> {
  const layout = planLayout(spec);
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const targets = await nodeTargets(spec, specFile);
  const [nodes, standbys] = await Promise.all([
    Promise.all(targets.map((t) => nodeStatus(t, layout, timeoutMs))),
    replicationStatus(spec, specFile, timeoutMs),
  ]);
  const holders = nodes.filter((n): n is DataNodeStatus => n.role === 'data' && n.shards.length > 0);
  const measured = (pick: (n: DataNodeStatus) => number | null): { node: string; value: number }[] | undefined => {
    const values = holders.flatMap((n) => (n.reachable && n.error === undefined ? [{ node: n.node, value: pick(n) }] : []));
    return values.some((v) => v.value === null) ? undefined : (values as { node: string; value: number }[]);
  };
  const bytes = measured((n) => n.bytes);
  const rows = measured((n) => n.rows);
  return {
    ok: nodes.every((n) => n.error === undefined),
    nodes,
    skew: { bytes: (bytes && skew(bytes)) ?? null, rows: (rows && skew(rows)) ?? null },
    hypertables: layout.hypertables.map((h) => totals(h, nodes)),
    standbys,
  };
}

async function nodeStatus(target: NodeTarget, layout: ClusterLayout, timeoutMs: number): Promise<NodeStatus> {
  let connection: NodeConnection;
  try {
    connection = await connectNode(target, { timeoutMs, readOnly: true });
  } catch (error) {
    // An unsupported server answered; anything else means it could not be reached or logged into.
    return unmeasured(target, layout, { reachable: error instanceof NodeUnsupportedError, error: errorMessage(error) });
  }
  const { client, info } = connection;
  try {
    // Read-only, and a catalog locked by someone else is reported after the timeout, not waited on.
    await client.query(`SET default_transaction_read_only = on; SET lock_timeout = ${Math.max(1, Math.round(timeoutMs))}`);
    return target.role === 'data' ? await dataNodeStatus(target.name, connection, layout) : await accessNodeStatus(target.name, connection, layout);
  } catch (error) {
    return unmeasured(target, layout, { reachable: true, error: errorMessage(error), serverVersion: info.serverVersion });
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function dataNodeStatus(node: string, { client, info }: NodeConnection, layout: ClusterLayout): Promise<DataNodeStatus> {
  const all = layout.hypertables.flatMap((h) => h.shards.map((s) => ({ hypertable: qualified(h), shard: s })));
  const measures = await measureShards(client, all.map((s) => s.shard.table.name));
  const shards: ShardStatus[] = all
    .filter((s) => s.shard.dataNode === node)
    .map(({ hypertable, shard }) => {
      const m = measures.get(shard.table.name);
      return {
        hypertable,
        index: shard.index,
        table: `${shard.table.schema}.${shard.table.name}`,
        present: m?.present ?? false,
        partitions: m?.partitions ?? 0,
        bytes: m?.bytes ?? 0,
        rows: m === undefined ? 0 : m.rows,
      };
    });
  const strayShards = all
    .filter((s) => s.shard.dataNode !== node && measures.get(s.shard.table.name)?.present === true)
    .map(({ hypertable, shard }) => ({ hypertable, index: shard.index, table: `${shard.table.schema}.${shard.table.name}`, owner: shard.dataNode }));
  return {
    node,
    role: 'data',
    reachable: true,
    serverVersion: info.serverVersion,
    shards,
    strayShards,
    bytes: shards.reduce((a, s) => a + (s.bytes ?? 0), 0),
    rows: shards.some((s) => s.rows === null) ? null : shards.reduce((a, s) => a + (s.rows ?? 0), 0),
  };
}

async function accessNodeStatus(node: string, { client, info }: NodeConnection, layout: ClusterLayout): Promise<AccessNodeStatus> {
  const measures = await measureAccessTables(client, layout.hypertables.map((h) => h.table));
  return {
    node,
    role: 'access',
    reachable: true,
    serverVersion: info.serverVersion,
    hypertables: layout.hypertables.map((h, i) => {
      const m = measures[i];
      return {
        hypertable: qualified(h),
        shards: h.shards.length,
        present: m?.present ?? false,
        foreignPartitions: m?.foreignPartitions ?? 0,
        analyzedForeignPartitions: m?.analyzed ?? 0,
      };
    }),
  };
}

/** A node that could not be read: what the layout says it should hold, with nothing measured. */
function unmeasured(target: NodeTarget, layout: ClusterLayout, base: { reachable: boolean; error: string; serverVersion?: string }): NodeStatus {
  const common = { node: target.name, ...base };
  if (target.role === 'access') {
    return {
      ...common,
      role: 'access',
      hypertables: layout.hypertables.map((h) => ({ hypertable: qualified(h), shards: h.shards.length, present: null, foreignPartitions: null, analyzedForeignPartitions: null })),
    };
  }
  const shards = layout.hypertables.flatMap((h) =>
    h.shards
      .filter((s) => s.dataNode === target.name)
      .map((s) => ({ hypertable: qualified(h), index: s.index, table: `${s.table.schema}.${s.table.name}`, present: null, partitions: null, bytes: null, rows: null })),
  );
  return { ...common, role: 'data', shards, strayShards: [], bytes: null, rows: null };
}

function totals(h: Hypertable, nodes: readonly NodeStatus[]): HypertableTotals {
  const tables = new Set(h.shards.map((s) => `${s.table.schema}.${s.table.name}`));
  const shards = nodes.flatMap((n) => (n.role === 'data' && n.error === undefined ? n.shards.filter((s) => tables.has(s.table)) : []));
  return {
    hypertable: qualified(h),
    shards: h.shards.length,
    shardsMeasured: shards.length,
    bytes: shards.reduce((a, s) => a + (s.bytes ?? 0), 0),
    rows: shards.some((s) => s.rows === null) ? null : shards.reduce((a, s) => a + (s.rows ?? 0), 0),
  };
}

const qualified = (h: Hypertable): string => `${h.table.schema}.${h.table.name}`;
