/** Names a move uses besides the shard's own: all derived from the shard table's name. */
import { INTERNAL_SCHEMA, type Column, type Hypertable, type QualifiedName, type Shard } from '../plan/layout.js';
import { derivedName } from '../plan/names.js';
import { quoteIdent, quoteQualified } from '../sql/quote.js';

export interface MoveNames {
  /** Access node: the foreign table on the target's shard, attached in place of the old one at the switch. */
  readonly staging: QualifiedName;
  /** Access node: the old foreign partition after the switch, until cleanup. */
  readonly old: QualifiedName;
  /** Target data node: a view with the shard's count and checksum; access node: a foreign table on it. */
  readonly check: QualifiedName;
}

export function moveNames(shard: Shard): MoveNames {
  const q = (suffix: string): QualifiedName => ({ schema: INTERNAL_SCHEMA, name: derivedName(shard.table.name, suffix) });
  return { staging: q('_move'), old: q('_old'), check: q('_check') };
}

export const qualified = (t: QualifiedName): string => quoteQualified(t.schema, t.name);

/** `"a", "b", …` in the spec's column order. */
export function columnList(columns: readonly Column[]): string {
  return columns.map((c) => quoteIdent(c.name)).join(', ');
}

/**
 * Row count and an order-independent content checksum of a table, the same text on every node:
 * the sum (numeric, so it never overflows) of a 64-bit hash of each row's text form in the spec's
 * column order. Sessions that compute it use the text settings postgres_fdw's sessions use.
 */
export function checksumQuery(h: Hypertable, table: QualifiedName): string {
  return `SELECT count(*)::bigint AS rows, coalesce(sum(pg_catalog.hashtextextended(ROW(${columnList(h.columns)})::text, 0)::numeric), 0)::text AS checksum FROM ${qualified(table)}`;
}

/** What postgres_fdw sets on its remote sessions, so values read back as the same text on every node. */
export const TEXT_SETTINGS = `SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3`;
