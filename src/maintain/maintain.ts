/**
 * `maintain`: per data node, in parallel, move rows out of default chunks, keep chunks ahead of
 * now and drop expired ones; then, on the access node, copy again the reference-table copies that
 * differ from the access node's tables, and refresh the statistics of hypertables and copies.
 * Every node is claimed first with the maintain advisory lock and held until the run ends, so two
 * runs never interleave on a node; a node another run holds is reported `skipped`. A node that
 * fails is reported and the others go on: this never throws for a node.
 */
import { performance } from 'node:perf_hooks';
import { errorMessage } from '../errors.js';
import { recover, type RecoverResult } from '../ingest/recover.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, type NodeConnection } from '../nodes/connect.js';
import { nodeTargets, type NodeTarget } from '../nodes/targets.js';
import { planLayout, type ClusterLayout } from '../plan/layout.js';
import { syncReferenceTables, type ReferenceSyncResult } from '../reference/sync.js';
import type { ClusterSpec } from '../spec/schema.js';
import { analyzeTables, existingTables } from './analyze.js';
import { maintainDataNode, type ShardWork } from './dataNode.js';
import { releaseMaintainLock, tryMaintainLock } from './lock.js';
import type { MaintainError, MaintainNodeResult, MaintainProgress, MaintainResult, MaintainStep } from './result.js';
import { openSession } from './session.js';
import { plural } from '../plural.js';

export interface MaintainOptions {
  /** Report what would be done; change nothing. @default false */
  readonly dryRun?: boolean;
  /** Bound on reaching each node and logging in. @default 10000 */
  readonly timeoutMs?: number;
  /** Bound on waiting for a table lock (a chunk or shard busy under a long query); that step then fails. @default 10000 */
  readonly lockTimeoutMs?: number;
  /** Called as work happens on each node (the library never prints). */
  readonly onProgress?: (event: MaintainProgress) => void;
}

export const SKIPPED_REASON = 'another maintain is running';

/** recover(), reported instead of thrown: maintain goes on with the rest. */
async function recoverPrepared(spec: ClusterSpec, specFile: string, options: MaintainOptions): Promise<RecoverResult | { readonly error: string }> {
  try {
    return await recover(spec, specFile, { dryRun: options.dryRun === true, ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) });
  } catch (error) {
    return { error: errorMessage(error) };
  }
}

/** A node claimed for this run, or the result it already has. */
type Claim = Claimed | { readonly target: NodeTarget; readonly result: MaintainNodeResult };

interface Claimed {
  readonly target: NodeTarget;
  readonly connection: NodeConnection;
  /** Time spent connecting and taking the lock, counted in the node's duration. */
  readonly claimMs: number;
}

/**
 * @throws SpecError or SecretError before any node is contacted; after that, results per node.
 */
export async function maintain(spec: ClusterSpec, specFile: string, options: MaintainOptions = {}): Promise<MaintainResult> {
  const layout = planLayout(spec);
  const targets = await nodeTargets(spec, specFile);
  const dryRun = options.dryRun === true;
  const started = performance.now();
  const report = (node: string) => (step: MaintainProgress['step'], detail: string): void => options.onProgress?.({ node, step, detail });
  // First, routed transactions a stopped writer left prepared: they hold locks chunks need.
  const recovered = await recoverPrepared(spec, specFile, options);
  const claims = await Promise.all(targets.map((t) => claim(t, options, report(t.name))));
  try {
    const data = await Promise.all(
      claims.filter((c) => c.target.role === 'data').map((c) => ('result' in c ? Promise.resolve(c.result) : runNode(c, () => maintainDataNode(c.connection, shardsOn(layout, c.target.name), { dryRun, report: report(c.target.name) })))),
    );
    // After the data nodes: statistics then reflect the rows retention dropped.
    let reference: ReferenceSyncResult | undefined;
    const access = claims
      .filter((c) => c.target.role === 'access')
      .map((c) =>
        'result' in c
          ? Promise.resolve(c.result)
          : runNode(c, async () => {
              // Copies first, so the statistics are those of the repaired copies.
              reference = dryRun || layout.referenceTables.length === 0 ? undefined : await repairCopies(spec, specFile, options, report(c.target.name));
              const analyzed = await analyzeAccessNode(c.connection, layout, dryRun);
              const failed = (reference?.nodes ?? []).filter((n) => n.status === 'failed');
              return { ...analyzed, errors: [...failed.map((n): MaintainError => ({ step: 'reference', message: `copies on ${n.node}: ${n.error ?? 'failed'}` })), ...analyzed.errors] };
            }),
      );
    const nodes = [...data, ...(await Promise.all(access))];
    for (const n of nodes) if (n.status !== 'skipped') report(n.node)('done', `${n.status} in ${n.durationMs} ms`);
    return {
      ok: nodes.every((n) => n.status !== 'failed') && !('error' in recovered) && recovered.ok,
      dryRun,
      nodes,
      ...(reference === undefined ? {} : { reference }),
      recovered,
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    await Promise.all(
      claims.map(async (c) => {
        if (!('connection' in c)) return;
        await releaseMaintainLock(c.connection.client).catch(() => undefined);
        await c.connection.client.end().catch(() => undefined);
      }),
    );
  }
}

async function claim(target: NodeTarget, options: MaintainOptions, report: (step: MaintainProgress['step'], detail: string) => void): Promise<Claim> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  let connection: NodeConnection;
  try {
    connection = await openSession(target, {
      timeoutMs: options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      lockTimeoutMs: options.lockTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      readOnly: options.dryRun === true,
    });
  } catch (error) {
    report('connect', `failed: ${errorMessage(error)}`);
    return { target, result: nodeResult(target, 'failed', elapsed(), { errors: [{ step: 'connect', message: errorMessage(error) }] }) };
  }
  try {
    if (!(await tryMaintainLock(connection.client))) {
      await connection.client.end().catch(() => undefined);
      report('skipped', SKIPPED_REASON);
      return { target, result: nodeResult(target, 'skipped', elapsed(), { reason: SKIPPED_REASON }) };
    }
  } catch (error) {
    await connection.client.end().catch(() => undefined);
    return { target, result: nodeResult(target, 'failed', elapsed(), { errors: [{ step: 'lock', message: errorMessage(error) }] }) };
  }
  report('lock', 'holds the maintain lock');
  return { target, connection, claimMs: performance.now() - started };
}

