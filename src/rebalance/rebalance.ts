/**
 * `rebalance`: moves shards between data nodes so that their bytes are even. Per move: the target
 * gets the shard's tables, the access node a FDW server and a staging foreign table; then one
 * access-node transaction locks out writers to the shard, copies it chunk by chunk, verifies count
 * and checksum on both nodes and switches the foreign partition; after COMMIT the old copy is
 * dropped. Every phase is journaled in `_hypershard.moves`, so an interrupted move is rolled back
 * (or finished, when it had switched) by the next run. Finally the spec file and a new snapshot
 * record the placement, so generate / apply / check agree with the cluster.
 */
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { HypershardError, UnknownNodeError, errorMessage } from '../errors.js';
import { readShardChunks } from '../maintain/chunkCatalog.js';
import { checkMigrationsCurrent, defaultMigrationsDir } from '../migrations/files.js';
import { connectNode, DEFAULT_CONNECT_TIMEOUT_MS, type NodeConnection } from '../nodes/connect.js';
import { clusterTargets } from '../nodes/targets.js';
import { planLayout, type ClusterLayout, type Hypertable, type Shard } from '../plan/layout.js';
import { fdwServerName } from '../plan/names.js';
import { serverStep } from '../sql/accessNode.js';
import type { ClusterSpec } from '../spec/schema.js';
import { finishMove, liveServer, rollBackMove } from './cleanup.js';
import { resolvePrepared } from '../ingest/recover.js';
import { shardLocksSql } from '../route/lock.js';
import { copyShard, switchShard } from './copy.js';
import { deleteMove, ensureJournal, setPhase, startMove, unfinishedMoves, type JournalRow } from './journal.js';
import { TEXT_SETTINGS } from './names.js';
import { dropNodeViews, makeNodeViews, nodeViewChange, switchNodeTables } from './nodeViews.js';
import { measureShards, planDrain, planMoves } from './plan.js';
import { prepareAccess, prepareTarget } from './prepare.js';
import type { MoveResult, NodeBalance, PlannedMove, RebalanceProgress, RebalanceResult, RecoveredMove, ShardLoad } from './result.js';
import { recordPlacement, serverNode, withPlacement, type Placement } from './specFile.js';

export interface RebalanceOptions {
  /** Plan and report the moves; change nothing. @default false */
  readonly dryRun?: boolean;
  /** @default `migrations/` next to the spec */
  readonly migrationsDir?: string;
  /** Bound on reaching each node. @default 10000 */
  readonly timeoutMs?: number;
  /** Bound on waiting for a lock (the shard's writers, the hypertable's readers at the switch). @default 10000 */
  readonly lockTimeoutMs?: number;
  /** Called as each move progresses; an error thrown here fails the move (its transaction rolls back). */
  readonly onProgress?: (event: RebalanceProgress) => void;
  /** Move every shard off this data node instead of evening out (`node drain`). */
  readonly drain?: string;
}

/** Key of the session advisory lock a run holds on the access node: one rebalance at a time. */
const REBALANCE_LOCK = "pg_catalog.hashtext('hypershard-rebalance')";

class RebalanceBusyError extends HypershardError {
  constructor() {
    super('REBALANCE_BUSY', 'another rebalance is running on this cluster');
  }
}

interface Session {
  readonly journal: pg.Client;
  readonly access: pg.Client;
  readonly data: ReadonlyMap<string, pg.Client>;
}

/**
 * @throws SpecError, SecretError or MigrationStateError (the spec is not generated yet) before any
 * node is contacted; NodeConnectionError when a node cannot be reached. After that, a result per move.
 */
