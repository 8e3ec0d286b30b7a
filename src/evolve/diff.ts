/**
 * What it takes to go from one layout to the next: per node, reversible steps built from the
 * same templates as the initial migration. Access-node foreign tables and data-node shard tables
 * change together (data nodes apply first). Changes that would lose data are only made when the
 * caller allows them; changes hypershard cannot make in place (resharding, a new space or time
 * column, moving shards) are refused with what to do instead.
 */
import { hypertableParts, nodeViewRelations, type ClusterLayout, type FdwServer, type Hypertable, type QualifiedName, type Role } from '../plan/layout.js';
import { accessHypertable, serverStep } from '../sql/accessNode.js';
import { dataHypertable, dataNodeSteps, replicationRoleStep } from '../sql/dataNode.js';
import { accessLastpointStep, dataLastpointStep, lastpointShards } from '../sql/lastpoint.js';
import { accessNodeViewStep, dataNodeViewStep, nodeViews } from '../sql/nodeViews.js';
import { createRoles } from '../sql/roles.js';
import { timescaleFunctionsStep } from '../sql/timescaledb.js';
import type { Statement, Step } from '../sql/statement.js';
import { render } from '../sql/templates.js';
import { diffColumns } from './columns.js';
import { one, Plan, reversed, tableName } from './plan.js';
import { diffReferenceTables, objectKey, roleGrantsOn } from './referenceTables.js';
import { diffSchemaUsage } from './schemaUsage.js';

export interface Evolution {
  /** Steps per node name, in the order they must run on that node. */
  readonly steps: ReadonlyMap<string, readonly Step[]>;
  /** One line per change, for people and for the migration's name. */
  readonly changes: readonly string[];
  /** Short kinds of change, for the migration's file name. */
  readonly kinds: readonly string[];
  /** Changes that drop data or objects; made only with allowDestructive. */
  readonly destructive: readonly string[];
  /** Changes hypershard will not make, with what to do instead. */
  readonly refused: readonly string[];
}

const holders = (h: Hypertable): string[] => [...new Set(h.shards.map((s) => s.dataNode))].sort();

