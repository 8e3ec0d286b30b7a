/**
 * node-postgres' Client, rewriting the statements that touch distributed hypertables so more of
 * their work runs on the data nodes. The bind values are sent unchanged (the rewriter keeps
 * `$1 … $n`), except to a router read's data node, which gets them written in as literals; a
 * statement that touches no hypertable, or that the rewriter cannot handle, runs exactly as
 * given, so the server reports its own errors.
 *
 * Statements run in the order they were called: when a statement needs something read first
 * (the metadata on first use, the session's settings after a change), it and every statement
 * called after it wait their turn; otherwise the call goes straight to pg.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
// pg's own conversion of a JavaScript value to a parameter (Dates, arrays, objects …); untyped.
// @ts-expect-error pg ships no declarations for lib/utils
import pgUtils from 'pg/lib/utils.js';
import type { NoticeMessage } from 'pg-protocol/dist/messages.js';
import type { IngestCluster } from '../ingest/cluster.js';
import { planRoutedInsert, type InsertParam, type InsertSettings } from '../ingest/insert.js';
import type { Queryable } from '../rewrite/discover.js';
import type { Rewrite, RewriteResult, Unchanged } from '../rewrite/model.js';
import { isGuardError } from '../rewrite/access.js';
import { sessionSettings, type SessionSettings } from '../rewrite/session.js';
import { inlineParameters } from '../route/boundValues.js';
import { cachedRouterPlan, clockReached, routerConnection, RouterPredictions, routerStateOf, type CheckRow, type RouterTarget } from '../route/reads.js';
import { RewriteContext, type HypershardOptions, type RewriteFailure } from './context.js';
import type { StatementInfo } from './statements.js';

const prepareValue = (pgUtils as { prepareValue: (value: unknown) => string | Buffer | null | undefined }).prepareValue;

/** Where a Pool hands its shared context to the clients it creates (pg-pool passes its options on). */
export const CONTEXT = Symbol.for('hypershard.pg.context');

export interface ClientConfig extends pg.ClientConfig {
  readonly hypershard?: HypershardOptions;
}

/** Emitted (`'rewrite'`) for every statement the rewriter looked at: one that names a distributed hypertable. */
export interface RewriteEvent {
  /** The statement as the application wrote it. */
  readonly original: string;
  /** The statement as sent: rewritten, or the original when no rewrite applied or the rewriter failed. */
  readonly sql: string;
  readonly changed: boolean;
  readonly rewrites: readonly Rewrite[];
  readonly unchanged: readonly Unchanged[];
  /** The session settings the rewrite was made for. */
  readonly timeZone: string;
  readonly searchPath: readonly string[];
  /** The role (current_user) it was made for: what that role may see decides the per-shard rewrites. */
  readonly role: string;
  /** The rewriter's error, when it failed and the original statement ran. */
  readonly error?: string;
  /** The data node that answered it straight (a router read), when one did. */
  readonly dataNode?: string;
  /** That router read was sent to its data node with its check (where the last check over the same tables said), not after it. */
  readonly sentAhead?: boolean;
}

interface Prepared {
  readonly sql: string;
  readonly info: StatementInfo;
  readonly event: RewriteEvent | undefined;
  /** Keys read for this execution are in the text: sent as an unnamed statement, never prepared under a name. */
  readonly unnamed?: boolean;
}

type QueryCallback = (error: Error, result: pg.QueryResult) => void;
type AnyConfig = string | (pg.QueryConfig & { submit?: unknown }) | pg.Submittable;

