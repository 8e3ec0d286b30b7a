/**
 * What a role may see, so a rewrite never shows it more than the statement it wrote.
 *
 * A per-shard rewrite reads the shards' foreign tables and the reference tables' copies, not the
 * hypertable: a row-level security policy on the hypertable, and privileges on some of its
 * columns only, are not there (foreign tables cannot carry a policy). So such a rewrite is made
 * only for a table the role may SELECT whole (`has_table_privilege`, which column privileges do
 * not satisfy) and to which no policy applies: row security off, or the role is a superuser,
 * has BYPASSRLS, or owns the table (is a member of its owner) without FORCE ROW LEVEL SECURITY.
 *
 * Two checks, because facts change while they are cached:
 *   - before rewriting, the facts read for the role (`readRoleAccess`), through any connection
 *     to the access node: the session's own, or a gateway's admin connection asking about the
 *     client's role;
 *   - when the rewritten statement runs, a guard (`guardArm`) re-checks them for whoever runs it
 *     and raises an error (SQLSTATE 42P01) instead of returning a row, so a policy created, a
 *     privilege revoked or a role changed since the facts were read (even by a function) never
 *     widens an answer. A caller that sees that error outside a transaction runs the statement as
 *     written.
 */
import { quoteLiteral, quoteQualified } from '../sql/quote.js';
import { guardFailure } from './guardFailure.js';
import type { Queryable } from './discover.js';
import { KEYS_GUARD_NAME } from './referenceKeys.js';
import type { ClusterMetadata, RoleAccess } from './model.js';

/**
 * The relation name the guard's error names (`relation "…" does not exist`), which is how a caller
 * recognizes it. At most 63 bytes: PostgreSQL truncates longer names before reporting them.
 */
export const GUARD_NAME = 'hypershard: row security or privileges changed; run as written';

interface AccessRow {
  key: string;
  found: boolean;
  select_whole: boolean | null;
  row_security: boolean | null;
  forced: boolean | null;
  owner: boolean | null;
  unreadable: string[] | null;
}

interface RoleRow {
  bypass: boolean;
}

/**
 * Per table: is it there, may the role SELECT it whole, is row security on (forced), does the
 * role own it, and which of the parts a rewrite reads (shards, copies) the role may not read.
 * `$2` is a JSON array of {schema, name, parts: [{schema, name}]}. Relations are found by name in
 * the catalogs, not by to_regclass(), which needs USAGE on the schema from the connected role.
 */
const ACCESS_SQL = `
WITH t AS (
  SELECT t.schema, t.name, t.parts, c.oid, c.relrowsecurity, c.relforcerowsecurity, c.relowner
  FROM pg_catalog.jsonb_to_recordset($2::jsonb) AS t(schema text, name text, parts jsonb)
  LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema
  LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.name)
SELECT t.schema || '.' || t.name AS key, t.oid IS NOT NULL AS found,
  pg_catalog.has_table_privilege($1, t.oid, 'SELECT') AS select_whole,
  t.relrowsecurity AS row_security, t.relforcerowsecurity AS forced,
  pg_catalog.pg_has_role($1, t.relowner, 'USAGE') AS owner,
  (SELECT pg_catalog.array_agg(p.schema || '.' || p.name ORDER BY p.schema, p.name)
   FROM pg_catalog.jsonb_to_recordset(t.parts) AS p(schema text, name text)
   LEFT JOIN pg_catalog.pg_namespace pn ON pn.nspname = p.schema
   LEFT JOIN pg_catalog.pg_class pc ON pc.relnamespace = pn.oid AND pc.relname = p.name
   WHERE pc.oid IS NULL OR NOT pg_catalog.has_schema_privilege($1, pn.oid, 'USAGE')
      OR NOT pg_catalog.has_table_privilege($1, pc.oid, 'SELECT')) AS unreadable
FROM t`;

/**
 * Reads which of the cluster's hypertables and reference tables `role` may have read per shard.
 * Only the catalogs and privilege functions are read, so `client` may be any connection to the
 * access node, in any role (a gateway asks about its client's role on its own connection).
 */
