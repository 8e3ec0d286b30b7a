import pg from 'pg';
import { clientConfig } from '../../src/nodes/connect.js';

/** Runs statements on one connection and returns the rows of the last. */
export async function sql<T extends pg.QueryResultRow = pg.QueryResultRow>(
  target: string | { url: string; password: string } | pg.ClientConfig,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client(
    typeof target === 'string'
      ? clientConfig(target, process.env.HYPERSHARD_TEST_CONTAINER_PASSWORD)
      : 'url' in target
        ? clientConfig(target.url, target.password)
        : target,
  );
  client.on('error', () => undefined);
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** A URL for another database or user on the same server. */
export function withDatabase(url: string, database: string, user?: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  if (user !== undefined) u.username = encodeURIComponent(user);
  return u.toString();
}

/**
 * A fingerprint of what migrations could change on a node: relations, roles, servers, user
 * mappings, schemas, database settings and extensions. Equal before and after = no side effects.
 */
export async function catalogFingerprint(url: string): Promise<string> {
  const rows = await sql<{ fp: string }>(
    url,
    `SELECT md5(concat_ws('|',
       (SELECT string_agg(n.nspname || '.' || c.relname || ':' || c.relkind::text, ',' ORDER BY n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace),
       (SELECT string_agg(rolname || coalesce(rolpassword, '-'), ',' ORDER BY rolname) FROM pg_authid),
       (SELECT string_agg(srvname || array_to_string(srvoptions, ';'), ',' ORDER BY srvname) FROM pg_foreign_server),
       (SELECT string_agg(srvname || coalesce(array_to_string(umoptions, ';'), ''), ',' ORDER BY srvname) FROM pg_user_mappings),
       (SELECT string_agg(array_to_string(setconfig, ';'), ',' ORDER BY setdatabase, setrole) FROM pg_db_role_setting),
       (SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension))) AS fp`,
  );
  return rows[0]!.fp;
}
