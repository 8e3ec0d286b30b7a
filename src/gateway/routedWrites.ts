/**
 * Routed writes through the gateway: a client's `COPY hypertable FROM STDIN`, and a multi-row or
 * upserting `INSERT` into one, go straight to the data nodes owning their rows (src/ingest),
 * decided in the client's own access-node transaction.
 *
 *   COPY …        the gateway opens a routed transaction whose shard locks and commit record live
 *                 in the client's transaction (outside a block, in one the gateway opens and commits)
 *   CopyDone      PREPARE TRANSACTION on the data nodes, the commit record written in-band
 *   end of block  the client's COMMIT makes the record durable or its ROLLBACK drops it; the
 *                 gateway then commits or rolls back the prepared parts, before the client hears
 *                 that its transaction ended (so it reads its rows right after)
 *
 * A crash anywhere leaves prepared parts whose fate the record decides: `hypershard recover`,
 * which the gateway also runs when it starts, finishes them.
 */
import { unwatchFile, watchFile } from 'node:fs';
import pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { CommitError, HypershardError, IngestRowError, NodeConnectionError, NodeUnresponsiveError, errorMessage } from '../errors.js';
import { IngestCluster } from '../ingest/cluster.js';
import { parseGid, participantGid, XACT_STATUS_SQL } from '../ingest/commitLog.js';
import { recoverWith, type RecoverResult } from '../ingest/recover.js';
import type { ClientSettings } from '../ingest/settings.js';
import type { PreparedTransaction, RoutedTransaction } from '../ingest/transaction.js';
import { INTERNAL_SCHEMA, type QualifiedName } from '../plan/layout.js';
import { shardLocksSql } from '../route/lock.js';
import { routeSignatureSql, type HypertableRoute } from '../route/placement.js';
import { loadSpec } from '../spec/load.js';
import type { ClusterSpec } from '../spec/schema.js';
import { parsedInsert } from '../ingest/insert.js';
import { quoteIdent, quoteLiteral } from '../sql/quote.js';
import type { ErrorFields } from './protocol/messages.js';

const COMMIT_FUNCTION = quoteLiteral(`${quoteIdent(INTERNAL_SCHEMA)}.record_commit(pg_catalog.text, pg_catalog.text[])`);

/**
 * The table a COPY names, read in the client's session (its search_path, its role), and whether
 * routing it does exactly what the access node would: the role may insert into the whole table,
 * no row-level security or user trigger would have a say, and it may write the commit record;
 * and the session has not said `SET hypershard.route = off`. With the session's statement_timeout
 * and lock_timeout (ParameterStatus does not report them), which the write's data nodes then apply.
 */
function routableSql(relation: string): string {
  return `SELECT n.nspname AS schema, c.relname AS name,
  pg_catalog.current_setting('statement_timeout') AS statement_timeout, pg_catalog.current_setting('lock_timeout') AS lock_timeout,
  (SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)::int AS columns,
  pg_catalog.lower(coalesce(nullif(pg_catalog.current_setting('hypershard.route', true), ''), 'on')) NOT IN ('off', 'false', '0', 'no')
    AND pg_catalog.has_table_privilege(c.oid, 'INSERT')
    AND NOT c.relrowsecurity
    AND NOT EXISTS (SELECT FROM pg_catalog.pg_partition_tree(c.oid) p JOIN pg_catalog.pg_trigger t ON t.tgrelid = p.relid WHERE NOT t.tgisinternal)
    AND CASE WHEN pg_catalog.to_regprocedure(${COMMIT_FUNCTION}) IS NULL THEN false
        ELSE pg_catalog.has_schema_privilege(${quoteLiteral(INTERNAL_SCHEMA)}, 'USAGE')
         AND pg_catalog.has_function_privilege(pg_catalog.to_regprocedure(${COMMIT_FUNCTION}), 'EXECUTE') END AS allowed
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = pg_catalog.to_regclass(${relation}) AND c.relkind = 'p'`;
}
export const ROUTABLE_SQL = routableSql('$1');

