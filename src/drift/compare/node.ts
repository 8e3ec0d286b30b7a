/** Every comparison for one node, in a stable order: base, tables, columns, reference tables, FDW, roles, grants, migrations, chunks. */
import type { ClusterLayout } from '../../plan/layout.js';
import type { NodeRole } from '../../sql/generate.js';
import type { NodeCatalog } from '../catalog/node.js';
import { nameKey, type Finding } from '../model.js';
import { compareBase } from './base.js';
import { compareBoundsChecks } from './boundsChecks.js';
import { compareTableColumns } from './columns.js';
import { compareDefaultChunks } from './defaultChunks.js';
import { compareWriteGuards } from './writeGuards.js';
import { compareNodeIndexes } from './indexes.js';
import { compareIngest } from './ingest.js';
import { compareLastpoint } from './lastpoint.js';
import { compareNodeViews } from './nodeViews.js';
import { compareMigrations, type MigrationState } from './migrations.js';
import { compareParents } from './parents.js';
import { comparePartitions } from './partitions.js';
import { compareReferenceTables } from './referenceTables.js';
import { compareSchemaGrants, compareTableGrants } from './privileges.js';
import { compareRoles } from './roles.js';
import { compareServers, compareUserMappings } from './servers.js';
import { compareRoleSettings, compareSettings } from './settings.js';
import { compareTimescale } from './timescaledb.js';

export function compareNode(layout: ClusterLayout, node: string, role: NodeRole, catalog: NodeCatalog, migrations: Omit<MigrationState, 'applied' | 'recorded'>): Finding[] {
  const existing = new Set(catalog.relations.map((r) => nameKey(r.table)));
  const access = role === 'access';
  return [
    ...compareBase(role, catalog.base),
    ...compareParents(layout, node, role, catalog.relations),
    ...comparePartitions(layout, node, role, catalog.relations),
    ...(access ? [] : compareBoundsChecks(layout, node, existing, catalog.checks)),
    ...(access ? [] : compareNodeIndexes(layout, node, catalog.indexes, existing)),
    ...compareTableColumns(layout, node, role, catalog.columns),
    ...compareLastpoint(layout, node, role, catalog.relations, catalog.columns),
    ...compareNodeViews(layout, node, role, catalog.relations, catalog.columns),
    ...compareReferenceTables(layout, role, catalog.relations, catalog.columns, catalog.referenceObjects),
    ...(access ? compareServers(layout, catalog.serverVersionNum, catalog.servers) : []),
    ...(access ? compareUserMappings(layout, catalog.servers, catalog.userMappings) : []),
    ...(access ? compareSettings(layout, catalog.settings) : compareRoleSettings(layout, catalog.roleSettings)),
    ...(access ? compareTimescale(layout, catalog.timescale) : []),
    ...compareRoles(layout, role, catalog.roles, catalog.memberships),
    ...compareTableGrants(layout, node, role, existing, catalog.tableGrants),
    ...compareSchemaGrants(layout, node, role, new Set(catalog.schemas), catalog.schemaGrants),
    ...compareMigrations({ ...migrations, applied: catalog.appliedMigrations, recorded: catalog.checksums }),
    ...(access ? [] : compareDefaultChunks(layout, node, existing, catalog.defaultChunks)),
    ...(access ? [] : compareWriteGuards(layout, node, existing, catalog.writeGuards)),
    ...compareIngest(role, catalog.ingest),
  ];
}