export class Client extends pg.Client {
  /** The last statement this client ran that names a distributed hypertable. */
  lastRewrite: RewriteEvent | undefined;
  readonly #context: RewriteContext;
  /** The session's TimeZone, search path and role; undefined until read, and after a statement that may change them. */
  #settings: SessionSettings | undefined;
  /** A statement defining a relation named like a hypertable was sent: the names are read again once its transaction ends. */
  #namesDefined = false;
  /** A statement changed settings since the last transaction end (which may revert them: SET LOCAL, ROLLBACK). */
  #settingsChangedSinceEnd = false;
  /** Statements called while an earlier one waits for a read run after it. */
  #tail: Promise<void> | undefined;
  /** Named statements this connection prepared: name → text sent. */
  readonly #prepared = new Map<string, string>();
  /** Routes INSERTs into hypertables (HypershardOptions.ingest). */
  readonly #ingest: IngestCluster | undefined;
  /** The session's settings routed INSERTs read values in; undefined until read and after a change. */
  #ingestSettings: InsertSettings | undefined;
  /** Router reads (HypershardOptions.routerReads): the ingest cluster's data-node connections, when on. */
  readonly #routerReads: IngestCluster | undefined;
  /** Router reads' checks this connection prepared: text → statement name. */
  readonly #checks = new Map<string, string>();
  /** Where a router read may be sent before its check answers (#routerRead). */
  readonly #predictions = new RouterPredictions();
  #checkCount = 0;

  constructor(config?: string | ClientConfig) {
    super(config);
    const shared = typeof config === 'object' ? (config as { [CONTEXT]?: RewriteContext })[CONTEXT] : undefined;
    this.#context = shared ?? new RewriteContext(typeof config === 'object' ? config.hypershard : undefined);
    this.#ingest = typeof config === 'object' ? config.hypershard?.ingest : undefined;
    // Data-node rows are parsed by pg's default (global) parsers: a client with its own parsers reads through the access node.
    const own = typeof config === 'object' && config.types !== undefined;
    this.#routerReads = typeof config === 'object' && config.hypershard?.routerReads !== false && !own ? this.#ingest : undefined;
  }

