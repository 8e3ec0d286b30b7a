/** What a node needs before any hypertable: the internal schema, postgres_fdw, the chunk function. */
import type pg from 'pg';
import { quoteIdent } from '../../sql/quote.js';

export interface CatalogBase {
  readonly schema: boolean;
  readonly fdwExtension: boolean;
  readonly chunkFunction: boolean;
}

export async function readBase(client: pg.Client, internalSchema: string): Promise<CatalogBase> {
  const { rows } = await client.query<{ schema: boolean; fdw: boolean; chunk_function: boolean }>(
    `SELECT pg_catalog.to_regnamespace($1) IS NOT NULL AS schema,
            EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'postgres_fdw') AS fdw,
            pg_catalog.to_regprocedure($2) IS NOT NULL AS chunk_function`,
    [quoteIdent(internalSchema), `${quoteIdent(internalSchema)}.create_chunks(regclass, text, bigint, integer, integer, boolean)`],
  );
  const row = rows[0];
  return { schema: row?.schema === true, fdwExtension: row?.fdw === true, chunkFunction: row?.chunk_function === true };
}
