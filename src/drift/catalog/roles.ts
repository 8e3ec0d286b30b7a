/** Roles (attributes, not passwords) and the memberships of given roles. */
import type pg from 'pg';

export interface CatalogRole {
  readonly name: string;
  readonly login: boolean;
  readonly inherit: boolean;
  readonly connectionLimit: number;
  readonly superuser: boolean;
  readonly createdb: boolean;
  readonly createrole: boolean;
  readonly replication: boolean;
  readonly bypassrls: boolean;
}

export interface CatalogMembership {
  readonly member: string;
  /** The role it is a member of. */
  readonly role: string;
}

export async function readRoles(client: pg.Client, names: readonly string[]): Promise<CatalogRole[]> {
  const { rows } = await client.query<{
    name: string; login: boolean; inherit: boolean; connlimit: number; superuser: boolean; createdb: boolean; createrole: boolean; replication: boolean; bypassrls: boolean;
  }>(
    `SELECT rolname AS name, rolcanlogin AS login, rolinherit AS inherit, rolconnlimit AS connlimit, rolsuper AS superuser,
            rolcreatedb AS createdb, rolcreaterole AS createrole, rolreplication AS replication, rolbypassrls AS bypassrls
     FROM pg_catalog.pg_roles WHERE rolname = ANY($1::text[]) ORDER BY 1`,
    [names],
  );
  return rows.map((r) => ({
    name: r.name,
    login: r.login,
    inherit: r.inherit,
    connectionLimit: r.connlimit,
    superuser: r.superuser,
    createdb: r.createdb,
    createrole: r.createrole,
    replication: r.replication,
    bypassrls: r.bypassrls,
  }));
}

/** Roles the given roles are members of (not their members: granting a declared role to users is normal). */
export async function readMemberships(client: pg.Client, members: readonly string[]): Promise<CatalogMembership[]> {
  const { rows } = await client.query<{ member: string; role: string }>(
    `SELECT DISTINCT m.rolname AS member, r.rolname AS role
     FROM pg_catalog.pg_auth_members am
     JOIN pg_catalog.pg_roles m ON m.oid = am.member
     JOIN pg_catalog.pg_roles r ON r.oid = am.roleid
     WHERE m.rolname = ANY($1::text[]) ORDER BY 1, 2`,
    [members],
  );
  return rows;
}
