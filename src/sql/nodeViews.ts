/**
 * Node views (`nodeViews: true` on a hypertable, plan/layout.ts `NodeView`): on each data node, a
 * view that is the UNION ALL of its shards of the hypertable; on the access node, a foreign table
 * of the same name reading it. The rewriter asks each data node once through it instead of each
 * shard (src/rewrite/shards.ts): a shard asked costs about 1 ms of remote round trips and planning
 * whatever it holds.
 *
 * With per-shard lastpoint views too (`lastpoint: true`), each node view has a lastpoint sibling:
 * the UNION ALL of that node's shards' lastpoint views (each key's newest row), read the same way,
 * so a lastpoint query asks each data node once.
 *
 * A view names its columns and blocks dropping or retyping them: evolve drops these objects before
 * a column change and makes them again after it. A move makes the two nodes' views of their new
 * shard sets and switches the access node's foreign tables in the move's transaction (rebalance).
 */
import { nodeViewRelations, type Hypertable, type NodeView, type QualifiedName, type Shard } from '../plan/layout.js';
import type { Statement, Step } from './statement.js';
import { render } from './templates.js';

const label = (h: Hypertable, v: NodeView): string => `node view of ${h.table.schema}.${h.table.name} on ${v.dataNode} (shards ${v.shards.join(', ')})`;
const lastpointLabel = (h: Hypertable, v: NodeView): string => `${nodeLastpointLabelPrefix(h)}${v.dataNode} (shards ${v.shards.join(', ')})`;

/** How a node lastpoint view of `h` is labelled in migrations (whether any was ever made, migrations/files.ts). */
export function nodeLastpointLabelPrefix(h: Hypertable): string {
  return `node lastpoint view of ${h.table.schema}.${h.table.name} on `;
}

/** The node views of `h` (on `dataNode`, when given). */
export function nodeViews(h: Hypertable, dataNode?: string): NodeView[] {
  return (h.nodeViews ?? []).filter((v) => dataNode === undefined || v.dataNode === dataNode);
}

/** The node's relations, each with its label: the view, then its lastpoint view when it has one. */
function relations(h: Hypertable, v: NodeView): { readonly table: QualifiedName; readonly what: string }[] {
  return nodeViewRelations(v).map((table) => ({ table, what: table === v.view ? label(h, v) : lastpointLabel(h, v) }));
}

/** The node's view and, with lastpoint views, its lastpoint view (made after the shards' lastpoint views it reads). */
export function createNodeView(h: Hypertable, v: NodeView, serviceRole: string): Statement[] {
  return [...viewStatements(h, label(h, v), v.view, shardsOf(h, v).map((s) => s.table), serviceRole), ...nodeLastpointViewStep(h, v, serviceRole).up];
}

export function dropNodeView(h: Hypertable, v: NodeView): Statement[] {
  return relations(h, v).reverse().map((r) => dropView(r.what, r.table));
}

/** The node's lastpoint view alone (none without one): the UNION ALL of its shards' lastpoint views. */
export function nodeLastpointViewStep(h: Hypertable, v: NodeView, serviceRole: string): Step {
  const view = v.lastpoint;
  if (view === undefined) return { up: [], down: [] };
  const reads = shardsOf(h, v).map((s) => {
    if (s.lastpoint === undefined) throw new TypeError(`${lastpointLabel(h, v)}: shard ${s.index} has no lastpoint view`);
    return s.lastpoint;
  });
  return { up: viewStatements(h, lastpointLabel(h, v), view, reads, serviceRole), down: [dropView(lastpointLabel(h, v), view)] };
}

function shardsOf(h: Hypertable, v: NodeView): Shard[] {
  return v.shards.map((i) => {
    const shard = h.shards.find((s) => s.index === i);
    if (shard === undefined) throw new TypeError(`node view ${v.view.name} names shard ${i}, which ${h.table.name} does not have`);
    return shard;
  });
}

const dropView = (what: string, view: QualifiedName): Statement => ({ what, sql: render('data/drop-view', { view }) });

function viewStatements(h: Hypertable, what: string, view: QualifiedName, reads: readonly QualifiedName[], serviceRole: string): Statement[] {
  return [
    { what, sql: render('data/create-node-view', { view, shards: reads, columns: h.columns }) },
    { what: `${what}: SELECT for ${serviceRole}`, sql: render('common/grant-table', { privileges: ['SELECT'], table: view, role: serviceRole }) },
  ];
}

/** The access node's foreign tables on the node's views. */
export function createNodeTable(h: Hypertable, v: NodeView): Statement[] {
  return relations(h, v).map((r) => foreignTable(h, v, r.table, r.what));
}

export function dropNodeTable(h: Hypertable, v: NodeView): Statement[] {
  return relations(h, v).map((r) => dropForeignTable(r.what, r.table));
}

/** The access node's foreign table on the node's lastpoint view alone, made anew (a move may have made it already). */
export function nodeLastpointTableStep(h: Hypertable, v: NodeView): Step {
  if (v.lastpoint === undefined) return { up: [], down: [] };
  const drop = dropForeignTable(lastpointLabel(h, v), v.lastpoint);
  return { up: [drop, foreignTable(h, v, v.lastpoint, lastpointLabel(h, v))], down: [drop] };
}

const foreignTable = (h: Hypertable, v: NodeView, table: QualifiedName, what: string): Statement => ({
  what: `${what} (foreign table on ${v.server})`,
  sql: render('access/create-lastpoint-table', { table, columns: h.columns, server: v.server }),
});

const dropForeignTable = (what: string, table: QualifiedName): Statement => ({ what: `${what} (foreign table)`, sql: render('access/drop-foreign-table', { table }) });

/** The node views of `h` on `dataNode`: made by `up`, dropped by `down`. */
export function dataNodeViewStep(h: Hypertable, dataNode: string, serviceRole: string): Step {
  const views = nodeViews(h, dataNode);
  return { up: views.flatMap((v) => createNodeView(h, v, serviceRole)), down: views.flatMap((v) => dropNodeView(h, v)) };
}

/** Every node view's foreign table of `h` on the access node. */
export function accessNodeViewStep(h: Hypertable): Step {
  const views = nodeViews(h);
  return { up: views.flatMap((v) => createNodeTable(h, v)), down: views.flatMap((v) => dropNodeTable(h, v)) };
}
