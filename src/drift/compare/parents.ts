/**
 * Hypertable parents: on the access node every hypertable, on a data node the local parent of
 * each hypertable it holds shards of (and none of the others), each `PARTITION BY HASH (space)`.
 */
import type { ClusterLayout, Hypertable } from '../../plan/layout.js';
import type { NodeRole } from '../../sql/generate.js';
import type { CatalogRelation, PartitionKey } from '../catalog/relations.js';
import { displayName, finding, nameKey, type Finding } from '../model.js';

/** The hypertables whose parent a node must have. */
export function hypertablesOn(layout: ClusterLayout, node: string, role: NodeRole): Hypertable[] {
  return role === 'access' ? [...layout.hypertables] : layout.hypertables.filter((h) => h.shards.some((s) => s.dataNode === node));
}

export function formatPartitionKey(key: PartitionKey | undefined): string {
  return key === undefined ? 'not partitioned' : `${key.strategy.toUpperCase()} (${key.columns.join(', ')})`;
}

/** Compares a partitioned table's key with the expected one; undefined when they agree. */
export function comparePartitionKey(object: string, expected: PartitionKey, actual: PartitionKey | undefined): Finding | undefined {
  if (actual !== undefined && actual.strategy === expected.strategy && actual.columns.join('\u0000') === expected.columns.join('\u0000')) return undefined;
  return finding('different', object, `partitioned by ${formatPartitionKey(actual)}, expected ${formatPartitionKey(expected)}`, {
    expected: formatPartitionKey(expected),
    actual: formatPartitionKey(actual),
  });
}

export function compareParents(layout: ClusterLayout, node: string, role: NodeRole, relations: readonly CatalogRelation[]): Finding[] {
  const byName = new Map(relations.map((r) => [nameKey(r.table), r]));
  const label = role === 'access' ? 'hypertable' : 'local parent';
  const held = new Set(hypertablesOn(layout, node, role));
  const out: Finding[] = [];
  for (const h of layout.hypertables) {
    const object = `${label} ${displayName(h.table)}`;
    const actual = byName.get(nameKey(h.table));
    if (!held.has(h)) {
      if (actual !== undefined) out.push(finding('extra', object, `${node} holds no shard of ${displayName(h.table)}, yet has the table`));
      continue;
    }
    if (actual === undefined) {
      out.push(finding('missing', object, `table ${displayName(h.table)} does not exist`));
      continue;
    }
    if (actual.kind !== 'p') {
      out.push(finding('different', object, `${displayName(h.table)} is not a partitioned table`, { expected: 'partitioned table', actual: relkindName(actual.kind) }));
      continue;
    }
    const key = comparePartitionKey(`partition key of ${displayName(h.table)}`, { strategy: 'hash', columns: [h.spaceColumn] }, actual.partitionKey);
    if (key !== undefined) out.push(key);
  }
  return out;
}

export function relkindName(kind: string): string {
  const names: Record<string, string> = { r: 'table', p: 'partitioned table', f: 'foreign table', v: 'view', m: 'materialized view', S: 'sequence', i: 'index' };
  return names[kind] ?? `relkind ${kind}`;
}