/**
 * The opening of a routed write in one message (one round trip instead of four): BEGIN (or the
 * savepoint in a client's block), the routable check of `relation`, the shard locks `guess` names
 * (the table and route its previous write used) and, after they are granted, the route's signature.
 * The caller adopts the locks when the check names the guessed table and the signature still
 * matches; otherwise it goes the long way (the extra locks are harmless: shared, released with the
 * transaction).
 */
export function routedBeginSql(ownBlock: boolean, relation: string, guess: { readonly table: QualifiedName; readonly route: HypertableRoute } | undefined): string {
  const statements = [ownBlock ? 'BEGIN' : `SAVEPOINT ${ROUTING_SAVEPOINT}`, routableSql(quoteLiteral(relation))];
  if (guess !== undefined) statements.push(shardLocksSql(guess.table, guess.route.partitions.map((p) => p.remainder), 'shared'), routeSignatureSql(guess.route.oid));
  return statements.join(';\n');
}

/** The savepoint around the gateway's own statements in a client's transaction block. */
export const ROUTING_SAVEPOINT = 'hypershard_routing';

/** A routed transaction prepared and recorded in a client's open block, settled when the block ends. */
export interface PendingRouted {
  readonly tx: RoutedTransaction;
  readonly prepared: PreparedTransaction;
}

/** How soon, and how often until it succeeds, prepared parts left by a node that did not answer are recovered. */
const RECOVER_RETRY_MS = 5000;

/** Relations remembered for guessing shard locks; past it the memory starts over. */
const MAX_GUESSES = 1000;

/** What sessions share for routed writes. */
export class GatewayIngest {
  #cluster: IngestCluster;
  readonly #specFile: string;
  readonly #timeoutMs: number;
  #watching = false;
  #names: { readonly cluster: IngestCluster; readonly pattern: RegExp } | undefined;
  /** The table a relation as written resolved to last (a guess: its routed write's check confirms it). */
  readonly #resolved = new Map<string, QualifiedName>();
  #recovering: NodeJS.Timeout | undefined;
  #onRecover: ((result: RecoverResult) => void) | undefined;
  #closed = false;

  private constructor(cluster: IngestCluster, specFile: string, timeoutMs: number) {
    this.#cluster = cluster;
    this.#specFile = specFile;
    this.#timeoutMs = timeoutMs;
  }

  /** The data nodes as the spec file says now: `failover` and `node rebuild` rewrite it, and new routed writes follow. */
  get cluster(): IngestCluster {
    return this.#cluster;
  }

