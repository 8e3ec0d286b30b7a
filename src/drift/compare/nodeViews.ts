/**
 * Node views (src/sql/nodeViews.ts): on a data node, the view of its shard set of each hypertable
 * with `nodeViews`, with the hypertable's columns in order (one made before a column change still
 * has the old ones: stale); on the access node, the foreign table reading it through the server
 * the layout names, with the same columns. Likewise a node view's lastpoint sibling.
 */
import type { ClusterLayout } from '../../plan/layout.js';
import type { NodeRole } from '../../sql/generate.js';
import { nodeViews } from '../../sql/nodeViews.js';
import type { CatalogColumn } from '../catalog/columns.js';
import type { CatalogRelation } from '../catalog/relations.js';
import { displayName, finding, nameKey, type Finding } from '../model.js';
import { compareRemoteView } from './remoteView.js';

export function compareNodeViews(layout: ClusterLayout, node: string, role: NodeRole, relations: readonly CatalogRelation[], columns: ReadonlyMap<string, readonly CatalogColumn[]>): Finding[] {
  const byName = new Map(relations.map((r) => [nameKey(r.table), r]));
  const out: Finding[] = [];
  const access = role === 'access';
  for (const h of layout.hypertables) {
    for (const v of nodeViews(h)) {
      const mine = access || v.dataNode === node;
      const views = [
        { view: v.view, what: 'node', purpose: `the rewriter asks ${v.dataNode} once through it, for shards ${v.shards.join(', ')}` },
        ...(v.lastpoint === undefined ? [] : [{ view: v.lastpoint, what: 'node lastpoint', purpose: `lastpoint queries ask ${v.dataNode} once through it, for shards ${v.shards.join(', ')}` }]),
      ];
      for (const { view, what, purpose } of views) {
        const actual = byName.get(nameKey(view));
        const object = `${what} ${access ? 'foreign table' : 'view'} ${displayName(view)}`;
        if (!mine) {
          if (actual !== undefined) out.push(finding('extra', object, `the ${what} view of ${displayName(h.table)} on ${v.dataNode} (shards ${v.shards.join(', ')}) belongs there, not here`));
          continue;
        }
        out.push(...compareRemoteView(h, { object, view, server: v.server, dataNode: v.dataNode, purpose }, actual, columns, access));
      }
    }
  }
  return out;
}
