/**
 * `hypershard/pg`: node-postgres with distributed hypertables rewritten transparently. Change
 * one import, `import pg from 'pg'` → `import pg from 'hypershard/pg'` (or take `Pool` and
 * `Client` from it): every statement that touches a distributed hypertable is rewritten for the
 * connection's TimeZone and search_path, with the same bind values; everything else, and every
 * other export of pg, is pg's own.
 */
import pg from 'pg';
import { Client } from './client.js';
import { Pool } from './pool.js';

export { Client, type ClientConfig, type RewriteEvent } from './client.js';
export { Pool, type PoolClient, type PoolConfig } from './pool.js';
export { DEFAULT_CACHE_SIZE, DEFAULT_REFRESH_MS, type HypershardOptions } from './context.js';
export { discoverMetadata } from '../rewrite/discover.js';
export { readRoleAccess } from '../rewrite/access.js';
export { sessionSettings, type SessionSettings } from '../rewrite/session.js';
// Routed ingest: COPY straight to the data nodes, committed on all or none.
export { IngestCluster, type IngestOptions } from '../ingest/cluster.js';
export { planRoutedBatch, planRoutedInsert, type InsertParam, type InsertSettings, type Refusal, type RoutedInsert } from '../ingest/insert.js';
export { copyFrom, type CopyFromOptions, type CopyFromResult, type CopyFromStream } from '../ingest/copyFrom.js';
export type { ClusterMetadata, Rewrite, RewriteResult, RoleAccess, Unchanged } from '../rewrite/model.js';

export const types: typeof pg.types = pg.types;
export const escapeIdentifier: typeof pg.escapeIdentifier = pg.escapeIdentifier;
export const escapeLiteral: typeof pg.escapeLiteral = pg.escapeLiteral;
export const defaults: typeof pg.defaults = pg.defaults;
export const DatabaseError: typeof pg.DatabaseError = pg.DatabaseError;
export const Query: typeof pg.Query = pg.Query;
export const Result: typeof pg.Result = pg.Result;

/** pg's default export with hypershard's Pool and Client in place of its own. */
const hypershardPg: Omit<typeof pg, 'Pool' | 'Client'> & { Pool: typeof Pool; Client: typeof Client } = { ...pg, Pool, Client };
export default hypershardPg;
