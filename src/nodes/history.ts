/** What node-pg-migrate recorded on a node, read without creating anything. */
import type pg from 'pg';
import { MigrationStateError } from '../errors.js';
import { INTERNAL_SCHEMA, MIGRATIONS_TABLE } from '../plan/layout.js';
import { quoteQualified } from '../sql/quote.js';

export async function appliedMigrations(client: pg.Client): Promise<string[]> {
  const table = quoteQualified(INTERNAL_SCHEMA, MIGRATIONS_TABLE);
  const { rows } = await client.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [table]);
  if (rows[0]?.exists !== true) return [];
  const history = await client.query<{ name: string }>(`SELECT name FROM ${table} ORDER BY run_on, id`);
  return history.rows.map((r) => r.name);
}

/**
 * The migrations still to run on a node, given its history and the files for it.
 * @throws MigrationStateError when the node ran a migration that is not on disk, or out of order.
 */
export function pendingMigrations<T extends { name: string }>(node: string, applied: readonly string[], files: readonly T[]): T[] {
  applied.forEach((name, i) => {
    if (files[i]?.name !== name) {
      throw new MigrationStateError(
        `node ${node}: migration ${name} was applied but ${files[i] === undefined ? 'is not in the migrations folder' : `the folder has ${files[i]?.name} in its place`}`,
      );
    }
  });
  return files.slice(applied.length);
}