export function evolve(before: ClusterLayout, after: ClusterLayout): Evolution {
  const plan = new Plan();
  if (before.serviceRole !== after.serviceRole) {
    plan.refused.push(`fdw.serviceRole.name changed from ${before.serviceRole} to ${after.serviceRole}; create the new role by hand and switch the user mappings, or keep the name`);
  }
  if (before.accessNode !== after.accessNode) plan.refused.push(`the access node was renamed from ${before.accessNode} to ${after.accessNode}; rename it back (node names identify migration folders)`);
  for (const node of before.dataNodes.filter((n) => !after.dataNodes.includes(n))) {
    if (before.hypertables.some((h) => h.shards.some((s) => s.dataNode === node))) {
      plan.refused.push(`data node ${node} was removed from the spec while it holds shards; move them first (hypershard node drain --name ${node}), then remove it`);
    } else {
      // Nothing lives there: its FDW servers are dropped below; the node itself is left as it is.
      plan.change('remove_data_node', `data node ${node} removed`);
    }
  }

  // New data nodes get the base every data node has (schema, service role, roles).
  for (const node of after.dataNodes.filter((n) => !before.dataNodes.includes(n))) {
    plan.change('add_data_node', `data node ${node} added`);
    for (const step of dataNodeSteps({ ...after, hypertables: [] }, node)) plan.add(node, step);
  }
  const existingNodes = after.dataNodes.filter((n) => before.dataNodes.includes(n));

  if (before.replicationRole !== after.replicationRole) {
    if (before.replicationRole !== undefined) {
      plan.change('drop_replication_role', `replication role ${before.replicationRole} dropped`, true);
      for (const node of existingNodes) plan.add(node, reversed(replicationRoleStep(before.replicationRole)));
    }
    if (after.replicationRole !== undefined) {
      plan.change('add_replication_role', `replication role ${after.replicationRole} added`);
      for (const node of existingNodes) plan.add(node, replicationRoleStep(after.replicationRole));
    }
  }
  diffRoles(plan, before.roles, after.roles, [after.accessNode, ...existingNodes]);
  diffServers(plan, before.servers, after.servers, after.accessNode, after.serviceRole, 'add');

  const beforeTables = new Map(before.hypertables.map((h) => [h.table.name, h]));
  const afterTables = new Map(after.hypertables.map((h) => [h.table.name, h]));
  for (const [name, old] of beforeTables) {
    if (!afterTables.has(name)) {
      plan.change('drop_hypertable', `hypertable ${tableName(old.table)} dropped, with all its rows on every data node`, true);
      plan.add(after.accessNode, reversed(accessHypertable(old)));
      for (const node of holders(old)) plan.add(node, reversed(dataHypertable(old, node, before.serviceRole)));
    }
  }
  for (const [name, next] of afterTables) {
    const old = beforeTables.get(name);
    if (old === undefined) {
      plan.change('add_hypertable', `hypertable ${tableName(next.table)} added`);
      for (const node of holders(next)) plan.add(node, dataHypertable(next, node, after.serviceRole));
      plan.add(after.accessNode, accessHypertable(next));
      plan.add(after.accessNode, roleGrantsOn(after, 'access', new Set(hypertableParts(next).map(objectKey))));
    } else {
      diffHypertable(plan, old, next, after);
    }
  }

  diffReferenceTables(plan, before, after);
  diffGrants(plan, before, after);
  diffSchemaUsage(plan, before, after);
  diffServers(plan, before.servers, after.servers, after.accessNode, after.serviceRole, 'drop');
  diffTimescaleFunctions(plan, before, after);
  dropRoles(plan, before.roles, after.roles, [after.accessNode, ...existingNodes]);
  return { steps: plan.steps, changes: plan.changes, kinds: [...plan.kinds], destructive: plan.destructive, refused: plan.refused };
}

/** TimescaleDB's functions on the access node: created, dropped, or moved to another schema. */
function diffTimescaleFunctions(plan: Plan, before: ClusterLayout, after: ClusterLayout): void {
  const was = before.timescaledb;
  const is = after.timescaledb;
  if (JSON.stringify(was) === JSON.stringify(is)) return;
  if (was !== undefined) {
    plan.change('timescaledb_functions', is === undefined ? `TimescaleDB functions dropped from schema ${was.schema}` : `TimescaleDB functions moved from schema ${was.schema} to ${is.schema}`);
    plan.add(after.accessNode, reversed(timescaleFunctionsStep(was)));
  }
  if (is !== undefined) {
    if (was === undefined) plan.change('timescaledb_functions', `TimescaleDB functions (time_bucket, first, last) added in schema ${is.schema}`);
    plan.add(after.accessNode, timescaleFunctionsStep(is));
  }
}

