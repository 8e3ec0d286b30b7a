/**
 * What the clients of one Pool (or the sessions of one gateway) share: the cluster's metadata
 * (discovered once, refreshed when old), what each role may have rewritten per shard (read per
 * role, refreshed the same way), what each statement text names, and rewrite results keyed by
 * (SQL, TimeZone, search path, role), so a statement is parsed and rewritten once and a repeat
 * costs a map lookup.
 *
 * Everything is read through a `Queryable` the caller passes: `hypershard/pg` passes the
 * session's own connection; a gateway may pass its own admin connection to the access node,
 * since the role is named (`readRoleAccess` asks about it, not about the connected role).
 */
import { readRoleAccess } from '../rewrite/access.js';
import { discoverMetadata, type Queryable } from '../rewrite/discover.js';
import type { ClusterMetadata, RewriteResult, RoleAccess } from '../rewrite/model.js';
import { rewriteSql } from '../rewrite/rewrite.js';
import type { SessionSettings } from '../rewrite/session.js';
import { Lru } from './lru.js';
import { statementInfo, type StatementInfo } from './statements.js';

export interface HypershardOptions {
  /** The cluster's metadata (e.g. `metadataFromLayout(planLayout(spec))`); by default read from the access node's catalogs on first use. */
  readonly metadata?: ClusterMetadata;
  /** Discovered metadata is read again when older than this (ms); 0 keeps it for the Pool's life. @default 60000 */
  readonly refreshMs?: number;
  /** Statements whose analysis and rewrites are kept. @default 1000 */
  readonly cacheSize?: number;
}

export const DEFAULT_REFRESH_MS = 60_000;
export const DEFAULT_CACHE_SIZE = 1000;
/** Longer statements (bulk INSERTs with literal rows, say) are analysed each time rather than kept. */
export const MAX_CACHED_SQL_LENGTH = 64 * 1024;

/** A rewrite that could not be made: the rewriter threw, and the original SQL runs. */
export interface RewriteFailure {
  readonly error: string;
}

interface LoadedAccess {
  readonly access: RoleAccess;
  readonly loadedAt: number;
  /** Distinguishes rewrites made with this reading from those made with an earlier one. */
  readonly generation: number;
}

export class RewriteContext {
  /** Rewrites answered from the cache, and made anew. */
  readonly stats = { hits: 0, misses: 0 };
  readonly #explicit: boolean;
  readonly #refreshMs: number;
  #metadata: ClusterMetadata | undefined;
  #loadedAt = 0;
  #loading: Promise<ClusterMetadata> | undefined;
  /** Names of the hypertables, for the cheap "could this touch one?" test. */
  #names: ReadonlySet<string> = new Set();
  /** Names a rewrite resolves (hypertables, reference tables): creating a relation of one of them changes resolution. */
  #resolved: ReadonlySet<string> = new Set();
  readonly #access = new Map<string, LoadedAccess>();
  readonly #accessLoading = new Map<string, Promise<RoleAccess>>();
  #generation = 0;
  readonly #statements: Lru<string, StatementInfo>;
  readonly #rewrites: Lru<string, RewriteResult | RewriteFailure>;

  constructor(options: HypershardOptions = {}) {
    const size = options.cacheSize ?? DEFAULT_CACHE_SIZE;
    this.#statements = new Lru(size);
    this.#rewrites = new Lru(size);
    this.#explicit = options.metadata !== undefined;
    this.#refreshMs = options.refreshMs ?? DEFAULT_REFRESH_MS;
    if (options.metadata !== undefined) this.#use(options.metadata);
  }

