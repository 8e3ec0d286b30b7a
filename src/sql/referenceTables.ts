/**
 * Reference tables: on the access node the authoritative table, one foreign table per FDW server
 * reading the data node's copy, and the sync trigger function with its four statement triggers; on
 * every data node the copy, under the same name, that the service role may read and write.
 */
import { hypertableParts, INTERNAL_SCHEMA, type ClusterLayout, type QualifiedName, type ReferenceCopy, type ReferenceTable } from '../plan/layout.js';
import type { Privilege } from '../spec/schema.js';
import { SERVICE_PRIVILEGES } from './dataNode.js';
import type { NodeRole } from './generate.js';
import type { Statement, Step } from './statement.js';
import { render } from './templates.js';

/** Statement triggers on the access node's table, one per event (transition tables allow one event each). */
export const SYNC_TRIGGERS = [
  { name: 'hypershard_sync_insert', event: 'INSERT' },
  { name: 'hypershard_sync_update', event: 'UPDATE' },
  { name: 'hypershard_sync_delete', event: 'DELETE' },
  { name: 'hypershard_sync_truncate', event: 'TRUNCATE' },
] as const;

const label = (r: ReferenceTable): string => `${r.table.schema}.${r.table.name}`;

/** The access node's part of one reference table: table, copies, sync function and triggers. */
export function accessReferenceTable(r: ReferenceTable): Step {
  const name = label(r);
  return {
    up: [
      { what: `reference table ${name}`, sql: render('common/create-reference-table', r) },
      ...r.copies.map((copy) => referenceCopyStatement(r, copy)),
      syncFunctionStatement(r),
      ...SYNC_TRIGGERS.map((trigger) => ({
        what: `sync trigger ${trigger.name} on ${name}`,
        sql: render('access/create-sync-trigger', { ...trigger, table: r.table, function: r.syncFunction }),
      })),
    ],
    down: [
      // Dropping the table drops its triggers.
      { what: `reference table ${name}`, sql: render('common/drop-table', { table: r.table }) },
      { what: `sync function of ${name}`, sql: render('access/drop-function', { function: r.syncFunction }) },
      ...[...r.copies].reverse().map((copy) => dropCopyStatement(r, copy)),
    ],
  };
}

/** The data node's copy: the same table, with the privileges postgres_fdw needs for the service role. */
export function dataReferenceTable(r: ReferenceTable, serviceRole: string): Step {
  const name = label(r);
  return {
    up: [
      { what: `copy of reference table ${name}`, sql: render('common/create-reference-table', r) },
      { what: `privileges of ${serviceRole} on ${name}`, sql: render('common/grant-table', { privileges: SERVICE_PRIVILEGES, table: r.table, role: serviceRole }) },
    ],
    down: [{ what: `copy of reference table ${name}`, sql: render('common/drop-table', { table: r.table }) }],
  };
}

/**
 * USAGE for the service role on the schemas of the data nodes' copies (shards live in
 * `_hypershard`, which it has anyway), each granted once and revoked once.
 */
export function copySchemasUsage(schemas: readonly string[], serviceRole: string): Step {
  const usage = [...new Set(schemas)].map((schema) => ({ what: `usage on schema ${schema} for ${serviceRole}`, schema, role: serviceRole }));
  return {
    up: usage.map((u) => ({ what: u.what, sql: render('common/grant-schema-usage', u) })),
    down: [...usage].reverse().map((u) => ({ what: u.what, sql: render('common/revoke-schema-usage', u) })),
  };
}

export function referenceCopyStatement(r: ReferenceTable, copy: ReferenceCopy): Statement {
  return {
    what: `copy of ${label(r)} on ${copy.server} (data node ${copy.dataNode})`,
    sql: render('access/create-reference-copy', { copy, table: r.table, columns: r.columns }),
  };
}

export function dropCopyStatement(r: ReferenceTable, copy: ReferenceCopy): Statement {
  return { what: `copy of ${label(r)} on ${copy.server} (data node ${copy.dataNode})`, sql: render('access/drop-foreign-table', { table: copy.table }) };
}

