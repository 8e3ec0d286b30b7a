/**
 * One apply at a time per node: a session advisory lock taken on every node before anything is
 * rehearsed, tried and never waited for. Two applies racing each other's migrations would fail on
 * catalog races ("duplicate key value violates unique constraint pg_type_typname_nsp_index");
 * the second one now stops at once, saying which node another apply holds and who that is.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';

/** First 8 bytes of sha256('hypershard-apply') as a signed bigint: the same for every hypershard. */
export const APPLY_LOCK_KEY: string = createHash('sha256').update('hypershard-apply').digest().readBigInt64BE(0).toString();

/** Takes the lock for this session, or describes the session holding it. */
export async function tryApplyLock(client: pg.Client): Promise<{ readonly held: true } | { readonly held: false; readonly holder: string }> {
  const { rows } = await client.query<{ locked: boolean }>('SELECT pg_catalog.pg_try_advisory_lock($1::int8) AS locked', [APPLY_LOCK_KEY]);
  if (rows[0]?.locked === true) return { held: true };
  // A bigint key is stored as classid (high 32 bits) and objid (low 32 bits), objsubid 1.
  const { rows: holders } = await client.query<{ pid: number; client: string | null; since: string | null; application: string | null }>(
    `SELECT a.pid, host(a.client_addr) AS client, to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS since, a.application_name AS application
       FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.classid = (($1::int8 >> 32) & 4294967295)::oid AND l.objid = ($1::int8 & 4294967295)::oid`,
    [APPLY_LOCK_KEY],
  );
  const h = holders[0];
  return {
    held: false,
    holder: h === undefined ? 'a session that has since ended' : `backend pid ${h.pid}${h.client === null ? '' : ` from ${h.client}`}${h.since === null ? '' : `, connected since ${h.since} UTC`}${h.application === null || h.application === '' ? '' : `, application ${h.application}`}`,
  };
}
