/** Indexes the spec declares, on each data node's local parent (reaching every shard and chunk). */
import type { ClusterLayout, Hypertable, Index } from '../../plan/layout.js';
import type { CatalogIndex } from '../catalog/indexes.js';
import { displayName, finding, nameKey, type Finding } from '../model.js';

const describe = (index: { unique: boolean; method: string; columns: readonly { name: string; order: 'asc' | 'desc' }[] }): string =>
  `${index.unique ? 'UNIQUE ' : ''}USING ${index.method} (${index.columns.map((c) => `${c.name}${c.order === 'desc' ? ' DESC' : ''}`).join(', ')})`;

export function compareIndexes(h: Hypertable, expected: readonly Index[], actual: readonly CatalogIndex[]): Finding[] {
  const out: Finding[] = [];
  const byName = new Map(actual.filter((i) => i.schema === h.table.schema).map((i) => [i.name, i]));
  for (const want of expected) {
    const object = `index ${h.table.schema}.${want.name}`;
    const have = byName.get(want.name);
    if (have === undefined) {
      out.push(finding('missing', object, `${displayName(h.table)} has no index ${want.name}`, { expected: describe(want) }));
    } else if (describe(have) !== describe(want)) {
      out.push(finding('different', object, `index ${want.name} on ${displayName(h.table)} differs from the spec`, {
        expected: describe(want),
        actual: describe(have),
      }));
    }
  }
  const wanted = new Set(expected.map((i) => i.name));
  for (const have of actual.filter((i) => i.schema !== h.table.schema || !wanted.has(i.name))) {
    out.push(finding('extra', `index ${have.schema}.${have.name}`, `${displayName(h.table)} has an index the spec does not declare`, { actual: describe(have) }));
  }
  return out;
}

export function compareNodeIndexes(layout: ClusterLayout, node: string, indexes: ReadonlyMap<string, readonly CatalogIndex[]>, existing: ReadonlySet<string>): Finding[] {
  return layout.hypertables
    .filter((h) => h.shards.some((s) => s.dataNode === node) && existing.has(nameKey(h.table)))
    .flatMap((h) => compareIndexes(h, h.indexes, indexes.get(nameKey(h.table)) ?? []));
}
