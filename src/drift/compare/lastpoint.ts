/**
 * Lastpoint views (src/sql/lastpoint.ts): on a data node, a view for each shard it owns of a
 * hypertable with `lastpoint`, whose columns are the hypertable's in order (a view made before a
 * column change still has the old ones: stale); on the access node, the foreign table reading it
 * through the shard's server, with the same columns.
 */
import type { ClusterLayout } from '../../plan/layout.js';
import type { NodeRole } from '../../sql/generate.js';
import { lastpointShards } from '../../sql/lastpoint.js';
import type { CatalogColumn } from '../catalog/columns.js';
import type { CatalogRelation } from '../catalog/relations.js';
import { displayName, finding, nameKey, type Finding } from '../model.js';
import { expectedColumns } from './columns.js';
import { relkindName } from './parents.js';

export function compareLastpoint(layout: ClusterLayout, node: string, role: NodeRole, relations: readonly CatalogRelation[], columns: ReadonlyMap<string, readonly CatalogColumn[]>): Finding[] {
  const byName = new Map(relations.map((r) => [nameKey(r.table), r]));
  const out: Finding[] = [];
  const access = role === 'access';
  for (const h of layout.hypertables) {
    for (const shard of lastpointShards(h)) {
      const mine = access || shard.dataNode === node;
      const actual = byName.get(nameKey(shard.lastpoint));
      const object = `lastpoint ${access ? 'foreign table' : 'view'} ${displayName(shard.lastpoint)}`;
      if (!mine) {
        if (actual !== undefined) out.push(finding('extra', object, `the lastpoint view of shard ${shard.index} of ${displayName(h.table)} belongs on ${shard.dataNode}, not here`));
        continue;
      }
      const kind = access ? 'f' : 'v';
      if (actual === undefined) {
        out.push(finding('missing', object, `${relkindName(kind)} ${displayName(shard.lastpoint)} does not exist (the rewriter answers lastpoint queries from it)`));
        continue;
      }
      if (actual.kind !== kind) {
        out.push(finding('different', object, `is a ${relkindName(actual.kind)}, expected a ${relkindName(kind)}`, { expected: relkindName(kind), actual: relkindName(actual.kind) }));
        continue;
      }
      if (access && actual.server !== shard.server) {
        out.push(finding('different', object, `uses server ${actual.server ?? '(none)'}, expected ${shard.server} (data node ${shard.dataNode})`, { expected: shard.server, actual: actual.server }));
      }
      if (access && (actual.options.get('schema_name') !== shard.lastpoint.schema || actual.options.get('table_name') !== shard.lastpoint.name)) {
        out.push(finding('different', object, `does not read ${displayName(shard.lastpoint)} on the data node`, { expected: `${shard.lastpoint.schema}.${shard.lastpoint.name}`, actual: `${actual.options.get('schema_name') ?? '?'}.${actual.options.get('table_name') ?? '?'}` }));
      }
      // A view's columns never say NOT NULL: compare names and types, in order.
      const shape = (cs: readonly CatalogColumn[]): string => cs.map((c) => `${c.name} ${c.type}${access && c.notNull ? ' NOT NULL' : ''}`).join(', ');
      const want = shape(expectedColumns(h));
      const have = shape(columns.get(nameKey(shard.lastpoint)) ?? []);
      if (want !== have) {
        out.push(finding('different', object, `is stale: its columns are not the hypertable's (made before a column change?); generate and apply remake it`, { expected: want, actual: have }));
      }
    }
  }
  return out;
}