  override query<T extends pg.Submittable>(queryStream: T): T;
  override query<R extends any[] = any[], I = any[]>(queryConfig: pg.QueryArrayConfig<I>, values?: pg.QueryConfigValues<I>): Promise<pg.QueryArrayResult<R>>;
  override query<R extends pg.QueryResultRow = any, I = any>(queryConfig: pg.QueryConfig<I>): Promise<pg.QueryResult<R>>;
  override query<R extends pg.QueryResultRow = any, I = any[]>(queryTextOrConfig: string | pg.QueryConfig<I>, values?: pg.QueryConfigValues<I>): Promise<pg.QueryResult<R>>;
  override query<R extends any[] = any[], I = any[]>(queryConfig: pg.QueryArrayConfig<I>, callback: (err: Error, result: pg.QueryArrayResult<R>) => void): void;
  override query<R extends pg.QueryResultRow = any, I = any[]>(queryTextOrConfig: string | pg.QueryConfig<I>, callback: (err: Error, result: pg.QueryResult<R>) => void): void;
  override query<R extends pg.QueryResultRow = any, I = any[]>(queryText: string, values: pg.QueryConfigValues<I>, callback: (err: Error, result: pg.QueryResult<R>) => void): void;
  override query(config: AnyConfig, values?: unknown, callback?: unknown): unknown {
    if (typeof values === 'function') {
      callback = values;
      values = undefined;
    }
    const cb = callback as QueryCallback | undefined;
    const routable = this.#ingest !== undefined && !isSubmittable(config) && !this.pipeline && INSERT.test(textOf(config) ?? '');
    if (routable && (typeof config !== 'object' || (config as pg.QueryConfig).name === undefined)) return this.#routed(config, values, cb);
    if (this.#mayRouterRead(config)) return this.#later(config, values, cb, true);
    if (this.#tail === undefined) {
      const text = textOf(config);
      // No text: a prepared statement run by name, or not a query at all (pg reports that).
      if (text === undefined) return this.#submit(config, values, cb, undefined);
      const prepared = this.#prepare(text, false);
      if (prepared !== undefined) return this.#submit(config, values, cb, prepared);
    }
    return this.#later(config, values, cb);
  }

  override on(event: 'rewrite', listener: (event: RewriteEvent) => void): this;
  override on(event: 'connect' | 'drain' | 'end', listener: () => void): this;
  override on(event: 'error', listener: (err: Error) => void): this;
  override on(event: 'notice', listener: (notice: NoticeMessage) => void): this;
  override on(event: 'notification', listener: (message: pg.Notification) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this;
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    return super.on(event as 'end', listener);
  }

  /**
   * What to send, when it can be decided now; undefined when the metadata or the session's
   * settings must be read first (unless `final`: then the statement runs as given).
   */
  #prepare(text: string, final: boolean): Prepared | undefined {
    const info = this.#context.statement(text);
    const asGiven: Prepared = { sql: text, info, event: undefined };
    // Nothing to rewrite: unparsable (the server reports it), names no relation, or changes the
    // settings a rewrite in the same text would depend on.
    if (!info.parsed || info.relations.size === 0 || info.changesSettings) return asGiven;
    // A relation named like a hypertable was defined here: the catalogs, read on other
    // connections, show it once its transaction has ended; they are read again then.
    if (this.#namesDefined) {
      if (this.#busy() || this.getTransactionStatus() !== 'I') return asGiven;
      this.#namesDefined = false;
      this.#context.invalidate();
    }
    if (this.#context.metadata === undefined) return final ? asGiven : undefined;
    if (!this.#context.mayTouch(info)) return asGiven;
    this.#context.refreshAhead();
    const settings = this.#settings;
    if (settings === undefined || !this.#context.ready(settings.role, settings.timeZone)) return final ? asGiven : undefined;
    if (!settings.enabled) return asGiven;
    // Keys to read first (referenceKeys.ts): asynchronously, in the statement's turn.
    if (!final && this.#context.keyLookup(text, settings) !== undefined) return undefined;
    return this.#toSend(text, info, settings, this.#context.rewrite(text, settings), false);
  }

  #toSend(text: string, info: StatementInfo, settings: SessionSettings, result: RewriteResult | RewriteFailure, keys: boolean): Prepared {
    const common = { original: text, timeZone: settings.timeZone, searchPath: settings.searchPath, role: settings.role };
    if ('error' in result) return { sql: text, info, event: { ...common, sql: text, changed: false, rewrites: [], unchanged: [], error: result.error } };
    const event = { ...common, sql: result.sql, changed: result.changed, rewrites: result.rewrites, unchanged: result.unchanged };
    return { sql: result.sql, info, event, ...(keys ? { unnamed: true } : {}) };
  }

  /**
   * A statement with a key sub-select (referenceKeys.ts): its keys read first on this connection,
   * once the statements before it have finished (so the transaction status is current). Undefined
   * when it has none or cannot be rewritten now.
   */
  async #prepareWithKeys(config: AnyConfig, text: string, values: unknown): Promise<Prepared | undefined> {
    const info = this.#context.statement(text);
    const settings = this.#settings;
    if (this.#namesDefined || !info.parsed || info.changesSettings || isSubmittable(config) || this.pipeline || settings === undefined || !settings.enabled || !this.#context.ready(settings.role, settings.timeZone)) return undefined;
    if (this.#context.keyLookup(text, settings) === undefined) return undefined;
    if (this.#busy()) await super.query('');
    const raw: Queryable = { query: (sql, params) => super.query(sql, params) };
    const params = (values ?? (typeof config === 'object' ? (config as pg.QueryConfig).values : undefined)) as unknown[] | undefined;
    // A guard's refusal runs it again as written (#submit), so keys read for an earlier execution may be reused.
    const result = await this.#context.rewriteWithKeys(text, settings, raw, params, this.getTransactionStatus() !== 'I', true);
    return this.#toSend(text, info, settings, result, true);
  }

  /** Sends the statement, `prepared` or as given. */
  #submit(config: AnyConfig, values: unknown, callback: QueryCallback | undefined, prepared: Prepared | undefined): unknown {
    if (prepared !== undefined) this.#track(prepared.info);
    const event = prepared?.event;
    if (prepared === undefined || event === undefined || !event.changed || isSubmittable(config) || this.pipeline || prepared.info.transactional) {
      const result = super.query((prepared === undefined ? config : this.#sent(prepared.unnamed === true ? unnamed(config) : config, prepared.sql)) as string, values as unknown[], callback as QueryCallback);
      if (event !== undefined) this.#report(event);
      return result;
    }
    // A rewritten statement the server refuses before running it (class 42: a name, a privilege,
    // a type; also the guard of access.ts, when what the role may see changed since it was read)
    // runs again as written when that cannot change what the application sees: outside a
    // transaction, the failed statement did nothing. Inside one, the error stands.
    const retry = (error: Error): boolean => {
      if (!(isAnalysisError(error) && this.getTransactionStatus() === 'I')) return false;
      if (isGuardError(error)) this.#context.invalidateAccess();
      this.#report({ ...event, sql: event.original, changed: false, error: `the rewritten statement failed (${error.message}); ran as written` });
      return true;
    };
    const asWritten = unnamed(config);
    const sent = this.#sent(prepared.unnamed === true ? asWritten : config, prepared.sql) as string;
    this.#report(event);
    if (callback !== undefined) {
      super.query(sent, values as unknown[], (error: Error, result: pg.QueryResult) => {
        if (error !== null && error !== undefined && retry(error)) super.query(asWritten as string, values as unknown[], callback);
        else callback(error, result);
      });
      return undefined;
    }
    return (super.query(sent, values as unknown[]) as Promise<pg.QueryResult>).catch((error: Error) => {
      if (retry(error)) return super.query(asWritten as string, values as unknown[]);
      throw error;
    });
  }

  /**
   * Whether statements sent before are running or queued: the transaction status is current once
   * they have finished. pg's own fields (its public getters for them warn that they are deprecated);
   * a pg without them is taken as busy, which costs an empty statement and is never wrong.
   */
  #busy(): boolean {
    const own = this as unknown as { _activeQuery?: unknown; _queryQueue?: readonly unknown[] };
    if (!Array.isArray(own._queryQueue)) return true;
    return own._activeQuery != null || own._queryQueue.length > 0;
  }

  #report(event: RewriteEvent): void {
    this.lastRewrite = event;
    this.emit('rewrite', event);
  }

  /**
   * An INSERT, in its turn: outside a transaction block and routable, written on the data nodes
   * and committed there (two-phase when it spans several); otherwise sent as any statement.
   */
  #routed(config: AnyConfig, values: unknown, callback: QueryCallback | undefined): unknown {
    const ingest = this.#ingest as IngestCluster;
    const text = textOf(config) as string;
    const submission = (this.#tail ?? Promise.resolve()).then(async (): Promise<{ result: unknown }> => {
      // The transaction status is current once the statements sent before have finished.
      if (this.#busy()) await super.query('');
      if (this.getTransactionStatus() === 'I') {
        const settings = (this.#ingestSettings ??= await this.#readIngestSettings());
        const params = ((values ?? (config as pg.QueryConfig).values ?? []) as unknown[]).map(insertParam);
        const plan = await planRoutedInsert(ingest, text, params, settings);
        if (plan.routable) {
          const tx = await ingest.begin({ settings });
          let rows: number;
          try {
            rows = await plan.run(tx);
            await tx.commit();
          } catch (error) {
            await tx.abort(error instanceof Error ? error.message : String(error));
            throw error;
          }
          const result = { command: 'INSERT', rowCount: rows, oid: 0, rows: [], fields: [] } as unknown as pg.QueryResult;
          if (callback !== undefined) callback(undefined as unknown as Error, result);
          return { result };
        }
      }
      let prepared = this.#prepare(text, false);
      if (prepared === undefined) {
        await this.#read(this.#context.statement(text));
        prepared = (await this.#prepareWithKeys(config, text, values)) ?? this.#prepare(text, true);
      }
      return { result: this.#submit(config, values, callback, prepared) };
    });
    const tail = submission.then(
      () => undefined,
      () => undefined,
    );
    this.#tail = tail;
    void tail.then(() => {
      if (this.#tail === tail) this.#tail = undefined;
    });
    if (callback !== undefined) {
      submission.catch((error: unknown) => callback(error as Error, undefined as unknown as pg.QueryResult));
      return undefined;
    }
    return submission.then((s) => s.result);
  }

  /** TimeZone, DateStyle, IntervalStyle, client_encoding, search_path and role of this session. */
  async #readIngestSettings(): Promise<InsertSettings> {
    const { rows } = await super.query<{ tz: string; ds: string; is: string; enc: string; sp: string; role: string }>(
      `SELECT current_setting('TimeZone') AS tz, current_setting('DateStyle') AS ds, current_setting('IntervalStyle') AS is,
              current_setting('client_encoding') AS enc, current_setting('search_path') AS sp, current_user::text AS role`,
    );
    const r = rows[0];
    if (r === undefined) return {};
    return { timeZone: r.tz, dateStyle: r.ds, intervalStyle: r.is, clientEncoding: r.enc, searchPath: r.sp, role: r.role };
  }

  /**
   * Reads what the statement needs (in its turn), then submits it; later calls queue behind.
   * `routerRead`: answered by a data node straight when it can be (#routerRead), else submitted.
   */
  #later(config: AnyConfig, values: unknown, callback: QueryCallback | undefined, routerRead = false): unknown {
    const submission = (this.#tail ?? Promise.resolve()).then(async () => {
      const text = textOf(config);
      let prepared: Prepared | undefined;
      if (text !== undefined) {
        if (this.#prepare(text, false) === undefined) await this.#read(this.#context.statement(text));
        // A router read is planned from the statement with its values written in (the router sees constants).
        const bound = routerRead ? boundText(text, values ?? (config as pg.QueryConfig).values) : undefined;
        if (bound !== undefined) {
          const read = (await this.#prepareWithKeys(config, bound, bound === text ? values : [])) ?? this.#prepare(bound, true);
          const answer = read === undefined ? undefined : await this.#routerRead(config as string | pg.QueryConfig, read, text);
          if (answer !== undefined) {
            // Outside this chain, as pg calls back: a callback that throws must not be called again with its own error.
            if (callback !== undefined) process.nextTick(() => callback(null as unknown as Error, answer));
            return { result: answer };
          }
          if (bound === text) prepared = read;
        }
        prepared ??= (await this.#prepareWithKeys(config, text, values)) ?? this.#prepare(text, true);
      }
      // Wrapped, so the submission settles when the statement is sent, not when it completes.
      return { result: this.#submit(config, values, callback, prepared) };
    });
    const tail = submission.then(
      () => undefined,
      () => undefined,
    );
    this.#tail = tail;
    void tail.then(() => {
      if (this.#tail === tail) this.#tail = undefined;
    });
    if (callback !== undefined) {
      submission.catch((error: unknown) => callback(error as Error, undefined as unknown as pg.QueryResult));
      return isSubmittable(config) ? config : undefined;
    }
    const promise = submission.then((s) => s.result);
    return isSubmittable(config) ? config : promise;
  }

  /**
   * Whether a statement may be a router read (decided in its turn): a query with no row-by-row
   * consumer, type parsers of its own or binary results, outside a pipeline, on a client with
   * router reads on. Its bind values must become literals (boundText), and planRouterRead
   * decides the rest from its rewrite.
   */
  #mayRouterRead(config: AnyConfig): boolean {
    if (this.#routerReads === undefined || this.pipeline || isSubmittable(config)) return false;
    if (typeof config === 'object') {
      const c = config as pg.QueryConfig & { types?: unknown; binary?: unknown };
      if (c.types !== undefined || c.binary === true) return false;
    }
    const text = textOf(config) ?? '';
    if (!SELECT.test(text)) return false;
    // One that names no hypertable keeps pg's direct path (before the metadata is read, it waits its turn anyway).
    return this.#context.metadata === undefined || this.#context.mayTouch(this.#context.statement(text));
  }

  /**
   * A rewritten statement that reads one shard, answered by that shard's data node straight
   * (src/route/reads.ts, the gateway's router reads too; `prepared` made of the statement with
   * its values written in, `original` as the application wrote it): the access node's remote
   * transaction, cursor and planning are not paid. Its check runs first on this session, as its
   * role (privileges, row security, the rewrite's guards, where the shard is now, the session's
   * settings); the data node's connection is the ingest cluster's, put in those settings.
   * Undefined when it may not be one, or the data node failed before answering: the statement
   * then goes through the access node (a read, so asking again is safe).
   *
   * A statement over the same foreign tables as an earlier one on this connection is sent where
   * that one's check said, at the same time as its own check (one that reads the access node's
   * clock given that clock as estimated from the last check, RouterPredictions): the check still
   * decides, and an answer is used only when the check names that very target (the data node,
   * statement, settings and version), else it is dropped unseen and the statement goes where the
   * check says. The check then costs its overlap with the data node's work, not a round trip
   * before it.
   */
  async #routerRead(config: string | pg.QueryConfig, prepared: Prepared, original: string): Promise<pg.QueryResult | undefined> {
    const cluster = this.#routerReads;
    const settings = this.#settings;
    const metadata = this.#context.metadata;
    const event = prepared.event;
    if (cluster === undefined || settings === undefined || metadata === undefined || event === undefined || !event.changed) return undefined;
    if (this.#busy()) await super.query('');
    if (this.getTransactionStatus() !== 'I') return undefined;
    const plan = cachedRouterPlan(prepared.sql, metadata, settings);
    if (typeof plan === 'string') return undefined;
    const state = routerStateOf(cluster);
    const rowMode = typeof config === 'object' ? (config as { rowMode?: string }).rowMode : undefined;
    const ask = async (target: RouterTarget): Promise<pg.QueryResult | undefined> => {
      const client = await routerConnection(cluster, state, target);
      if (typeof client === 'string') return undefined;
      try {
        const result = await client.query({ text: target.text, ...(rowMode === undefined ? {} : { rowMode }) } as pg.QueryConfig);
        cluster.releaseReader(target.node, client, true);
        return result;
      } catch (error) {
        cluster.releaseReader(target.node, client, false);
        // Its own error (a division by zero …) the access node reports as it would; a node that stopped answering is left out a while.
        if (!(error instanceof pg.DatabaseError)) state.failed(target.node);
        return undefined;
      }
    };
    const prediction = this.#predictions.predict(plan, cluster, state);
    const ahead = prediction.target === undefined ? undefined : ask(prediction.target);
    const row = await this.#check(plan.check(), this.#predictions.checkValues(plan, prediction));
    const { target, ahead: sentAhead, notBefore } = this.#predictions.confirm(plan, row, prediction, cluster, state);
    if (typeof target === 'string') return undefined;
    const result = sentAhead && ahead !== undefined ? await ahead : await ask(target);
    if (result === undefined) return undefined;
    // The clock it was given has come before the caller has the answer.
    await clockReached(notBefore);
    // The data node's table and column numbers mean nothing here (the gateway's router reads send none either).
    for (const field of result.fields) Object.assign(field, { tableID: 0, columnID: 0 });
    this.#track(prepared.info);
    this.#report({ ...event, original, dataNode: target.node, sentAhead });
    return result;
  }

  /**
   * A router read's check, prepared once per text on this connection (planning it was most of its
   * cost); undefined when it failed (a guard's error, a privilege missing: the access node then
   * says what it says), and the next one is prepared anew under another name.
   */
  async #check(text: string, values: readonly (string | null)[] | undefined): Promise<CheckRow | undefined> {
    let name = this.#checks.get(text);
    if (name === undefined && this.#checks.size < MAX_PREPARED_CHECKS) {
      name = `hypershard.check.${(this.#checkCount += 1)}`;
      this.#checks.set(text, name);
    }
    try {
      const { rows } = await super.query<CheckRow & pg.QueryResultRow>({ ...(name === undefined ? {} : { name }), text, ...(values === undefined ? {} : { values: [...values] }) });
      return rows[0];
    } catch {
      this.#checks.delete(text);
      return undefined;
    }
  }

  /** The metadata, the session's settings and what its role may see, through this connection; a failure leaves the statement as given. */
  async #read(info: StatementInfo): Promise<void> {
    const raw: Queryable = { query: (sql, values) => super.query(sql, values) };
    if (this.#context.metadata === undefined) await this.#context.load(raw).catch(() => undefined);
    if (this.#context.metadata === undefined || !this.#context.mayTouch(info)) return;
    this.#settings ??= await sessionSettings(raw).catch(() => undefined);
    if (this.#settings !== undefined && this.#context.access(this.#settings.role) === undefined) await this.#context.loadAccess(raw, this.#settings.role).catch(() => undefined);
    if (this.#settings !== undefined) await this.#context.loadZone(raw, this.#settings.timeZone);
  }

  /** Notes, as a statement is sent, that it may change the settings, access or names the next rewrite needs. */
  #track(info: StatementInfo): void {
    if (this.#context.noteExecuted(info)) this.#namesDefined = true;
    // Router reads' checks prepared before are gone: prepared again under new names.
    if (info.dropsStatements) this.#checks.clear();
    if (info.changesSettings) {
      this.#settings = undefined;
      this.#ingestSettings = undefined;
      this.#settingsChangedSinceEnd = true;
    }
    if (info.endsTransaction && this.#settingsChangedSinceEnd) {
      this.#settings = undefined;
      this.#ingestSettings = undefined;
      this.#settingsChangedSinceEnd = false;
    }
  }

  /** The query as pg gets it: the statement's text replaced; a named statement renamed when this connection prepared its name with other text. */
  #sent(config: AnyConfig, sql: string): AnyConfig {
    if (typeof config === 'string') return sql;
    if (isSubmittable(config)) {
      if ('text' in config && typeof config.text === 'string' && config.text !== sql) (config as { text: string }).text = sql;
      return config;
    }
    const name = config.name;
    if (name === undefined || typeof config.text !== 'string') return sql === config.text ? config : { ...config, text: sql };
    const effective = this.#statementName(name, sql);
    return sql === config.text && effective === name ? config : { ...config, text: sql, name: effective };
  }

  /**
   * pg refuses one name for two texts on a connection. The rewrite of a named statement depends
   * on the session's settings, so a text other than the one first prepared under the name gets
   * a name of its own: `name/<hash>`.
   */
  #statementName(name: string, sql: string): string {
    const first = this.#prepared.get(name);
    if (first === undefined) {
      this.#prepared.set(name, sql);
      return name;
    }
    return first === sql ? name : `${name}/${createHash('sha256').update(sql).digest('hex').slice(0, 16)}`;
  }
}

const INSERT = /^\s*insert\s/i;
/** A SELECT (or WITH), after any leading comments (a dashboard's label, line or block). */
const SELECT = /^(?:\s|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*(?:select|with)\b/i;
/** Router reads' checks prepared per connection; past this many, a check is sent unprepared. */
const MAX_PREPARED_CHECKS = 32;

/** A bind value as pg would send it: bytes in binary (bytea), everything else as its text. */
function insertParam(value: unknown): InsertParam {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return { value, format: 'binary', typeOid: 17 };
  // node-postgres's own conversion: a string, bytes, or null.
  const text = prepareValue(value);
  return text === null || text === undefined ? null : Buffer.isBuffer(text) ? { value: text, format: 'binary', typeOid: 17 } : text;
}

/**
 * `text` with its bind values written in as pg would send them (its own conversion of each, to
 * text, of no declared type), for a router read; `text` itself without values; undefined when a
 * value cannot be a literal there (bytes, a conversion that throws, inlineParameters' refusals:
 * the statement then goes to the access node with its values).
 */
function boundText(text: string, values: unknown): string | undefined {
  if (values === undefined || values === null || (Array.isArray(values) && values.length === 0)) return text;
  if (!Array.isArray(values)) return undefined;
  let texts: (string | Buffer | null)[];
  try {
    texts = values.map((v) => prepareValue(v) ?? null);
  } catch {
    return undefined;
  }
  return inlineParameters(text, texts.map(() => 0), texts);
}

/** SQLSTATE class 42, syntax error or access rule violation: raised while planning, before anything runs. */
function isAnalysisError(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('42');
}

/** The query as the application wrote it, without its statement name (taken by the rewritten text). */
function unnamed(config: AnyConfig): AnyConfig {
  if (typeof config === 'string' || isSubmittable(config) || config.name === undefined) return config;
  const { name: _name, ...rest } = config;
  return rest;
}

function isSubmittable(config: AnyConfig): config is pg.Submittable {
  return typeof config === 'object' && config !== null && typeof (config as { submit?: unknown }).submit === 'function';
}

function textOf(config: AnyConfig): string | undefined {
  if (typeof config === 'string') return config;
  if (typeof config !== 'object' || config === null) return undefined;
  const text = (config as { text?: unknown }).text;
  return typeof text === 'string' ? text : undefined;
}