type NodeWork = Omit<MaintainNodeResult, 'node' | 'role' | 'status' | 'reason' | 'durationMs'>;

async function runNode(c: Claimed, work: () => Promise<NodeWork>): Promise<MaintainNodeResult> {
  const started = performance.now();
  const elapsed = (): number => Math.round(c.claimMs + performance.now() - started);
  try {
    const done = await work();
    return nodeResult(c.target, done.errors.length === 0 ? 'ok' : 'failed', elapsed(), done);
  } catch (error) {
    // Steps record their own failures; this is for what is outside any step (a dropped connection).
    return nodeResult(c.target, 'failed', elapsed(), { errors: [{ step: 'connect', message: errorMessage(error) }] });
  }
}

/**
 * Reference tables' copies compared with the access node's tables (count and checksum), and those
 * that differ copied again: a write that bypassed the triggers is undone within a maintain period.
 */
async function repairCopies(spec: ClusterSpec, specFile: string, options: MaintainOptions, report: (step: MaintainProgress['step'], detail: string) => void): Promise<ReferenceSyncResult> {
  const result = await syncReferenceTables(spec, specFile, {
    onlyIfDifferent: true,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    ...(options.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: options.lockTimeoutMs }),
  });
  for (const node of result.nodes) {
    const copied = node.tables.filter((t) => t.copied);
    if (node.status === 'failed') report('reference', `copies of reference tables on ${node.node} could not be checked: ${node.error ?? ''}`);
    else if (copied.length === 0) report('reference', `copies of reference tables on ${node.node} equal the access node's`);
    else report('reference', `copies on ${node.node} differed and were copied again: ${copied.map((t) => `${t.table} (${plural(t.rows, 'row')})`).join(', ')}`);
  }
  return result;
}

async function analyzeAccessNode({ client }: NodeConnection, layout: ClusterLayout, dryRun: boolean): Promise<NodeWork> {
  // Autovacuum analyzes the reference tables themselves, never their copies (foreign tables),
  // whose statistics decide whether a join with a shard is pushed to the data node.
  const wanted = [
    ...layout.hypertables.map((h) => ({ table: h.table, what: 'hypertable' })),
    ...layout.referenceTables.flatMap((r) => r.copies.map((c) => ({ table: c.table, what: `copy of reference table ${r.table.schema}.${r.table.name} on ${c.server}` }))),
    // Node views' foreign tables are no partition: analyzing the hypertable leaves them without
    // statistics, and the planner then keeps a LIMIT or sort on the access node.
    ...layout.hypertables.flatMap((h) => (h.nodeViews ?? []).map((v) => ({ table: v.view, what: `node view of ${h.table.schema}.${h.table.name} on ${v.dataNode}` }))),
  ];
  const tables = wanted.map((w) => w.table);
  const present = await existingTables(client, tables);
  const errors: MaintainError[] = wanted
    .filter((w) => !present.includes(w.table))
    .map(({ table: t, what }) => ({ step: 'analyze' as MaintainStep, hypertable: `${t.schema}.${t.name}`, message: `${what} ${t.schema}.${t.name} does not exist on the access node (apply the migrations)` }));
  const analyzed: string[] = [];
  for (const table of present) {
    const name = `${table.schema}.${table.name}`;
    try {
      if (!dryRun) await analyzeTables(client, [table]);
      analyzed.push(name);
    } catch (error) {
      errors.push({ step: 'analyze', hypertable: name, message: errorMessage(error) });
    }
  }
  return { created: [], dropped: [], rowsMoved: 0, rowsLeftInDefault: 0, analyzed, errors };
}

function shardsOn(layout: ClusterLayout, node: string): ShardWork[] {
  return layout.hypertables.flatMap((hypertable) => hypertable.shards.filter((s) => s.dataNode === node).map((shard) => ({ hypertable, shard })));
}

function nodeResult(target: NodeTarget, status: MaintainNodeResult['status'], durationMs: number, rest: Partial<NodeWork> & { reason?: string }): MaintainNodeResult {
  return {
    node: target.name,
    role: target.role,
    status,
    ...(rest.reason === undefined ? {} : { reason: rest.reason }),
    created: rest.created ?? [],
    dropped: rest.dropped ?? [],
    rowsMoved: rest.rowsMoved ?? 0,
    rowsLeftInDefault: rest.rowsLeftInDefault ?? 0,
    analyzed: rest.analyzed ?? [],
    errors: rest.errors ?? [],
    durationMs,
  };
}
