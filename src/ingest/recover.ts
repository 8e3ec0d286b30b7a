/**
 * `recover`: finishes routed transactions a crash left prepared on data nodes. The commit record
 * decides: where it exists the transaction is committed (COMMIT PREPARED), where it does not and
 * the deciding access-node transaction has ended it is rolled back; one whose deciding transaction
 * is still running is left to its writer. Then commit records no node refers to any more are
 * deleted. Run by `hypershard recover`, by `maintain`, at gateway start, and by a rebalance move
 * on the shard's source before it copies.
 *
 * Order matters: a deciding transaction's status is read before its record, so a record that
 * commits in between is seen (status first "in progress": left alone; then "committed": the
 * record is visible to the next statement).
 */
import type pg from 'pg';
import { errorMessage } from '../errors.js';
import type { Queryable } from '../rewrite/discover.js';
import type { ClusterSpec } from '../spec/schema.js';
import { quoteLiteral } from '../sql/quote.js';
import { IngestCluster, type IngestOptions } from './cluster.js';
import { ALL_COMMIT_RECORDS_SQL, COMMIT_LOG_EXISTS_SQL, COMMIT_RECORDS_SQL, FORGET_COMMITS_SQL, GID_PREFIX, parseGid, XACT_STATUS_SQL } from './commitLog.js';

export type RecoverAction = 'committed' | 'rolled-back' | 'left' | 'failed';

export interface RecoveredTransaction {
  readonly node: string;
  readonly gid: string;
  /** committed (its record exists), rolled-back (none, and its deciding transaction ended), left (still deciding), failed. */
  readonly action: RecoverAction;
  readonly error?: string;
}

export interface RecoverNodeResult {
  readonly node: string;
  readonly reachable: boolean;
  readonly error?: string;
  /** Routed transactions found prepared there. */
  readonly prepared: number;
}

export interface RecoverResult {
  /** Every node answered and every transaction found was finished or is still being decided. */
  readonly ok: boolean;
  readonly transactions: readonly RecoveredTransaction[];
  readonly nodes: readonly RecoverNodeResult[];
  /** Commit records deleted (their transactions are finished everywhere). */
  readonly recordsDeleted: number;
  /** Commit records kept (a participant still prepared, or a node that did not answer). */
  readonly recordsKept: number;
}

export interface RecoverOptions extends Pick<IngestOptions, 'timeoutMs'> {
  /** Report what would be done; change nothing. @default false */
  readonly dryRun?: boolean;
}

/** A data node to resolve on: a connection as the role that prepared (the service role) or a superuser. */
export interface PreparedSource {
  readonly node: string;
  readonly client: pg.Client;
}

const PREPARED_SQL = `SELECT gid FROM pg_catalog.pg_prepared_xacts WHERE database = pg_catalog.current_database() AND gid LIKE ${quoteLiteral(`${GID_PREFIX.replaceAll('_', '\\_')}%`)} ORDER BY gid`;

/**
 * Resolves the routed transactions prepared on `sources`, deciding through `access` (autocommit).
 * Nodes that could not be reached are given in `unreachable` (their records are kept).
 */
