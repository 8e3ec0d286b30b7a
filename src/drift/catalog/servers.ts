/**
 * The access node's FDW servers and user mappings. Mapping options are read as the server shows
 * them, but a password is reduced to whether it is there: its value never leaves this module.
 */
import type pg from 'pg';
import { optionMap } from './relations.js';

export interface CatalogServer {
  readonly name: string;
  readonly wrapper: string;
  readonly options: ReadonlyMap<string, string>;
}

export interface CatalogUserMapping {
  readonly server: string;
  /** `public` for a mapping FOR PUBLIC. */
  readonly user: string;
  /** Options other than `password`. */
  readonly options: ReadonlyMap<string, string>;
  readonly hasPassword: boolean;
  /** pg_user_mappings hides options from users who do not own the server (nor are superusers). */
  readonly visible: boolean;
}

/** Servers whose name starts with `prefix` (hypershard names every server it makes `hypershard_…`). */
export async function readServers(client: pg.Client, prefix: string): Promise<CatalogServer[]> {
  const { rows } = await client.query<{ name: string; wrapper: string; options: string[] | null }>(
    `SELECT s.srvname AS name, w.fdwname AS wrapper, s.srvoptions AS options
     FROM pg_catalog.pg_foreign_server s JOIN pg_catalog.pg_foreign_data_wrapper w ON w.oid = s.srvfdw
     WHERE starts_with(s.srvname, $1) ORDER BY 1`,
    [prefix],
  );
  return rows.map((r) => ({ name: r.name, wrapper: r.wrapper, options: optionMap(r.options) }));
}

export async function readUserMappings(client: pg.Client, prefix: string): Promise<CatalogUserMapping[]> {
  const { rows } = await client.query<{ server: string; user: string; options: string[] | null; visible: boolean }>(
    `SELECT m.srvname AS server, m.usename AS user, m.umoptions AS options,
            pg_catalog.pg_has_role(s.srvowner, 'USAGE') OR (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) AS visible
     FROM pg_catalog.pg_user_mappings m JOIN pg_catalog.pg_foreign_server s ON s.oid = m.srvid
     WHERE starts_with(m.srvname, $1) ORDER BY 1, 2`,
    [prefix],
  );
  return rows.map((r) => {
    const options = optionMap(r.options);
    const hasPassword = options.has('password');
    options.delete('password');
    return { server: r.server, user: r.user, options, hasPassword, visible: r.visible };
  });
}