export async function readRoleAccess(client: Queryable, role: string, metadata: ClusterMetadata): Promise<RoleAccess> {
  const tables = [
    ...metadata.hypertables.map((h) => ({ table: h.table, parts: [...h.shards.flatMap((s) => (s.lastpoint === undefined ? [s.table] : [s.table, s.lastpoint])), ...(h.nodes ?? []).map((n) => n.table)] })),
    ...metadata.referenceTables.map((r) => ({ table: r.table, parts: r.copies.map((c) => c.table) })),
  ];
  const roles = await client.query<RoleRow>('SELECT rolsuper OR rolbypassrls AS bypass FROM pg_catalog.pg_roles WHERE rolname = $1', [role]);
  const bypass = roles.rows[0]?.bypass;
  const verdicts = new Map<string, string | undefined>();
  if (bypass === undefined) {
    for (const t of tables) verdicts.set(tableKey(t.table), `the role ${role} does not exist on the access node`);
    return { role, tables: verdicts };
  }
  const spec = tables.map((t) => ({ schema: t.table.schema, name: t.table.name, parts: t.parts.map((p) => ({ schema: p.schema, name: p.name })) }));
  const { rows } = await client.query<AccessRow>(ACCESS_SQL, [role, JSON.stringify(spec)]);
  for (const row of rows) verdicts.set(row.key, verdict(row, role, bypass));
  return { role, tables: verdicts };
}

function verdict(row: AccessRow, role: string, bypass: boolean): string | undefined {
  if (!row.found) return `${row.key} is not on the access node`;
  if (row.select_whole !== true) return `role ${role} may not SELECT the whole of ${row.key} (column privileges, or none), and its shards would show every column`;
  if (row.row_security === true && !bypass && (row.forced === true || row.owner !== true)) {
    return `row-level security on ${row.key} applies to role ${role}${row.forced === true && row.owner === true ? ' (FORCE ROW LEVEL SECURITY)' : ''}; its policies are enforced on ${row.key}, not on the shards a per-shard rewrite reads`;
  }
  if (row.unreadable !== null && row.unreadable.length > 0) return `role ${role} may not read ${row.unreadable.join(', ')}, which a per-shard rewrite of ${row.key} reads`;
  return undefined;
}

export function tableKey(table: { schema: string; name: string }): string {
  return `${table.schema}.${table.name}`;
}

/**
 * The condition a per-shard rewrite of these tables runs under: for the role running it, each
 * is readable whole and no row-level security applies (`row_security_active` is false for the
 * owner without FORCE, superusers and BYPASSRLS roles). When a check fails, the cast of GUARD_NAME
 * to a relation fails (42P01, `relation "…" does not exist`).
 */
export function guardCondition(tables: readonly { schema: string; name: string }[]): string {
  const checks = tables.map((t) => {
    const rel = `${quoteLiteral(quoteQualified(t.schema, t.name))}::regclass`;
    return `pg_catalog.has_table_privilege(${rel}, 'SELECT') AND NOT pg_catalog.row_security_active(${rel})`;
  });
  return `CASE WHEN ${checks.join(' AND ')} THEN false ELSE ${guardFailure(GUARD_NAME)} IS NULL END`;
}

/**
 * One more arm for a per-shard UNION ALL, returning no row when the guard holds. Every plan of
 * the union reads all its arms before its first row leaves the access node (an aggregate, a Sort
 * or a Merge Append over them), so the guard runs first; as a filter on the union it would be
 * pushed into each shard's arm and make the foreign scans synchronous.
 */
export function guardArm(columns: number, tables: readonly { schema: string; name: string }[]): string {
  const nulls = Array.from({ length: columns }, () => 'NULL').join(', ');
  return `SELECT ${nulls} WHERE (SELECT ${guardCondition(tables)})`;
}

/** Whether an error is a guard's (this one, or referenceKeys.ts's): the statement may then run as written (outside a transaction). */
export function isGuardError(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown };
  return e.code === '42P01' && typeof e.message === 'string' && (e.message.includes(GUARD_NAME) || e.message.includes(KEYS_GUARD_NAME));
}
