/**
 * Two-phase commit bookkeeping. Every routed transaction has a gid prefix
 * `hypershard_tx_<xid>_<16 hex>` naming the access-node transaction (by its xid) that decides
 * it; each participant (a data-node connection) prepares as `<prefix>_<n>`. The decision is the
 * commit record, written by that access-node transaction: committed with it, or never.
 */
import { randomBytes } from 'node:crypto';
import { INTERNAL_SCHEMA, type QualifiedName } from '../plan/layout.js';
import { quoteLiteral, quoteQualified } from '../sql/quote.js';
import type { Step } from '../sql/statement.js';
import { render } from '../sql/templates.js';

export const GID_PREFIX = 'hypershard_tx_';
export const COMMIT_LOG: QualifiedName = { schema: INTERNAL_SCHEMA, name: 'commits' };
export const COMMIT_FUNCTION: QualifiedName = { schema: INTERNAL_SCHEMA, name: 'record_commit' };

const GID = /^hypershard_tx_(\d+)_([0-9a-f]{16})_(\d+)$/;

export interface ParsedGid {
  /** The transaction's prefix, which its commit record names. */
  readonly prefix: string;
  /** The deciding access-node transaction. */
  readonly xid: string;
  readonly participant: number;
}

export function newGidPrefix(xid: string): string {
  if (!/^\d+$/.test(xid)) throw new TypeError(`not an xid: ${xid}`);
  return `${GID_PREFIX}${xid}_${randomBytes(8).toString('hex')}`;
}

export function participantGid(prefix: string, participant: number): string {
  return `${prefix}_${participant}`;
}

export function parseGid(gid: string): ParsedGid | undefined {
  const m = GID.exec(gid);
  if (m === null) return undefined;
  return { prefix: gid.slice(0, gid.lastIndexOf('_')), xid: m[1] as string, participant: Number(m[3]) };
}

/** The access node's commit log and the function that writes it, in its base migration. */
export function commitLogStep(): Step {
  return {
    up: [
      { what: 'commit log of routed writes', sql: render('access/create-commit-log', { table: COMMIT_LOG }) },
      { what: 'commit record function', sql: render('access/create-commit-function', { function: COMMIT_FUNCTION, table: COMMIT_LOG, prefix: GID_PREFIX }) },
    ],
    down: [
      { what: 'commit record function', sql: render('access/drop-commit-function', { function: COMMIT_FUNCTION }) },
      { what: 'commit log of routed writes', sql: render('access/drop-commit-log', { table: COMMIT_LOG }) },
    ],
  };
}

/** `SELECT _hypershard.record_commit($1, $2)`: in the deciding transaction. */
export const RECORD_COMMIT_SQL = `SELECT ${quoteQualified(COMMIT_FUNCTION.schema, COMMIT_FUNCTION.name)}($1::pg_catalog.text, $2::pg_catalog.text[])`;
/** RECORD_COMMIT_SQL with its values written in, to go in one message with the COMMIT that follows it. */
export function recordCommitSql(gid: string, nodes: readonly string[]): string {
  return `SELECT ${quoteQualified(COMMIT_FUNCTION.schema, COMMIT_FUNCTION.name)}(${quoteLiteral(gid)}::pg_catalog.text, ARRAY[${nodes.map(quoteLiteral).join(', ')}]::pg_catalog.text[])`;
}
export const FORGET_COMMITS_SQL = `DELETE FROM ${quoteQualified(COMMIT_LOG.schema, COMMIT_LOG.name)} WHERE gid = ANY ($1::pg_catalog.text[])`;
export const COMMIT_RECORDS_SQL = `SELECT gid, participants FROM ${quoteQualified(COMMIT_LOG.schema, COMMIT_LOG.name)} WHERE gid = ANY ($1::pg_catalog.text[])`;
export const ALL_COMMIT_RECORDS_SQL = `SELECT gid, participants, created_at FROM ${quoteQualified(COMMIT_LOG.schema, COMMIT_LOG.name)}`;
export const COMMIT_LOG_EXISTS_SQL = `SELECT pg_catalog.to_regclass(${quoteLiteral(quoteQualified(COMMIT_LOG.schema, COMMIT_LOG.name))}) IS NOT NULL AS present`;
/** The access-node transaction's id, assigning one (the commit record will need it anyway). */
export const CURRENT_XID_SQL = 'SELECT pg_catalog.pg_current_xact_id()::text AS xid';
/** 'in progress', 'committed', 'aborted', or NULL when too old to tell. */
export const XACT_STATUS_SQL = 'SELECT x AS xid, pg_catalog.pg_xact_status(x::pg_catalog.xid8) AS status FROM pg_catalog.unnest($1::pg_catalog.text[]) AS x';
