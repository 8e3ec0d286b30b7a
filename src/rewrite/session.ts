/**
 * The session settings a rewrite depends on, read from the connection it will run on: TimeZone
 * (whether `date_trunc` on timestamptz equals a `date_bin`) and the schemas an unqualified name
 * resolves in.
 */
import type { Queryable } from './discover.js';
import type { RewriteOptions } from './model.js';

export interface SessionSettings extends RewriteOptions {
  readonly timeZone: string;
  /** `current_schemas(false)`: the search_path's existing schemas, `$user` resolved, in order. */
  readonly searchPath: readonly string[];
}

export const SESSION_SETTINGS_SQL = `SELECT pg_catalog.current_setting('TimeZone') AS time_zone, pg_catalog.current_schemas(false)::text[] AS search_path`;

export async function sessionSettings(client: Queryable): Promise<SessionSettings> {
  const { rows } = await client.query<{ time_zone: string; search_path: string[] }>(SESSION_SETTINGS_SQL);
  const row = rows[0];
  if (row === undefined) throw new TypeError('no answer to the session settings query');
  return { timeZone: row.time_zone, searchPath: row.search_path };
}
