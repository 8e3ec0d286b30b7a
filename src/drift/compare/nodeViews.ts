/**
 * Node views (src/sql/nodeViews.ts): on a data node, the view of its shard set of each hypertable
 * with `nodeViews`, with the hypertable's columns in order (one made before a column change still
 * has the old ones: stale); on the access node, the foreign table reading it through the server
 * the layout names, with the same columns.
 */
import type { ClusterLayout } from '../../plan/layout.js';
import type { NodeRole } from '../../sql/generate.js';
import { nodeViews } from '../../sql/nodeViews.js';
import type { CatalogColumn } from '../catalog/columns.js';
import type { CatalogRelation } from '../catalog/relations.js';
import { displayName, finding, nameKey, type Finding } from '../model.js';
import { expectedColumns } from './columns.js';
import { relkindName } from './parents.js';

export function compareNodeViews(layout: ClusterLayout, node: string, role: NodeRole, relations: readonly CatalogRelation[], columns: ReadonlyMap<string, readonly CatalogColumn[]>): Finding[] {
  const byName = new Map(relations.map((r) => [nameKey(r.table), r]));
  const out: Finding[] = [];
  const access = role === 'access';
  for (const h of layout.hypertables) {
    for (const v of nodeViews(h)) {
      const mine = access || v.dataNode === node;
      const actual = byName.get(nameKey(v.view));
      const object = `node ${access ? 'foreign table' : 'view'} ${displayName(v.view)}`;
      if (!mine) {
        if (actual !== undefined) out.push(finding('extra', object, `the node view of ${displayName(h.table)} on ${v.dataNode} (shards ${v.shards.join(', ')}) belongs there, not here`));
        continue;
      }
      const kind = access ? 'f' : 'v';
      if (actual === undefined) {
        out.push(finding('missing', object, `${relkindName(kind)} ${displayName(v.view)} does not exist (the rewriter asks ${v.dataNode} once through it, for shards ${v.shards.join(', ')})`));
        continue;
      }
      if (actual.kind !== kind) {
        out.push(finding('different', object, `is a ${relkindName(actual.kind)}, expected a ${relkindName(kind)}`, { expected: relkindName(kind), actual: relkindName(actual.kind) }));
        continue;
      }
      if (access && actual.server !== v.server) {
        out.push(finding('different', object, `uses server ${actual.server ?? '(none)'}, expected ${v.server} (data node ${v.dataNode})`, { expected: v.server, actual: actual.server }));
      }
      if (access && (actual.options.get('schema_name') !== v.view.schema || actual.options.get('table_name') !== v.view.name)) {
        out.push(finding('different', object, `does not read ${displayName(v.view)} on the data node`, { expected: `${v.view.schema}.${v.view.name}`, actual: `${actual.options.get('schema_name') ?? '?'}.${actual.options.get('table_name') ?? '?'}` }));
      }
      // A view's columns never say NOT NULL: compare names and types, in order.
      const shape = (cs: readonly CatalogColumn[]): string => cs.map((c) => `${c.name} ${c.type}${access && c.notNull ? ' NOT NULL' : ''}`).join(', ');
      const want = shape(expectedColumns(h));
      const have = shape(columns.get(nameKey(v.view)) ?? []);
      if (want !== have) out.push(finding('different', object, `is stale: its columns are not the hypertable's (made before a column change?); generate and apply remake it`, { expected: want, actual: have }));
    }
  }
  return out;
}
