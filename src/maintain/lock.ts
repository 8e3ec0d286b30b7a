/**
 * One maintain at a time per node: a session advisory lock, tried and never waited for, so a
 * run from cron that overlaps a slow one reports the node as skipped instead of queueing.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';

/**
 * The advisory lock key: the first 8 bytes of sha256('hypershard-maintain') as a signed bigint,
 * fixed so that every hypershard version and process agrees on it.
 */
export const MAINTAIN_LOCK_KEY: string = createHash('sha256').update('hypershard-maintain').digest().readBigInt64BE(0).toString();

/** Takes the lock for this session; false when another session holds it. */
export async function tryMaintainLock(client: pg.Client): Promise<boolean> {
  const { rows } = await client.query<{ locked: boolean }>('SELECT pg_catalog.pg_try_advisory_lock($1::int8) AS locked', [MAINTAIN_LOCK_KEY]);
  return rows[0]?.locked === true;
}

/** Releases it; closing the session would too. */
export async function releaseMaintainLock(client: pg.Client): Promise<void> {
  await client.query('SELECT pg_catalog.pg_advisory_unlock($1::int8)', [MAINTAIN_LOCK_KEY]);
}
