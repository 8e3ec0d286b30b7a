/**
 * Node views (`nodeViews: true` on a hypertable, plan/layout.ts `NodeView`): on each data node, a
 * view that is the UNION ALL of its shards of the hypertable; on the access node, a foreign table
 * of the same name reading it. The rewriter asks each data node once through it instead of each
 * shard (src/rewrite/shards.ts): a shard asked costs about 1 ms of remote round trips and planning
 * whatever it holds.
 *
 * A view names its columns and blocks dropping or retyping them: evolve drops these objects before
 * a column change and makes them again after it. A move makes the two nodes' views of their new
 * shard sets and switches the access node's foreign tables in the move's transaction (rebalance).
 */
import type { Hypertable, NodeView } from '../plan/layout.js';
import type { Statement, Step } from './statement.js';
import { render } from './templates.js';

const label = (h: Hypertable, v: NodeView): string => `node view of ${h.table.schema}.${h.table.name} on ${v.dataNode} (shards ${v.shards.join(', ')})`;

/** The node views of `h` (on `dataNode`, when given). */
export function nodeViews(h: Hypertable, dataNode?: string): NodeView[] {
  return (h.nodeViews ?? []).filter((v) => dataNode === undefined || v.dataNode === dataNode);
}

export function createNodeView(h: Hypertable, v: NodeView, serviceRole: string): Statement[] {
  const shards = v.shards.map((i) => h.shards.find((s) => s.index === i)?.table);
  if (shards.some((s) => s === undefined)) throw new TypeError(`node view ${v.view.name} names a shard ${h.table.name} does not have`);
  return [
    { what: label(h, v), sql: render('data/create-node-view', { view: v.view, shards, columns: h.columns }) },
    { what: `${label(h, v)}: SELECT for ${serviceRole}`, sql: render('common/grant-table', { privileges: ['SELECT'], table: v.view, role: serviceRole }) },
  ];
}

export function dropNodeView(h: Hypertable, v: NodeView): Statement {
  return { what: label(h, v), sql: render('data/drop-view', { view: v.view }) };
}

/** The access node's foreign table on the node's view. */
export function createNodeTable(h: Hypertable, v: NodeView): Statement {
  return { what: `${label(h, v)} (foreign table on ${v.server})`, sql: render('access/create-lastpoint-table', { table: v.view, columns: h.columns, server: v.server }) };
}

export function dropNodeTable(h: Hypertable, v: NodeView): Statement {
  return { what: `${label(h, v)} (foreign table)`, sql: render('access/drop-foreign-table', { table: v.view }) };
}

/** The node views of `h` on `dataNode`: made by `up`, dropped by `down`. */
export function dataNodeViewStep(h: Hypertable, dataNode: string, serviceRole: string): Step {
  const views = nodeViews(h, dataNode);
  return { up: views.flatMap((v) => createNodeView(h, v, serviceRole)), down: views.map((v) => dropNodeView(h, v)) };
}

/** Every node view's foreign table of `h` on the access node. */
export function accessNodeViewStep(h: Hypertable): Step {
  const views = nodeViews(h);
  return { up: views.map((v) => createNodeTable(h, v)), down: views.map((v) => dropNodeTable(h, v)) };
}
