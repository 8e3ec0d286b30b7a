/**
 * Lastpoint views (`lastpoint: true` on a hypertable): on the data node that owns each shard, a
 * view giving the newest row of each space key of that shard by a loose index scan (a PL/pgSQL
 * function's, so a session plans it once); on the access node, a foreign table of the same name
 * reading it. The rewriter answers `DISTINCT ON (space) …
 * ORDER BY space, time DESC` from the union of these foreign tables (src/rewrite/lastpoint.ts).
 *
 * A view names its columns when it is created, and blocks DROP COLUMN and retyping of the columns
 * it reads: evolve drops these objects before a column change and makes them again after it.
 */
import type { Hypertable, QualifiedName, Shard } from '../plan/layout.js';
import { derivedName } from '../plan/names.js';
import type { Statement, Step } from './statement.js';
import { render } from './templates.js';

type WithLastpoint = Shard & { readonly lastpoint: QualifiedName };

/** The shards of `h` (on `dataNode`, when given) that have a lastpoint view. */
export function lastpointShards(h: Hypertable, dataNode?: string): WithLastpoint[] {
  return h.shards.filter((s): s is WithLastpoint => s.lastpoint !== undefined && (dataNode === undefined || s.dataNode === dataNode));
}

const label = (h: Hypertable, shard: Shard): string => `lastpoint view of shard ${shard.index} of ${h.table.schema}.${h.table.name}`;

/** How the statement making a lastpoint view's function is labelled in migrations (whether one was ever made there, migrations/files.ts). */
export function lastpointFunctionLabel(h: Hypertable, shard: Shard): string {
  return `${label(h, shard)}: its function`;
}

/** The function behind a shard's lastpoint view: named after the view. */
export function lastpointFunction(lastpoint: QualifiedName): QualifiedName {
  return { schema: lastpoint.schema, name: derivedName(lastpoint.name, '_fn') };
}

export function createLastpointView(h: Hypertable, shard: WithLastpoint, serviceRole: string): Statement[] {
  const fn = lastpointFunction(shard.lastpoint);
  return [
    { what: lastpointFunctionLabel(h, shard), sql: render('data/create-lastpoint-function', { function: fn, shard: shard.table, spaceColumn: h.spaceColumn, timeColumn: h.timeColumn }) },
    { what: label(h, shard), sql: render('data/create-lastpoint-view', { view: shard.lastpoint, function: fn, columns: h.columns }) },
    { what: `${label(h, shard)}: SELECT for ${serviceRole}`, sql: render('common/grant-table', { privileges: ['SELECT'], table: shard.lastpoint, role: serviceRole }) },
  ];
}

/** The view, then its function (whose result type is the shard's: DROP TABLE of the shard needs both gone). */
export function dropLastpointView(h: Hypertable, shard: WithLastpoint): Statement[] {
  return [
    { what: label(h, shard), sql: render('data/drop-view', { view: shard.lastpoint }) },
    { what: lastpointFunctionLabel(h, shard), sql: render('data/drop-lastpoint-function', { function: lastpointFunction(shard.lastpoint) }) },
  ];
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
  return { up: shards.flatMap((s) => createLastpointView(h, s, serviceRole)), down: shards.flatMap((s) => dropLastpointView(h, s)) };
}

/** Every lastpoint foreign table of `h` on the access node. */
export function accessLastpointStep(h: Hypertable): Step {
  const shards = lastpointShards(h);
  return { up: shards.map((s) => createLastpointTable(h, s)), down: shards.map((s) => dropLastpointTable(h, s)) };
}