function diffHypertable(plan: Plan, old: Hypertable, next: Hypertable, after: ClusterLayout): void {
  const accessNode = after.accessNode;
  const label = tableName(next.table);
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  if (old.table.schema !== next.table.schema) plan.refused.push(`hypertable ${old.table.name} moved from schema ${old.table.schema} to ${next.table.schema}; moving is not supported`);
  if (old.spaceColumn !== next.spaceColumn || old.timeColumn !== next.timeColumn) {
    plan.refused.push(`hypertable ${label}: the space or time column changed; that needs a new hypertable and a copy of the data`);
  }
  if (old.shards.length !== next.shards.length) {
    const [was, now] = [old.shards.length, next.shards.length];
    plan.refused.push(
      `hypertable ${label}: shards changed from ${was} to ${now}; a hypertable keeps its shard count (every row's shard is its hash modulo the count), so set it back to ${was}. ` +
        `To spread it over more data nodes, add them (hypershard node add) and run hypershard rebalance: each of the ${was} shards can live on any node. ` +
        `To have ${now} shards, declare a new hypertable with shards: ${now}, copy the rows into it (INSERT INTO new SELECT * FROM ${old.table.name}) and drop the old one (generate --allow-destructive)`,
    );
  }
  else if (!same(old.shards.map((s) => [s.dataNode, s.server]), next.shards.map((s) => [s.dataNode, s.server]))) {
    plan.refused.push(`hypertable ${label}: the spec moves shards to other data nodes; keep them where they are (pin hypertables[].dataNodes to the current nodes, leave placement as rebalance wrote it) and move shards with hypershard rebalance`);
  }
  if (old.chunkInterval.seconds !== next.chunkInterval.seconds) plan.refused.push(`hypertable ${label}: chunkInterval changed; existing chunks keep their width, so set it back`);

  const nodes = holders(next);
  // Lastpoint views and node views name their columns and block dropping or retyping them:
  // dropped before any column change and made again after it (and made or dropped when the option
  // changes). Node views first: a node's lastpoint view reads its shards' lastpoint views.
  const columnsOf = (h: Hypertable): string => JSON.stringify(h.columns.map((c) => [c.name, c.type.sql, c.notNull]));
  const remake = columnsOf(old) !== columnsOf(next);
  // (Node views' names follow the shard sets, which only rebalance changes.)
  const hadNodeViews = nodeViews(old).length > 0;
  const hasNodeViews = nodeViews(next).length > 0;
  const viewsMoved = JSON.stringify(old.nodeViews ?? []) !== JSON.stringify(next.nodeViews ?? []);
  if (hadNodeViews && (remake || viewsMoved)) {
    if (!hasNodeViews) plan.change('drop_node_views', `node views of ${label} dropped`);
    plan.add(accessNode, reversed(accessNodeViewStep(old)));
    for (const node of holders(old)) plan.add(node, reversed(dataNodeViewStep(old, node, after.serviceRole)));
  }
  const hadLastpoint = lastpointShards(old).length > 0;
  const hasLastpoint = lastpointShards(next).length > 0;
  if (hadLastpoint && (remake || !hasLastpoint)) {
    if (!hasLastpoint) plan.change('drop_lastpoint', `lastpoint views of ${label} dropped`);
    plan.add(accessNode, reversed(accessLastpointStep(old)));
    for (const node of nodes) plan.add(node, reversed(dataLastpointStep(old, node, after.serviceRole)));
  }
  diffColumns(
    plan,
    'hypertable',
    old,
    next,
    (change) => {
      // Data nodes first (apply order), so the access node never names a column a shard lacks.
      for (const node of nodes) plan.add(node, change(next.table));
      plan.add(accessNode, change(next.table));
    },
    (using, plain) => {
      for (const node of nodes) plan.add(node, using(next.table));
      // The access node's parent holds no rows; its foreign partitions reject USING.
      plan.add(accessNode, plain(next.table));
    },
  );

  // Indexes live on the data nodes' local parents.
  const oldIndexes = new Map(old.indexes.map((i) => [i.name, i]));
  const newIndexes = new Map(next.indexes.map((i) => [i.name, i]));
  for (const [name, index] of oldIndexes) {
    const replacement = newIndexes.get(name);
    if (replacement !== undefined && same(index, replacement)) continue;
    plan.change('drop_index', `index ${name} on ${label} dropped${replacement === undefined ? '' : ' (to be recreated)'}`);
    const step = reversed(one(`index ${name} on ${label}`, render('data/create-index', { index, table: next.table }), render('data/drop-index', { index: { schema: next.table.schema, name } })));
    for (const node of nodes) plan.add(node, step);
  }
  for (const [name, index] of newIndexes) {
    if (same(oldIndexes.get(name), index)) continue;
    plan.change('add_index', `index ${name} on ${label} added`);
    const step = one(`index ${name} on ${label}`, render('data/create-index', { index, table: next.table }), render('data/drop-index', { index: { schema: next.table.schema, name } }));
    for (const node of nodes) plan.add(node, step);
  }

  if (hasLastpoint && (remake || !hadLastpoint)) {
    if (!hadLastpoint) plan.change('add_lastpoint', `lastpoint views of ${label} added`);
    for (const node of nodes) plan.add(node, dataLastpointStep(next, node, after.serviceRole));
    plan.add(accessNode, accessLastpointStep(next));
    plan.add(accessNode, roleGrantsOn(after, 'access', new Set(lastpointShards(next).map((s) => objectKey(s.lastpoint)))));
  }
  if (hasNodeViews && (remake || viewsMoved)) {
    if (!hadNodeViews) plan.change('add_node_views', `node views of ${label} added`);
    for (const node of nodes) plan.add(node, dataNodeViewStep(next, node, after.serviceRole));
    plan.add(accessNode, accessNodeViewStep(next));
    plan.add(accessNode, roleGrantsOn(after, 'access', new Set(nodeViews(next).flatMap(nodeViewRelations).map(objectKey))));
  }
}