  /** The metadata when it is loaded and fresh; undefined when it must be (re)read first. */
  get metadata(): ClusterMetadata | undefined {
    if (this.#metadata === undefined) return undefined;
    if (!this.#explicit && this.#stale(this.#loadedAt)) return undefined;
    return this.#metadata;
  }

  /** Reads the catalogs through `client`; concurrent callers share one read. A failure is not kept. */
  load(client: Queryable): Promise<ClusterMetadata> {
    this.#loading ??= discoverMetadata(client).then(
      (metadata) => {
        this.#loading = undefined;
        this.#use(metadata);
        return metadata;
      },
      (error: unknown) => {
        this.#loading = undefined;
        throw error;
      },
    );
    return this.#loading;
  }

  /** What `role` may have rewritten per shard, when read and fresh; undefined when it must be read first. */
  access(role: string): RoleAccess | undefined {
    const loaded = this.#access.get(role);
    return loaded === undefined || this.#stale(loaded.loadedAt) ? undefined : loaded.access;
  }

  /**
   * Reads what `role` may see (privileges, row-level security, ownership) through `client`, any
   * connection to the access node in any role; needs the metadata. Concurrent callers share one read.
   */
  loadAccess(client: Queryable, role: string): Promise<RoleAccess> {
    const metadata = this.#metadata;
    if (metadata === undefined) return Promise.reject(new TypeError('loadAccess before the metadata is loaded'));
    let loading = this.#accessLoading.get(role);
    if (loading === undefined) {
      loading = readRoleAccess(client, role, metadata).then(
        (access) => {
          this.#accessLoading.delete(role);
          // Read for older metadata: a table added since is unknown, so refused; read again next time.
          if (this.#metadata === metadata) this.#access.set(role, { access, loadedAt: Date.now(), generation: (this.#generation += 1) });
          return access;
        },
        (error: unknown) => {
          this.#accessLoading.delete(role);
          throw error;
        },
      );
      this.#accessLoading.set(role, loading);
    }
    return loading;
  }

  /** Reads, through `client`, whatever a rewrite for `role` still needs (the metadata, the role's access). */
  async prepare(client: Queryable, role: string): Promise<void> {
    if (this.metadata === undefined) await this.load(client);
    if (this.access(role) === undefined) await this.loadAccess(client, role);
  }

  /** Whether `rewrite` can run now for `role` (else `prepare` first). */
  ready(role: string): boolean {
    return this.metadata !== undefined && this.access(role) !== undefined;
  }

  /** Forgets discovered metadata and every role's access: the next statement that names a relation reads them again. */
  invalidate(): void {
    if (!this.#explicit) this.#loadedAt = 0;
    this.#access.clear();
  }

  /** Forgets what roles may see (after GRANT, REVOKE, a policy or row security changed, a role altered). */
  invalidateAccess(): void {
    this.#access.clear();
  }

  statement(sql: string): StatementInfo {
    if (sql.length > MAX_CACHED_SQL_LENGTH) return statementInfo(sql);
    let info = this.#statements.get(sql);
    if (info === undefined) {
      info = statementInfo(sql);
      this.#statements.set(sql, info);
    }
    return info;
  }

  /** Could the statement touch a distributed hypertable? (Every rewrite needs one, a reference join too.) */
  mayTouch(info: StatementInfo): boolean {
    for (const name of info.relations) if (this.#names.has(name)) return true;
    return false;
  }

  /**
   * Forgets what a statement that ran may have made stale: what roles may see after privilege or
   * row-security DDL, the metadata after a relation named like a hypertable or reference table
   * was created, renamed or moved (it may now shadow it on a search path).
   */
  noteExecuted(info: StatementInfo): void {
    if (info.changesAccess) this.invalidateAccess();
    for (const name of info.definesRelations) {
      if (this.#resolved.has(name)) {
        this.invalidate();
        break;
      }
    }
  }

  /** The rewrite of `sql` for the session; `ready(settings.role)` must hold. */
  rewrite(sql: string, settings: SessionSettings): RewriteResult | RewriteFailure {
    const metadata = this.#metadata;
    const access = this.#access.get(settings.role);
    if (metadata === undefined || access === undefined) throw new TypeError('rewrite before the metadata and the role\'s access are loaded');
    const key = `${settings.timeZone}\u0000${settings.searchPath.join('\u0001')}\u0000${settings.role}\u0000${access.generation}\u0000${sql}`;
    let result = this.#rewrites.get(key);
    if (result !== undefined) this.stats.hits += 1;
    else {
      this.stats.misses += 1;
      try {
        result = rewriteSql(sql, metadata, { timeZone: settings.timeZone, searchPath: settings.searchPath, access: access.access });
      } catch (error) {
        result = { error: error instanceof Error ? error.message : String(error) };
      }
      if (sql.length <= MAX_CACHED_SQL_LENGTH) this.#rewrites.set(key, result);
    }
    return result;
  }

  #stale(loadedAt: number): boolean {
    return this.#refreshMs > 0 && Date.now() - loadedAt > this.#refreshMs;
  }

  #use(metadata: ClusterMetadata): void {
    if (this.#metadata !== undefined && JSON.stringify(this.#metadata) !== JSON.stringify(metadata)) {
      this.#rewrites.clear();
      this.#access.clear();
    }
    this.#metadata = metadata;
    this.#loadedAt = Date.now();
    this.#names = new Set(metadata.hypertables.map((t) => t.table.name));
    this.#resolved = new Set([...metadata.hypertables, ...metadata.referenceTables].map((t) => t.table.name));
  }
}
