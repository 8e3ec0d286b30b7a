/**
 * Runs statements one after another on one session and keeps what a person wants to see: the
 * server's command tag, and the first rows as the server wrote them (text, no JavaScript types).
 */
import type pg from 'pg';
import { pgMessage } from '../nodes/rehearse.js';

export interface StatementResult {
  /** The statement as run. */
  readonly sql: string;
  /** The server's command tag, e.g. `INSERT 0 3`, `CREATE TABLE`, `SELECT 2`. */
  readonly command: string;
  /** Rows returned, for a statement that returns rows; else the count in the tag (rows affected), or null. */
  readonly rowCount: number | null;
  /** Column names in order (names may repeat); empty when the statement returns no rows. */
  readonly columns: readonly string[];
  /** The first `maxRows` rows, each value as the server's text, null for NULL. */
  readonly rows: readonly (readonly (string | null)[])[];
  /** More rows were returned than kept. */
  readonly truncated: boolean;
}

export interface StatementFailure {
  readonly message: string;
  /** SQLSTATE, when the server reported one. */
  readonly sqlState?: string;
  /** Index of the failing statement (0-based). */
  readonly index: number;
  readonly sql: string;
}

export interface RunOutcome {
  /** The statements that succeeded, in order. */
  readonly results: readonly StatementResult[];
  readonly failure?: StatementFailure;
}

/** Values come back as the server's text, as psql shows them. */
const TEXT_TYPES = { getTypeParser: () => (value: string) => value };

/** Stops at the first failure; the caller decides what that means for the transaction. */
export async function runStatements(client: pg.Client, statements: readonly string[], maxRows: number): Promise<RunOutcome> {
  const results: StatementResult[] = [];
  for (const [index, sql] of statements.entries()) {
    try {
      results.push(await runStatement(client, sql, maxRows));
    } catch (error) {
      return { results, failure: { ...failureOf(error), index, sql } };
    }
  }
  return { results };
}

async function runStatement(client: pg.Client, sql: string, maxRows: number): Promise<StatementResult> {
  // pg keeps only the tag's first word (`CREATE`); the server's full tag is on the wire message.
  let tag: string | undefined;
  const onTag = (message: { text?: string }): void => {
    tag = message.text;
  };
  client.connection.on('commandComplete', onTag);
  let result: pg.QueryResult<unknown[]>;
  try {
    result = await client.query<unknown[]>({ text: sql, rowMode: 'array', types: TEXT_TYPES });
  } finally {
    client.connection.off('commandComplete', onTag);
  }
  const columns = result.fields.map((f) => f.name);
  const rows = result.rows as (string | null)[][];
  return {
    sql,
    command: tag ?? result.command ?? '',
    rowCount: columns.length > 0 ? rows.length : result.rowCount,
    columns,
    rows: rows.slice(0, Math.max(0, maxRows)),
    truncated: rows.length > maxRows,
  };
}

export function failureOf(error: unknown): { message: string; sqlState?: string } {
  const code = (error as { code?: unknown }).code;
  // Node's own errors (ECONNRESET) also have a code; only five-character codes are SQLSTATEs.
  return { message: pgMessage(error), ...(typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? { sqlState: code } : {}) };
}