function diffRoles(plan: Plan, before: readonly Role[], after: readonly Role[], nodes: readonly string[]): void {
  const old = new Map(before.map((r) => [r.name, r]));
  const changed = after.filter((r) => {
    const previous = old.get(r.name);
    return previous === undefined || previous.login !== r.login || previous.inherit !== r.inherit || previous.connectionLimit !== r.connectionLimit || previous.memberOf.join() !== r.memberOf.join();
  });
  if (changed.length === 0) return;
  for (const role of changed) plan.change('roles', `role ${role.name} ${old.has(role.name) ? 'changed' : 'added'}`);
  // create-role is idempotent and sets every attribute; memberships are re-granted (GRANT is too).
  const step: Step = {
    up: createRoles(changed).up,
    down: [
      ...changed.filter((r) => old.has(r.name)).flatMap((r) => createRoles([old.get(r.name) as Role]).up),
      ...createRoles(changed.filter((r) => !old.has(r.name))).down,
    ],
  };
  const revokedMemberships = changed.flatMap((r) => (old.get(r.name)?.memberOf ?? []).filter((p) => !r.memberOf.includes(p)).map((parent) => ({ parent, member: r.name })));
  const revoke: Statement[] = revokedMemberships.map((m) => ({ what: `membership ${m.member} in ${m.parent}`, sql: render('common/revoke-role', m) }));
  for (const node of nodes) plan.add(node, { up: [...step.up, ...revoke], down: step.down });
}

function dropRoles(plan: Plan, before: readonly Role[], after: readonly Role[], nodes: readonly string[]): void {
  const gone = before.filter((r) => !after.some((a) => a.name === r.name));
  if (gone.length === 0) return;
  for (const role of gone) plan.change('drop_roles', `role ${role.name} dropped`);
  const step = reversed(createRoles(gone));
  for (const node of nodes) plan.add(node, step);
}