  /** Re-reads the spec when its file changes (polled: editors and `failover` replace the file). */
  watch(onChange: (message: string) => void): void {
    if (this.#watching) return;
    this.#watching = true;
    watchFile(this.#specFile, { interval: 2000, persistent: false }, () => {
      void (async () => {
        try {
          const { spec } = await loadSpec(this.#specFile);
          const next = await IngestCluster.open(spec, this.#specFile, { applicationName: 'hypershard gateway', timeoutMs: this.#timeoutMs });
          const old = this.#cluster;
          this.#cluster = next;
          // Transactions under way keep the old one until they end.
          setTimeout(() => void old.close().catch(() => undefined), 120_000).unref();
          onChange(`the spec changed: routed writes now go to ${[...next.targets.dataNodes.values()].map((t) => `${t.name} (${new URL(t.url).host})`).join(', ')}`);
        } catch (error) {
          onChange(`the spec changed but cannot be used for routed writes; keeping the previous one: ${errorMessage(error)}`);
        }
      })();
    });
  }

  /**
   * Opens the data nodes' side, finishes what an earlier crash left prepared, and tells why routing
   * cannot be used (a data node without prepared transactions) instead of failing clients later.
   * @returns the ingest side, or the reason writes go through the access node.
   */
  static async open(spec: ClusterSpec, specFile: string, timeoutMs: number): Promise<{ ingest?: GatewayIngest; reason?: string; recovered?: RecoverResult }> {
    if (spec.hypertables.length === 0) return { reason: 'the spec has no hypertable' };
    let cluster: IngestCluster;
    try {
      cluster = await IngestCluster.open(spec, specFile, { applicationName: 'hypershard gateway', timeoutMs });
    } catch (error) {
      return { reason: errorMessage(error) };
    }
    for (const node of cluster.targets.dataNodes.keys()) {
      try {
        const client = await cluster.acquireData(node);
        const max = await cluster.preparedTransactions(node, client);
        cluster.releaseData(node, client, true);
        if (max === 0) {
          await cluster.close();
          return { reason: `data node ${node} has max_prepared_transactions = 0, so writes cannot commit atomically across data nodes` };
        }
      } catch {
        // Down now: its writes fail by name when they come, the others still route.
      }
    }
    let recovered: RecoverResult | undefined;
    try {
      recovered = await recoverWith(cluster);
    } catch (error) {
      return { ingest: new GatewayIngest(cluster, specFile, timeoutMs), reason: `recover at start failed: ${errorMessage(error)}` };
    }
    return { ingest: new GatewayIngest(cluster, specFile, timeoutMs), recovered };
  }

  /**
   * Commits or rolls back a transaction recorded in a client's access-node transaction that has
   * ended (or is ending: a closed session's): as its commit decided. One still running is waited
   * for up to `waitMs`, then left prepared for recover.
   * @returns what was done
   */
  async settle(pending: PendingRouted, waitMs: number): Promise<'committed' | 'rolled-back' | 'left'> {
    const xid = parseGid(participantGid(pending.prepared.gid, 0))?.xid;
    const deadline = Date.now() + waitMs;
    for (;;) {
      let status: string | null | undefined;
      try {
        status = await this.cluster.withAccess(async (client) => (await client.query<{ status: string | null }>(XACT_STATUS_SQL, [[xid]])).rows[0]?.status);
      } catch {
        status = undefined;
      }
      if (status === 'committed') {
        await pending.tx.commitPrepared(pending.prepared);
        return this.#leaving(pending.tx) ?? 'committed';
      }
      if (status === 'aborted') {
        await pending.tx.abort('the client transaction rolled back');
        return this.#leaving(pending.tx) ?? 'rolled-back';
      }
      if (Date.now() >= deadline) {
        await pending.tx.abort('left for recover').catch(() => undefined);
        this.recoverSoon();
        return 'left';
      }
      await sleep(50);
    }
  }

  /** 'left' when `tx` could not finish a prepared part (a node down), which recovery then retries. */
  #leaving(tx: RoutedTransaction): 'left' | undefined {
    if (tx.leftPrepared.length === 0) return undefined;
    this.recoverSoon();
    return 'left';
  }

  /**
   * Finishes prepared parts a transaction could not (their node did not answer), as their commit
   * records say: recover() every RECOVER_RETRY_MS until a run finds every node answering and
   * nothing it could not finish. Until then they hold their rows' locks and a prepared slot each.
   */
  recoverSoon(): void {
    if (this.#recovering !== undefined || this.#closed) return;
    const attempt = (): void => {
      this.#recovering = setTimeout(() => {
        void recoverWith(this.#cluster).then(
          (result) => {
            this.#onRecover?.(result);
            if (result.ok && !result.transactions.some((t) => t.action === 'failed')) this.#recovering = undefined;
            else attempt();
          },
          () => attempt(),
        );
      }, RECOVER_RETRY_MS);
      this.#recovering.unref();
    };
    attempt();
  }

  /** Hears what each background recovery did (the gateway logs it). */
  onRecover(listener: (result: RecoverResult) => void): void {
    this.#onRecover = listener;
  }

