/**
 * Checksums of applied migration files, kept beside node-pg-migrate's history (which records only
 * names), so `check` can tell when a migration file changed after it was applied.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import type { MigrationFile } from '../migrations/files.js';
import { INTERNAL_SCHEMA } from '../plan/layout.js';
import { quoteQualified } from '../sql/quote.js';

export const CHECKSUMS_TABLE = 'migration_checksums';

export function migrationChecksum(content: string): string {
  return createHash('sha256').update(content).digest('hex');
}

/** Records the checksum of every applied migration not recorded yet. Returns how many it recorded. */
export async function recordChecksums(client: pg.Client, applied: readonly string[], files: readonly MigrationFile[]): Promise<number> {
  const table = quoteQualified(INTERNAL_SCHEMA, CHECKSUMS_TABLE);
  await client.query(`CREATE TABLE IF NOT EXISTS ${table} (name text PRIMARY KEY, sha256 text NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now())`);
  const rows = files.filter((f) => applied.includes(f.name)).map((f) => [f.name, migrationChecksum(f.content)]);
  if (rows.length === 0) return 0;
  const { rowCount } = await client.query(
    `INSERT INTO ${table} (name, sha256) SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (name) DO NOTHING`,
    [rows.map((r) => r[0]), rows.map((r) => r[1])],
  );
  return rowCount ?? 0;
}

/** Recorded checksums by migration name; empty when none were ever recorded. */
export async function recordedChecksums(client: pg.Client): Promise<Map<string, string>> {
  const table = quoteQualified(INTERNAL_SCHEMA, CHECKSUMS_TABLE);
  const { rows } = await client.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [table]);
  if (rows[0]?.exists !== true) return new Map();
  const recorded = await client.query<{ name: string; sha256: string }>(`SELECT name, sha256 FROM ${table}`);
  return new Map(recorded.rows.map((r) => [r.name, r.sha256]));
}
