/**
 * A move and the hypertable's node views (src/sql/nodeViews.ts). Moving a shard changes the shard
 * sets of two data nodes, and a node view is named by its set, so the move makes new views:
 *
 *   before the copy   the new views on the source and target data nodes (unread until the switch);
 *   at the switch     in the access node's transaction that switches the foreign partition, the
 *                     foreign tables of the old views are dropped and those of the new ones made:
 *                     a reader sees the old partition and the old views, or the new and the new;
 *   after it          the old views on the data nodes (the source's reads the old copy, which
 *                     could not be dropped under it); undone, the new ones instead.
 *
 * A rewrite made before the switch names foreign tables that are gone after it and fails (never
 * reads the moved shard twice or not at all); the next metadata read names the new ones.
 */
import type pg from 'pg';
import { nodeViewRelations, nodeViewsOf, type ClusterLayout, type Hypertable, type NodeView, type Shard } from '../plan/layout.js';
import { fdwServerName } from '../plan/names.js';
import { createNodeTable, createNodeView, dropNodeTable, dropNodeView } from '../sql/nodeViews.js';
import { render } from '../sql/templates.js';

export interface NodeViewChange {
  /** The hypertable as it is after the move (shard on the target, its views the new ones). */
  readonly moved: Hypertable;
  /** Views of the old sets that the move replaces. */
  readonly gone: readonly NodeView[];
  /** Views of the new sets. */
  readonly made: readonly NodeView[];
}

/** The views a move of `shard` from `source` to `target` replaces and makes; none without node views. */
export function nodeViewChange(h: Hypertable, shard: Shard, source: string, target: string): NodeViewChange {
  if (h.nodeViews === undefined) return { moved: h, gone: [], made: [] };
  const place = (node: string): Shard[] => h.shards.map((s) => (s.index === shard.index ? { ...s, dataNode: node, server: fdwServerName(node, s.index) } : s));
  const before = nodeViewsOf(h.table.name, h.dataNodes, place(source));
  const shards = place(target);
  const after = nodeViewsOf(h.table.name, h.dataNodes, shards);
  const names = (views: readonly NodeView[]): Set<string> => new Set(views.map((v) => v.view.name));
  const [had, has] = [names(before), names(after)];
  return { moved: { ...h, shards, nodeViews: after }, gone: before.filter((v) => !has.has(v.view.name)), made: after.filter((v) => !had.has(v.view.name)) };
}

async function inTransaction(client: pg.Client, statements: readonly string[]): Promise<void> {
  if (statements.length === 0) return;
  await client.query('BEGIN');
  try {
    for (const sql of statements) await client.query(sql);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Before the copy: the new views on their data nodes (the target's reads the copy being filled; nothing reads it yet). */
export async function makeNodeViews(data: (node: string) => pg.Client, change: NodeViewChange, serviceRole: string): Promise<void> {
  for (const v of change.made) await inTransaction(data(v.dataNode), createNodeView(change.moved, v, serviceRole).map((s) => s.sql));
}

/** In the switch's transaction on the access node: the foreign tables of the old views go, the new ones come, readable by who may read the hypertable. */
export async function switchNodeTables(access: pg.Client, layout: ClusterLayout, change: NodeViewChange): Promise<void> {
  for (const v of change.gone) for (const s of dropNodeTable(change.moved, v)) await access.query(s.sql);
  const readers = layout.roles.filter((r) => r.grants.some((g) => g.table.schema === change.moved.table.schema && g.table.name === change.moved.table.name && g.privileges.includes('SELECT')));
  for (const v of change.made) {
    for (const s of createNodeTable(change.moved, v)) await access.query(s.sql);
    for (const table of nodeViewRelations(v)) for (const role of readers) await access.query(render('common/grant-table', { privileges: ['SELECT'], table, role: role.name }));
  }
}

/** After the switch, the old views; after a roll-back, the new ones (each before the shard copy it reads is dropped). */
export async function dropNodeViews(data: (node: string) => pg.Client, h: Hypertable, views: readonly NodeView[]): Promise<void> {
  for (const v of views) for (const s of dropNodeView(h, v)) await data(v.dataNode).query(s.sql);
}
