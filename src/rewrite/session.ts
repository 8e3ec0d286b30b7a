/**
 * The session settings a rewrite depends on, read from the connection it will run on: TimeZone
 * (whether `date_trunc` on timestamptz equals a `date_bin`), the schemas an unqualified name
 * resolves in, and the role the statement runs as (what it may see: access.ts).
 */
import type { Queryable } from './discover.js';
import type { RewriteOptions } from './model.js';

export interface SessionSettings extends Omit<RewriteOptions, 'access'> {
  readonly timeZone: string;
  /**
   * `current_schemas(true)`: where an unqualified relation name is looked up, in order — the
   * session's temporary schema (once it has one) and pg_catalog where the server searches them,
   * then the search_path's existing schemas with `$user` resolved.
   */
  readonly searchPath: readonly string[];
  /** `current_user`: the role privileges and row-level security are checked for (after SET ROLE). */
  readonly role: string;
}

export const SESSION_SETTINGS_SQL = `SELECT pg_catalog.current_setting('TimeZone') AS time_zone, pg_catalog.current_schemas(true)::text[] AS search_path, current_user::text AS role`;

export async function sessionSettings(client: Queryable): Promise<SessionSettings> {
  const { rows } = await client.query<{ time_zone: string; search_path: string[]; role: string }>(SESSION_SETTINGS_SQL);
  const row = rows[0];
  if (row === undefined) throw new TypeError('no answer to the session settings query');
  return { timeZone: row.time_zone, searchPath: row.search_path, role: row.role };
}
