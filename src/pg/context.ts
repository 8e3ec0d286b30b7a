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
import type { IngestCluster } from '../ingest/cluster.js';
import { readRoleAccess } from '../rewrite/access.js';
import { discoverMetadata, type Queryable } from '../rewrite/discover.js';
import type { ClusterMetadata, RewriteResult, RoleAccess } from '../rewrite/model.js';
import { localMidnightOrigin } from '../rewrite/buckets.js';
import { rewriteSql } from '../rewrite/rewrite.js';
import type { SessionSettings } from '../rewrite/session.js';
import { shapeOf, type Shape } from '../rewrite/literals.js';
import { buildTemplate, instantiate, type Template } from '../rewrite/template.js';
import { findKeyLookup, KEYS_GUARD_NAME, readKeyAnswer, type KeyAnswer, type KeyLookup } from '../rewrite/referenceKeys.js';
import { readZoneGrid, type ZoneGrid } from '../rewrite/zoneGrid.js';
import { Lru } from './lru.js';
import { statementInfo, type StatementInfo } from './statements.js';

export interface HypershardOptions {
  /** The cluster's metadata (e.g. `metadataFromLayout(planLayout(spec))`); by default read from the access node's catalogs on first use. */
  readonly metadata?: ClusterMetadata;
  /** Discovered metadata is read again when older than this (ms); 0 keeps it for the Pool's life. @default 60000 */
  readonly refreshMs?: number;
  /** Statements whose analysis and rewrites are kept. @default 1000 */
  readonly cacheSize?: number;
  /**
   * Route INSERTs into distributed hypertables straight to the data nodes (src/ingest/insert.ts),
   * each committed on all of them or none, when run outside a transaction block; what routing
   * refuses runs on the access node as written. @default none: every INSERT goes through the access node
   */
  readonly ingest?: IngestCluster;
  /**
   * With `ingest`: a SELECT whose rewrite reads one shard is answered by that shard's data node
   * straight, over the ingest cluster's connections, after a check on the session (the gateway's
   * router reads, src/route/reads.ts). @default true
   */
  readonly routerReads?: boolean;
}