export async function resolvePrepared(access: Queryable, sources: readonly PreparedSource[], options: { dryRun?: boolean; unreachable?: readonly RecoverNodeResult[] } = {}): Promise<RecoverResult> {
  const { rows: present } = await access.query<{ present: boolean }>(COMMIT_LOG_EXISTS_SQL);
  const hasLog = present[0]?.present === true;
  // Records before the nodes are read: one present now whose gids are gone below is finished.
  const before = hasLog ? (await access.query<{ gid: string; participants: string[] }>(ALL_COMMIT_RECORDS_SQL)).rows : [];
  const nodes: RecoverNodeResult[] = [...(options.unreachable ?? [])];
  const found: { node: string; client: pg.Client; gid: string }[] = [];
  for (const s of sources) {
    try {
      const { rows } = await s.client.query<{ gid: string }>(PREPARED_SQL);
      for (const r of rows) if (parseGid(r.gid) !== undefined) found.push({ node: s.node, client: s.client, gid: r.gid });
      nodes.push({ node: s.node, reachable: true, prepared: rows.length });
    } catch (error) {
      nodes.push({ node: s.node, reachable: false, error: errorMessage(error), prepared: 0 });
    }
  }
  const prefixes = [...new Set(found.map((f) => (parseGid(f.gid) as NonNullable<ReturnType<typeof parseGid>>).prefix))];
  const xids = [...new Set(found.map((f) => (parseGid(f.gid) as NonNullable<ReturnType<typeof parseGid>>).xid))];
  // Status first, then records (a later statement, so a record committed meanwhile is visible).
  const status = new Map<string, string | null>();
  if (xids.length > 0) for (const r of (await access.query<{ xid: string; status: string | null }>(XACT_STATUS_SQL, [xids])).rows) status.set(r.xid, r.status);
  const recorded = new Set<string>();
  if (prefixes.length > 0 && hasLog) for (const r of (await access.query<{ gid: string }>(COMMIT_RECORDS_SQL, [prefixes])).rows) recorded.add(r.gid);

  const transactions: RecoveredTransaction[] = [];
  const stillPrepared = new Set<string>();
  for (const f of found) {
    const parsed = parseGid(f.gid) as NonNullable<ReturnType<typeof parseGid>>;
    const commit = recorded.has(parsed.prefix);
    if (!commit && status.get(parsed.xid) === 'in progress') {
      transactions.push({ node: f.node, gid: f.gid, action: 'left' });
      stillPrepared.add(parsed.prefix);
      continue;
    }
    const action: RecoverAction = commit ? 'committed' : 'rolled-back';
    if (options.dryRun === true) {
      transactions.push({ node: f.node, gid: f.gid, action });
      stillPrepared.add(parsed.prefix);
      continue;
    }
    try {
      await f.client.query(`${commit ? 'COMMIT' : 'ROLLBACK'} PREPARED ${quoteLiteral(f.gid)}`);
      transactions.push({ node: f.node, gid: f.gid, action });
    } catch (error) {
      if ((error as { code?: string }).code === '42704') {
        transactions.push({ node: f.node, gid: f.gid, action }); // its writer finished it meanwhile
      } else {
        transactions.push({ node: f.node, gid: f.gid, action: 'failed', error: errorMessage(error) });
        stillPrepared.add(parsed.prefix);
      }
    }
  }

  // Records every participant node of which answered and holds none of its gids any more.
  const reachable = new Set(nodes.filter((n) => n.reachable).map((n) => n.node));
  const finished = before.filter((r) => r.participants.every((n) => reachable.has(n)) && !stillPrepared.has(r.gid)).map((r) => r.gid);
  if (finished.length > 0 && options.dryRun !== true) await access.query(FORGET_COMMITS_SQL, [finished]);
  return {
    ok: nodes.every((n) => n.reachable) && transactions.every((t) => t.action !== 'failed'),
    transactions,
    nodes,
    recordsDeleted: options.dryRun === true ? 0 : finished.length,
    recordsKept: before.length - finished.length,
  };
}

/**
 * Resolves every data node of the spec.
 * @throws NodeConnectionError when the access node cannot be reached (nothing can be decided without it).
 */
export async function recover(spec: ClusterSpec, specFile: string, options: RecoverOptions = {}): Promise<RecoverResult> {
  const cluster = await IngestCluster.open(spec, specFile, { ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }), applicationName: 'hypershard-recover' });
  try {
    return await recoverWith(cluster, options);
  } finally {
    await cluster.close();
  }
}

/** recover() with a cluster a process already holds (a gateway at start). */
export async function recoverWith(cluster: IngestCluster, options: { dryRun?: boolean } = {}): Promise<RecoverResult> {
  const access = await cluster.acquireAccess();
  const sources: PreparedSource[] = [];
  const unreachable: RecoverNodeResult[] = [];
  try {
    await Promise.all(
      [...cluster.targets.dataNodes.keys()].map(async (node) => {
        try {
          sources.push({ node, client: await cluster.acquireData(node) });
        } catch (error) {
          unreachable.push({ node, reachable: false, error: errorMessage(error), prepared: 0 });
        }
      }),
    );
    sources.sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
    return await resolvePrepared(access, sources, { ...options, unreachable });
  } finally {
    cluster.releaseAccess(access, true);
    for (const s of sources) cluster.releaseData(s.node, s.client, true);
  }
}
