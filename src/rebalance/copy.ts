/**
 * The copy, on the access node, inside the transaction that ends with the switch: writers routed
 * to the shard wait on an EXCLUSIVE lock of its foreign partition (readers go on), then the rows
 * go from the old foreign partition into the staging foreign table time range by time range (each
 * chunk, then whatever lies outside every chunk), then count and checksum are compared, computed
 * on the source node directly and on the target node inside the copy's own remote transaction.
 */
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { HypershardError } from '../errors.js';
import type { CatalogChunk } from '../maintain/chunkCatalog.js';
import type { ClusterLayout, Hypertable, Shard } from '../plan/layout.js';
import { createLastpointTable, dropLastpointTable } from '../sql/lastpoint.js';
import { derivedRoleGrants, grantsStep } from '../sql/referenceTables.js';
import { quoteIdent, quoteLiteral } from '../sql/quote.js';
import { checksumQuery, columnList, moveNames, qualified } from './names.js';
import { rangeBounds } from './prepare.js';
import { plural } from '../plural.js';

export interface CopyProgress {
  readonly rowsCopied: number;
  readonly totalRows: number;
  readonly rowsPerSecond: number;
}

export interface Checksum {
  readonly rows: number;
  readonly checksum: string;
}

/** Count and checksum differ between the copies: nothing was switched. */
export class MoveVerifyError extends HypershardError {
  constructor(message: string) {
    super('MOVE_VERIFY', message);
  }
}

/** WHERE clauses that together cover every time exactly once: each chunk, then the gaps between and around them. */
export function copyRanges(timeColumn: string, chunks: readonly CatalogChunk[]): string[] {
  const col = quoteIdent(timeColumn);
  const ranges = chunks
    .filter((c) => !c.isDefault && c.bounds !== undefined && rangeBounds(c) !== undefined)
    .map((c) => ({ from: c.bounds?.from ?? 0, to: c.bounds?.to ?? 0, text: rangeBounds(c) as [string, string] }))
    .sort((a, b) => a.from - b.from);
  const clauses = ranges.map((r) => `${col} >= ${quoteLiteral(r.text[0])} AND ${col} < ${quoteLiteral(r.text[1])}`);
  // The complement of the chunks: before the first, the gaps, after the last.
  let previous: string | undefined;
  let previousTo = Number.NEGATIVE_INFINITY;
  for (const r of ranges) {
    if (r.from > previousTo) clauses.push(previous === undefined ? `${col} < ${quoteLiteral(r.text[0])}` : `${col} >= ${quoteLiteral(previous)} AND ${col} < ${quoteLiteral(r.text[0])}`);
    previous = r.text[1];
    previousTo = r.to;
  }
  clauses.push(previous === undefined ? 'true' : `${col} >= ${quoteLiteral(previous)}`);
  return clauses;
}

export async function readChecksum(client: pg.Client, sql: string): Promise<Checksum> {
  const { rows } = await client.query<{ rows: string; checksum: string }>(sql);
  return { rows: Number(rows[0]?.rows ?? 0), checksum: rows[0]?.checksum ?? '' };
}

/**
 * Runs inside the caller's transaction on `access`. Returns the rows copied.
 * @throws MoveVerifyError when the copies differ; any error from a node or from onProgress.
 */
export async function copyShard(
  access: pg.Client,
  source: pg.Client,
  h: Hypertable,
  shard: Shard,
  chunks: readonly CatalogChunk[],
  onProgress: (p: CopyProgress) => void,
): Promise<Checksum> {
  const names = moveNames(shard);
  // LOCK TABLE refuses foreign tables. DISABLE TRIGGER takes SHARE ROW EXCLUSIVE, which waits for
  // and then blocks writers (ROW EXCLUSIVE) and lets readers (ACCESS SHARE) go on; it changes
  // nothing that lasts: the old foreign table is dropped after the switch, or the change rolls back.
  await access.query(`ALTER FOREIGN TABLE ${qualified(shard.table)} DISABLE TRIGGER USER`);
  const before = await readChecksum(source, checksumQuery(h, shard.table));
  const columns = columnList(h.columns);
  const started = performance.now();
  let copied = 0;
  onProgress({ rowsCopied: 0, totalRows: before.rows, rowsPerSecond: 0 });
  for (const where of copyRanges(h.timeColumn, chunks)) {
    const result = await access.query(`INSERT INTO ${qualified(names.staging)} (${columns}) SELECT ${columns} FROM ${qualified(shard.table)} WHERE ${where}`);
    copied += result.rowCount ?? 0;
    onProgress({ rowsCopied: copied, totalRows: before.rows, rowsPerSecond: Math.round(copied / Math.max((performance.now() - started) / 1000, 0.001)) });
  }
  // Same remote session as the inserts (same server and user mapping): it sees the rows not yet committed.
  const after = await readChecksum(access, `SELECT "rows", checksum FROM ${qualified(names.check)}`);
  if (after.rows !== before.rows || after.checksum !== before.checksum || copied !== before.rows) {
    throw new MoveVerifyError(
      `shard ${shard.index} of ${h.table.schema}.${h.table.name}: the copy differs from the source (${plural(before.rows, 'row')}, checksum ${before.checksum} on the source; ${plural(after.rows, 'row')}, checksum ${after.checksum} on the target; ${copied} copied)`,
    );
  }
  return before;
}

/**
 * In the same transaction: the staging foreign table takes the old foreign partition's place, and
 * the shard's lastpoint foreign table (if any) is made again on the target's server.
 * DETACH takes ACCESS EXCLUSIVE on the hypertable, so readers wait from here to COMMIT.
 */
export async function switchShard(access: pg.Client, layout: ClusterLayout, h: Hypertable, shard: Shard, server: string): Promise<void> {
  const names = moveNames(shard);
  const parent = qualified(h.table);
  // The lastpoint foreign table reads the view beside the new copy from the same commit on.
  if (shard.lastpoint !== undefined) {
    const moved = { ...shard, lastpoint: shard.lastpoint };
    await access.query(dropLastpointTable(h, moved).sql);
    await access.query(createLastpointTable(h, moved, server).sql);
    const grants = derivedRoleGrants(layout, 'access').tables.filter((g) => g.table.schema === shard.lastpoint?.schema && g.table.name === shard.lastpoint.name);
    for (const s of grantsStep(grants, []).up) await access.query(s.sql);
  }
  await access.query(`ALTER TABLE ${parent} DETACH PARTITION ${qualified(shard.table)}`);
  await access.query(`ALTER FOREIGN TABLE ${qualified(shard.table)} RENAME TO ${quoteIdent(names.old.name)}`);
  await access.query(`ALTER FOREIGN TABLE ${qualified(names.staging)} RENAME TO ${quoteIdent(shard.table.name)}`);
  await access.query(`ALTER TABLE ${parent} ATTACH PARTITION ${qualified(shard.table)} FOR VALUES WITH (MODULUS ${shard.modulus}, REMAINDER ${shard.remainder})`);
  await access.query(`DROP FOREIGN TABLE ${qualified(names.check)}`);
}
