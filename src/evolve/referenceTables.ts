/**
 * Reference tables from one layout to the next: tables added or dropped on every node, their
 * columns changed on the access node's table, its copies and every data node's copy alike, and
 * the copies on the access node following the FDW servers. The sync function is re-created
 * whenever what it writes changes (columns, the data nodes it writes to).
 *
 * A data node that joins gets empty copies: a migration cannot fill them, since the access node
 * reaches the new node only once `apply` has set the service role's password in the new server's
 * user mapping (after the migrations), and a rehearsal cannot reach a table the node's own
 * rehearsal rolled back. `addDataNode` fills them right after apply (`syncReferenceTables` for
 * the node); until then the sync function already writes every change to them.
 */
import { hypertableParts, type ClusterLayout, type QualifiedName, type ReferenceTable } from '../plan/layout.js';
import {
  accessReferenceTable,
  copySchemasUsage,
  dataReferenceTable,
  dropCopyStatement,
  grantsStep,
  referenceCopyStatement,
  derivedRoleGrants,
  syncFunctionStatement,
  type TableGrant,
} from '../sql/referenceTables.js';
import type { NodeRole } from '../sql/generate.js';
import { schemasStep } from '../sql/schemas.js';
import type { Statement, Step } from '../sql/statement.js';
import { render } from '../sql/templates.js';
import { diffColumns } from './columns.js';
import { reversed, tableName, type Plan } from './plan.js';

/** How derived objects are named in the sets `roleGrantsOn` takes. */
export const objectKey = (t: QualifiedName): string => `${t.schema}\u0000${t.name}`;
const key = objectKey;

export function diffReferenceTables(plan: Plan, before: ClusterLayout, after: ClusterLayout): void {
  const access = after.accessNode;
  // Data nodes added in this step get every reference table with their base (dataNodeSteps).
  const dataNodes = after.dataNodes.filter((n) => before.dataNodes.includes(n));
  const old = new Map(before.referenceTables.map((r) => [r.table.name, r]));
  const next = new Map(after.referenceTables.map((r) => [r.table.name, r]));
  const service = after.serviceRole;

  for (const [name, r] of old) {
    if (next.has(name)) continue;
    plan.change('drop_reference_table', `reference table ${tableName(r.table)} dropped, with its rows on the access node and every data node`, true);
    plan.add(access, reversed(accessReferenceTable(r)));
    for (const node of dataNodes) plan.add(node, reversed(dataReferenceTable(r, service)));
  }
  const schemasBefore = new Set(before.referenceTables.map((r) => r.table.schema));
  const schemasAfter = new Set(after.referenceTables.map((r) => r.table.schema));
  const gone = [...schemasBefore].filter((s) => !schemasAfter.has(s));
  for (const node of dataNodes) plan.add(node, reversed(copySchemasUsage(gone, service)));

  const added = after.referenceTables.filter((r) => !old.has(r.table.name));
  if (added.length > 0) {
    // Schemas are created when missing and left in place on the way back: other tables may use them.
    const schemas: Step = { up: schemasStep(added).up, down: [] };
    const usage = copySchemasUsage(added.map((r) => r.table.schema).filter((s) => !schemasBefore.has(s)), service);
    for (const node of dataNodes) plan.add(node, { up: [...schemas.up, ...usage.up], down: usage.down });
    plan.add(access, schemas);
  }
  for (const r of added) {
    plan.change('add_reference_table', `reference table ${tableName(r.table)} added`);
    const objects = new Set([key(r.table), ...r.copies.map((c) => key(c.table))]);
    for (const node of dataNodes) plan.add(node, dataReferenceTable(r, service));
    for (const node of dataNodes) plan.add(node, roleGrantsOn(after, 'data', objects));
    plan.add(access, accessReferenceTable(r));
    plan.add(access, roleGrantsOn(after, 'access', objects));
  }

  for (const [name, r] of next) {
    const previous = old.get(name);
    if (previous !== undefined) diffReferenceTable(plan, previous, r, after, dataNodes);
  }
  diffRoleGrants(plan, before, after, dataNodes);
}