  /**
   * Whether an extended-protocol statement may be an INSERT into a hypertable, worth holding its
   * batch for: its text names one and returns nothing. planRoutedBatch decides exactly.
   */
  batchable(text: string): boolean {
    if (!INSERT_START.test(text) || /\breturning\b/i.test(text)) return false;
    const cluster = this.#cluster;
    if (this.#names?.cluster !== cluster) {
      const names = cluster.spec.hypertables.map((h) => h.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
      this.#names = { cluster, pattern: new RegExp(`(?:^|[^\\w$])(?:${names.join('|')})(?:$|[^\\w$])`, 'i') };
    }
    return this.#names.pattern.test(text);
  }

  /** The table and route the last routed write of `relation` (as written) used, to guess its shard locks; undefined when unknown. */
  guess(relation: string): { readonly table: QualifiedName; readonly route: HypertableRoute } | undefined {
    const table = this.#resolved.get(relation);
    const route = table === undefined ? undefined : this.#cluster.cachedRoute(table);
    return table === undefined || route === undefined ? undefined : { table, route };
  }

  /** What `relation` (as written) resolved to in a routed write's check. */
  learn(relation: string, table: QualifiedName): void {
    if (this.#resolved.size >= MAX_GUESSES && !this.#resolved.has(relation)) this.#resolved.clear();
    this.#resolved.set(relation, table);
  }

  close(): Promise<void> {
    this.#closed = true;
    if (this.#recovering !== undefined) clearTimeout(this.#recovering);
    if (this.#watching) unwatchFile(this.#specFile);
    return this.#cluster.close();
  }
}

/** The client session's settings a routed write reads values under, from what the server reported. */
export function clientSettings(parameters: ReadonlyMap<string, string>): Partial<ClientSettings> {
  const pick = (name: string): string | undefined => parameters.get(name);
  const settings: { -readonly [K in 'timeZone' | 'dateStyle' | 'intervalStyle' | 'clientEncoding']?: string } = {};
  const timeZone = pick('TimeZone');
  const dateStyle = pick('DateStyle');
  const intervalStyle = pick('IntervalStyle');
  const encoding = pick('client_encoding');
  if (timeZone !== undefined) settings.timeZone = timeZone;
  if (dateStyle !== undefined) settings.dateStyle = dateStyle;
  if (intervalStyle !== undefined) settings.intervalStyle = intervalStyle;
  if (encoding !== undefined) settings.clientEncoding = encoding;
  return settings;
}

/** Looks like an INSERT, past leading comments and whitespace: the cheap test before parsing. */
const INSERT_START = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*insert\s/i;

/**
 * Whether a simple-query text is one INSERT … ON CONFLICT, which postgres_fdw refuses and the
 * gateway routes when planRoutedInsert can do so exactly (it parses the statement).
 */
export function insertWorthRouting(text: string): boolean {
  if (!INSERT_START.test(text) || !/\bon\s+conflict\b/i.test(text)) return false;
  try {
    const parsed = parsedInsert(text);
    const only = parsed[0]?.stmt;
    return parsed.length === 1 && only !== undefined && 'InsertStmt' in only && only.InsertStmt.onConflictClause !== undefined;
  } catch {
    return false;
  }
}

/**
 * Rows below which a plain INSERT … VALUES goes through the access node: routing costs round
 * trips (shard locks, a COPY per shard, two-phase commit) that a few rows do not repay
 * (bench:ingest measures both).
 */
export const MIN_ROUTED_VALUES_ROWS = 2;

/** A statement that opens a transaction block, as pgjdbc and psycopg send before a batch. */
export function beginStatement(text: string): boolean {
  return /^\s*(?:begin|start\s+transaction)\b[^;]*;?\s*$/i.test(text);
}

/**
 * Bytes of client messages the gateway keeps while deciding whether they are one routed INSERT
 * batch; a larger batch goes to the access node as it came (pgjdbc syncs every ~250 rows, asyncpg
 * and psycopg send an executemany whole).
 */
export const MAX_HELD_BYTES = 16 * 1024 * 1024;

/**
 * Whether a simple-query text may be a multi-row INSERT … VALUES of constants, which is routed as
 * COPY lines (src/ingest/valuesText.ts reads it without the parser, or refuses it and it goes on).
 */
export function valuesWorthRouting(text: string): boolean {
  // No SELECT (which the rewriter may have to see) nor set_config; the reader decides the rest (a `;` in a literal included).
  return INSERT_START.test(text) && !/select|set_config/i.test(text) && /\)\s*,\s*\(/.test(text);
}

/**
 * One plain INSERT that nothing in the gateway acts on, told from its text alone: no SELECT (so
 * nothing to rewrite), no set_config (so no setting changes), no ON CONFLICT (so not routed), no
 * second statement. It goes to the access node without being parsed: a 1,000-row INSERT … VALUES
 * costs the parser tens of milliseconds, more than the insert itself. Any of those words anywhere,
 * even inside a literal, sends it the long way, which decides exactly.
 */
export function plainInsert(text: string): boolean {
  if (!INSERT_START.test(text) || /select|set_config|conflict/i.test(text)) return false;
  return !text.replace(/[\s;]+$/, '').includes(';');
}

/** An error and the causes under it, outermost first (a few levels: wrappers, not a cycle). */
function* causes(error: unknown): Generator<object> {
  for (let e: unknown = error, depth = 0; typeof e === 'object' && e !== null && depth < 8; e = (e as { cause?: unknown }).cause, depth += 1) yield e;
}

/**
 * A data node that could not be reached (08001, as postgres_fdw reports it) or stopped answering
 * (08006), anywhere in the error's causes.
 */
function connectionCode(error: unknown): string | undefined {
  for (const e of causes(error)) {
    if (e instanceof NodeConnectionError) return '08001';
    if (e instanceof NodeUnresponsiveError || (e instanceof HypershardError && e.code === 'NODE_TIMEOUT')) return '08006';
  }
  return undefined;
}

/** The ErrorResponse a client gets for a routed write that failed, in PostgreSQL's terms where there are some. */
export function routedErrorFields(error: unknown, table: string, command: 'COPY' | 'INSERT' = 'COPY'): ErrorFields {
  // A data node's statement cancelled (statement_timeout, lock_timeout, a cancel request) reads as PostgreSQL's own.
  for (const e of causes(error)) {
    const { code, message } = e as { code?: unknown; message?: unknown };
    if ((code === '57014' || code === '55P03') && typeof message === 'string') return { code, message };
  }
  const cause = (error as { cause?: { code?: unknown; message?: unknown } }).cause;
  const causeCode = typeof cause?.code === 'string' && /^[0-9A-Z]{5}$/.test(cause.code) ? cause.code : undefined;
  if (error instanceof IngestRowError) {
    // A data node's DETAIL (the failing row, the bad token) as PostgreSQL gives it; the row of an
    // INSERT's VALUES, which the gateway wrote as COPY lines, by its number in the statement.
    const detail = (cause as { detail?: unknown } | undefined)?.detail;
    const node = error.node === undefined ? '' : ` (data node ${error.node})`;
    const where = command === 'INSERT' ? `routed INSERT into ${table}, row ${error.line}${node}` : `COPY ${table}, line ${error.line}${error.column === undefined ? '' : `, column ${error.column}`}${node}`;
    return { code: causeCode ?? '22P04', message: error.reason, ...(typeof detail === 'string' ? { detail } : {}), where };
  }
  const own = (error as { code?: unknown }).code;
  const code = typeof own === 'string' && /^[0-9A-Z]{5}$/.test(own) ? own : (causeCode ?? (error instanceof CommitError ? '40003' : (connectionCode(error) ?? 'XX000')));
  // A data node's own error (a unique violation, a check constraint) reads as PostgreSQL's would.
  const server = error instanceof pg.DatabaseError ? error : cause instanceof pg.DatabaseError ? cause : undefined;
  if (server !== undefined && typeof server.code === 'string' && command === 'INSERT') {
    return { code: server.code, message: server.message, ...(server.detail === undefined ? {} : { detail: server.detail }), where: `routed INSERT into ${table}` };
  }
  return { code, message: `hypershard gateway: routed ${command} into ${table} failed: ${errorMessage(error)}` };
}
