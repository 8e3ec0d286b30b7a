/** Settings made with ALTER DATABASE … SET on the current database (for every role). */
import type pg from 'pg';
import { optionMap } from './relations.js';

export async function readDatabaseSettings(client: pg.Client): Promise<Map<string, string>> {
  const { rows } = await client.query<{ config: string[] | null }>(
    `SELECT s.setconfig AS config FROM pg_catalog.pg_db_role_setting s
     JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
     WHERE d.datname = pg_catalog.current_database() AND s.setrole = 0`,
  );
  return optionMap(rows[0]?.config ?? null);
}

/** Settings made with ALTER ROLE … IN DATABASE … SET for one role on the current database. */
export async function readRoleSettings(client: pg.Client, role: string): Promise<Map<string, string>> {
  const { rows } = await client.query<{ config: string[] | null }>(
    `SELECT s.setconfig AS config FROM pg_catalog.pg_db_role_setting s
     JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
     JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
     WHERE d.datname = pg_catalog.current_database() AND r.rolname = $1`,
    [role],
  );
  return optionMap(rows[0]?.config ?? null);
}
