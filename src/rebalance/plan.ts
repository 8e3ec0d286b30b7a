/**
 * Which shards to move: measure each shard's bytes on its data node, then move greedily from the
 * fullest node to the emptiest while the max/min ratio improves. When every shard is tiny, bytes
 * say nothing (empty chunks weigh the same as full ones) and shard counts are balanced instead,
 * until they differ by at most one.
 */
import type pg from 'pg';
import type { ClusterLayout } from '../plan/layout.js';
import { quoteQualified } from '../sql/quote.js';
import type { MoveReason, PlannedMove, ShardLoad } from './result.js';

/** Below this many bytes per data node on average, shard counts decide. */
export const TINY_BYTES_PER_NODE = 8 * 1024 * 1024;

/** Bytes of every shard the layout places on `node` (0 for a shard that is missing there). */
export async function measureShards(client: pg.Client, layout: ClusterLayout, node: string): Promise<ShardLoad[]> {
  const loads: ShardLoad[] = [];
  for (const h of layout.hypertables) {
    for (const shard of h.shards.filter((s) => s.dataNode === node)) {
      const qualified = quoteQualified(shard.table.schema, shard.table.name);
      const { rows } = await client.query<{ bytes: string | null }>(
        `SELECT CASE WHEN pg_catalog.to_regclass($1) IS NULL THEN 0
                ELSE (SELECT coalesce(sum(pg_catalog.pg_total_relation_size(relid)), 0) FROM pg_catalog.pg_partition_tree(pg_catalog.to_regclass($1)) WHERE isleaf) END::text AS bytes`,
        [qualified],
      );
      loads.push({ hypertable: `${h.table.schema}.${h.table.name}`, shard: shard.index, dataNode: node, bytes: Number(rows[0]?.bytes ?? 0) });
    }
  }
  return loads;
}

export interface MovePlan {
  readonly measure: 'bytes' | 'count';
  readonly moves: readonly PlannedMove[];
}

/** Pure: the moves that even out `loads` over `nodes` (every data node of the spec may receive shards). */
export function planMoves(loads: readonly ShardLoad[], nodes: readonly string[]): MovePlan {
  const total = loads.reduce((a, l) => a + l.bytes, 0);
  const measure = total < TINY_BYTES_PER_NODE * Math.max(nodes.length, 1) ? 'count' : 'bytes';
  const weight = (l: ShardLoad): number => (measure === 'count' ? 1 : l.bytes);
  const placed = new Map(loads.map((l) => [`${l.hypertable}\u0000${l.shard}`, { load: l, node: l.dataNode }]));
  const sums = (): Map<string, number> => {
    const m = new Map(nodes.map((n) => [n, 0]));
    for (const p of placed.values()) m.set(p.node, (m.get(p.node) ?? 0) + weight(p.load));
    return m;
  };
  const score = (m: ReadonlyMap<string, number>): [number, number] => {
    const values = [...m.values()];
    const max = Math.max(...values);
    const min = Math.min(...values);
    return [min === 0 ? (max === 0 ? 1 : Number.POSITIVE_INFINITY) : max / min, max - min];
  };
  const better = (a: [number, number], b: [number, number]): boolean => a[0] < b[0] - 1e-9 || (Math.abs(a[0] - b[0]) <= 1e-9 && a[1] < b[1]);
  const moves: PlannedMove[] = [];
  const moved = new Set<string>();
  for (let round = 0; round < loads.length; round += 1) {
    const current = sums();
    const ordered = [...current.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    const fullest = ordered[0];
    const emptiest = ordered.at(-1);
    if (fullest === undefined || emptiest === undefined || fullest[0] === emptiest[0]) break;
    if (measure === 'count' && fullest[1] - emptiest[1] <= 1) break;
    let best: { key: string; score: [number, number] } | undefined;
    for (const [key, p] of placed) {
      if (p.node !== fullest[0] || moved.has(key)) continue;
      const next = new Map(current);
      next.set(fullest[0], fullest[1] - weight(p.load));
      next.set(emptiest[0], emptiest[1] + weight(p.load));
      const s = score(next);
      if (best === undefined || better(s, best.score)) best = { key, score: s };
    }
    if (best === undefined || !better(best.score, score(current))) break;
    const p = placed.get(best.key);
    if (p === undefined) break;
    const why = reason(current, fullest[0], emptiest[0], weight(p.load));
    moves.push({ hypertable: p.load.hypertable, shard: p.load.shard, source: p.node, target: emptiest[0], bytes: p.load.bytes, why });
    placed.set(best.key, { load: p.load, node: emptiest[0] });
    moved.add(best.key);
  }
  return { measure, moves };
}

/**
 * Pure: every shard on `node` moves off it, heaviest first, each to the other node that is
 * lightest at that moment (by bytes, or by count when everything is tiny).
 */
export function planDrain(loads: readonly ShardLoad[], node: string, nodes: readonly string[]): MovePlan {
  const others = nodes.filter((n) => n !== node);
  const total = loads.reduce((a, l) => a + l.bytes, 0);
  const measure = total < TINY_BYTES_PER_NODE * Math.max(nodes.length, 1) ? 'count' : 'bytes';
  const weight = (l: ShardLoad): number => (measure === 'count' ? 1 : l.bytes);
  const sums = new Map(others.map((n) => [n, 0]));
  for (const l of loads) if (sums.has(l.dataNode)) sums.set(l.dataNode, (sums.get(l.dataNode) ?? 0) + weight(l));
  const moves: PlannedMove[] = [];
  const leaving = loads.filter((l) => l.dataNode === node).sort((a, b) => b.bytes - a.bytes || a.hypertable.localeCompare(b.hypertable) || a.shard - b.shard);
  let left = leaving.reduce((a, l) => a + weight(l), 0);
  for (const load of leaving) {
    const target = [...sums.entries()].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))[0];
    if (target === undefined) break;
    const why = reason(new Map([...sums, [node, left]]), node, target[0], weight(load), node);
    moves.push({ hypertable: load.hypertable, shard: load.shard, source: node, target: target[0], bytes: load.bytes, why });
    sums.set(target[0], target[1] + weight(load));
    left -= weight(load);
  }
  return { measure, moves };
}

/** What moving `weight` from `source` to `target` does to them and to the spread of `sums` (without a node being drained). */
function reason(sums: ReadonlyMap<string, number>, source: string, target: string, weight: number, draining?: string): MoveReason {
  const after = new Map(sums);
  after.set(source, (sums.get(source) ?? 0) - weight);
  after.set(target, (sums.get(target) ?? 0) + weight);
  const spread = (m: ReadonlyMap<string, number>): number | null => {
    const values = [...m].filter(([n]) => n !== draining).map(([, v]) => v);
    const min = Math.min(...values);
    return min <= 0 ? null : Math.max(...values) / min;
  };
  return {
    source: { before: sums.get(source) ?? 0, after: after.get(source) ?? 0 },
    target: { before: sums.get(target) ?? 0, after: after.get(target) ?? 0 },
    maxOverMin: { before: spread(sums), after: spread(after) },
  };
}
