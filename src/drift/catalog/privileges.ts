/**
 * Privileges granted directly to given roles on given tables and schemas, from the ACLs
 * (aclexplode), so privileges reached through a membership or PUBLIC are not counted.
 */
import type pg from 'pg';
import type { QualifiedName } from '../../plan/layout.js';

export interface CatalogTableGrant {
  readonly table: QualifiedName;
  readonly role: string;
  readonly privilege: string;
}

export interface CatalogSchemaGrant {
  readonly schema: string;
  readonly role: string;
  readonly privilege: string;
}

export async function readTableGrants(client: pg.Client, tables: readonly QualifiedName[], roles: readonly string[]): Promise<CatalogTableGrant[]> {
  const { rows } = await client.query<{ schema: string; table: string; role: string; privilege: string }>(
    `SELECT DISTINCT n.nspname AS schema, c.relname AS table, g.rolname AS role, a.privilege_type AS privilege
     FROM pg_catalog.pg_class c
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     JOIN unnest($1::text[], $2::text[]) AS w(nspname, relname) ON w.nspname = n.nspname AND w.relname = c.relname
     CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) AS a
     JOIN pg_catalog.pg_roles g ON g.oid = a.grantee
     WHERE g.rolname = ANY($3::text[])
     ORDER BY 1, 2, 3, 4`,
    [tables.map((t) => t.schema), tables.map((t) => t.name), roles],
  );
  return rows.map((r) => ({ table: { schema: r.schema, name: r.table }, role: r.role, privilege: r.privilege }));
}

export async function readSchemaGrants(client: pg.Client, schemas: readonly string[], roles: readonly string[]): Promise<CatalogSchemaGrant[]> {
  const { rows } = await client.query<{ schema: string; role: string; privilege: string }>(
    `SELECT DISTINCT n.nspname AS schema, g.rolname AS role, a.privilege_type AS privilege
     FROM pg_catalog.pg_namespace n
     CROSS JOIN LATERAL pg_catalog.aclexplode(n.nspacl) AS a
     JOIN pg_catalog.pg_roles g ON g.oid = a.grantee
     WHERE n.nspname = ANY($1::text[]) AND g.rolname = ANY($2::text[])
     ORDER BY 1, 2, 3`,
    [schemas, roles],
  );
  return rows;
}

/** Which of the given schemas exist. */
export async function readSchemas(client: pg.Client, schemas: readonly string[]): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>('SELECT nspname AS name FROM pg_catalog.pg_namespace WHERE nspname = ANY($1::text[]) ORDER BY 1', [schemas]);
  return rows.map((r) => r.name);
}