function diffReferenceTable(plan: Plan, old: ReferenceTable, next: ReferenceTable, after: ClusterLayout, dataNodes: readonly string[]): void {
  const label = tableName(next.table);
  const access = after.accessNode;
  if (old.table.schema !== next.table.schema) {
    plan.refused.push(`reference table ${old.table.name} moved from schema ${old.table.schema} to ${next.table.schema}; moving is not supported`);
    return;
  }
  const renamed = new Map(next.columns.filter((c) => c.renamedFrom !== undefined && !old.columns.some((o) => o.name === c.name)).map((c) => [c.renamedFrom as string, c.name]));
  if (old.primaryKey.map((c) => renamed.get(c) ?? c).join('\u0000') !== next.primaryKey.join('\u0000')) {
    plan.refused.push(`reference table ${label}: the primary key changed from (${old.primaryKey.join(', ')}) to (${next.primaryKey.join(', ')}); that needs a new reference table`);
    return;
  }
  const oldCopies = new Set(old.copies.map((c) => c.table.name));
  const newCopies = new Set(next.copies.map((c) => c.table.name));
  const kept = next.copies.filter((c) => oldCopies.has(c.table.name));

  diffColumns(
    plan,
    'reference table',
    old,
    next,
    (change) => {
      for (const node of dataNodes) plan.add(node, change(next.table));
      plan.add(access, change(next.table));
      for (const copy of kept) plan.add(access, change(copy.table));
    },
    (using, plain) => {
      for (const node of dataNodes) plan.add(node, using(next.table));
      plan.add(access, using(next.table));
      // Foreign tables hold no rows and reject USING.
      for (const copy of kept) plan.add(access, plain(copy.table));
    },
  );

  const addedCopies = next.copies.filter((c) => !oldCopies.has(c.table.name));
  const droppedCopies = old.copies.filter((c) => !newCopies.has(c.table.name));
  if (addedCopies.length > 0 || droppedCopies.length > 0) {
    const servers = [...addedCopies.map((c) => `+${c.server}`), ...droppedCopies.map((c) => `-${c.server}`)];
    plan.change('reference_copies', `copies of reference table ${label} follow the FDW servers: ${servers.join(' ')}`);
  }
  for (const copy of addedCopies) {
    const create = referenceCopyStatement(next, copy);
    plan.add(access, { up: [create], down: [dropCopyStatement(next, copy)] });
    plan.add(access, roleGrantsOn(after, 'access', new Set([key(copy.table)])));
  }
  const replaced = syncFunctionStatement(next);
  const previous = syncFunctionStatement(old);
  if (replaced.sql !== previous.sql) plan.add(access, { up: [replaced], down: [previous] });
  for (const copy of droppedCopies) plan.add(access, { up: [dropCopyStatement(old, copy)], down: [referenceCopyStatement(old, copy)] });
}

/** Grants of declared roles on the given derived objects (reference tables, copies, shards; by key), as a step. */
export function roleGrantsOn(layout: ClusterLayout, role: NodeRole, objects: ReadonlySet<string>): Step {
  const all = derivedRoleGrants(layout, role);
  const tables = all.tables.filter((g) => objects.has(key(g.table)));
  const schemas = all.schemas.filter((s) => tables.some((g) => g.table.schema === s.schema && g.role === s.role));
  return grantsStep(tables, schemas);
}

/**
 * Grants that changed on reference-table objects present before and after (a new object gets its
 * grants when it is created; a dropped one takes them along). Schema USAGE is granted where a
 * role newly needs it and, as for hypertables, never revoked: another grant may still need it.
 */
function diffRoleGrants(plan: Plan, before: ClusterLayout, after: ClusterLayout, dataNodes: readonly string[]): void {
  const objects = (layout: ClusterLayout): Set<string> =>
    new Set([...layout.referenceTables.flatMap((r) => [key(r.table), ...r.copies.map((c) => key(c.table))]), ...layout.hypertables.flatMap((h) => hypertableParts(h).map(key))]);
  const beforeObjects = objects(before);
  const both = new Set([...objects(after)].filter((k) => beforeObjects.has(k)));
  for (const role of ['data', 'access'] as const) {
    const old = grantMap(derivedRoleGrants(before, role).tables, both);
    const next = grantMap(derivedRoleGrants(after, role).tables, both);
    const up: Statement[] = [];
    const down: Statement[] = [];
    const changes: string[] = [];
    for (const k of new Set([...old.keys(), ...next.keys()])) {
      const grant = (next.get(k) ?? old.get(k)) as TableGrant;
      const had = old.get(k)?.privileges ?? [];
      const has = next.get(k)?.privileges ?? [];
      const granted = has.filter((p) => !had.includes(p));
      const revoked = had.filter((p) => !has.includes(p));
      const on = tableName(grant.table);
      if (granted.length > 0) {
        up.push({ what: `grant on ${on} to ${grant.role}`, sql: render('common/grant-table', { ...grant, privileges: granted }) });
        down.push({ what: `grant on ${on} to ${grant.role}`, sql: render('common/revoke-table', { ...grant, privileges: granted }) });
      }
      if (revoked.length > 0) {
        up.push({ what: `revoke on ${on} from ${grant.role}`, sql: render('common/revoke-table', { ...grant, privileges: revoked }) });
        down.push({ what: `revoke on ${on} from ${grant.role}`, sql: render('common/grant-table', { ...grant, privileges: revoked }) });
      }
      if (granted.length + revoked.length > 0) changes.push(`grants of ${grant.role} on ${on}: ${[...granted.map((p) => `+${p}`), ...revoked.map((p) => `-${p}`)].join(' ')}`);
    }
    if (up.length === 0) continue;
    // Only the access node's changes are named: a data node's follow from them.
    if (role === 'access') for (const change of changes) plan.change('grants', change);
    const usedBefore = new Set(derivedRoleGrants(before, role).schemas.map((s) => `${s.schema}\u0000${s.role}`));
    const usage = derivedRoleGrants(after, role).schemas.filter((s) => !usedBefore.has(`${s.schema}\u0000${s.role}`));
    const step: Step = { up: [...grantsStep([], usage).up, ...up], down: [...down].reverse() };
    if (role === 'access') plan.add(after.accessNode, step);
    else for (const node of dataNodes) plan.add(node, step);
  }
}

function grantMap(grants: readonly TableGrant[], objects: ReadonlySet<string>): Map<string, TableGrant> {
  return new Map(grants.filter((g) => objects.has(key(g.table))).map((g) => [`${g.role}\u0000${key(g.table)}`, g]));
}
