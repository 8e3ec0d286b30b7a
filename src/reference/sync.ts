/**
 * Resync: copies every reference table from the access node to data nodes again, for a copy that
 * was changed behind the access node's back (a write on the data node, a restore, writes made with
 * `session_replication_role = replica`, which fires no trigger), or a commit that reached some
 * nodes only (postgres_fdw commits node by node, without two-phase commit).
 *
 * Per data node, one access-node transaction: every reference table is locked against writers
 * (`SHARE`: writes wait, reads of the access node's table go on), then each copy is emptied and
 * filled through the node's writer foreign table (`TRUNCATE`, `INSERT … SELECT`, batched by the
 * server's batch_size), and all of it commits at once. Readers of that node's copies wait from the
 * TRUNCATE to the commit. Data nodes run in parallel, each in its own transaction, with a result
 * per node; this never throws for one node's failure.
 */
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { errorMessage, UnknownNodeError } from '../errors.js';
import { connectNode, DEFAULT_CONNECT_TIMEOUT_MS } from '../nodes/connect.js';
import { nodeTargets, type NodeTarget } from '../nodes/targets.js';
import { planLayout, type QualifiedName, type ReferenceTable } from '../plan/layout.js';
import { TEXT_SETTINGS } from '../rebalance/names.js';
import type { ClusterSpec } from '../spec/schema.js';
import { quoteIdent, quoteQualified } from '../sql/quote.js';

export interface ReferenceSyncOptions {
  /** Only these data nodes. @default every data node of the spec */
  readonly dataNodes?: readonly string[];
  /**
   * Compare each copy with the access node's table first (row count and a checksum of the rows)
   * and copy only the tables that differ. @default false: copy every table
   */
  readonly onlyIfDifferent?: boolean;
  /** Bound on reaching the access node and logging in. @default 10000 */
  readonly timeoutMs?: number;
  /** Bound on waiting for writers of a reference table to finish; that node then fails. @default 10000 */
  readonly lockTimeoutMs?: number;
}

export interface ReferenceTableSync {
  /** `schema.name` */
  readonly table: string;
  /** Rows the copy holds now (copied, or found equal). */
  readonly rows: number;
  /** Whether the copy was emptied and filled again. */
  readonly copied: boolean;
}

/**
 * - `synced`: at least one copy was filled again, and committed.
 * - `in-sync`: `onlyIfDifferent`, and every copy already equalled the access node's table.
 * - `failed`: the access node or the data node could not be reached, a lock was not granted in
 *   time, or a statement failed; nothing changed on the node (its transaction was rolled back).
 * - `no-tables`: the spec declares no reference table; no node was contacted (so nothing is said
 *   of the node's state).
 */
export type ReferenceSyncStatus = 'synced' | 'in-sync' | 'failed' | 'no-tables';

export interface ReferenceSyncNodeResult {
  readonly node: string;
  readonly status: ReferenceSyncStatus;
  readonly tables: readonly ReferenceTableSync[];
  /** Rows copied to the node (0 when nothing was copied). */
  readonly rowsCopied: number;
  readonly durationMs: number;
  readonly error?: string;
}

export interface ReferenceSyncResult {
  /** No node failed. */
  readonly ok: boolean;
  /** Data nodes in spec order. */
  readonly nodes: readonly ReferenceSyncNodeResult[];
  readonly durationMs: number;
}

/**
 * @throws SpecError, SecretError or UnknownNodeError before any node is contacted; after that,
 *   a result per data node.
 */
export async function syncReferenceTables(spec: ClusterSpec, specFile: string, options: ReferenceSyncOptions = {}): Promise<ReferenceSyncResult> {
  const started = performance.now();
  const layout = planLayout(spec);
  const unknown = (options.dataNodes ?? []).filter((n) => !layout.dataNodes.includes(n));
  if (unknown.length > 0) throw new UnknownNodeError(unknown, layout.dataNodes);
  const nodes = layout.dataNodes.filter((n) => options.dataNodes === undefined || options.dataNodes.includes(n));
  if (layout.referenceTables.length === 0) {
    // Nothing to copy: claiming `synced` would vouch for nodes never reached.
    return { ok: true, nodes: nodes.map((node) => ({ node, status: 'no-tables', tables: [], rowsCopied: 0, durationMs: 0 })), durationMs: Math.round(performance.now() - started) };
  }
  const access = (await nodeTargets(spec, specFile)).find((t) => t.role === 'access') as NodeTarget;
  const results = await Promise.all(nodes.map((node) => syncNode(access, node, layout.referenceTables, options)));
  return { ok: results.every((r) => r.status !== 'failed'), nodes: results, durationMs: Math.round(performance.now() - started) };
}

