/**
 * The move journal, `_hypershard.moves` on the access node: one row per move, its phase written in
 * statements of their own (autocommit) before and after the copy-and-switch transaction, so an
 * interrupted run leaves a row the next run reads to roll back or finish.
 */
import type pg from 'pg';
import { INTERNAL_SCHEMA } from '../plan/layout.js';
import { quoteIdent, quoteQualified } from '../sql/quote.js';

export type MovePhase = 'copying' | 'switched' | 'cleaned';

export interface JournalRow {
  readonly id: number;
  readonly hypertable: string;
  readonly shard: number;
  readonly source: string;
  readonly target: string;
  readonly phase: MovePhase;
}

const TABLE = quoteQualified(INTERNAL_SCHEMA, 'moves');

export async function ensureJournal(client: pg.Client): Promise<void> {
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(INTERNAL_SCHEMA)}`);
  await client.query(
    `CREATE TABLE IF NOT EXISTS ${TABLE} (
       id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       hypertable text NOT NULL,
       shard integer NOT NULL,
       source text NOT NULL,
       target text NOT NULL,
       phase text NOT NULL CHECK (phase IN ('copying', 'switched', 'cleaned')),
       rows bigint,
       started_at timestamptz NOT NULL DEFAULT now(),
       updated_at timestamptz NOT NULL DEFAULT now()
     )`,
  );
}

/** Moves not finished (phase copying or switched), oldest first. */
export async function unfinishedMoves(client: pg.Client): Promise<JournalRow[]> {
  const { rows } = await client.query<{ id: string; hypertable: string; shard: number; source: string; target: string; phase: MovePhase }>(
    `SELECT id::text, hypertable, shard, source, target, phase FROM ${TABLE} WHERE phase <> 'cleaned' ORDER BY id`,
  );
  return rows.map((r) => ({ ...r, id: Number(r.id) }));
}

export async function startMove(client: pg.Client, move: { hypertable: string; shard: number; source: string; target: string }): Promise<number> {
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO ${TABLE} (hypertable, shard, source, target, phase) VALUES ($1, $2, $3, $4, 'copying') RETURNING id::text`,
    [move.hypertable, move.shard, move.source, move.target],
  );
  return Number(rows[0]?.id);
}

export async function setPhase(client: pg.Client, id: number, phase: MovePhase, rows?: number): Promise<void> {
  await client.query(`UPDATE ${TABLE} SET phase = $2, rows = coalesce($3, rows), updated_at = now() WHERE id = $1`, [id, phase, rows ?? null]);
}

export async function deleteMove(client: pg.Client, id: number): Promise<void> {
  await client.query(`DELETE FROM ${TABLE} WHERE id = $1`, [id]);
}
