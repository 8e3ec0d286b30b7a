/**
 * Keeping chunks ahead of now: the data node's own `_hypershard.create_chunks`, the function
 * `apply` made its first chunks with, asked for nothing behind and `ahead` chunks after now.
 */
import type pg from 'pg';
import { INTERNAL_SCHEMA, type QualifiedName } from '../plan/layout.js';
import { quoteIdent, quoteQualified } from '../sql/quote.js';

export interface AheadSettings {
  readonly shard: QualifiedName;
  readonly chunkPrefix: string;
  readonly strideSeconds: number;
  readonly ahead: number;
  /** The time column is `timestamp`: bounds are UTC wall-clock times. */
  readonly utc: boolean;
}

/** Returns how many chunks the function created. */
export async function createChunksAhead(client: pg.Client, settings: AheadSettings): Promise<number> {
  const { rows } = await client.query<{ created: number }>(
    `SELECT ${quoteIdent(INTERNAL_SCHEMA)}.create_chunks($1::regclass, $2, $3, 0, $4, $5) AS created`,
    [quoteQualified(settings.shard.schema, settings.shard.name), settings.chunkPrefix, settings.strideSeconds, settings.ahead, settings.utc],
  );
  return rows[0]?.created ?? 0;
}
