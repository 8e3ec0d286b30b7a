/**
 * Maintain on one data node, shard by shard: (1) in one transaction, move the default chunk's
 * rows into proper chunks and create chunks ahead; (2) analyze the chunks that received rows;
 * (3) in another transaction, drop expired chunks. A failing step is recorded and the node goes
 * on with the next; the transaction keeps each shard whole.
 */
import { errorMessage } from '../errors.js';
import type { NodeConnection } from '../nodes/connect.js';
import type { Hypertable, QualifiedName, Shard } from '../plan/layout.js';
import { quoteQualified } from '../sql/quote.js';
import { analyzeTables } from './analyze.js';
import { readShardChunks, type CatalogChunk } from './chunkCatalog.js';
import { createChunksAhead } from './createAhead.js';
import { isoTime, type TimeRange } from './ranges.js';
import { moveIntoChunk, readDefaultRows, tableColumns } from './repairDefault.js';
import type { ChunkAction, CreatedChunk, MaintainError, MaintainStep } from './result.js';
import { dropChunks } from './retention.js';
import { inTransaction } from './session.js';
import { planAhead, planRepair, planRetention, type RepairChunk, type ShardSettings } from './shardPlan.js';
import { plural } from '../plural.js';

export interface ShardWork {
  readonly hypertable: Hypertable;
  readonly shard: Shard;
}

export interface DataNodeOutcome {
  readonly created: CreatedChunk[];
  readonly dropped: ChunkAction[];
  readonly rowsMoved: number;
  readonly rowsLeftInDefault: number;
  readonly analyzed: string[];
  readonly errors: MaintainError[];
}

export interface DataNodeOptions {
  readonly dryRun: boolean;
  readonly report: (step: MaintainStep, detail: string) => void;
}

export async function maintainDataNode(connection: NodeConnection, work: readonly ShardWork[], options: DataNodeOptions): Promise<DataNodeOutcome> {
  const outcome: DataNodeOutcome = { created: [], dropped: [], rowsMoved: 0, rowsLeftInDefault: 0, analyzed: [], errors: [] };
  let rowsMoved = 0;
  let rowsLeft = 0;
  for (const item of work) {
    const shard = await maintainShard(connection, item, options, outcome);
    rowsMoved += shard.rowsMoved;
    rowsLeft += shard.rowsLeft;
  }
  return { ...outcome, rowsMoved, rowsLeftInDefault: rowsLeft };
}

