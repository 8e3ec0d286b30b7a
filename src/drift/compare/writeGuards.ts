/** Every shard on a data node refuses postgres_fdw's row-by-row UPDATE and DELETE (see the guard's template). */
import type { ClusterLayout } from '../../plan/layout.js';
import { INTERNAL_SCHEMA } from '../../plan/layout.js';
import type { CatalogWriteGuards } from '../catalog/writeGuards.js';
import { displayName, finding, nameKey, type Finding } from '../model.js';

const WHY = 'an UPDATE or DELETE through the access node that postgres_fdw cannot ship whole would change the rows at the same ctid in every chunk of the shard (apply adds it)';

export function compareWriteGuards(layout: ClusterLayout, node: string, existing: ReadonlySet<string>, guards: CatalogWriteGuards): Finding[] {
  const shards = layout.hypertables.flatMap((h) => h.shards.filter((s) => s.dataNode === node && existing.has(nameKey(s.table))));
  const out: Finding[] = [];
  if (shards.length > 0 && !guards.function) out.push(finding('missing', `function ${INTERNAL_SCHEMA}.refuse_ctid_writes`, `the write guard's function is missing: ${WHY}`));
  for (const shard of shards) {
    if (!guards.guarded.has(nameKey(shard.table))) out.push(finding('missing', `write guard on ${displayName(shard.table)}`, `${displayName(shard.table)} has no write guard: ${WHY}`));
  }
  return out;
}