function diffGrants(plan: Plan, before: ClusterLayout, after: ClusterLayout): void {
  const key = (role: string, t: QualifiedName): string => `${role}\u0000${t.schema}\u0000${t.name}`;
  // Grants on reference tables reach their copies too; diffReferenceTables handles them.
  const grants = (layout: ClusterLayout): Map<string, { role: string; table: QualifiedName; privileges: readonly string[] }> =>
    new Map(
      layout.roles.flatMap((r) =>
        r.grants.filter((g) => layout.hypertables.some((h) => h.table === g.table)).map((g) => [key(r.name, g.table), { role: r.name, table: g.table, privileges: g.privileges }] as const),
      ),
    );
  const old = grants(before);
  const next = grants(after);
  const removedTables = new Set(before.hypertables.filter((h) => !after.hypertables.some((a) => a.table.name === h.table.name)).map((h) => h.table.name));
  const addedTables = new Set(after.hypertables.filter((h) => !before.hypertables.some((b) => b.table.name === h.table.name)).map((h) => h.table.name));
  const nodesOf = (layout: ClusterLayout, table: QualifiedName): string[] => {
    const h = layout.hypertables.find((x) => x.table.name === table.name);
    return h === undefined ? [] : [...holders(h), layout.accessNode];
  };
  for (const k of new Set([...old.keys(), ...next.keys()])) {
    const a = old.get(k);
    const b = next.get(k);
    const table = (b ?? a)?.table as QualifiedName;
    const role = (b ?? a)?.role as string;
    // A dropped table takes its grants along; a new one still needs them granted.
    if (removedTables.has(table.name) && b === undefined) continue;
    const had = addedTables.has(table.name) ? [] : (a?.privileges ?? []);
    const has = b?.privileges ?? [];
    const granted = has.filter((p) => !had.includes(p));
    const revoked = had.filter((p) => !has.includes(p));
    if (granted.length === 0 && revoked.length === 0) continue;
    plan.change('grants', `grants of ${role} on ${tableName(table)}: ${[...granted.map((p) => `+${p}`), ...revoked.map((p) => `-${p}`)].join(' ')}`);
    const up: Statement[] = [];
    const down: Statement[] = [];
    if (granted.length > 0) {
      up.push({ what: `grant on ${tableName(table)} to ${role}`, sql: render('common/grant-table', { privileges: granted, table, role }) });
      down.push({ what: `grant on ${tableName(table)} to ${role}`, sql: render('common/revoke-table', { privileges: granted, table, role }) });
    }
    if (revoked.length > 0) {
      up.push({ what: `revoke on ${tableName(table)} from ${role}`, sql: render('common/revoke-table', { privileges: revoked, table, role }) });
      down.push({ what: `revoke on ${tableName(table)} from ${role}`, sql: render('common/grant-table', { privileges: revoked, table, role }) });
    }
    if (b !== undefined && !(a !== undefined && !addedTables.has(table.name)) && table.schema !== 'public') {
      up.unshift({ what: `usage on schema ${table.schema} for ${role}`, sql: render('common/grant-schema-usage', { schema: table.schema, role }) });
    }
    for (const node of nodesOf(b === undefined ? before : after, table)) plan.add(node, { up, down: [...down].reverse() });
  }
}

/** Servers are added before tables need them and dropped after the tables that used them. */
function diffServers(plan: Plan, before: readonly FdwServer[], after: readonly FdwServer[], accessNode: string, serviceRole: string, phase: 'add' | 'drop'): void {
  const old = new Map(before.map((s) => [s.name, s]));
  const next = new Map(after.map((s) => [s.name, s]));
  if (phase === 'drop') {
    for (const [name, server] of old) {
      if (next.has(name)) continue;
      plan.change('drop_server', `FDW server ${name} dropped`);
      plan.add(accessNode, reversed(serverStep(server, serviceRole)));
    }
    return;
  }
  for (const [name, server] of next) {
    const previous = old.get(name);
    if (previous === undefined) {
      plan.change('add_server', `FDW server ${name} added`);
      plan.add(accessNode, serverStep(server, serviceRole));
      continue;
    }
    const was = new Map(previous.options);
    const now = new Map(server.options);
    const changes = [
      ...server.options.filter(([k, v]) => was.get(k) !== v).map(([key, value]) => ({ action: was.has(key) ? 'SET' : 'ADD', key, value })),
      ...previous.options.filter(([k]) => !now.has(k)).map(([key]) => ({ action: 'DROP', key, value: false as const })),
    ];
    if (changes.length === 0) continue;
    const undo = [
      ...previous.options.filter(([k, v]) => now.get(k) !== v).map(([key, value]) => ({ action: now.has(key) ? 'SET' : 'ADD', key, value })),
      ...server.options.filter(([k]) => !was.has(k)).map(([key]) => ({ action: 'DROP', key, value: false as const })),
    ];
    plan.change('server_options', `FDW server ${name}: ${changes.map((c) => `${c.action} ${c.key}`).join(', ')}`);
    plan.add(accessNode, one(`options of server ${name}`, render('access/alter-server-options', { name, changes }), render('access/alter-server-options', { name, changes: undo })));
  }
}