async function maintainShard(
  connection: NodeConnection,
  { hypertable: h, shard }: ShardWork,
  options: DataNodeOptions,
  into: DataNodeOutcome,
): Promise<{ rowsMoved: number; rowsLeft: number }> {
  const { client } = connection;
  const hypertable = `${h.table.schema}.${h.table.name}`;
  const label = `${hypertable} shard ${shard.index}`;
  const settings: ShardSettings = { chunkPrefix: shard.chunkPrefix, strideSeconds: h.chunkInterval.seconds };
  const utc = h.columns.find((c) => c.name === h.timeColumn)?.type.base === 'timestamp';
  const action = (table: QualifiedName, range: TimeRange): ChunkAction => ({
    hypertable,
    shard: shard.index,
    chunk: `${table.schema}.${table.name}`,
    from: isoTime(range.from),
    to: isoTime(range.to),
  });
  const fail = (step: MaintainStep, error: unknown): void => {
    into.errors.push({ step, hypertable, shard: shard.index, message: errorMessage(error) });
    options.report(step, `${label}: failed: ${errorMessage(error)}`);
  };

  // 1. Repair the default chunk, then create chunks ahead: one transaction, so the default chunk
  //    is held from reading its rows until the last chunk is attached or created (creating a
  //    chunk scans the default chunk, and fails if a row in its range arrived meanwhile).
  let step: MaintainStep = 'repair';
  const created: CreatedChunk[] = [];
  let moved: { table: QualifiedName; rows: number }[] = [];
  let defaultChunk: QualifiedName | undefined;
  let planned: { table: QualifiedName; bounds: TimeRange; isDefault: boolean }[] = [];
  let rowsLeft = 0;
  try {
    await inTransaction(connection, async () => {
      const before = await readShardChunks(client, [shard.table.name]);
      if (!before.present.has(shard.table.name)) {
        throw new Error(`shard table ${qualifiedName(shard.table)} does not exist on this node (apply the migrations)`);
      }
      // now() is the transaction's start, the same instant create_chunks will see.
      const now = await nodeNow(connection);
      const existing = new Set(before.chunks.map((c) => c.table.name));
      const aheadPlan = planAhead(now, h.chunksAhead, existing, settings);
      defaultChunk = before.chunks.find((c) => c.isDefault)?.table;
      // Nothing to move and nothing to create (most runs): no lock, writers never wait.
      const repair = defaultChunk !== undefined && (aheadPlan.length > 0 || (await hasRows(connection, defaultChunk))) ? await repairDefault(defaultChunk) : [];
      if (moved.length > 0) {
        options.report('repair', `${label}: ${options.dryRun ? 'would move' : 'moved'} ${plural(sum(moved), 'row')} from the default chunk into ${plural(moved.length, 'chunk')}`);
      }

      step = 'ahead';
      const known = new Set([...existing, ...moved.map((m) => m.table.name)]);
      let ahead: { table: QualifiedName; bounds: TimeRange }[];
      if (options.dryRun) {
        ahead = aheadPlan.filter((p) => !known.has(p.name)).map((p) => ({ table: { schema: shard.table.schema, name: p.name }, bounds: p }));
      } else {
        await createChunksAhead(client, { shard: shard.table, chunkPrefix: shard.chunkPrefix, strideSeconds: settings.strideSeconds, ahead: h.chunksAhead, utc });
        // What the function made, read back rather than assumed.
        const after = await readShardChunks(client, [shard.table.name]);
        ahead = after.chunks.filter((c): c is CatalogChunk & { bounds: TimeRange } => !known.has(c.table.name) && c.bounds !== undefined);
      }
      for (const chunk of ahead) created.push({ ...action(chunk.table, chunk.bounds), reason: 'ahead', rows: 0 });
      if (ahead.length > 0) options.report('ahead', `${label}: ${options.dryRun ? 'would create' : 'created'} ${plural(ahead.length, 'chunk')} ahead`);
      planned = [
        ...before.chunks.flatMap((c) => (c.bounds === undefined ? [] : [{ table: c.table, bounds: c.bounds, isDefault: c.isDefault }])),
        ...repair.map((c) => ({ table: { schema: shard.table.schema, name: c.name }, bounds: { from: c.from, to: c.to }, isDefault: false })),
      ];
    });
    into.created.push(...created);
  } catch (error) {
    // The transaction rolled back: nothing of this step happened.
    moved = [];
    fail(step, error);
  }
  const rowsMoved = sum(moved);

  /** Moves the default chunk's rows into chunks of their own (in a dry run, only plans it). */
  async function repairDefault(chunk: QualifiedName): Promise<RepairChunk[]> {
    // Writes to the default chunk wait from here to COMMIT; reads go on.
    if (!options.dryRun) await client.query(`LOCK TABLE ${quoteQualified(chunk.schema, chunk.name)} IN EXCLUSIVE MODE`);
    const rows = await readDefaultRows(client, chunk, h.timeColumn, settings.strideSeconds);
    const plan = planRepair(rows.bins, settings);
    rowsLeft = plan.unmovableRows + rows.infiniteRows;
    const columns = plan.chunks.length === 0 || options.dryRun ? [] : await tableColumns(client, shard.table);
    for (const target of plan.chunks) {
      const table = { schema: shard.table.schema, name: target.name };
      const count = options.dryRun
        ? target.rows
        : await moveIntoChunk(client, { shard: shard.table, defaultChunk: chunk, chunk: table, range: target, timeColumn: h.timeColumn, utc, columns });
      moved.push({ table, rows: count });
      created.push({ ...action(table, target), reason: 'default-rows', rows: count });
    }
    return [...plan.chunks];
  }

  // 2. Statistics for the chunks that received rows and for the default chunk they left.
  if (moved.length > 0 && defaultChunk !== undefined) {
    const tables = [...moved.map((m) => m.table), defaultChunk];
    try {
      if (!options.dryRun) await analyzeTables(client, tables);
      into.analyzed.push(...tables.map(qualifiedName));
    } catch (error) {
      fail('analyze', error);
    }
  }

  // 3. Retention, on what the catalog holds now (including chunks just made for old rows).
  if (h.retention !== undefined) {
    const retention = h.retention.seconds;
    try {
      const dropped = await inTransaction(connection, async () => {
        const now = await nodeNow(connection);
        if (options.dryRun) return planRetention(planned, now, retention);
        const { chunks } = await readShardChunks(client, [shard.table.name]);
        const expired = planRetention(chunks, now, retention);
        await dropChunks(client, expired);
        return expired;
      });
      for (const chunk of dropped) into.dropped.push(action(chunk.table, chunk.bounds));
      if (dropped.length > 0) options.report('retention', `${label}: ${options.dryRun ? 'would drop' : 'dropped'} ${plural(dropped.length, 'expired chunk')}`);
    } catch (error) {
      fail('retention', error);
    }
  }
  return { rowsMoved, rowsLeft };
}

/** The node's clock (the transaction's start), in epoch seconds: chunks follow the server's time. */
async function nodeNow(connection: NodeConnection): Promise<number> {
  const { rows } = await connection.client.query<{ now: number }>('SELECT extract(epoch FROM pg_catalog.now())::float8 AS now');
  const now = rows[0]?.now;
  if (now === undefined) throw new Error('no answer to SELECT now()');
  return now;
}

async function hasRows(connection: NodeConnection, table: QualifiedName): Promise<boolean> {
  const { rows } = await connection.client.query<{ any: boolean }>(`SELECT EXISTS (SELECT FROM ONLY ${quoteQualified(table.schema, table.name)}) AS any`);
  return rows[0]?.any === true;
}

const qualifiedName = (t: QualifiedName): string => `${t.schema}.${t.name}`;
const sum = (moves: readonly { rows: number }[]): number => moves.reduce((a, m) => a + m.rows, 0);
