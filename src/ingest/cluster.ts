/**
 * What routed writes share across transactions in one process (a load, a gateway): the spec's
 * connection targets, pooled connections, each data node's two-phase-commit capability, routes
 * (checked against the catalogs in every transaction) and the session defaults of the access node.
 */
import type pg from 'pg';
import { NodeConnectionError, RoutingError } from '../errors.js';
import { clientConfig, DEFAULT_CONNECT_TIMEOUT_MS } from '../nodes/connect.js';
import type { QualifiedName } from '../plan/layout.js';
import type { Queryable } from '../rewrite/discover.js';
import { readRoute, ROUTE_SIGNATURE_SQL, type HypertableRoute } from '../route/placement.js';
import type { ClusterSpec } from '../spec/schema.js';
import { FORGET_COMMITS_SQL } from './commitLog.js';
import { ConnectionPool } from './pool.js';
import { READ_SETTINGS_SQL, DEFAULT_SETTINGS, type ClientSettings } from './settings.js';
import { ingestTargets, type DataNodeTarget, type IngestTargets } from './targets.js';
import { RoutedTransaction, type TransactionOptions } from './transaction.js';

export interface IngestOptions {
  /** Bound on connecting to a node and on each commit step that waits for one. @default 10000 */
  readonly timeoutMs?: number;
  /** Bound on waiting for a shard that a rebalance is moving. @default 60000 */
  readonly lockTimeoutMs?: number;
  /**
   * Commit on each data node in turn without two-phase commit, for data nodes with
   * max_prepared_transactions = 0. A failure between two nodes' commits (a node down, a deferred
   * constraint, the process killed) leaves the rows of the nodes that committed: a partial write,
   * which nothing records. @default false
   */
  readonly onePhase?: boolean;
  /** Connections per data node a COPY writes through (at most one per shard there). @default 2 */
  readonly lanesPerNode?: number;
  /** A data node that takes no data for this long fails the write, naming it. @default 60000 */
  readonly stallTimeoutMs?: number;
  readonly applicationName?: string;
}

export interface ResolvedIngestOptions {
  readonly timeoutMs: number;
  readonly lockTimeoutMs: number;
  readonly onePhase: boolean;
  readonly lanesPerNode: number;
  readonly stallTimeoutMs: number;
}

/** Commit records of finished transactions, deleted in batches. */
const FORGET_BATCH = 200;

export class IngestCluster {
  readonly spec: ClusterSpec;
  readonly targets: IngestTargets;
  readonly options: ResolvedIngestOptions;
  readonly pool = new ConnectionPool();
  /**
   * Router reads' data-node connections (src/route/reads.ts), apart: a read puts its connection
   * in the client session's settings and remembers that it did, and a routed write's SET TimeZone
   * on a shared connection made the next read answer in the writer's zone.
   */
  readonly #readPool = new ConnectionPool();
  readonly #routes = new Map<string, HypertableRoute>();
  /** max_prepared_transactions of each data node: being read, then read. */
  readonly #twoPhase = new Map<string, Promise<number> | number>();
  #defaults: Promise<ClientSettings> | undefined;
  #forget: string[] = [];
  #forgetting: Promise<void> | undefined;

  private constructor(spec: ClusterSpec, targets: IngestTargets, options: IngestOptions) {
    this.spec = spec;
    this.targets = targets;
    this.options = {
      timeoutMs: options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      lockTimeoutMs: options.lockTimeoutMs ?? 60_000,
      onePhase: options.onePhase ?? false,
      lanesPerNode: Math.max(1, options.lanesPerNode ?? 2),
      stallTimeoutMs: options.stallTimeoutMs ?? 60_000,
    };
  }

  /** @throws SecretError when a password the writes need cannot be read. */
  static async open(spec: ClusterSpec, specFile: string, options: IngestOptions = {}): Promise<IngestCluster> {
    return new IngestCluster(spec, await ingestTargets(spec, specFile, options.applicationName), options);
  }

  /** A transaction of routed writes; see RoutedTransaction. */
  async begin(options: TransactionOptions = {}): Promise<RoutedTransaction> {
    return RoutedTransaction.begin(this, options);
  }

