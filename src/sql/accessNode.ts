/**
 * What the access node holds: postgres_fdw, one server per shard slot, partitioned parents of
 * foreign shards, and reference tables with their copies and sync triggers.
 */
import { commitLogStep } from '../ingest/commitLog.js';
import { INTERNAL_SCHEMA, type ClusterLayout, type FdwServer, type Hypertable, type Shard } from '../plan/layout.js';
import { accessLastpointStep } from './lastpoint.js';
import { accessNodeViewStep } from './nodeViews.js';
import { accessReferenceTable, referenceGrantsStep } from './referenceTables.js';
import { createRoles, grantTables } from './roles.js';
import { schemasStep } from './schemas.js';
import { timescaleFunctionsStep } from './timescaledb.js';
import type { Statement, Step } from './statement.js';
import { render } from './templates.js';

export function accessNodeSteps(layout: ClusterLayout): Step[] {
  return [
    {
      up: [
        { what: 'extension postgres_fdw', sql: render('access/create-extension', {}) },
        { what: `schema ${INTERNAL_SCHEMA}`, sql: render('common/create-schema', { schema: INTERNAL_SCHEMA }) },
      ],
      down: [
        { what: 'extension postgres_fdw', sql: render('access/drop-extension', {}) },
      ],
    },
    commitLogStep(),
    {
      up: [{ what: 'pushdown settings', sql: render('access/set-database', { settings: layout.accessSettings }) }],
      down: [{ what: 'pushdown settings', sql: render('access/reset-database', { settings: layout.accessSettings }) }],
    },
    createRoles(layout.roles),
    ...layout.servers.map((server) => serverStep(server, layout.serviceRole)),
    schemasStep([...layout.hypertables, ...layout.referenceTables]),
    ...layout.hypertables.map((h) => accessHypertable(h, false)),
    ...layout.referenceTables.map(accessReferenceTable),
    grantTables(layout.roles, () => true),
    referenceGrantsStep(layout, 'access'),
    // Last: their schema may be a hypertable's, made above (it is not made for them).
    ...(layout.timescaledb === undefined ? [] : [timescaleFunctionsStep(layout.timescaledb)]),
  ];
}

/** A FDW server for one shard slot, with the PUBLIC user mapping to the service role. */
export function serverStep(server: FdwServer, serviceRole: string): Step {
  return {
    up: [
      { what: `server ${server.name} (data node ${server.dataNode})`, sql: render('access/create-server', server) },
      ...(server.parallelCommit ? [{ what: `parallel commit on ${server.name} (PostgreSQL 15+)`, sql: render('access/set-parallel-commit', server) }] : []),
      { what: `user mapping on ${server.name}`, sql: render('access/create-user-mapping', { server: server.name, user: serviceRole }) },
    ],
    down: [
      { what: `user mapping on ${server.name}`, sql: render('access/drop-user-mapping', { server: server.name }) },
      { what: `server ${server.name}`, sql: render('access/drop-server', server) },
    ],
  };
}

/**
 * The access node plans a GROUP BY on a time bucket from the time column's distinct count.
 * Raw timestamps are nearly all distinct, so a bucketed aggregate shipped to a data node looks
 * as big as the rows themselves and the planner ships the rows instead. Declaring 5% distinct
 * (a bucket holds 20 readings or more) lets the shipped aggregate win; equality on an exact
 * timestamp, the only other use of the count, is rare on a time column.
 */
export const TIME_DISTINCT_RATIO = '-0.05';

export function timeDistinctStatement(h: Hypertable, shard: Shard): Statement {
  return {
    what: `planner statistics of shard ${shard.index} of ${h.table.schema}.${h.table.name}`,
    sql: render('access/set-time-distinct', { shard, column: h.timeColumn, ratio: TIME_DISTINCT_RATIO }),
  };
}

/**
 * One hypertable: its partitioned parent and foreign shards. With `withSchema`, also its schema,
 * for a migration that adds or drops this table alone; a node's full migration passes false and
 * creates the schemas once for all its tables (schemasStep).
 */
export function accessHypertable(h: Hypertable, withSchema = true): Step {
  const name = `${h.table.schema}.${h.table.name}`;
  const schema = withSchema ? schemasStep([h]) : { up: [], down: [] };
  const lastpoint = accessLastpointStep(h);
  const nodeViews = accessNodeViewStep(h);
  return {
    up: [
      ...schema.up,
      { what: `hypertable ${name}`, sql: render('common/create-hash-parent', h) },
      ...h.shards.map((shard) => ({
        what: `shard ${shard.index} of ${name} on ${shard.dataNode}`,
        sql: render('access/create-foreign-partition', { shard, parent: h.table }),
      })),
      ...h.shards.map((shard) => timeDistinctStatement(h, shard)),
      ...lastpoint.up,
      ...nodeViews.up,
    ],
    down: [
      // Not partitions: dropping the parent leaves them.
      ...nodeViews.down,
      ...lastpoint.down,
      // Dropping the parent drops its foreign partitions (never the remote data).
      { what: `hypertable ${name}`, sql: render('common/drop-table', { table: h.table }) },
      ...schema.down,
    ],
  };
}
