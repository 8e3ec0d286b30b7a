/**
 * Retention: expired chunks are dropped whole (DROP TABLE, no row-by-row DELETE). Dropping a
 * partition takes an ACCESS EXCLUSIVE lock on the shard for a moment; the session's lock_timeout
 * bounds how long queries queue behind it. DETACH … CONCURRENTLY cannot help: PostgreSQL refuses
 * it on a table with a default partition.
 */
import type pg from 'pg';
import type { QualifiedName } from '../plan/layout.js';
import { quoteQualified } from '../sql/quote.js';

/** Drops the chunks, in the caller's transaction. A default chunk is refused, whatever the caller planned. */
export async function dropChunks(client: pg.Client, chunks: readonly { readonly table: QualifiedName; readonly isDefault: boolean }[]): Promise<void> {
  for (const chunk of chunks) {
    if (chunk.isDefault) throw new Error(`refusing to drop the default chunk ${chunk.table.schema}.${chunk.table.name}`);
    await client.query(`DROP TABLE ${quoteQualified(chunk.table.schema, chunk.table.name)}`);
  }
}
