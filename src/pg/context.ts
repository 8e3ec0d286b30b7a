/**
 * What the clients of one Pool share: the cluster's metadata (discovered once, refreshed when
 * old), what each statement text names, and rewrite results keyed by (SQL, TimeZone,
 * search_path), so a statement is parsed and rewritten once and a repeat costs a map lookup.
 */
import { discoverMetadata, type Queryable } from '../rewrite/discover.js';
import type { ClusterMetadata, RewriteResult } from '../rewrite/model.js';
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

export class RewriteContext {
  readonly #explicit: boolean;
  readonly #refreshMs: number;
  #metadata: ClusterMetadata | undefined;
  #loadedAt = 0;
  #loading: Promise<ClusterMetadata> | undefined;
  /** Names of the hypertables, for the cheap "could this touch one?" test. */
  #names: ReadonlySet<string> = new Set();
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
    if (!this.#explicit && this.#refreshMs > 0 && Date.now() - this.#loadedAt > this.#refreshMs) return undefined;
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

  /** Forgets discovered metadata: the next statement that names a relation reads the catalogs again. */
  invalidate(): void {
    if (!this.#explicit) this.#loadedAt = 0;
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

  rewrite(sql: string, settings: SessionSettings): RewriteResult | RewriteFailure {
    const metadata = this.#metadata;
    if (metadata === undefined) throw new TypeError('rewrite before the metadata is loaded');
    const key = `${settings.timeZone}\u0000${settings.searchPath.join('\u0001')}\u0000${sql}`;
    let result = this.#rewrites.get(key);
    if (result === undefined) {
      try {
        result = rewriteSql(sql, metadata, { timeZone: settings.timeZone, searchPath: settings.searchPath });
      } catch (error) {
        result = { error: error instanceof Error ? error.message : String(error) };
      }
      if (sql.length <= MAX_CACHED_SQL_LENGTH) this.#rewrites.set(key, result);
    }
    return result;
  }

  #use(metadata: ClusterMetadata): void {
    if (this.#metadata !== undefined && JSON.stringify(this.#metadata) !== JSON.stringify(metadata)) this.#rewrites.clear();
    this.#metadata = metadata;
    this.#loadedAt = Date.now();
    this.#names = new Set(metadata.hypertables.map((t) => t.table.name));
  }
}
