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
