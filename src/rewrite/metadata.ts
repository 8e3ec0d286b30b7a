/** The rewriter's view of a cluster, from its spec's layout. */
import type { ClusterLayout } from '../plan/layout.js';
import type { ClusterMetadata } from './model.js';

export function metadataFromLayout(layout: ClusterLayout): ClusterMetadata {
  return {
    hypertables: layout.hypertables.map((h) => ({
      table: h.table,
      columns: h.columns.map((c) => ({ name: c.name, type: c.type.sql, notNull: c.notNull })),
      spaceColumn: h.spaceColumn,
      timeColumn: h.timeColumn,
      shards: h.shards.map((s) => ({ index: s.index, modulus: s.modulus, remainder: s.remainder, table: s.table, server: s.server, lastpoint: s.lastpoint })),
      nodes: h.nodeViews?.map((v) => ({ table: v.view, server: v.server, shards: v.shards, lastpoint: v.lastpoint })),
    })),
    referenceTables: layout.referenceTables.map((r) => ({
      table: r.table,
      columns: r.columns.map((c) => ({ name: c.name, type: c.type.sql, notNull: c.notNull })),
      copies: r.copies.map((c) => ({ server: c.server, table: c.table })),
    })),
    ...(layout.timescaledb === undefined ? {} : { timescaledb: { schema: layout.timescaledb.schema } }),
  };
}
