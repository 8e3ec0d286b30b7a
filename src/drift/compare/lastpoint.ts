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
import { compareRemoteView } from './remoteView.js';

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
      out.push(...compareRemoteView(h, { object, view: shard.lastpoint, server: shard.server, dataNode: shard.dataNode, purpose: 'the rewriter answers lastpoint queries from it' }, actual, columns, access));
    }
  }
  return out;
}