/** The sync function, `CREATE OR REPLACE`: evolve re-renders it when the columns or the writers change. */
export function syncFunctionStatement(r: ReferenceTable): Statement {
  const key = r.primaryKey.length === 1 ? r.columns.find((c) => c.name === r.primaryKey[0]) : undefined;
  // `= ANY (array)` needs a scalar key: an array of arrays is one multidimensional array.
  const keyArray = key !== undefined && key.type.arrayDepth === 0;
  return {
    what: `sync function of ${label(r)} (writes to ${r.copies.filter((c) => c.writer).map((c) => c.dataNode).join(', ')})`,
    sql: render('access/create-sync-function', {
      function: r.syncFunction,
      columns: r.columns.map((c) => c.name),
      primaryKey: r.primaryKey,
      keyArray,
      ...(keyArray ? { key: key.name, keyType: key.type } : {}),
      writers: r.copies.filter((c) => c.writer).map((c) => c.table),
    }),
  };
}

export interface TableGrant {
  readonly table: QualifiedName;
  readonly role: string;
  readonly privileges: readonly Privilege[];
}

export interface SchemaUsage {
  readonly schema: string;
  readonly role: string;
}

/**
 * The grants declared roles get on objects the spec does not name but their grants imply. On the
 * access node: their declared privileges on each reference table (granted by `grantTables` with
 * the hypertables' grants), and for a role that may SELECT a hypertable or reference table,
 * SELECT on its shards' foreign tables or copies in `_hypershard`, which a rewritten query reads
 * directly. On a data node: SELECT on a reference table's copy for such a role. Copies and shards
 * are never writable by roles: writes go through the access node's parents.
 */
export function derivedRoleGrants(layout: ClusterLayout, role: NodeRole): { tables: TableGrant[]; schemas: SchemaUsage[] } {
  const tables: TableGrant[] = [];
  const schemas = new Map<string, SchemaUsage>();
  const usage = (schema: string, name: string): void => {
    schemas.set(`${schema}\u0000${name}`, { schema, role: name });
  };
  for (const declared of layout.roles) {
    for (const grant of declared.grants) {
      const h = layout.hypertables.find((t) => t.table === grant.table);
      if (h !== undefined && role === 'access' && grant.privileges.includes('SELECT')) {
        for (const table of hypertableParts(h)) tables.push({ table, role: declared.name, privileges: ['SELECT'] });
        usage(INTERNAL_SCHEMA, declared.name);
      }
      const r = layout.referenceTables.find((t) => t.table === grant.table);
      if (r === undefined) continue;
      if (role === 'access') {
        tables.push({ table: r.table, role: declared.name, privileges: grant.privileges });
        usage(r.table.schema, declared.name);
      }
      if (!grant.privileges.includes('SELECT')) continue;
      if (role === 'access') {
        for (const copy of r.copies) tables.push({ table: copy.table, role: declared.name, privileges: ['SELECT'] });
        usage(INTERNAL_SCHEMA, declared.name);
      } else {
        tables.push({ table: r.table, role: declared.name, privileges: ['SELECT'] });
        usage(r.table.schema, declared.name);
      }
    }
  }
  return { tables, schemas: [...schemas.values()] };
}

/** The grants of `derivedRoleGrants` that `grantTables` does not make: those in `_hypershard` (and, on data nodes, on copies). */
export function referenceGrantsStep(layout: ClusterLayout, role: NodeRole): Step {
  const all = derivedRoleGrants(layout, role);
  const tables = role === 'access' ? all.tables.filter((g) => g.table.schema === INTERNAL_SCHEMA) : all.tables;
  const schemas = role === 'access' ? all.schemas.filter((s) => s.schema === INTERNAL_SCHEMA) : all.schemas;
  return grantsStep(tables, schemas);
}

/** GRANTs (schemas first) and the REVOKEs that undo them. */
export function grantsStep(tables: readonly TableGrant[], schemas: readonly SchemaUsage[]): Step {
  const on = (t: QualifiedName): string => `${t.schema}.${t.name}`;
  return {
    up: [
      ...schemas.map((s) => ({ what: `usage on schema ${s.schema} for ${s.role}`, sql: render('common/grant-schema-usage', s) })),
      ...tables.map((g) => ({ what: `grant on ${on(g.table)} to ${g.role}`, sql: render('common/grant-table', g) })),
    ],
    down: [
      ...[...tables].reverse().map((g) => ({ what: `grant on ${on(g.table)} to ${g.role}`, sql: render('common/revoke-table', g) })),
      ...[...schemas].reverse().map((s) => ({ what: `usage on schema ${s.schema} for ${s.role}`, sql: render('common/revoke-schema-usage', s) })),
    ],
  };
}
