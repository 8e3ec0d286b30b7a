/**
 * Everything `check` reads from one node, in one pass of catalog queries on a read-only session.
 * It reads by the names the layout derives (every shard name on every node, so a shard on the
 * wrong node is seen) and lists the partitions of each hypertable parent (so unknown ones are too),
 * and every foreign table reading a reference table's copy (so a copy no server needs is seen).
 */
import type pg from 'pg';
import { COMPAT_SCHEMA, INTERNAL_SCHEMA, nodeViewRelations, type ClusterLayout, type QualifiedName } from '../../plan/layout.js';
import { TIMESCALE_NAMES } from '../../sql/timescaledb.js';
import type { NodeRole } from '../../sql/generate.js';
import { appliedMigrations } from '../../nodes/history.js';
import { recordedChecksums } from '../../nodes/checksums.js';
import { readBase, type CatalogBase } from './base.js';
import { readColumns, type CatalogColumn } from './columns.js';
import { readCheckConstraints, type CatalogCheck } from './constraints.js';
import { readDefaultChunks, type CatalogDefaultChunk } from './defaultChunks.js';
import { readWriteGuards, type CatalogWriteGuards } from './writeGuards.js';
import { readIndexes, type CatalogIndex } from './indexes.js';
import { readIngest, type CatalogIngest } from './ingest.js';
import { readSchemaGrants, readSchemas, readTableGrants, type CatalogSchemaGrant, type CatalogTableGrant } from './privileges.js';
import { readReferenceObjects, type CatalogReferenceObjects } from './referenceTables.js';
import { readRelations, type CatalogRelation } from './relations.js';
import { readMemberships, readRoles, type CatalogMembership, type CatalogRole } from './roles.js';
import { NO_TIMESCALE_ROUTINES, readTimescaleRoutines, type CatalogTimescale } from './routines.js';
import { readServers, readUserMappings, type CatalogServer, type CatalogUserMapping } from './servers.js';
import { readDatabaseSettings, readRoleSettings } from './settings.js';

/** hypershard names every FDW server it creates `hypershard_<data node>_<slot>`. */
export const SERVER_PREFIX = 'hypershard_';

export interface NodeCatalog {
  readonly serverVersionNum: number;
  readonly base: CatalogBase;
  readonly relations: readonly CatalogRelation[];
  /** By nameKey. */
  readonly columns: ReadonlyMap<string, readonly CatalogColumn[]>;
  readonly checks: ReadonlyMap<string, readonly CatalogCheck[]>;
  readonly indexes: ReadonlyMap<string, readonly CatalogIndex[]>;
  readonly servers: readonly CatalogServer[];
  readonly userMappings: readonly CatalogUserMapping[];
  readonly settings: ReadonlyMap<string, string>;
  /** On a data node: the FDW service role's settings in this database. */
  readonly roleSettings: ReadonlyMap<string, string>;
  readonly roles: readonly CatalogRole[];
  readonly memberships: readonly CatalogMembership[];
  readonly tableGrants: readonly CatalogTableGrant[];
  readonly schemaGrants: readonly CatalogSchemaGrant[];
  /** Schemas that exist, among the internal one and those of the hypertables and reference tables. */
  readonly schemas: readonly string[];
  readonly defaultChunks: readonly CatalogDefaultChunk[];
  /** Data nodes: the write guard's function and the shards that have its trigger. */
  readonly writeGuards: CatalogWriteGuards;
  /** Primary keys of reference tables; on the access node also their sync triggers, functions and copies. */
  readonly referenceObjects: CatalogReferenceObjects;
  /** On the access node: TimescaleDB's functions and their helpers. */
  readonly timescale: CatalogTimescale;
  readonly appliedMigrations: readonly string[];
  readonly checksums: ReadonlyMap<string, string>;
  /** Two-phase commit for routed writes, the commit log, prepared transactions left behind. */
  readonly ingest: CatalogIngest;
}

export async function readNodeCatalog(client: pg.Client, layout: ClusterLayout, role: NodeRole, serverVersionNum: number): Promise<NodeCatalog> {
  const parents = layout.hypertables.map((h) => h.table);
  const shards = layout.hypertables.flatMap((h) => h.shards.map((s) => s.table));
  const access = role === 'access';
  const references = layout.referenceTables.map((r) => r.table);
  const copies = access ? layout.referenceTables.flatMap((r) => r.copies.map((c) => c.table)) : [];
  const lastpoints = layout.hypertables.flatMap((h) => h.shards.flatMap((s) => (s.lastpoint === undefined ? [] : [s.lastpoint])));
  const nodeViews = layout.hypertables.flatMap((h) => (h.nodeViews ?? []).flatMap(nodeViewRelations));
  const tables: QualifiedName[] = [...parents, ...shards, ...references, ...copies, ...lastpoints, ...nodeViews];
  const roleNames = [...layout.roles.map((r) => r.name), layout.serviceRole, ...(layout.replicationRole === undefined ? [] : [layout.replicationRole])];
  const schemas = [...new Set([INTERNAL_SCHEMA, ...parents.map((p) => p.schema), ...references.map((r) => r.schema)])];

  // One client, so one query at a time: sequential awaits say what actually happens.
  const base = await readBase(client, INTERNAL_SCHEMA);
  const relations = await readRelations(client, tables, parents);
  // Foreign partitions take their columns from the parent; shards are compared with theirs.
  const columns = await readColumns(client, access ? [...parents, ...references, ...copies, ...lastpoints, ...nodeViews] : tables);
  const checks = access ? new Map() : await readCheckConstraints(client, shards);
  const indexes = access ? new Map() : await readIndexes(client, parents);
  const servers = access ? await readServers(client, SERVER_PREFIX) : [];
  const userMappings = access ? await readUserMappings(client, SERVER_PREFIX) : [];
  const settings = access ? await readDatabaseSettings(client) : new Map<string, string>();
  const roleSettings = access ? new Map<string, string>() : await readRoleSettings(client, layout.serviceRole);
  const roles = await readRoles(client, roleNames);
  const memberships = await readMemberships(client, roleNames);
  const tableGrants = await readTableGrants(client, tables, roleNames);
  const schemaGrants = await readSchemaGrants(client, schemas, roleNames);
  const existingSchemas = await readSchemas(client, schemas);
  const referenceObjects = await readReferenceObjects(client, references, layout.referenceTables.map((r) => r.syncFunction), access);
  const defaultChunks = access
    ? []
    : await readDefaultChunks(client, layout.hypertables.flatMap((h) => h.shards.map((s) => ({ table: s.table, timeColumn: h.timeColumn }))));
  const writeGuards = access ? { function: false, guarded: new Set<string>() } : await readWriteGuards(client, shards);
  const timescale = access ? await readTimescaleRoutines(client, COMPAT_SCHEMA, layout.timescaledb?.schema, TIMESCALE_NAMES) : NO_TIMESCALE_ROUTINES;
  return {
    serverVersionNum,
    base,
    relations,
    columns,
    checks,
    indexes,
    servers,
    userMappings,
    settings,
    roleSettings,
    roles,
    memberships,
    tableGrants,
    schemaGrants,
    schemas: existingSchemas,
    defaultChunks,
    writeGuards,
    referenceObjects,
    timescale,
    appliedMigrations: await appliedMigrations(client),
    checksums: await recordedChecksums(client),
    ingest: await readIngest(client, access),
  };
}
