/**
 * Before the copy: the target data node gets what the shard needs (the local parent when it holds
 * no shard of the hypertable yet, with its indexes and grants; the shard with its bounds CHECK,
 * default chunk and the source's chunk ranges; the service role's privileges; its lastpoint view)
 * in one transaction,
 * from the same statement builders as the migrations. The access node gets the FDW server for
 * (target, shard slot) when missing, with the service role's password in its user mapping, and
 * the staging foreign table on the new copy.
 */
import type pg from 'pg';
import type { CatalogChunk } from '../maintain/chunkCatalog.js';
import type { ClusterLayout, FdwServer, Hypertable, Shard } from '../plan/layout.js';
import { syncUserMappings } from '../nodes/secrets.js';
import { serverStep, timeDistinctStatement } from '../sql/accessNode.js';
import { dataHypertable } from '../sql/dataNode.js';
import { dropLastpointView } from '../sql/lastpoint.js';
import { quoteIdent, quoteLiteral } from '../sql/quote.js';
import { grantTables } from '../sql/roles.js';
import { render } from '../sql/templates.js';
import { checksumQuery, moveNames, qualified } from './names.js';

const RANGE_BOUND = /^FOR VALUES FROM \('([^']*)'\) TO \('([^']*)'\)$/;

/** The two bounds of a range chunk as the server wrote them, or undefined (default chunk, MINVALUE …). */
export function rangeBounds(chunk: CatalogChunk): [string, string] | undefined {
  const m = RANGE_BOUND.exec(chunk.range);
  return m === null ? undefined : [m[1] as string, m[2] as string];
}

export async function exists(client: pg.Client, table: string): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>('SELECT pg_catalog.to_regclass($1) IS NOT NULL AS ok', [table]);
  return rows[0]?.ok === true;
}

export async function prepareTarget(client: pg.Client, layout: ClusterLayout, h: Hypertable, shard: Shard, target: string, sourceChunks: readonly CatalogChunk[]): Promise<void> {
  const names = moveNames(shard);
  await client.query('BEGIN');
  try {
    const hasParent = await exists(client, qualified(h.table));
    // A copy left by an interrupted move: the live shard is on the source (the caller checked).
    await client.query(`DROP VIEW IF EXISTS ${qualified(names.check)}`);
    const lastpoint = shard.lastpoint;
    if (lastpoint !== undefined) for (const statement of dropLastpointView(h, { ...shard, lastpoint })) await client.query(statement.sql);
    await client.query(`DROP TABLE IF EXISTS ${qualified(shard.table)}`);
    // Node views are the move's to change (nodeViews.ts), not this shard's.
    const moved: Hypertable = { ...h, shards: [{ ...shard, dataNode: target }], nodeViews: undefined };
    const statements = dataHypertable(moved, target, layout.serviceRole, true).up.filter(
      (s) => !s.what.endsWith(': chunks') && !(hasParent && (s.what.startsWith('schema ') || s.what.startsWith('local parent of ') || s.what.startsWith('index '))),
    );
    if (!hasParent) statements.push(...grantTables(layout.roles, (t) => t.schema === h.table.schema && t.name === h.table.name).up);
    for (const s of statements) await client.query(s.sql);
    for (const chunk of sourceChunks) {
      const bounds = rangeBounds(chunk);
      if (chunk.isDefault || bounds === undefined) continue;
      await client.query(
        `CREATE TABLE ${qualified(chunk.table)} PARTITION OF ${qualified(shard.table)} FOR VALUES FROM (${quoteLiteral(bounds[0])}) TO (${quoteLiteral(bounds[1])})`,
      );
    }
    await client.query(`CREATE VIEW ${qualified(names.check)} AS ${checksumQuery(h, shard.table)}`);
    await client.query(`GRANT SELECT ON ${qualified(names.check)} TO ${quoteIdent(layout.serviceRole)}`);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

export async function prepareAccess(client: pg.Client, layout: ClusterLayout, h: Hypertable, shard: Shard, server: FdwServer, servicePassword: string): Promise<void> {
  const names = moveNames(shard);
  const { rows } = await client.query('SELECT 1 FROM pg_catalog.pg_foreign_server WHERE srvname = $1', [server.name]);
  await client.query('BEGIN');
  try {
    if (rows.length === 0) for (const s of serverStep(server, layout.serviceRole).up) await client.query(s.sql);
    await client.query(`DROP FOREIGN TABLE IF EXISTS ${qualified(names.staging)}, ${qualified(names.check)}`);
    const columns = h.columns.map((c) => `${quoteIdent(c.name)} ${c.type.sql}${c.notNull ? ' NOT NULL' : ''}`).join(', ');
    const options = (table: { schema: string; name: string }): string => `OPTIONS (schema_name ${quoteLiteral(table.schema)}, table_name ${quoteLiteral(table.name)})`;
    await client.query(`CREATE FOREIGN TABLE ${qualified(names.staging)} (${columns}) SERVER ${quoteIdent(server.name)} ${options(shard.table)}`);
    await client.query(`CREATE FOREIGN TABLE ${qualified(names.check)} ("rows" bigint, checksum text) SERVER ${quoteIdent(server.name)} ${options(names.check)}`);
    // The staging table becomes the shard's partition at the switch: give it the same statistics settings.
    await client.query(timeDistinctStatement(h, { ...shard, table: names.staging }).sql);
    // Roles that may read the hypertable read its shards directly in rewritten queries.
    for (const role of layout.roles) {
      if (role.grants.some((g) => g.table === h.table && g.privileges.includes('SELECT'))) {
        await client.query(render('common/grant-table', { privileges: ['SELECT'], table: names.staging, role: role.name }));
      }
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  // Its own transaction, out of every statement recorder (src/nodes/secretStatements.ts).
  await syncUserMappings(client, layout.accessNode, { ...layout, servers: [server] }, servicePassword);
}