export async function rebalance(spec: ClusterSpec, specFile: string, options: RebalanceOptions = {}): Promise<RebalanceResult> {
  const started = performance.now();
  const dryRun = options.dryRun === true;
  const migrationsDir = options.migrationsDir ?? defaultMigrationsDir(specFile);
  const dataNodes = spec.dataNodes.map((n) => n.name);
  if (options.drain !== undefined && !dataNodes.includes(options.drain)) throw new UnknownNodeError([options.drain], dataNodes);
  if (options.drain !== undefined && dataNodes.length < 2) throw new HypershardError('USAGE', `cannot drain ${options.drain}: it is the only data node`);
  await checkMigrationsCurrent(spec, migrationsDir);
  const { targets, secrets: { servicePassword } } = await clusterTargets(spec, specFile);
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const lockTimeoutMs = options.lockTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const accessTarget = targets.find((t) => t.role === 'access');
  if (accessTarget === undefined) throw new TypeError('a spec has an access node');

  const connections: NodeConnection[] = [];
  const open = async (target: (typeof targets)[number]): Promise<pg.Client> => {
    const c = await connectNode(target, { timeoutMs, readOnly: dryRun });
    connections.push(c);
    // A backend that dies between queries (terminated, node restarted) must fail the next query, not the process.
    c.client.on('error', () => undefined);
    await c.client.query(`${TEXT_SETTINGS}; SET lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
    return c.client;
  };
  try {
    const journal = await open(accessTarget);
    const access = await open(accessTarget);
    const data = new Map<string, pg.Client>();
    for (const t of targets.filter((x) => x.role === 'data')) data.set(t.name, await open(t));
    const session: Session = { journal, access, data };
    const { rows: locked } = await journal.query<{ ok: boolean }>(`SELECT pg_catalog.pg_try_advisory_lock(${REBALANCE_LOCK}) AS ok`);
    if (locked[0]?.ok !== true) throw new RebalanceBusyError();

    const recovered: RecoveredMove[] = [];
    if (!dryRun) {
      await ensureJournal(journal);
      for (const row of await unfinishedMoves(journal)) recovered.push(await recover(session, spec, row));
    }
    // Where the shards are now (an interrupted run may have switched some before recording them).
    let placement = await readPlacement(access, spec, planLayout(spec));
    const current = withPlacement(spec, placement);
    const layout = planLayout(current);
    const before = await measureAll(session, layout);
    const plan = options.drain === undefined ? planMoves(before, layout.dataNodes) : planDrain(before, options.drain, layout.dataNodes);

    const moves: MoveResult[] = [];
    let failed = recovered.some((r) => r.action === 'failed');
    for (const move of plan.moves) {
      if (dryRun) {
        moves.push({ ...move, status: 'would-move', rows: 0, rowsPerSecond: 0, switchMs: 0, durationMs: 0 });
        continue;
      }
      if (failed) {
        moves.push({ ...move, status: 'not-run', rows: 0, rowsPerSecond: 0, switchMs: 0, durationMs: 0 });
        continue;
      }
      const result = await moveShard(session, current, move, servicePassword, options.onProgress);
      moves.push(result);
      if (result.status === 'failed') failed = true;
    }

    let written: { specWritten: boolean; snapshot: string | null } = { specWritten: false, snapshot: null };
    let serversDropped: string[] = [];
    let after = before;
    if (!dryRun) {
      // On the journal's session: a move that failed may have lost the other one.
      placement = await readPlacement(journal, spec, layout);
      const finalLayout = planLayout(withPlacement(spec, placement));
      written = await recordPlacement(specFile, migrationsDir, placement);
      serversDropped = await dropUnusedServers(journal, planLayout(spec), finalLayout);
      after = await measureAll(session, finalLayout).catch((error: unknown) => {
        // A data node lost during a move (the move's result names it): its sizes as measured before, where the shards are now.
        if (!failed) throw error;
        const owner = new Map(finalLayout.hypertables.flatMap((h) => h.shards.map((s) => [`${h.table.schema}.${h.table.name}\u0000${s.index}`, s.dataNode] as [string, string])));
        return before.map((l) => ({ ...l, dataNode: owner.get(`${l.hypertable}\u0000${l.shard}`) ?? l.dataNode }));
      });
    } else {
      const planned = new Map(plan.moves.map((m) => [`${m.hypertable}\u0000${m.shard}`, m.target]));
      after = before.map((l) => ({ ...l, dataNode: planned.get(`${l.hypertable}\u0000${l.shard}`) ?? l.dataNode }));
    }
    return {
      ok: !failed,
      dryRun,
      measure: plan.measure,
      recovered,
      moves,
      nodes: balance(layout.dataNodes, before, after),
      specWritten: written.specWritten,
      snapshot: written.snapshot,
      serversDropped,
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    await Promise.all(connections.map((c) => c.client.end().catch(() => undefined)));
  }
}

function findShard(layout: ClusterLayout, hypertable: string, index: number): { h: Hypertable; shard: Shard } {
  const h = layout.hypertables.find((x) => `${x.table.schema}.${x.table.name}` === hypertable);
  const shard = h?.shards[index];
  if (h === undefined || shard === undefined) throw new HypershardError('REBALANCE_STATE', `the journal names shard ${index} of ${hypertable}, which the spec does not have`);
  return { h, shard };
}

async function recover(session: Session, spec: ClusterSpec, row: JournalRow): Promise<RecoveredMove> {
  const base = { hypertable: row.hypertable, shard: row.shard, source: row.source, target: row.target, phase: row.phase };
  try {
    const { h, shard } = findShard(planLayout(spec), row.hypertable, row.shard);
    const source = dataClient(session, row.source);
    const target = dataClient(session, row.target);
    // Node views follow where the hypertable's other shards are now (this run's earlier moves included).
    const now = await livePlacement(session, spec, row.hypertable, row.shard);
    const views = nodeViewChange(now.h, now.shard, row.source, row.target);
    const data = (node: string): pg.Client => dataClient(session, node);
    // The journal is written after COMMIT: a switch that committed may still say `copying`.
    const live = await liveServer(session.access, shard);
    const switched = live !== undefined && serverNode(spec, shard.index, live) === row.target;
    if (row.phase === 'switched' || switched) {
      if (!switched) throw new HypershardError('REBALANCE_STATE', `the journal says shard ${row.shard} of ${row.hypertable} switched to ${row.target}, but the access node reads it from ${live ?? 'nowhere'}; nothing was dropped`);
      await dropNodeViews(data, h, views.gone);
      await finishMove(session.access, source, target, h, shard);
      await setPhase(session.journal, row.id, 'cleaned');
      return { ...base, action: 'cleaned-up' };
    }
    await dropNodeViews(data, h, views.made);
    await rollBackMove(session.access, target, h, shard);
    await deleteMove(session.journal, row.id);
    return { ...base, action: 'rolled-back' };
  } catch (error) {
    return { ...base, action: 'failed', error: errorMessage(error) };
  }
}

/** The hypertable and shard as placed on the access node now (node views are named by these sets). */
async function livePlacement(session: Session, spec: ClusterSpec, hypertable: string, index: number): Promise<{ h: Hypertable; shard: Shard }> {
  return findShard(planLayout(withPlacement(spec, await readPlacement(session.access, spec, planLayout(spec)))), hypertable, index);
}

function dataClient(session: Session, node: string): pg.Client {
  const client = session.data.get(node);
  if (client === undefined) throw new HypershardError('REBALANCE_STATE', `data node ${node} is not in the spec`);
  return client;
}

async function moveShard(session: Session, spec: ClusterSpec, move: PlannedMove, servicePassword: string, onProgress: RebalanceOptions['onProgress']): Promise<MoveResult> {
  const started = performance.now();
  const layout = planLayout(spec);
  const { h, shard } = findShard(layout, move.hypertable, move.shard);
  const moved = withPlacement(spec, new Map([[h.table.name, new Map([[shard.index, move.target]])]]));
  const targetServer = planLayout(moved).servers.find((s) => s.name === fdwServerName(move.target, shard.index));
  let phase: RebalanceProgress['phase'] = 'prepare';
  let rows = 0;
  let rowsPerSecond = 0;
  let switchMs = 0;
  const report = (p: { rowsCopied: number; totalRows: number; rowsPerSecond: number }): void =>
    onProgress?.({ hypertable: move.hypertable, shard: move.shard, source: move.source, target: move.target, phase, ...p });
  const done = (extra: Partial<MoveResult>): MoveResult => ({ ...move, status: 'moved', rows, rowsPerSecond, switchMs, durationMs: Math.round(performance.now() - started), ...extra });
  let id: number | undefined;
  try {
    if (targetServer === undefined) throw new TypeError(`no FDW server for ${move.target}, shard ${shard.index}`);
    const source = dataClient(session, move.source);
    const target = dataClient(session, move.target);
    report({ rowsCopied: 0, totalRows: 0, rowsPerSecond: 0 });
    const chunks = (await readShardChunks(source, [shard.table.name])).chunks;
    id = await startMove(session.journal, move);
    await prepareTarget(target, layout, h, shard, move.target, chunks);
    await prepareAccess(session.access, layout, h, shard, targetServer, servicePassword);
    // Where the other shards are now: this run's earlier moves changed the nodes' sets.
    const now = await livePlacement(session, spec, move.hypertable, move.shard);
    const views = nodeViewChange(now.h, now.shard, move.source, move.target);
    const data = (node: string): pg.Client => dataClient(session, node);
    await makeNodeViews(data, views, layout.serviceRole);

    phase = 'copy';
    const { access } = session;
    await access.query('BEGIN');
    try {
      await lockOutRoutedWriters(session, h, shard, move.source, source);
      const copied = await copyShard(access, source, h, shard, chunks, (p) => {
        rows = p.rowsCopied;
        rowsPerSecond = p.rowsPerSecond;
        report(p);
      });
      rows = copied.rows;
      phase = 'switch';
      report({ rowsCopied: rows, totalRows: rows, rowsPerSecond });
      const switchStarted = performance.now();
      await switchShard(access, layout, h, shard, targetServer.name);
      await switchNodeTables(access, layout, views);
      await access.query('COMMIT');
      switchMs = Math.round(performance.now() - switchStarted);
    } catch (error) {
      await access.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    await setPhase(session.journal, id, 'switched', rows);

    phase = 'cleanup';
    report({ rowsCopied: rows, totalRows: rows, rowsPerSecond });
    await dropNodeViews(data, h, views.gone);
    await finishMove(access, source, target, h, shard);
    await setPhase(session.journal, id, 'cleaned');
    return done({});
  } catch (error) {
    // Left in the journal: the next run rolls a `copying` move back, or finishes a `switched` one.
    return done({ status: 'failed', phase, error: errorMessage(error) });
  }
}

/**
 * In the copy's transaction, before anything of the shard is read: the shard's routed-write lock
 * exclusively (src/route/lock.ts; writers that hold it finish first, new ones wait for the switch
 * and then write to the new place), then routed transactions recorded as committed but not yet
 * committed on the source are finished, so the copy sees their rows.
 */
async function lockOutRoutedWriters(session: Session, h: Hypertable, shard: Shard, node: string, source: pg.Client): Promise<void> {
  try {
    await session.access.query(shardLocksSql(h.table, [shard.remainder], 'exclusive'));
  } catch (error) {
    if ((error as { code?: string }).code === '55P03') throw new HypershardError('REBALANCE_BUSY', `routed writes (a load, the gateway) kept writing shard ${shard.index} past the lock timeout; try again`, { cause: error });
    throw error;
  }
  const resolved = await resolvePrepared(session.journal, [{ node, client: source }]);
  const failed = resolved.transactions.filter((t) => t.action === 'failed');
  if (failed.length > 0) {
    throw new HypershardError('REBALANCE_STATE', `routed transactions prepared on ${node} could not be finished (${failed.map((t) => `${t.gid}: ${t.error ?? ''}`).join('; ')}); run hypershard recover, then rebalance again`);
  }
}



/** Where the access node reads each shard from: the data node of its foreign partition's server. */
async function readPlacement(access: pg.Client, spec: ClusterSpec, layout: ClusterLayout): Promise<Placement> {
  const placement = new Map<string, Map<number, string>>();
  for (const h of layout.hypertables) {
    const shards = new Map<number, string>();
    for (const shard of h.shards) {
      const live = await liveServer(access, shard);
      const node = live === undefined ? undefined : serverNode(spec, shard.index, live);
      shards.set(shard.index, node ?? shard.dataNode);
    }
    placement.set(h.table.name, shards);
  }
  return placement;
}

async function measureAll(session: Session, layout: ClusterLayout): Promise<ShardLoad[]> {
  const loads = await Promise.all(layout.dataNodes.map((node) => measureShards(dataClient(session, node), layout, node)));
  return loads.flat();
}

function balance(nodes: readonly string[], before: readonly ShardLoad[], after: readonly ShardLoad[]): NodeBalance[] {
  const on = (loads: readonly ShardLoad[], node: string): ShardLoad[] => loads.filter((l) => l.dataNode === node);
  const bytes = (loads: readonly ShardLoad[]): number => loads.reduce((a, l) => a + l.bytes, 0);
  return nodes.map((node) => ({
    node,
    shardsBefore: on(before, node).length,
    shardsAfter: on(after, node).length,
    bytesBefore: bytes(on(before, node)),
    bytesAfter: bytes(on(after, node)),
  }));
}

/** FDW servers of the old layout that no shard uses any more (a server still used by a table is kept). */
async function dropUnusedServers(access: pg.Client, before: ClusterLayout, after: ClusterLayout): Promise<string[]> {
  const keep = new Set(after.servers.map((s) => s.name));
  const dropped: string[] = [];
  for (const server of before.servers.filter((s) => !keep.has(s.name))) {
    const { rows } = await access.query<{ used: boolean; present: boolean }>(
      `SELECT EXISTS (SELECT FROM pg_catalog.pg_foreign_table ft JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver WHERE s.srvname = $1) AS used,
              EXISTS (SELECT FROM pg_catalog.pg_foreign_server WHERE srvname = $1) AS present`,
      [server.name],
    );
    const row = rows[0];
    if (row === undefined || row.used || !row.present) continue;
    await access.query('BEGIN');
    try {
      for (const s of serverStep(server, after.serviceRole).down) await access.query(s.sql);
      await access.query('COMMIT');
      dropped.push(server.name);
    } catch {
      await access.query('ROLLBACK').catch(() => undefined);
    }
  }
  return dropped;
}