async function syncNode(access: NodeTarget, node: string, tables: readonly ReferenceTable[], options: ReferenceSyncOptions): Promise<ReferenceSyncNodeResult> {
  const started = performance.now();
  const result = (status: ReferenceSyncStatus, done: readonly ReferenceTableSync[], error?: string): ReferenceSyncNodeResult => ({
    node,
    status,
    tables: done,
    rowsCopied: done.filter((t) => t.copied).reduce((sum, t) => sum + t.rows, 0),
    durationMs: Math.round(performance.now() - started),
    ...(error === undefined ? {} : { error }),
  });
  let client: pg.Client;
  try {
    // Table privileges decide what may be copied; no superuser needed (as for exec).
    // This session waits on this data node only: a probe of the others must not fail it.
    ({ client } = await connectNode({ ...access, peers: (access.peers ?? []).filter((p) => p.name === node) }, { timeoutMs: options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, readOnly: true }));
  } catch (error) {
    return result('failed', [], errorMessage(error));
  }
  const done: ReferenceTableSync[] = [];
  try {
    // Checksums compare text forms: the same settings postgres_fdw gives its remote sessions.
    await client.query(`${TEXT_SETTINGS}; SET lock_timeout = ${Math.max(1, Math.round(options.lockTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS))}`);
    await client.query('BEGIN');
    if (tables.length > 0) await client.query(`LOCK TABLE ${tables.map((r) => qualified(r.table)).join(', ')} IN SHARE MODE`);
    for (const r of tables) {
      const writer = r.copies.find((c) => c.writer && c.dataNode === node);
      if (writer === undefined) throw new Error(`the layout has no copy of ${label(r.table)} on ${node}`);
      if (options.onlyIfDifferent === true) {
        const [local, copy] = [await fingerprint(client, r, r.table), await fingerprint(client, r, writer.table)];
        if (local.rows === copy.rows && local.checksum === copy.checksum) {
          done.push({ table: label(r.table), rows: local.rows, copied: false });
          continue;
        }
      }
      const columns = r.columns.map((c) => quoteIdent(c.name)).join(', ');
      await client.query(`TRUNCATE ${qualified(writer.table)}`);
      const inserted = await client.query(`INSERT INTO ${qualified(writer.table)} (${columns}) SELECT ${columns} FROM ${qualified(r.table)}`);
      done.push({ table: label(r.table), rows: inserted.rowCount ?? 0, copied: true });
    }
    await client.query('COMMIT');
    return result(done.some((t) => t.copied) || options.onlyIfDifferent !== true ? 'synced' : 'in-sync', done);
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    return result('failed', [], errorMessage(error));
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Row count and an order-independent checksum of a table's rows: the sum (numeric, so it never
 * overflows) of a 64-bit hash of each row's text form in the spec's column order.
 */
async function fingerprint(client: pg.Client, r: ReferenceTable, table: QualifiedName): Promise<{ rows: number; checksum: string }> {
  const row = `ROW(${r.columns.map((c) => quoteIdent(c.name)).join(', ')})::text`;
  const { rows } = await client.query<{ rows: string; checksum: string }>(
    `SELECT count(*) AS rows, coalesce(sum(pg_catalog.hashtextextended(${row}, 0)::numeric), 0)::text AS checksum FROM ${qualified(table)}`,
  );
  return { rows: Number(rows[0]?.rows ?? 0), checksum: rows[0]?.checksum ?? '' };
}

const qualified = (t: QualifiedName): string => quoteQualified(t.schema, t.name);
const label = (t: QualifiedName): string => `${t.schema}.${t.name}`;
