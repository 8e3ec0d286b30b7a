/**
 * After a move, and for moves an interrupted run left behind. A move in phase `switched` is
 * finished: the old copy is dropped on the source (with the local parent when the source holds no
 * other shard of the hypertable) and the old foreign table on the access node, and the moved
 * shard is analyzed on its new node and on the access node. A move in phase
 * `copying` is undone: the staging foreign table and the target's partial copy are dropped and
 * the journal row deleted — unless the access node shows the switch committed (the process died
 * between COMMIT and the journal update), in which case it is finished instead.
 */
import type pg from 'pg';
import { analyzeTables } from '../maintain/analyze.js';
import type { Hypertable, Shard } from '../plan/layout.js';
import { dropLastpointView } from '../sql/lastpoint.js';
import { moveNames, qualified } from './names.js';
import { exists } from './prepare.js';

/** Drops the local parent of a hypertable on a data node that holds no shard of it any more. */
async function dropEmptyParent(client: pg.Client, h: Hypertable): Promise<void> {
  const parent = qualified(h.table);
  if (!(await exists(client, parent))) return;
  const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_catalog.pg_inherits WHERE inhparent = pg_catalog.to_regclass($1)', [parent]);
  if ((rows[0]?.n ?? 0) === 0) await client.query(`DROP TABLE ${parent}`);
}

/** Drops the shard, its check and lastpoint views and, when it was the last shard there, the local parent on a data node. */
export async function dropDataCopy(client: pg.Client, h: Hypertable, shard: Shard): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(`DROP VIEW IF EXISTS ${qualified(moveNames(shard).check)}`);
    // The lastpoint view reads the shard: DROP TABLE would fail on it.
    const lastpoint = shard.lastpoint;
    if (lastpoint !== undefined) for (const statement of dropLastpointView(h, { ...shard, lastpoint })) await client.query(statement.sql);
    await client.query(`DROP TABLE IF EXISTS ${qualified(shard.table)}`);
    await dropEmptyParent(client, h);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** The FDW server the access node's foreign partition of the shard uses now, or undefined. */
export async function liveServer(access: pg.Client, shard: Shard): Promise<string | undefined> {
  const { rows } = await access.query<{ srvname: string }>(
    `SELECT s.srvname FROM pg_catalog.pg_foreign_table ft JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver WHERE ft.ftrelid = pg_catalog.to_regclass($1)`,
    [qualified(shard.table)],
  );
  return rows[0]?.srvname;
}

export async function finishMove(access: pg.Client, source: pg.Client, target: pg.Client, h: Hypertable, shard: Shard): Promise<void> {
  const names = moveNames(shard);
  await access.query(`DROP FOREIGN TABLE IF EXISTS ${qualified(names.old)}, ${qualified(names.check)}`);
  await dropDataCopy(source, h, shard);
  await target.query(`DROP VIEW IF EXISTS ${qualified(names.check)}`);
  // The new copy's chunks were filled by INSERTs autovacuum has not analyzed yet, and the access
  // node's foreign table is new and never analyzed by autovacuum: without statistics, row
  // estimates are unknown and the planner's pushdown choices guess. ANALYZE of the shard (a
  // partitioned table) also analyzes each of its chunks.
  await analyzeTables(target, [shard.table]);
  await analyzeTables(access, [shard.table]);
}

export async function rollBackMove(access: pg.Client, target: pg.Client, h: Hypertable, shard: Shard): Promise<void> {
  const names = moveNames(shard);
  await access.query(`DROP FOREIGN TABLE IF EXISTS ${qualified(names.staging)}, ${qualified(names.check)}`);
  await dropDataCopy(target, h, shard);
}
