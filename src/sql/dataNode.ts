/**
 * What a data node holds: for each hypertable a local parent `PARTITION BY HASH (space)` with the
 * shards this node owns as partitions, each `PARTITION BY RANGE (time)` into chunks; a copy of
 * every reference table; and the service role the access node connects as, allowed exactly what
 * the foreign tables need.
 */
import { INTERNAL_SCHEMA, type ClusterLayout, type Hypertable, type Shard } from '../plan/layout.js';
import { derivedName } from '../plan/names.js';
import { dataLastpointStep } from './lastpoint.js';
import { dataNodeViewStep } from './nodeViews.js';
import { copySchemasUsage, dataReferenceTable, referenceGrantsStep } from './referenceTables.js';
import { createRoles, grantTables } from './roles.js';
import { schemasStep } from './schemas.js';
import type { Statement, Step } from './statement.js';
import { render } from './templates.js';

/** What postgres_fdw needs on a shard table: reads, writes through the access node, TRUNCATE of the root. */
export const SERVICE_PRIVILEGES = ['DELETE', 'INSERT', 'SELECT', 'TRUNCATE', 'UPDATE'] as const;

export function dataNodeSteps(layout: ClusterLayout, dataNode: string): Step[] {
  const service = {
    name: layout.serviceRole,
    login: true,
    inherit: false,
    connectionLimit: -1,
  };
  const held = layout.hypertables.filter((h) => h.shards.some((s) => s.dataNode === dataNode));
  return [
    {
      up: [
        { what: `schema ${INTERNAL_SCHEMA}`, sql: render('common/create-schema', { schema: INTERNAL_SCHEMA }) },
        { what: 'chunk function', sql: render('data/create-chunk-function', { schema: INTERNAL_SCHEMA }) },
        { what: 'write guard function', sql: render('data/create-write-guard-function', { schema: INTERNAL_SCHEMA }) },
      ],
      down: [
        { what: 'write guard function', sql: render('data/drop-write-guard-function', { schema: INTERNAL_SCHEMA }) },
        { what: 'chunk function', sql: render('data/drop-chunk-function', { schema: INTERNAL_SCHEMA }) },
      ],
    },
    {
      up: [
        { what: `service role ${service.name}`, sql: render('common/create-role', service) },
        { what: `usage on ${INTERNAL_SCHEMA} for ${service.name}`, sql: render('common/grant-schema-usage', { schema: INTERNAL_SCHEMA, role: service.name }) },
      ],
      down: [
        { what: `usage on ${INTERNAL_SCHEMA} for ${service.name}`, sql: render('common/revoke-schema-usage', { schema: INTERNAL_SCHEMA, role: service.name }) },
        { what: `service role ${service.name}`, sql: render('common/drop-role', service) },
      ],
    },
    serviceRoleSettingsStep(layout),
    ...(layout.replicationRole === undefined ? [] : [replicationRoleStep(layout.replicationRole)]),
    createRoles(layout.roles),
    schemasStep([...held, ...layout.referenceTables]),
    ...held.map((h) => dataHypertable(h, dataNode, layout.serviceRole, false)),
    copySchemasUsage(layout.referenceTables.map((r) => r.table.schema), layout.serviceRole),
    ...layout.referenceTables.map((r) => dataReferenceTable(r, layout.serviceRole)),
    grantTables(layout.roles, (table) => held.some((h) => h.table === table)),
    referenceGrantsStep(layout, 'data'),
  ];
}

/** How the data node plans the access node's queries: the service role's settings (DATA_NODE_SETTINGS). */
export function serviceRoleSettingsStep(layout: Pick<ClusterLayout, 'serviceRole' | 'dataSettings'>): Step {
  const model = { role: layout.serviceRole, settings: layout.dataSettings };
  return {
    up: [{ what: `planner settings of ${layout.serviceRole}`, sql: render('data/set-role-settings', model) }],
    down: [{ what: `planner settings of ${layout.serviceRole}`, sql: render('data/reset-role-settings', model) }],
  };
}

