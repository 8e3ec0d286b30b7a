/** What routed writes need of a node: two-phase commit on data nodes, the commit log on the access node, and what is left in doubt. */
import type pg from 'pg';
import { COMMIT_FUNCTION, COMMIT_LOG, GID_PREFIX } from '../../ingest/commitLog.js';
import { quoteLiteral, quoteQualified } from '../../sql/quote.js';

export interface CatalogIngest {
  readonly maxPreparedTransactions: number;
  /** Access node: the commit log table and the function writing it exist. */
  readonly commitLog: boolean;
  /** Routed transactions prepared here more than a minute ago: a writer that crashed. */
  readonly inDoubt: number;
}

export async function readIngest(client: pg.Client, access: boolean): Promise<CatalogIngest> {
  const { rows } = await client.query<{ max: number; log: boolean; in_doubt: number }>(
    `SELECT pg_catalog.current_setting('max_prepared_transactions')::int AS max,
            ${access ? `pg_catalog.to_regclass(${quoteLiteral(quoteQualified(COMMIT_LOG.schema, COMMIT_LOG.name))}) IS NOT NULL
              AND pg_catalog.to_regprocedure(${quoteLiteral(`${quoteQualified(COMMIT_FUNCTION.schema, COMMIT_FUNCTION.name)}(text, text[])`)}) IS NOT NULL` : 'true'} AS log,
            (SELECT count(*)::int FROM pg_catalog.pg_prepared_xacts
              WHERE database = pg_catalog.current_database() AND gid LIKE ${quoteLiteral(`${GID_PREFIX.replaceAll('_', '\\_')}%`)}
                AND prepared < pg_catalog.now() - interval '1 minute') AS in_doubt`,
  );
  const r = rows[0];
  return { maxPreparedTransactions: r?.max ?? 0, commitLog: r?.log === true, inDoubt: r?.in_doubt ?? 0 };
}
