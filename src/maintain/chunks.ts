/**
 * `chunks`: every chunk of every shard on the data nodes, with its range, size and row estimate,
 * default chunks included (with their exact row count: rows there are rows `maintain` has to move).
 * Read-only; a result per node, never an exception for one node.
 */
import { errorMessage, HypershardError } from '../errors.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, type NodeConnection } from '../nodes/connect.js';
import { nodeTargets, type NodeTarget } from '../nodes/targets.js';
import { planLayout, type Hypertable } from '../plan/layout.js';
import type { ClusterSpec } from '../spec/schema.js';
import { countRows, readShardChunks } from './chunkCatalog.js';
import { isoTime } from './ranges.js';
import { openSession } from './session.js';

export interface ChunkInfo {
  readonly node: string;
  /** `schema.name` of the hypertable. */
  readonly hypertable: string;
  readonly shard: number;
  /** `schema.name` of the chunk. */
  readonly chunk: string;
  readonly default: boolean;
  /** pg_get_expr(relpartbound) in a UTC session: `FOR VALUES FROM ('…') TO ('…')` or `DEFAULT`. */
  readonly range: string;
  /** Bounds as ISO 8601 UTC times; null for the default chunk. */
  readonly from: string | null;
  readonly to: string | null;
  /** pg_total_relation_size: table, indexes and TOAST. */
  readonly bytes: number;
  /** reltuples; null when unknown (never analyzed). */
  readonly rowEstimate: number | null;
  /** Exact row count; default chunks only. */
  readonly rows?: number;
}

export interface NodeChunks {
  readonly node: string;
  readonly status: 'ok' | 'failed';
  /** Why the node could not be read, or which shard tables it lacks. */
  readonly error?: string;
  /** By hypertable, shard and lower bound; each shard's default chunk last. */
  readonly chunks: readonly ChunkInfo[];
}

export interface ChunksResult {
  readonly ok: boolean;
  /** Data nodes in spec order. */
  readonly nodes: readonly NodeChunks[];
}

export interface ChunksOptions {
  /** Only this hypertable: `name` or `schema.name`. */
  readonly hypertable?: string;
  /** Bound on reaching each node, and on waiting for a lock on a default chunk. @default 10000 */
  readonly timeoutMs?: number;
}

/**
 * @throws HypershardError `USAGE` for a hypertable not in the spec, SpecError or SecretError, before any node is contacted.
 */
export async function listChunks(spec: ClusterSpec, specFile: string, options: ChunksOptions = {}): Promise<ChunksResult> {
  const layout = planLayout(spec);
  const hypertables = selectHypertables(layout.hypertables, options.hypertable);
  const targets = (await nodeTargets(spec, specFile)).filter((t) => t.role === 'data');
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const nodes = await Promise.all(targets.map((t) => nodeChunks(t, hypertables, timeoutMs)));
  return { ok: nodes.every((n) => n.status === 'ok'), nodes };
}

export function selectHypertables(all: readonly Hypertable[], wanted: string | undefined): readonly Hypertable[] {
  if (wanted === undefined) return all;
  const found = all.filter((h) => h.table.name === wanted || `${h.table.schema}.${h.table.name}` === wanted);
  if (found.length === 0) {
    const known = all.map((h) => `${h.table.schema}.${h.table.name}`);
    throw new HypershardError('USAGE', `unknown hypertable ${wanted}; the spec has ${known.length === 0 ? 'none' : known.join(', ')}`);
  }
  return found;
}

async function nodeChunks(target: NodeTarget, hypertables: readonly Hypertable[], timeoutMs: number): Promise<NodeChunks> {
  let connection: NodeConnection;
  try {
    connection = await openSession(target, { timeoutMs, lockTimeoutMs: timeoutMs, readOnly: true });
  } catch (error) {
    return { node: target.name, status: 'failed', error: errorMessage(error), chunks: [] };
  }
  const { client } = connection;
  try {
    const shards = hypertables.flatMap((h) => h.shards.filter((s) => s.dataNode === target.name).map((shard) => ({ h, shard })));
    const catalog = await readShardChunks(client, shards.map((s) => s.shard.table.name));
    const chunks: ChunkInfo[] = [];
    for (const { h, shard } of shards) {
      for (const c of catalog.chunks.filter((x) => x.shard === shard.table.name)) {
        chunks.push({
          node: target.name,
          hypertable: `${h.table.schema}.${h.table.name}`,
          shard: shard.index,
          chunk: `${c.table.schema}.${c.table.name}`,
          default: c.isDefault,
          range: c.range,
          from: c.bounds === undefined ? null : isoTime(c.bounds.from),
          to: c.bounds === undefined ? null : isoTime(c.bounds.to),
          bytes: c.bytes,
          rowEstimate: c.reltuples < 0 ? null : c.reltuples,
          ...(c.isDefault ? { rows: await countRows(client, c.table) } : {}),
        });
      }
    }
    const missing = shards.filter((s) => !catalog.present.has(s.shard.table.name)).map((s) => `${s.shard.table.schema}.${s.shard.table.name}`);
    return missing.length === 0
      ? { node: target.name, status: 'ok', chunks }
      : { node: target.name, status: 'failed', error: `shard tables missing (apply the migrations): ${missing.join(', ')}`, chunks };
  } catch (error) {
    return { node: target.name, status: 'failed', error: errorMessage(error), chunks: [] };
  } finally {
    await client.end().catch(() => undefined);
  }
}
