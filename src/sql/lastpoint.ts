/**
 * Lastpoint views (`lastpoint: true` on a hypertable): on the data node that owns each shard, a
 * view giving the newest row of each space key of that shard by a loose index scan; on the access
 * node, a foreign table of the same name reading it. The rewriter answers `DISTINCT ON (space) …
 * ORDER BY space, time DESC` from the union of these foreign tables (src/rewrite/lastpoint.ts).
 *
 * A view names its columns when it is created, and blocks DROP COLUMN and retyping of the columns
 * it reads: evolve drops these objects before a column change and makes them again after it.
 */
import type { Hypertable, QualifiedName, Shard } from '../plan/layout.js';
import type { Statement, Step } from './statement.js';
import { render } from './templates.js';

type WithLastpoint = Shard & { readonly lastpoint: QualifiedName };

/** The shards of `h` (on `dataNode`, when given) that have a lastpoint view. */
export function lastpointShards(h: Hypertable, dataNode?: string): WithLastpoint[] {
  return h.shards.filter((s): s is WithLastpoint => s.lastpoint !== undefined && (dataNode === undefined || s.dataNode === dataNode));
}

const label = (h: Hypertable, shard: Shard): string => `lastpoint view of shard ${shard.index} of ${h.table.schema}.${h.table.name}`;

export function createLastpointView(h: Hypertable, shard: WithLastpoint, serviceRole: string): Statement[] {
  return [
    { what: label(h, shard), sql: render('data/create-lastpoint-view', { view: shard.lastpoint, shard: shard.table, spaceColumn: h.spaceColumn, timeColumn: h.timeColumn, columns: h.columns }) },
    { what: `${label(h, shard)}: SELECT for ${serviceRole}`, sql: render('common/grant-table', { privileges: ['SELECT'], table: shard.lastpoint, role: serviceRole }) },
  ];
}

export function dropLastpointView(h: Hypertable, shard: WithLastpoint): Statement {
  return { what: label(h, shard), sql: render('data/drop-view', { view: shard.lastpoint }) };
}

/** The access node's foreign table on the shard's view, through `server` (the shard's, unless a move says otherwise). */
export function createLastpointTable(h: Hypertable, shard: WithLastpoint, server = shard.server): Statement {
  return { what: `${label(h, shard)} (foreign table on ${server})`, sql: render('access/create-lastpoint-table', { table: shard.lastpoint, columns: h.columns, server }) };
}

export function dropLastpointTable(h: Hypertable, shard: WithLastpoint): Statement {
  return { what: `${label(h, shard)} (foreign table)`, sql: render('access/drop-foreign-table', { table: shard.lastpoint }) };
}

/** Every lastpoint view of `h` on `dataNode`: made by `up`, dropped by `down`. */
export function dataLastpointStep(h: Hypertable, dataNode: string, serviceRole: string): Step {
  const shards = lastpointShards(h, dataNode);
  return { up: shards.flatMap((s) => createLastpointView(h, s, serviceRole)), down: shards.map((s) => dropLastpointView(h, s)) };
}

/** Every lastpoint foreign table of `h` on the access node. */
export function accessLastpointStep(h: Hypertable): Step {
  const shards = lastpointShards(h);
  return { up: shards.map((s) => createLastpointTable(h, s)), down: shards.map((s) => dropLastpointTable(h, s)) };
}
