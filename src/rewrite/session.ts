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
  /**
   * False when the session set `hypershard.rewrite = off` (a custom setting PostgreSQL keeps for
   * the session or, with SET LOCAL, the transaction): its statements then run as written.
   */
  readonly enabled: boolean;
}

/** The session setting that turns rewriting off (`SET hypershard.rewrite = off`). */
export const REWRITE_SETTING = 'hypershard.rewrite';

export const SESSION_SETTINGS_SQL = `SELECT pg_catalog.current_setting('TimeZone') AS time_zone, pg_catalog.current_schemas(true)::text[] AS search_path, current_user::text AS role, pg_catalog.current_setting('${REWRITE_SETTING}', true) AS rewrite`;

/** A row of SESSION_SETTINGS_SQL, its values parsed as node-postgres parses them. */
export type SessionSettingsRow = Readonly<Record<string, unknown>>;

export async function sessionSettings(client: Queryable): Promise<SessionSettings> {
  const { rows } = await client.query(SESSION_SETTINGS_SQL);
  const row = rows[0];
  if (row === undefined) throw new TypeError('no answer to the session settings query');
  return settingsFromRow(row);
}

/** The settings in a row of SESSION_SETTINGS_SQL (the gateway reads it off the wire itself). */
export function settingsFromRow(row: SessionSettingsRow): SessionSettings {
  const { time_zone: timeZone, search_path: searchPath, role, rewrite } = row;
  if (typeof timeZone !== 'string' || !Array.isArray(searchPath) || typeof role !== 'string') throw new TypeError('unexpected answer to the session settings query');
  return { timeZone, searchPath: searchPath.map(String), role, enabled: !isOff(rewrite) };
}

/** PostgreSQL's spellings of a false boolean (parse_bool), for the custom setting's text. */
function isOff(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  const v = value.trim().toLowerCase();
  return v !== '' && (v === '0' || 'false'.startsWith(v) || 'no'.startsWith(v) || (v.length > 1 && 'off'.startsWith(v)));
}