export const DEFAULT_REFRESH_MS = 60_000;
export const DEFAULT_CACHE_SIZE = 1000;
/** Longer statements (bulk INSERTs with literal rows, say) are analysed each time rather than kept. */
export const MAX_CACHED_SQL_LENGTH = 64 * 1024;
/** Templates kept per shape and settings: one per combination of its fixed literals (e.g. bucket widths). */
const MAX_TEMPLATES_PER_SHAPE = 8;

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
  /** Rewrites answered from the cache (`templated`: of them, from a shape's template), and made anew. */
  readonly stats = { hits: 0, misses: 0, templated: 0 };
  readonly #explicit: boolean;
  readonly #refreshMs: number;
  #metadata: ClusterMetadata | undefined;
  #loadedAt = 0;
  #loading: Promise<ClusterMetadata> | undefined;
  /** Counts access invalidations: a role's reading started before one is not put in (it may predate the change). */
  #accessEpoch = 0;
  /**
   * Catalog reads (loads and refreshes) started, and the latest put in: one started earlier never
   * replaces a later one's reading, and an invalidation counts as put in, so none that predates it is.
   */
  #reads = { started: 0, applied: 0, ahead: false };
  #background: Queryable | undefined;
  /** When the oldest reading in use (the metadata, a role's access) was started: what refresh-ahead watches. */
  #oldestReading = Infinity;
  /** Why the last refresh-ahead failed; undefined once one succeeds. */
  #aheadError: Error | undefined;
  /** Names of the hypertables, for the cheap "could this touch one?" test. */
  #names: ReadonlySet<string> = new Set();
  /** Names a rewrite resolves (hypertables, reference tables): creating a relation of one of them changes resolution. */
  #resolved: ReadonlySet<string> = new Set();
  readonly #access = new Map<string, LoadedAccess>();
  /** Per session TimeZone: its grid, or undefined where it has none (fixed offsets, abbreviations, a failed read). */
  readonly #zones = new Map<string, ZoneGrid | undefined>();
  readonly #zoneLoading = new Map<string, Promise<void>>();
  readonly #accessLoading = new Map<string, Promise<RoleAccess>>();
  /** The last reading per role and its generation, kept across invalidation. */
  readonly #accessSeen = new Map<string, { access: RoleAccess; generation: number }>();
  #generation = 0;
  readonly #statements: Lru<string, StatementInfo>;
  readonly #rewrites: Lru<string, RewriteResult | RewriteFailure>;
  /** Statement analyses by shape: they do not depend on plain literals (names, statement kinds). */
  readonly #shapes: Lru<string, StatementInfo>;
  /** Per (settings, shape): the templates made for it (one per set of fixed literals), or false when it cannot be templated. */
  readonly #templates: Lru<string, Template[] | false>;
  /** Per (settings, SQL): the key sub-select read before the statement runs (referenceKeys.ts), or false. */
  readonly #lookups: Lru<string, KeyLookup | false>;
  /**
   * Per (settings, SQL, the sub-select's values): the keys it returned when last read. A repeat
   * uses them without reading: the statement's keys guard reads them again under its own
   * snapshot and refuses if they changed (then `noteRefused` forgets them all).
   */
  readonly #keyReadings: Lru<string, { readonly answer: KeyAnswer; readonly values: readonly string[] }>;
  /** The last text's shape: statement() and rewrite() of one text scan it once. */
  #lastShape: { sql: string; shape: Shape | undefined } | undefined;
  #spaceColumns: ReadonlySet<string> = new Set();

  constructor(options: HypershardOptions = {}) {
    const size = options.cacheSize ?? DEFAULT_CACHE_SIZE;
    this.#statements = new Lru(size);
    this.#rewrites = new Lru(size);
    this.#shapes = new Lru(size);
    this.#templates = new Lru(size);
    this.#lookups = new Lru(size);
    this.#keyReadings = new Lru(size);
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
    if (this.#loading !== undefined) return this.#loading;
    const [sequence, startedAt] = [(this.#reads.started += 1), Date.now()];
    const loading = discoverMetadata(client).then(
      (metadata) => {
        if (this.#loading === loading) this.#loading = undefined;
        // Invalidated while reading, or overtaken by a later read: the caller gets this reading, the context keeps the newer.
        if (sequence > this.#reads.applied) {
          this.#reads.applied = sequence;
          this.#use(metadata, startedAt);
        }
        return metadata;
      },
      (error: unknown) => {
        if (this.#loading === loading) this.#loading = undefined;
        throw error;
      },
    );
    this.#loading = loading;
    return loading;
  }

  /**
   * Reads the metadata and the access of every role read so far through `client`, and puts them
   * in together; until then statements keep the current reading, so none waits for it (the
   * gateway's timer and a Pool's refresh-ahead call this). Each call reads anew, so what it puts
   * in postdates the call, and no read (load or refresh) replaces one that started after it; a
   * failure keeps the current reading and rejects.
   */
  async refresh(client: Queryable): Promise<void> {
    const sequence = (this.#reads.started += 1);
    const [accessEpoch, startedAt] = [this.#accessEpoch, Date.now()];
    const metadata = this.#explicit ? (this.#metadata as ClusterMetadata) : await discoverMetadata(client);
    const roles = [...this.#access.keys()];
    const readings = await Promise.all(roles.map(async (role) => ({ role, access: await readRoleAccess(client, role, metadata) })));
    // Invalidated meanwhile (the next statement reads anew), or overtaken by a later refresh.
    if (sequence <= this.#reads.applied) return;
    this.#reads.applied = sequence;
    if (!this.#explicit) this.#use(metadata, startedAt);
    if (accessEpoch !== this.#accessEpoch) return;
    for (const { role, access } of readings) this.#putAccess(role, access, metadata, startedAt);
    this.#noteReadings();
  }

  /** Where `refreshAhead` reads: a Pool's own connections (any idle one). */
  readAheadThrough(client: Queryable): void {
    this.#background = client;
  }

  /**
   * Called as a statement is rewritten: once the reading (metadata, or a role's access) is past
   * half its life, refreshes it in the background through `readAheadThrough`'s connection, so
   * statements in steady use never find it stale and wait. A failure (kept as `aheadError`)
   * leaves it to the next statement's own read; the connection's queries carry their own bound.
   */
  refreshAhead(): void {
    const client = this.#background;
    if (client === undefined || this.#refreshMs <= 0 || this.#reads.ahead || Date.now() - this.#oldestReading <= this.#refreshMs / 2) return;
    this.#reads.ahead = true;
    void this.refresh(client)
      .then(
        () => (this.#aheadError = undefined),
        (error: unknown) => (this.#aheadError = error instanceof Error ? error : new Error(String(error))),
      )
      .finally(() => (this.#reads.ahead = false));
  }

  /** Why the last refresh-ahead failed (it names the node and what it read); undefined once one succeeds. */
  get aheadError(): Error | undefined {
    return this.#aheadError;
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
      const [epoch, startedAt] = [this.#accessEpoch, Date.now()];
      loading = readRoleAccess(client, role, metadata).then(
        (access) => {
          this.#accessLoading.delete(role);
          if (epoch === this.#accessEpoch) {
            this.#putAccess(role, access, metadata, startedAt);
            this.#noteReadings();
          }
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

  /**
   * Reads, through `client`, whatever a rewrite for `role` in `timeZone` still needs (the
   * metadata, the role's access, the zone's grid).
   */
  async prepare(client: Queryable, role: string, timeZone?: string): Promise<void> {
    if (this.metadata === undefined) await this.load(client);
    if (this.access(role) === undefined) await this.loadAccess(client, role);
    if (timeZone !== undefined && !this.#zones.has(timeZone)) await this.loadZone(client, timeZone);
  }

  /** Whether `rewrite` can run now for `role` in `timeZone` (else `prepare` first). */
  ready(role: string, timeZone?: string): boolean {
    return this.metadata !== undefined && this.access(role) !== undefined && (timeZone === undefined || this.#zones.has(timeZone));
  }

  /**
   * Reads the grid of `timeZone` (zoneGrid.ts) from the access node through `client`, once per
   * zone: only zones whose offset changes have one to read. A failed read leaves the zone
   * without a grid (its keys are left to the access node, as before), not the rewrites waiting.
   */
  loadZone(client: Queryable, timeZone: string): Promise<void> {
    if (this.#zones.has(timeZone)) return Promise.resolve();
    if (localMidnightOrigin(timeZone) !== undefined) {
      this.#zones.set(timeZone, undefined);
      return Promise.resolve();
    }
    let loading = this.#zoneLoading.get(timeZone);
    if (loading === undefined) {
      loading = readZoneGrid(client, timeZone).then(
        (grid) => void this.#zones.set(timeZone, grid),
        () => void this.#zones.set(timeZone, undefined),
      ).finally(() => this.#zoneLoading.delete(timeZone));
      this.#zoneLoading.set(timeZone, loading);
    }
    return loading;
  }

  /** Forgets discovered metadata and every role's access: the next statement that names a relation reads them again. */
  invalidate(): void {
    if (!this.#explicit) {
      this.#loadedAt = 0;
      this.#reads.applied = this.#reads.started;
      this.#loading = undefined;
    }
    this.invalidateAccess();
  }

  /** Forgets what roles may see (after GRANT, REVOKE, a policy or row security changed, a role altered). */
  invalidateAccess(): void {
    this.#access.clear();
    this.#accessEpoch += 1;
    this.#accessLoading.clear();
    this.#keyReadings.clear();
    this.#noteReadings();
  }

  /** What the server said when it refused a rewritten statement: keys read earlier are not used again after their guard refused. */
  noteRefused(message: string): void {
    if (message.includes(KEYS_GUARD_NAME)) this.#keyReadings.clear();
  }

  statement(sql: string): StatementInfo {
    if (sql.length > MAX_CACHED_SQL_LENGTH) return statementInfo(sql);
    let info = this.#statements.get(sql);
    if (info === undefined) {
      const shape = this.#shape(sql);
      info = shape === undefined ? undefined : this.#shapes.get(shape.key);
      if (info === undefined) {
        info = statementInfo(sql);
        if (shape !== undefined) this.#shapes.set(shape.key, info);
      }
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
   * Forgets what a statement on its way may make stale: what roles may see after privilege or
   * row-security DDL, the metadata after a relation named like a hypertable or reference table
   * was created, renamed or moved (it may now shadow it on a search path). True in that last
   * case: the caller reads the catalogs again once the statement has run and its transaction
   * ended, since a read started before then does not show it.
   */
  noteExecuted(info: StatementInfo): boolean {
    if (info.changesAccess) this.invalidateAccess();
    const names = [...info.definesRelations].some((name) => this.#resolved.has(name));
    if (names) this.invalidate();
    return names;
  }

  /** The rewrite of `sql` for the session; `ready(settings.role)` must hold. */
  rewrite(sql: string, settings: SessionSettings): RewriteResult | RewriteFailure {
    const metadata = this.#metadata;
    const access = this.#access.get(settings.role);
    if (metadata === undefined || access === undefined) throw new TypeError('rewrite before the metadata and the role\'s access are loaded');
    const prefix = `${settings.timeZone}\u0000${settings.searchPath.join('\u0001')}\u0000${settings.role}\u0000${access.generation}\u0000`;
    const key = prefix + sql;
    let result = this.#rewrites.get(key);
    if (result !== undefined) {
      this.stats.hits += 1;
      return result;
    }
    if (sql.length > MAX_CACHED_SQL_LENGTH) return this.#rewriteNow(sql, metadata, settings, access.access);
    // Another statement of the same shape: its template, with this statement's literals.
    const shape = this.#shape(sql);
    const templates = shape === undefined ? false : this.#templates.get(prefix + shape.key);
    if (shape !== undefined && templates !== undefined && templates !== false) {
      for (const template of templates) {
        const made = instantiate(template, shape);
        if (made !== undefined) {
          this.stats.hits += 1;
          this.stats.templated += 1;
          return made;
        }
      }
    }
    this.stats.misses += 1;
    result = this.#rewriteNow(sql, metadata, settings, access.access);
    this.#rewrites.set(key, result);
    if (shape !== undefined && templates !== false && !('error' in result)) {
      const rewrite = (text: string): RewriteResult => rewriteSql(text, metadata, { timeZone: settings.timeZone, searchPath: settings.searchPath, access: access.access, zoneGrid: this.#zones.get(settings.timeZone) });
      const template = buildTemplate(sql, shape, result, rewrite, this.#spaceColumns);
      // A shape whose first statement cannot be templated is not tried again; one whose fixed literals differ gets a template of its own (a few).
      if (template === undefined) this.#templates.set(prefix + shape.key, templates === undefined ? false : templates);
      else this.#templates.set(prefix + shape.key, [...(templates ?? []), template].slice(-MAX_TEMPLATES_PER_SHAPE));
    }
    return result;
  }

  /**
   * The sub-select of `sql` whose keys are read before it runs (`space IN (SELECT … FROM <reference
   * table>)`, referenceKeys.ts), if any; `ready(settings.role)` must hold. Cached; the keys never are.
   */
  keyLookup(sql: string, settings: SessionSettings): KeyLookup | undefined {
    const metadata = this.#metadata;
    if (metadata === undefined || metadata.referenceTables.length === 0 || sql.length > MAX_CACHED_SQL_LENGTH) return undefined;
    const key = `${settings.searchPath.join('\u0001')}\u0000${sql}`;
    let lookup = this.#lookups.get(key);
    if (lookup === undefined) {
      lookup = findKeyLookup(sql, metadata, { timeZone: settings.timeZone, searchPath: settings.searchPath }) ?? false;
      this.#lookups.set(key, lookup);
    }
    return lookup === false ? undefined : lookup;
  }

  /**
   * The rewrite of `sql`, with the keys of its key sub-select (keyLookup) read first through
   * `session` — the session's own connection, so its role, privileges and row-level security
   * apply — and put in as literals, so only the shards holding them are planned and asked. Read
   * for every execution unless `reuseKeys`. `values` are the statement's bind values. Inside a
   * transaction block, or when the keys cannot be read or are too many, the sub-select stays
   * and an `unchanged` entry says why. The one path hypershard/pg and the gateway both take.
   * `reuseKeys`: the keys read for an earlier execution of the same text, values, settings and
   * role are put in without reading them again (the guard checks them); only for a caller that
   * runs the statement again as written when its guard refuses (and then calls `noteRefused`).
   */
  async rewriteWithKeys(sql: string, settings: SessionSettings, session: Queryable, values: readonly unknown[] | undefined, inTransaction: boolean, reuseKeys = false): Promise<RewriteResult | RewriteFailure> {
    const lookup = this.keyLookup(sql, settings);
    if (lookup === undefined) return this.rewrite(sql, settings);
    const left = (reason: string): RewriteResult | RewriteFailure => {
      const result = this.rewrite(sql, settings);
      return 'error' in result ? result : { ...result, unchanged: [...result.unchanged, { kind: 'shard-pinning', reason: `${lookup.column} IN (${lookup.subselect}) was not read before planning: ${reason}` }] };
    };
    // Its own snapshot is checked by a guard whose error is retried as written: only outside a block.
    if (inTransaction) return left('inside a transaction block the keys would be read under another snapshot, and a guard that found them changed would end the block');
    if (lookup.params.some((n) => values === undefined || n > values.length)) return left('it takes bind values not known when the statement is prepared');
    const params = lookup.params.map((n) => values?.[n - 1]);
    const valuesKey = keyOfValues(params);
    const memo = valuesKey === undefined ? undefined : `${settings.timeZone}\u0000${settings.searchPath.join('\u0001')}\u0000${settings.role}\u0000${valuesKey}\u0000${sql}`;
    let read = memo === undefined || !reuseKeys ? undefined : this.#keyReadings.get(memo);
    const reused = read !== undefined;
    if (read === undefined) {
      let row: Readonly<Record<string, unknown>> | undefined;
      try {
        ({ rows: [row] } = await session.query(lookup.query, params.length === 0 ? undefined : params));
      } catch (error) {
        return left(`reading it as role ${settings.role} failed (${error instanceof Error ? error.message : String(error)}); the statement reports its own error`);
      }
      const answer = readKeyAnswer(row);
      if (typeof answer === 'string') return left(answer);
      read = answer;
      if (memo !== undefined) this.#keyReadings.set(memo, read);
    }
    // Keys on every shard prune nothing, and each arm would be sent all of them (the sub-select sends each its own).
    const hit = lookup.shardsHit(read.values);
    if (hit !== undefined && hit.hit === hit.of) return left(`its ${read.values.length} keys hash to all ${hit.of} shards, so none would be pruned`);
    const result = this.rewrite(lookup.substitute(read.answer), settings);
    if ('error' in result) return result;
    const shown = read.values.length > 10 ? `${read.values.slice(0, 10).join(', ')}, …` : read.values.join(', ');
    return {
      ...result,
      changed: true,
      rewrites: [
        { kind: 'shard-pinning', detail: `${lookup.column} IN (${lookup.subselect}): its ${read.values.length} key${read.values.length === 1 ? '' : 's'} (${shown}) ${reused ? 'as read for an earlier execution' : 'read first'} as role ${settings.role} and put in as literals, so only the shards they hash to are planned; the statement checks them again under its own snapshot` },
        ...result.rewrites,
      ],
    };
  }

  #rewriteNow(sql: string, metadata: ClusterMetadata, settings: SessionSettings, access: RoleAccess): RewriteResult | RewriteFailure {
    try {
      return rewriteSql(sql, metadata, { timeZone: settings.timeZone, searchPath: settings.searchPath, access, zoneGrid: this.#zones.get(settings.timeZone) });
    } catch (error) {
      return { error: error instanceof Error ? error.message : String(error) };
    }
  }

  #shape(sql: string): Shape | undefined {
    if (this.#lastShape?.sql !== sql) this.#lastShape = { sql, shape: shapeOf(sql) };
    return this.#lastShape.shape;
  }

  #stale(loadedAt: number): boolean {
    return this.#refreshMs > 0 && Date.now() - loadedAt > this.#refreshMs;
  }

  /**
   * Puts in what `role` may see, read for `metadata` (a reading for older metadata is refused: a
   * table added since would be unknown; read again next time). Rewrites made with an equal
   * reading stay valid (and cached): only a change starts a new generation.
   */
  #putAccess(role: string, access: RoleAccess, metadata: ClusterMetadata, readAt: number): void {
    const previous = this.#accessSeen.get(role);
    const same = previous !== undefined && sameAccess(previous.access, access);
    const generation = same ? previous.generation : (this.#generation += 1);
    this.#accessSeen.set(role, { access, generation });
    if (this.#metadata === metadata) this.#access.set(role, { access, loadedAt: readAt, generation });
  }

  #use(metadata: ClusterMetadata, readAt = Date.now()): void {
    if (this.#metadata !== undefined && JSON.stringify(this.#metadata) !== JSON.stringify(metadata)) {
      this.#rewrites.clear();
      this.#templates.clear();
      this.#lookups.clear();
      this.#keyReadings.clear();
      this.#access.clear();
    }
    this.#spaceColumns = new Set(metadata.hypertables.map((t) => t.spaceColumn));
    this.#metadata = metadata;
    this.#loadedAt = readAt;
    this.#names = new Set(metadata.hypertables.map((t) => t.table.name));
    this.#resolved = new Set([...metadata.hypertables, ...metadata.referenceTables].map((t) => t.table.name));
    this.#noteReadings();
  }

  /** Readings are put in or dropped far less often than statements ask refreshAhead whether one is old. */
  #noteReadings(): void {
    let oldest = this.#explicit || this.#metadata === undefined || this.#loadedAt === 0 ? Infinity : this.#loadedAt;
    for (const { loadedAt } of this.#access.values()) oldest = Math.min(oldest, loadedAt);
    this.#oldestReading = oldest;
  }
}

function sameAccess(a: RoleAccess, b: RoleAccess): boolean {
  return a.role === b.role && a.tables.size === b.tables.size && [...a.tables].every(([k, v]) => b.tables.has(k) && b.tables.get(k) === v);
}

/** The sub-select's values as a cache key; undefined when one is not a plain value (read each time). */
function keyOfValues(values: readonly unknown[]): string | undefined {
  const part = (v: unknown): unknown => {
    if (v === null || v === undefined || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v))) return v ?? null;
    if (typeof v === 'bigint') return { bigint: String(v) };
    if (v instanceof Date && !Number.isNaN(v.getTime())) return { date: v.toISOString() };
    if (Array.isArray(v)) {
      const items = v.map(part);
      return items.includes(undefined) ? undefined : items;
    }
    return undefined;
  };
  const parts = values.map(part);
  return parts.includes(undefined) ? undefined : JSON.stringify(parts);
}