  /** The access node's session defaults for the spec's user: what a load uses unless told otherwise. */
  async defaultSettings(): Promise<ClientSettings> {
    this.#defaults ??= this.withAccess(async (client) => {
      const { rows } = await client.query<{ time_zone: string; date_style: string; interval_style: string }>(READ_SETTINGS_SQL);
      const r = rows[0];
      return r === undefined ? DEFAULT_SETTINGS : { timeZone: r.time_zone, dateStyle: r.date_style, intervalStyle: r.interval_style, clientEncoding: 'UTF8' };
    });
    return this.#defaults;
  }

  /** Runs `fn` on a pooled access-node connection in autocommit. */
  async withAccess<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const { access } = this.targets;
    const client = await this.pool.acquire(access.name, { ...accessConfig(access.url, access.password) }, access.url, this.options.timeoutMs, 'access');
    let ok = false;
    try {
      const result = await fn(client);
      ok = true;
      return result;
    } finally {
      this.pool.release(access.name, client, ok);
    }
  }

  /** An access-node connection of the pool, for a transaction that owns it; give it back with releaseAccess. */
  async acquireAccess(): Promise<pg.Client> {
    const { access } = this.targets;
    return this.pool.acquire(access.name, accessConfig(access.url, access.password), access.url, this.options.timeoutMs, 'access');
  }

  releaseAccess(client: pg.Client, reusable: boolean): void {
    this.pool.release(this.targets.access.name, client, reusable);
  }

  async acquireData(node: string): Promise<pg.Client> {
    const target = this.#dataNode(node);
    return this.pool.acquire(node, target.config, target.url, this.options.timeoutMs);
  }

  releaseData(node: string, client: pg.Client, reusable: boolean): void {
    this.pool.release(node, client, reusable);
  }

  /** A data-node connection for router reads only (its session settings are theirs); give it back with releaseReader. */
  async acquireReader(node: string): Promise<pg.Client> {
    const target = this.#dataNode(node);
    return this.#readPool.acquire(node, target.config, target.url, this.options.timeoutMs);
  }

  releaseReader(node: string, client: pg.Client, reusable: boolean): void {
    this.#readPool.release(node, client, reusable);
  }

  #dataNode(node: string): DataNodeTarget {
    const target = this.targets.dataNodes.get(node);
    if (target === undefined) throw new RoutingError(`data node ${node} is not in the spec`);
    return target;
  }

  /** A data node's max_prepared_transactions, when a transaction has read it already. */
  preparedTransactionsRead(node: string): number | undefined {
    const known = this.#twoPhase.get(node);
    return typeof known === 'number' ? known : undefined;
  }

  /**
   * max_prepared_transactions of a data node (read once).
   * @throws NodeConnectionError when the node cannot be asked.
   */
  async preparedTransactions(node: string, client: pg.Client): Promise<number> {
    let known = this.#twoPhase.get(node);
    if (known === undefined) {
      const reading = client.query<{ n: number }>(`SELECT pg_catalog.current_setting('max_prepared_transactions')::int AS n`).then((r) => {
        const n = r.rows[0]?.n ?? 0;
        this.#twoPhase.set(node, n);
        return n;
      });
      reading.catch(() => this.#twoPhase.delete(node));
      this.#twoPhase.set(node, reading);
      known = reading;
    }
    try {
      return await known;
    } catch (error) {
      throw new NodeConnectionError(node, `reading max_prepared_transactions failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }

  /**
   * The route of `table`: from the cache when the catalogs still match it (one query), else read
   * anew. Call it after the transaction's shard locks are granted.
   */
  async route(access: Queryable, table: QualifiedName): Promise<HypertableRoute> {
    const key = `${table.schema}\u0000${table.name}`;
    const cached = this.#routes.get(key);
    if (cached !== undefined) {
      const { rows } = await access.query<{ signature: string }>(ROUTE_SIGNATURE_SQL, [cached.oid]);
      if (rows[0]?.signature === cached.signature) return cached;
    }
    const route = await readRoute(access, this.spec, table);
    this.#routes.set(key, route);
    return route;
  }

  /** The route of `table` read last, unchecked: a guess of what a transaction's checks will confirm (see RoutedTransaction.adoptLocks). */
  cachedRoute(table: QualifiedName): HypertableRoute | undefined {
    return this.#routes.get(`${table.schema}\u0000${table.name}`);
  }

  /** Deletes commit records of transactions committed everywhere, a batch at a time. */
  forget(gids: readonly string[]): void {
    this.#forget.push(...gids);
    if (this.#forget.length >= FORGET_BATCH) void this.flushForgotten();
  }

  async flushForgotten(): Promise<void> {
    await this.#forgetting;
    if (this.#forget.length === 0) return;
    const gids = this.#forget;
    this.#forget = [];
    this.#forgetting = this.withAccess(async (client) => {
      await client.query(FORGET_COMMITS_SQL, [gids]);
    }).catch(() => {
      // Left for recover, which deletes records no node refers to.
    });
    await this.#forgetting;
  }

  async close(): Promise<void> {
    await this.flushForgotten().catch(() => undefined);
    await Promise.all([this.pool.close(), this.#readPool.close()]);
  }
}

function accessConfig(url: string, password: string | undefined): pg.ClientConfig {
  return { ...clientConfig(url, password), application_name: 'hypershard-ingest' };
}
