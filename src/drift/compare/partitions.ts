/**
 * The partitions of each hypertable parent. On the access node: one foreign table per shard, with
 * the shard's hash bounds, its FDW server and the remote table in its options. On a data node: the
 * shards it owns as partitions of the local parent with the same bounds, each `PARTITION BY RANGE
 * (time)`, and no shard that belongs on another node.
 */
import type { ClusterLayout, Hypertable, QualifiedName, Shard } from '../../plan/layout.js';
import type { NodeRole } from '../../sql/generate.js';
import type { CatalogRelation } from '../catalog/relations.js';
import { displayName, finding, nameKey, type Finding } from '../model.js';
import { formatHashBound } from '../pgText.js';
import { comparePartitionKey, hypertablesOn, relkindName } from './parents.js';

const sameName = (a: QualifiedName | undefined, b: QualifiedName): boolean => a !== undefined && a.schema === b.schema && a.name === b.name;

export function comparePartitions(layout: ClusterLayout, node: string, role: NodeRole, relations: readonly CatalogRelation[]): Finding[] {
  const byName = new Map(relations.map((r) => [nameKey(r.table), r]));
  const out: Finding[] = [];
  const held = new Set(hypertablesOn(layout, node, role));
  const allShards = new Set(layout.hypertables.flatMap((h) => h.shards.map((s) => nameKey(s.table))));
  for (const h of layout.hypertables) {
    const mine = role === 'access' ? h.shards : h.shards.filter((s) => s.dataNode === node);
    for (const shard of mine) out.push(...(role === 'access' ? compareForeignPartition(h, shard, byName.get(nameKey(shard.table))) : compareShard(h, shard, byName.get(nameKey(shard.table)))));
    if (role === 'data') {
      for (const shard of h.shards.filter((s) => s.dataNode !== node)) {
        if (byName.has(nameKey(shard.table))) {
          out.push(finding('extra', `shard ${displayName(shard.table)}`, `shard ${shard.index} of ${displayName(h.table)} belongs on ${shard.dataNode}, not here`));
        }
      }
    }
    if (!held.has(h)) continue;
    // Partitions nobody declared (a shard of another node is reported above).
    const expected = new Set(mine.map((s) => nameKey(s.table)));
    for (const r of relations.filter((x) => sameName(x.parent, h.table) && !expected.has(nameKey(x.table)) && !allShards.has(nameKey(x.table)))) {
      out.push(finding('extra', `partition ${displayName(r.table)}`, `${relkindName(r.kind)} ${displayName(r.table)} is a partition of ${displayName(h.table)} the spec does not declare`, { actual: r.bound }));
    }
  }
  return out;
}

/** What foreign partitions and shards share: the relation exists, has its kind, and is attached with the shard's bounds. */
function compareAttachment(h: Hypertable, shard: Shard, object: string, actual: CatalogRelation | undefined, kind: string): Finding[] {
  if (actual === undefined) return [finding('missing', object, `${relkindName(kind)} ${displayName(shard.table)} does not exist`)];
  const out: Finding[] = [];
  if (actual.kind !== kind) out.push(finding('different', object, `is a ${relkindName(actual.kind)}, expected a ${relkindName(kind)}`, { expected: relkindName(kind), actual: relkindName(actual.kind) }));
  const bound = formatHashBound(shard);
  if (!sameName(actual.parent, h.table)) {
    out.push(finding('different', object, `is not a partition of ${displayName(h.table)}${actual.parent === undefined ? '' : ` (it is one of ${displayName(actual.parent)})`}`, {
      expected: `partition of ${displayName(h.table)} ${bound}`,
      actual: actual.parent === undefined ? 'not attached' : `partition of ${displayName(actual.parent)} ${actual.bound ?? ''}`.trimEnd(),
    }));
  } else if (actual.bound !== bound) {
    out.push(finding('different', object, `bounds are ${actual.bound ?? 'none'}, expected ${bound}`, { expected: bound, actual: actual.bound }));
  }
  return out;
}

export function compareForeignPartition(h: Hypertable, shard: Shard, actual: CatalogRelation | undefined): Finding[] {
  const object = `foreign partition ${displayName(shard.table)}`;
  const out = compareAttachment(h, shard, object, actual, 'f');
  if (actual === undefined || actual.kind !== 'f') return out;
  if (actual.server !== shard.server) {
    out.push(finding('different', object, `uses server ${actual.server ?? '(none)'}, expected ${shard.server} (data node ${shard.dataNode})`, { expected: shard.server, actual: actual.server }));
  }
  const options: [string, string][] = [['schema_name', shard.table.schema], ['table_name', shard.table.name]];
  for (const [key, value] of options) {
    const found = actual.options.get(key);
    if (found === undefined) out.push(finding('missing', object, `option ${key} is not set, expected ${value}`, { expected: `${key}=${value}` }));
    else if (found !== value) out.push(finding('different', object, `option ${key} is ${found}, expected ${value}`, { expected: `${key}=${value}`, actual: `${key}=${found}` }));
  }
  for (const [key, value] of actual.options) {
    if (!options.some(([k]) => k === key)) out.push(finding('extra', object, `option ${key} is set, the spec does not set it`, { actual: `${key}=${value}` }));
  }
  return out;
}

export function compareShard(h: Hypertable, shard: Shard, actual: CatalogRelation | undefined): Finding[] {
  const object = `shard ${displayName(shard.table)}`;
  const common = compareAttachment(h, shard, object, actual, 'p');
  if (actual === undefined || actual.kind !== 'p') return common;
  const key = comparePartitionKey(`partition key of ${displayName(shard.table)}`, { strategy: 'range', columns: [h.timeColumn] }, actual.partitionKey);
  return key === undefined ? common : [...common, key];
}