/**
 * The role standbys stream WAL as and `node rebuild` copies the primary with: LOGIN REPLICATION
 * and nothing else (no table, no schema). Every data node has it, so any may get standbys.
 */
export function replicationRoleStep(name: string): Step {
  return {
    up: [{ what: `replication role ${name}`, sql: render('data/create-replication-role', { name }) }],
    down: [{ what: `replication role ${name}`, sql: render('common/drop-role', { name }) }],
  };
}

/** One hypertable's local parent, shards and indexes on `dataNode`; `withSchema` as in accessHypertable. */
export function dataHypertable(h: Hypertable, dataNode: string, serviceRole: string, withSchema = true): Step {
  const name = `${h.table.schema}.${h.table.name}`;
  const schema = withSchema ? schemasStep([h]) : { up: [], down: [] };
  const shards = h.shards.filter((s) => s.dataNode === dataNode);
  const timeType = h.columns.find((c) => c.name === h.timeColumn)?.type.base;
  const lastpoint = dataLastpointStep(h, dataNode, serviceRole);
  const nodeViews = dataNodeViewStep(h, dataNode, serviceRole);
  return {
    up: [
      ...schema.up,
      { what: `local parent of ${name}`, sql: render('common/create-hash-parent', h) },
      ...shards.flatMap((shard) => shardStatements(h, shard, serviceRole, timeType === 'timestamp')),
      // On the partitioned parent, so every shard and chunk, present and future, gets the index.
      ...h.indexes.map((index) => ({ what: `index ${index.name} on ${name}`, sql: render('data/create-index', { index, table: h.table }) })),
      ...lastpoint.up,
      ...nodeViews.up,
    ],
    down: [
      // A view on a shard would make DROP TABLE fail: dropped first.
      ...nodeViews.down,
      ...lastpoint.down,
      { what: `local parent of ${name} with its shards and chunks`, sql: render('common/drop-table', { table: h.table }) },
      ...schema.down,
    ],
  };
}

/**
 * The statement trigger that refuses postgres_fdw's row-by-row UPDATE and DELETE on a shard
 * (templates/data/create-write-guard-function.sql.hbs says why).
 */
export function writeGuardStatement(h: Pick<Hypertable, 'table'>, shard: Shard): Statement {
  return { what: `shard ${shard.index} of ${h.table.schema}.${h.table.name}: write guard`, sql: render('data/create-write-guard', { shard, schema: INTERNAL_SCHEMA }) };
}

/** The trigger writeGuardStatement makes. */
export const WRITE_GUARD_TRIGGER = 'hypershard_ctid_guard';

function shardStatements(h: Hypertable, shard: Shard, serviceRole: string, utc: boolean): Statement[] {
  const what = `shard ${shard.index} of ${h.table.schema}.${h.table.name}`;
  return [
    { what, sql: render('data/create-shard', { shard, parent: h.table, timeColumn: h.timeColumn }) },
    {
      what: `${what}: bounds check`,
      sql: render('data/add-shard-check', { shard, parent: h.table, spaceColumn: h.spaceColumn, constraint: derivedName(shard.table.name, '_bounds') }),
    },
    {
      what: `${what}: default chunk`,
      sql: render('data/create-default-chunk', { shard, chunk: { schema: INTERNAL_SCHEMA, name: `${shard.chunkPrefix}_default` } }),
    },
    {
      what: `${what}: chunks`,
      sql: render('data/create-chunks', {
        schema: INTERNAL_SCHEMA,
        shard,
        strideSeconds: h.chunkInterval.seconds,
        behind: h.chunksBehind,
        ahead: h.chunksAhead,
        utc,
      }),
    },
    writeGuardStatement(h, shard),
    {
      what: `${what}: privileges of ${serviceRole}`,
      sql: render('common/grant-table', { privileges: SERVICE_PRIVILEGES, table: shard.table, role: serviceRole }),
    },
  ];
}
