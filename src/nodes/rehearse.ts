/**
 * Runs a node's pending migrations statement by statement inside a transaction that is always
 * rolled back. Every hypershard statement is transactional, so this finds almost any failure
 * (object exists, permission, type errors) on every node before any node changes, and names the
 * exact statement.
 */
import type pg from 'pg';
import type { MigrationFile } from '../migrations/files.js';

export interface StatementFailure {
  readonly migration: string;
  readonly statement: string;
  readonly message: string;
}

export async function rehearse(client: pg.Client, pending: readonly MigrationFile[]): Promise<StatementFailure | undefined> {
  if (pending.length === 0) return undefined;
  await client.query('BEGIN');
  try {
    for (const migration of pending) {
      for (const statement of migration.up) {
        try {
          await client.query(statement.sql);
        } catch (error) {
          return { migration: migration.name, statement: statement.what, message: pgMessage(error) };
        }
      }
    }
    return undefined;
  } finally {
    await client.query('ROLLBACK');
  }
}

export function pgMessage(error: unknown): string {
  const e = error as { message?: string; detail?: string; hint?: string };
  return [e.message ?? String(error), e.detail, e.hint === undefined ? undefined : `hint: ${e.hint}`].filter(Boolean).join('; ');
}
