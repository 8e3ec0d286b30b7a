/**
 * Privileges granted directly to the declared roles and the service role: on hypertables and
 * reference tables as the spec grants them (and SELECT on a reference table's copies with SELECT
 * on it), on shard tables and data nodes' copies exactly what postgres_fdw needs for the service
 * role, and nothing else on the tables and schemas hypershard manages. Missing and extra are both
 * reported.
 */
import { INTERNAL_SCHEMA, nodeViewRelations, type ClusterLayout, type QualifiedName } from '../../plan/layout.js';
import { SERVICE_PRIVILEGES } from '../../sql/dataNode.js';
import { lastpointShards } from '../../sql/lastpoint.js';
import { nodeViews } from '../../sql/nodeViews.js';
import { derivedRoleGrants } from '../../sql/referenceTables.js';
import type { NodeRole } from '../../sql/generate.js';
import type { CatalogSchemaGrant, CatalogTableGrant } from '../catalog/privileges.js';
import { displayName, finding, nameKey, type Finding } from '../model.js';
import { hypertablesOn } from './parents.js';

interface Expected<T> {
  readonly on: T;
  readonly role: string;
  readonly privileges: readonly string[];
}

/** Roles whose privileges a node's check covers; on the access node the service role is only a name in user mappings. */
function rolesOf(layout: ClusterLayout, role: NodeRole): string[] {
  return [...layout.roles.map((r) => r.name), ...(role === 'data' ? [layout.serviceRole] : [])];
}

export function expectedTableGrants(layout: ClusterLayout, node: string, role: NodeRole): Expected<QualifiedName>[] {
  const held = hypertablesOn(layout, node, role);
  const tables = [
    ...held.map((h) => h.table),
    ...held.flatMap((h) => h.shards.filter((s) => role === 'access' || s.dataNode === node).map((s) => s.table)),
    ...held.flatMap((h) => lastpointShards(h, role === 'access' ? undefined : node).map((s) => s.lastpoint)),
    ...held.flatMap((h) => nodeViews(h, role === 'access' ? undefined : node).flatMap(nodeViewRelations)),
    ...layout.referenceTables.flatMap((r) => [r.table, ...(role === 'access' ? r.copies.map((c) => c.table) : [])]),
  ];
  const grants = new Map<string, Expected<QualifiedName>>();
  for (const table of tables) for (const r of rolesOf(layout, role)) grants.set(`${nameKey(table)}\u0000${r}`, { on: table, role: r, privileges: [] });
  for (const r of layout.roles) {
    for (const g of r.grants.filter((x) => held.some((h) => h.table === x.table))) {
      grants.set(`${nameKey(g.table)}\u0000${r.name}`, { on: g.table, role: r.name, privileges: g.privileges });
    }
  }
  for (const g of derivedRoleGrants(layout, role).tables) grants.set(`${nameKey(g.table)}\u0000${g.role}`, { on: g.table, role: g.role, privileges: g.privileges });
  if (role === 'data') {
    for (const table of [...held.flatMap((h) => h.shards.filter((s) => s.dataNode === node).map((s) => s.table)), ...layout.referenceTables.map((r) => r.table)]) {
      grants.set(`${nameKey(table)}\u0000${layout.serviceRole}`, { on: table, role: layout.serviceRole, privileges: SERVICE_PRIVILEGES });
    }
    for (const shard of held.flatMap((h) => lastpointShards(h, node))) {
      grants.set(`${nameKey(shard.lastpoint)}\u0000${layout.serviceRole}`, { on: shard.lastpoint, role: layout.serviceRole, privileges: ['SELECT'] });
    }
    for (const view of held.flatMap((h) => nodeViews(h, node).flatMap(nodeViewRelations))) {
      grants.set(`${nameKey(view)}\u0000${layout.serviceRole}`, { on: view, role: layout.serviceRole, privileges: ['SELECT'] });
    }
  }
  return [...grants.values()];
}

export function expectedSchemaGrants(layout: ClusterLayout, node: string, role: NodeRole): Expected<string>[] {
  const held = hypertablesOn(layout, node, role);
  const schemas = [...new Set([INTERNAL_SCHEMA, ...held.map((h) => h.table.schema), ...layout.referenceTables.map((r) => r.table.schema)])];
  const usage = new Set<string>();
  if (role === 'data') {
    usage.add(`${INTERNAL_SCHEMA}\u0000${layout.serviceRole}`);
    for (const r of layout.referenceTables) usage.add(`${r.table.schema}\u0000${layout.serviceRole}`);
  }
  for (const u of derivedRoleGrants(layout, role).schemas) usage.add(`${u.schema}\u0000${u.role}`);
  for (const r of layout.roles) for (const g of r.grants.filter((x) => held.some((h) => h.table === x.table))) usage.add(`${g.table.schema}\u0000${r.name}`);
  return schemas.flatMap((schema) => rolesOf(layout, role).map((r) => ({ on: schema, role: r, privileges: usage.has(`${schema}\u0000${r}`) ? ['USAGE'] : [] })));
}

function diff(object: string, what: string, expected: readonly string[], actual: readonly string[]): Finding[] {
  const missing = expected.filter((p) => !actual.includes(p));
  const extra = actual.filter((p) => !expected.includes(p)).sort();
  return [
    ...(missing.length === 0 ? [] : [finding('missing', object, `${what}: ${missing.join(', ')} not granted`, { expected: expected.join(', '), actual: actual.join(', ') || 'none' })]),
    ...(extra.length === 0 ? [] : [finding('extra', object, `${what}: ${extra.join(', ')} granted, the spec does not grant it`, { expected: expected.join(', ') || 'none', actual: actual.join(', ') })]),
  ];
}

/** `existing`: nameKeys of tables present on the node; grants on an absent table are not compared. */
export function compareTableGrants(layout: ClusterLayout, node: string, role: NodeRole, existing: ReadonlySet<string>, actual: readonly CatalogTableGrant[]): Finding[] {
  return expectedTableGrants(layout, node, role)
    .filter((e) => existing.has(nameKey(e.on)))
    .flatMap((e) => {
      const have = actual.filter((a) => a.role === e.role && nameKey(a.table) === nameKey(e.on)).map((a) => a.privilege);
      return diff(`privileges of ${e.role} on ${displayName(e.on)}`, `${e.role} on ${displayName(e.on)}`, e.privileges, have);
    });
}

/** `existingSchemas`: schemas present on the node. */
export function compareSchemaGrants(layout: ClusterLayout, node: string, role: NodeRole, existingSchemas: ReadonlySet<string>, actual: readonly CatalogSchemaGrant[]): Finding[] {
  return expectedSchemaGrants(layout, node, role)
    .filter((e) => existingSchemas.has(e.on))
    .flatMap((e) => {
      const have = actual.filter((a) => a.role === e.role && a.schema === e.on).map((a) => a.privilege);
      return diff(`privileges of ${e.role} on schema ${e.on}`, `${e.role} on schema ${e.on}`, e.privileges, have);
    });
}
