/**
 * A routed transaction: rows written straight to the data nodes that own them, committed on all
 * of them or on none.
 *
 * Access node: one transaction (the writer's own, or a caller's, e.g. a gateway client's) holds a
 * shared advisory lock on every shard written (src/route/lock.ts: a rebalance move waits for it,
 * and the placement is read after it is granted), and decides the outcome by writing the commit
 * record. Data nodes: one connection per lane, as the FDW service role, in the client's
 * TimeZone / DateStyle / IntervalStyle (and statement_timeout / lock_timeout when given), each a
 * participant of the two-phase commit:
 *
 *   prepare()            PREPARE TRANSACTION '<gid>_<n>' on every participant; any failure
 *                        rolls every one back
 *   writeCommitRecord()  in the deciding access-node transaction (its xid is in the gid)
 *   (commit the access-node transaction: the caller's, or commitAccess() for the writer's own)
 *   commitPrepared()     COMMIT PREPARED everywhere; a node that does not answer is left to
 *                        recover(), which commits where the record exists
 *
 * commit() runs all of it; a single participant commits without two-phase commit (atomic
 * anyway), and one-phase mode (opt-in, see IngestOptions.onePhase) commits node by node.
 */
import type pg from 'pg';
import { CommitError, HypershardError, RoutingError, errorMessage } from '../errors.js';
import type { QualifiedName } from '../plan/layout.js';
import type { Queryable } from '../rewrite/discover.js';
import { shardLocksSql } from '../route/lock.js';
import type { HypertableRoute } from '../route/placement.js';
import { ShardRouter } from '../route/router.js';
import { quoteLiteral } from '../sql/quote.js';
import type { IngestCluster } from './cluster.js';
import { CURRENT_XID_SQL, newGidPrefix, participantGid, RECORD_COMMIT_SQL, recordCommitSql } from './commitLog.js';
import { canonicalEncoding, type ClientSettings } from './settings.js';

export interface TransactionOptions {
  /** The client's session settings the rows are read under. @default the access node's defaults */
  readonly settings?: Partial<ClientSettings>;
  /**
   * The access-node transaction that holds the shard locks and writes the commit record, when the
   * caller owns one (a gateway client inside BEGIN … COMMIT, whose own writes must commit with
   * the routed ones). It must be inside a transaction block; the caller commits it between
   * writeCommitRecord() and commitPrepared(). @default a connection of the writer's own
   */
  readonly access?: Queryable;
}

export interface Participant {
  readonly node: string;
  /** Its number in the transaction: the gid suffix. */
  readonly index: number;
  readonly client: pg.Client;
  state: 'open' | 'prepared' | 'committed' | 'rolled-back' | 'failed';
  /**
   * The statements that open its transaction (the client's settings, BEGIN) when they have not
   * been sent yet: the first statement on it (a COPY lane's) sends them ahead of its own, in the
   * same message, and clears this.
   */
  opening: string | undefined;
}

export interface PreparedTransaction {
  /** The gid prefix the commit record names. */
  readonly gid: string;
  readonly participants: readonly { readonly node: string; readonly gid: string }[];
}

export interface CommitOutcome {
  /** `single`: one data node, committed directly; `none`: nothing was written. */
  readonly mode: 'two-phase' | 'one-phase' | 'single' | 'none';
  readonly gid: string | undefined;
  /** Prepared transactions recorded as committed whose COMMIT PREPARED got no answer: recover() finishes them. */
  readonly inDoubt: readonly { readonly node: string; readonly gid: string; readonly error: string }[];
  /** One-phase only: the nodes that committed before one failed (empty when all committed). */
  readonly partial: readonly string[];
}

/** Something that writes through the transaction's participants and must finish before it prepares (a COPY). */
export interface TransactionWriter {
  finish(): Promise<void>;
  abandon(reason: string): Promise<void>;
}

type State = 'open' | 'prepared' | 'recorded' | 'committed' | 'aborted';

export class RoutedTransaction {
  readonly cluster: IngestCluster;
  readonly settings: ClientSettings;
  readonly #external: Queryable | undefined;
  #owned: pg.Client | undefined;
  #xid: string | undefined;
  /** The xid asked for when a second participant joined (needed only for two-phase commit), while the rows are written. */
  #xidAsked: Promise<string | undefined> | undefined;
  #opening: Promise<pg.Client> | undefined;
  readonly #locked = new Map<string, { route: HypertableRoute; remainders: Set<number> }>();
  readonly #participants = new Map<string, Participant[]>();
  readonly #writers = new Set<TransactionWriter>();
  #hashClient: pg.Client | undefined;
  #count = 0;
  #state: State = 'open';
  /** abort() has begun: a participant still connecting must not join after it read the list. */
  #aborting = false;
  /** interrupt() was called: no participant joins, and none goes back to the pool. */
  #interrupted = false;
  #prepared: PreparedTransaction | undefined;
  readonly #left: { node: string; gid: string }[] = [];

  private constructor(cluster: IngestCluster, settings: ClientSettings, access: Queryable | undefined) {
    this.cluster = cluster;
    this.settings = settings;
    this.#external = access;
  }

  static async begin(cluster: IngestCluster, options: TransactionOptions): Promise<RoutedTransaction> {
    const defaults = await cluster.defaultSettings();
    const settings = { ...defaults, ...options.settings };
    const encoding = canonicalEncoding(settings.clientEncoding);
    return new RoutedTransaction(cluster, { ...settings, clientEncoding: encoding }, options.access);
  }

  get state(): State {
    return this.#state;
  }

  /**
   * Prepared parts this transaction could not finish (their node did not answer its COMMIT or
   * ROLLBACK PREPARED): recover() finishes them as the commit record says, once the node answers.
   */
  get leftPrepared(): readonly { readonly node: string; readonly gid: string }[] {
    return this.#left;
  }

  /** The access-node session deciding this transaction (opened and BEGUN on first use when owned). */
  async access(): Promise<Queryable> {
    if (this.#external !== undefined) return this.#external;
    if (this.#owned !== undefined) return this.#owned;
    // Once: a second caller (the xid asked for in the background) waits for the same connection.
    this.#opening ??= (async () => {
      const client = await this.cluster.acquireAccess();
      try {
        await client.query(`BEGIN; SET LOCAL lock_timeout = ${Math.max(1, Math.round(this.cluster.options.lockTimeoutMs))}`);
      } catch (error) {
        this.cluster.releaseAccess(client, false);
        throw error;
      }
      this.#owned = client;
      return client;
    })();
    try {
      return await this.#opening;
    } finally {
      this.#opening = undefined;
    }
  }

  /** Starts reading the deciding transaction's xid, which prepare() will need; its failure is prepare()'s to report. */
  #askXid(): void {
    if (this.#xid !== undefined || this.#xidAsked !== undefined || this.cluster.options.onePhase) return;
    const asked = this.access().then(async (access) => (await access.query<{ xid: string }>(CURRENT_XID_SQL)).rows[0]?.xid);
    asked.catch(() => undefined);
    this.#xidAsked = asked;
  }

  /**
   * Takes the shard locks for `remainders` of `table` (all its shards when omitted) and returns
   * the route read after they were granted: where those shards are now, and stay until this
   * transaction ends.
   * @throws RoutingError when the table cannot be routed; the lock wait's error when a move holds a shard past lockTimeoutMs.
   */
  async lock(table: QualifiedName, remainders?: readonly number[]): Promise<HypertableRoute> {
    this.#assertOpen();
    const access = await this.access();
    const key = `${table.schema}\u0000${table.name}`;
    const held = this.#locked.get(key);
    const route = held?.route ?? (await this.cluster.route(access, table));
    const wanted = remainders ?? route.partitions.map((p) => p.remainder);
    const missing = wanted.filter((r) => !(held?.remainders.has(r) ?? false));
    if (held !== undefined && missing.length === 0) return held.route;
    try {
      await access.query(shardLocksSql(table, missing, 'shared'));
    } catch (error) {
      if ((error as { code?: string }).code === '55P03') {
        throw new RoutingError(`waited ${this.cluster.options.lockTimeoutMs} ms for shards of ${table.schema}.${table.name} that a rebalance is moving; try again when it is done`, { cause: error });
      }
      throw error;
    }
    // Read after the locks: a move that finished while we waited has switched the placement.
    const fresh = await this.cluster.route(access, table);
    const remaindersHeld = new Set([...(held?.remainders ?? []), ...missing]);
    if (held !== undefined && fresh.signature !== held.route.signature) {
      throw new RoutingError(`${table.schema}.${table.name} changed on the access node during the transaction (columns or shards); nothing was written`);
    }
    this.#locked.set(key, { route: fresh, remainders: remaindersHeld });
    return fresh;
  }

  /**
   * Shard locks the caller took itself in this transaction's access-node session, with the route
   * it checked after they were granted (its signature read then matched): lock() and router() then
   * use them without asking again. For a caller that sends the locks and the check in one message
   * with other statements of its own.
   */
  adoptLocks(table: QualifiedName, route: HypertableRoute, remainders: readonly number[]): void {
    this.#assertOpen();
    const key = `${table.schema}\u0000${table.name}`;
    if (this.#locked.has(key)) throw new HypershardError('USAGE', `shard locks of ${table.schema}.${table.name} are already held in this transaction`);
    this.#locked.set(key, { route, remainders: new Set(remainders) });
  }

  /** A router for `table` in this transaction's session settings (its server fallback on a connection of its own). */
  async router(table: QualifiedName, remainders?: readonly number[]): Promise<ShardRouter> {
    const route = await this.lock(table, remainders);
    return new ShardRouter(route, { timeZone: this.settings.timeZone }, { query: (text, values) => this.#hashQuery(text, values) } as Queryable);
  }

  async #hashQuery(text: string, values?: unknown[]): Promise<pg.QueryResult> {
    if (this.#hashClient === undefined) {
      const client = await this.cluster.acquireAccess();
      await client.query(settingsSql(this.settings));
      this.#hashClient = client;
    }
    return this.#hashClient.query(text, values);
  }

  /**
   * The `slot`-th connection to `node` in this transaction, opened (the client's settings, BEGIN)
   * on first use: at once, or with `deferBegin` by the caller's first statement on it, which sends
   * `opening` ahead of its own (a round trip fewer).
   * @throws RoutingError when the node cannot take a two-phase commit and one-phase was not chosen.
   */
  async participant(node: string, slot = 0, options: { readonly deferBegin?: boolean } = {}): Promise<Participant> {
    this.#assertOpen();
    const list = this.#participants.get(node) ?? [];
    this.#participants.set(node, list);
    const existing = list[slot];
    if (existing !== undefined) return existing;
    const client = await this.cluster.acquireData(node);
    const opening = `${settingsSql(this.settings)}; BEGIN${timeoutsSql(this.settings)}`;
    try {
      const max = await this.cluster.preparedTransactions(node, client);
      if (max === 0 && !this.cluster.options.onePhase) {
        throw new RoutingError(
          `data node ${node} has max_prepared_transactions = 0, so routed writes cannot commit atomically there; ` +
            'set it above 0 (a restart; `hypershard dev up` does), or accept one-phase commit (--one-phase: a failure between two nodes\' commits leaves a partial write)',
        );
      }
      if (options.deferBegin !== true) await client.query(opening);
      // Aborted while this connection was being set up (another node failed first): abort() did
      // not know it, so it must not join; its transaction (if begun) is rolled back here instead.
      if (this.#state !== 'open' || this.#aborting || this.#interrupted) {
        if (options.deferBegin !== true) await client.query('ROLLBACK');
        throw new HypershardError('USAGE', `the routed transaction is ${this.#interrupted ? 'interrupted' : this.#aborting ? 'aborting' : this.#state}`);
      }
    } catch (error) {
      this.cluster.releaseData(node, client, false);
      throw error;
    }
    const participant: Participant = { node, index: this.#count++, client, state: 'open', opening: options.deferBegin === true ? opening : undefined };
    list[slot] = participant;
    const second = this.#count === 2;
    if (second) this.#askXid();
    return participant;
  }

  /**
   * The data-node backends of the participants still open, for a cancel request (a gateway
   * client's cancel or statement_timeout): the caller sends it, then aborts the transaction when
   * the statement fails. From now on no participant joins, and none goes back to the pool, so a
   * request that arrives late meets no other transaction's statement.
   */
  interrupt(): { readonly host: string; readonly port: number; readonly processID: number; readonly secretKey: number }[] {
    this.#interrupted = true;
    if (this.#state !== 'open' || this.#aborting) return [];
    return this.participants().flatMap((p) => {
      const c = p.client as unknown as { host: string; port: number; processID: number | null; secretKey: number | null };
      return p.state === 'open' && c.processID !== null && c.secretKey !== null ? [{ host: c.host, port: c.port, processID: c.processID, secretKey: c.secretKey }] : [];
    });
  }

  participants(): Participant[] {
    return [...this.#participants.values()].flat().filter((p): p is Participant => p !== undefined);
  }

  /** A writer (a COPY) to finish before preparing, or to abandon on abort. */
  attach(writer: TransactionWriter): void {
    this.#writers.add(writer);
  }

  /** Ends every writer's input; a writer's error (a bad row, a data node) aborts the transaction and is rethrown. */
  async #finishWriters(): Promise<void> {
    try {
      for (const writer of this.#writers) await writer.finish();
    } catch (error) {
      await this.abort(errorMessage(error));
      throw error;
    }
    this.#writers.clear();
  }

  /** Ends every writer's input now, as prepare() and commitSingle() would: for a caller deciding between the two, or whether to commit at all. */
  finish(): Promise<void> {
    this.#assertOpen();
    return this.#finishWriters();
  }

  /**
   * PREPARE TRANSACTION on every participant. When one fails (a deferred constraint, a broken
   * connection) every participant is rolled back and the error names the node.
   * @throws CommitError (the transaction is then aborted)
   */
  async prepare(): Promise<PreparedTransaction> {
    this.#assertOpen();
    await this.#finishWriters();
    const asked = this.#xidAsked;
    this.#xidAsked = undefined;
    if (this.#xid === undefined && asked !== undefined) this.#xid = await asked;
    if (this.#xid === undefined) {
      const access = await this.access();
      const { rows } = await access.query<{ xid: string }>(CURRENT_XID_SQL);
      this.#xid = rows[0]?.xid;
    }
    if (this.#xid === undefined) throw new TypeError('the access node gave no transaction id');
    const gid = newGidPrefix(this.#xid);
    const participants = this.participants();
    const results = await Promise.allSettled(
      participants.map(async (p) => {
        await this.#bounded(p, `${this.#opened(p)}PREPARE TRANSACTION ${quoteLiteral(participantGid(gid, p.index))}`, 'PREPARE TRANSACTION');
        p.state = 'prepared';
      }),
    );
    const failed = results.findIndex((r) => r.status === 'rejected');
    if (failed !== -1) {
      const reason = (results[failed] as PromiseRejectedResult).reason as unknown;
      const node = participants[failed]?.node;
      // A failed PREPARE already rolled its transaction back.
      const p = participants[failed];
      if (p !== undefined) p.state = 'rolled-back';
      this.#prepared = { gid, participants: participants.map((q) => ({ node: q.node, gid: participantGid(gid, q.index) })) };
      await this.abort(`data node ${node ?? '?'} could not prepare`);
      throw new CommitError(`data node ${node ?? '?'} refused to prepare the transaction: ${errorMessage(reason)}; every node was rolled back, nothing was committed`, { node, cause: reason });
    }
    this.#prepared = { gid, participants: participants.map((p) => ({ node: p.node, gid: participantGid(gid, p.index) })) };
    this.#state = 'prepared';
    return this.#prepared;
  }

  /** The commit decision, written in the deciding access-node transaction (`via`: another session of the same transaction). */
  async writeCommitRecord(prepared: PreparedTransaction, via?: Queryable): Promise<void> {
    if (this.#state !== 'prepared') throw new HypershardError('USAGE', `writeCommitRecord() after prepare(), not in state ${this.#state}`);
    const access = via ?? (await this.access());
    await access.query(RECORD_COMMIT_SQL, [prepared.gid, prepared.participants.map((p) => p.node)]);
    this.#state = 'recorded';
  }

  /**
   * The commit decision and the COMMIT of the caller's access-node transaction (`via`), in one
   * message: the COMMIT runs only when the record was written.
   * @returns the COMMIT's tag (ROLLBACK when the caller's transaction had failed)
   * @throws the access node's error when the record was refused (the transaction block is then failed, nothing committed)
   */
  async writeCommitRecordAndCommit(prepared: PreparedTransaction, via: Queryable): Promise<string> {
    if (this.#state !== 'prepared') throw new HypershardError('USAGE', `writeCommitRecordAndCommit() after prepare(), not in state ${this.#state}`);
    let command: string;
    try {
      ({ command } = await via.query(`${recordCommitSql(prepared.gid, prepared.participants.map((p) => p.node))}; COMMIT`));
    } catch (error) {
      // An answer (a SQLSTATE): the record did not commit, the caller rolls back. No answer: the
      // record may have committed, so rolling back could undo what recover() would then commit
      // where a rollback failed; every participant is left prepared for recover() to decide.
      if ((error as { code?: string }).code !== undefined && !(error instanceof HypershardError)) throw error;
      this.#releaseParticipants(false);
      this.#state = 'aborted';
      throw new CommitError(
        `the access node stopped answering while committing (${errorMessage(error)}); the outcome is recorded there or not at all: run \`hypershard recover\` to finish it (${prepared.participants.map((p) => `${p.node}: ${p.gid}`).join(', ')})`,
        { cause: error },
      );
    }
    this.#state = 'recorded';
    return command;
  }

  /**
   * Commits the writer's own access-node transaction, which makes the commit record durable. A
   * definite failure rolls every participant back; a lost connection leaves them for recover().
   * @throws CommitError
   */
  async commitAccess(): Promise<void> {
    const owned = this.#owned;
    if (owned === undefined) throw new HypershardError('USAGE', 'commitAccess() is for a transaction with its own access-node connection; commit yours instead');
    try {
      await owned.query('COMMIT');
    } catch (error) {
      // A SQLSTATE means the server answered (the record did not commit); a lost connection or a
      // node that stopped answering (named by its supervision) leaves the outcome unknown.
      const answered = (error as { code?: string }).code !== undefined && !(error instanceof HypershardError);
      this.#releaseAccess(false);
      if (answered && this.#prepared !== undefined) {
        // The server answered: the record did not commit.
        await this.abort(`the access node refused to commit: ${errorMessage(error)}`);
        throw new CommitError(`the access node could not commit the transaction's record: ${errorMessage(error)}; every node was rolled back`, { cause: error });
      }
      const inDoubt = this.#prepared?.participants ?? [];
      this.#releaseParticipants(false);
      this.#state = 'aborted';
      throw new CommitError(
        `the access node stopped answering while committing (${errorMessage(error)}); the outcome is recorded there or not at all: run \`hypershard recover\` to finish it (${inDoubt.map((p) => `${p.node}: ${p.gid}`).join(', ')})`,
        { inDoubt, cause: error },
      );
    }
    this.#releaseAccess(true);
  }

  /**
   * COMMIT PREPARED on every participant, after the commit record is durable. A participant that
   * does not answer is left prepared (returned in inDoubt) for recover(), which commits it.
   */
  async commitPrepared(prepared: PreparedTransaction): Promise<CommitOutcome> {
    const participants = this.participants();
    const results = await Promise.allSettled(
      participants.map(async (p) => {
        const gid = participantGid(prepared.gid, p.index);
        try {
          await this.#bounded(p, `COMMIT PREPARED ${quoteLiteral(gid)}`, 'COMMIT PREPARED');
        } catch (error) {
          // recover() (or a move) committed it meanwhile: the outcome is the one recorded.
          if ((error as { code?: string }).code !== '42704') throw error;
        }
        p.state = 'committed';
      }),
    );
    const inDoubt = results.flatMap((r, i) => {
      const p = participants[i] as Participant;
      return r.status === 'rejected' ? [{ node: p.node, gid: participantGid(prepared.gid, p.index), error: errorMessage(r.reason) }] : [];
    });
    this.#left.push(...inDoubt.map(({ node, gid }) => ({ node, gid })));
    if (inDoubt.length === 0) this.cluster.forget([prepared.gid]);
    this.#state = 'committed';
    this.#release();
    return { mode: 'two-phase', gid: prepared.gid, inDoubt, partial: [] };
  }

  /**
   * Everything: finish the writes, then commit on every data node or on none.
   * @throws CommitError, or the writers' error (IngestRowError …), after rolling everything back.
   */
  async commit(): Promise<CommitOutcome> {
    this.#assertOpen();
    const participants = (): Participant[] => this.participants();
    await this.#finishWriters();
    if (participants().length === 0) {
      await this.#endAccess('COMMIT');
      this.#state = 'committed';
      this.#release();
      return { mode: 'none', gid: undefined, inDoubt: [], partial: [] };
    }
    if (this.cluster.options.onePhase) return this.#commitOnePhase();
    if (this.#external === undefined) {
      const single = await this.commitSingle();
      if (single !== undefined) return single;
    }
    const prepared = await this.prepare();
    try {
      await this.writeCommitRecord(prepared);
    } catch (error) {
      await this.abort(errorMessage(error));
      throw new CommitError(`writing the commit record failed: ${errorMessage(error)}; every node was rolled back`, { cause: error });
    }
    if (this.#external === undefined) await this.commitAccess();
    return this.commitPrepared(prepared);
  }

  /**
   * A transaction whose rows went through one data-node connection commits there directly: one
   * node's COMMIT is atomic, so neither PREPARE nor a commit record is needed. With the caller's
   * access-node transaction (a gateway client's), the caller ends it afterwards; it must not have
   * written anything that has to commit together with the rows.
   * @returns the outcome, or undefined when several connections wrote (then prepare())
   * @throws CommitError (everything rolled back)
   */
  async commitSingle(): Promise<CommitOutcome | undefined> {
    this.#assertOpen();
    await this.#finishWriters();
    const participants = this.participants();
    if (participants.length !== 1 || this.cluster.options.onePhase) return undefined;
    const [p] = participants as [Participant];
    try {
      await this.#bounded(p, 'COMMIT', 'COMMIT');
    } catch (error) {
      await this.abort(errorMessage(error));
      throw new CommitError(`data node ${p.node} could not commit: ${errorMessage(error)}; nothing was committed`, { node: p.node, cause: error });
    }
    p.state = 'committed';
    await this.#endAccess('COMMIT');
    this.#state = 'committed';
    this.#release();
    return { mode: 'single', gid: undefined, inDoubt: [], partial: [] };
  }

  async #commitOnePhase(): Promise<CommitOutcome> {
    const committed: string[] = [];
    for (const p of this.participants()) {
      try {
        await this.#bounded(p, 'COMMIT', 'COMMIT');
        p.state = 'committed';
        committed.push(p.node);
      } catch (error) {
        await this.abort(errorMessage(error));
        throw new CommitError(
          `data node ${p.node} could not commit: ${errorMessage(error)}; one-phase commit: ${committed.length === 0 ? 'no node had committed, nothing was written' : `${[...new Set(committed)].join(', ')} had already committed their rows (a partial write)`}`,
          { node: p.node, cause: error },
        );
      }
    }
    await this.#endAccess('COMMIT');
    this.#state = 'committed';
    this.#release();
    return { mode: 'one-phase', gid: undefined, inDoubt: [], partial: [] };
  }

  /** Rolls back every participant (prepared ones too) and the writer's own access-node transaction. Never throws. */
  async abort(reason = 'aborted'): Promise<void> {
    if (this.#state === 'committed' || this.#state === 'aborted') return;
    this.#aborting = true;
    for (const writer of this.#writers) await writer.abandon(reason).catch(() => undefined);
    this.#writers.clear();
    await Promise.all(
      this.participants().map(async (p) => {
        try {
          if (p.state === 'prepared' && this.#prepared !== undefined) {
            const sql = `ROLLBACK PREPARED ${quoteLiteral(participantGid(this.#prepared.gid, p.index))}`;
            await this.#bounded(p, sql, 'ROLLBACK PREPARED').catch(async (error: unknown) => {
              // A cancel request sent while it was open (interrupt()) may only arrive now: once more.
              if (!this.#interrupted || (error as { code?: string }).code !== '57014') throw error;
              await this.#bounded(p, sql, 'ROLLBACK PREPARED');
            });
          } else if (p.state === 'open') {
            await this.#bounded(p, 'ROLLBACK', 'ROLLBACK');
          }
          p.state = 'rolled-back';
        } catch {
          // A broken connection: its open transaction dies with it; a prepared one is left for recover() (no record: rolled back).
          if (p.state === 'prepared' && this.#prepared !== undefined) this.#left.push({ node: p.node, gid: participantGid(this.#prepared.gid, p.index) });
          p.state = 'failed';
        }
      }),
    );
    await this.#endAccess('ROLLBACK');
    this.#state = 'aborted';
    this.#release();
  }

  async #endAccess(command: 'COMMIT' | 'ROLLBACK'): Promise<void> {
    const owned = this.#owned;
    if (owned === undefined) return;
    try {
      await owned.query(command);
      this.#releaseAccess(true);
    } catch {
      this.#releaseAccess(false);
    }
  }

  #releaseAccess(reusable: boolean): void {
    if (this.#owned !== undefined) this.cluster.releaseAccess(this.#owned, reusable);
    this.#owned = undefined;
  }

  #releaseParticipants(reusable: boolean): void {
    for (const p of this.participants()) this.cluster.releaseData(p.node, p.client, reusable && !this.#interrupted && (p.state === 'committed' || p.state === 'rolled-back'));
    this.#participants.clear();
  }

  #release(): void {
    this.#releaseParticipants(true);
    // It carries the client's settings: not for another user of the pool.
    if (this.#hashClient !== undefined) this.cluster.releaseAccess(this.#hashClient, false);
    this.#hashClient = undefined;
    this.#releaseAccess(this.#state === 'committed' || this.#state === 'aborted');
  }

  /** The opening statements of a participant nothing was sent on yet, to go ahead of the next (then they are sent). */
  #opened(p: Participant): string {
    const opening = p.opening;
    p.opening = undefined;
    return opening === undefined ? '' : `${opening}; `;
  }

  /** A control statement on a participant, bounded by timeoutMs: a node that stops answering is named. */
  async #bounded(p: Participant, sql: string, what: string): Promise<void> {
    const ms = this.cluster.options.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // The connection is unusable now: end it, so the statement fails too.
        void p.client.end().catch(() => undefined);
        reject(new HypershardError('NODE_TIMEOUT', `data node ${p.node}: ${what} got no answer within ${ms} ms`));
      }, ms);
    });
    try {
      await Promise.race([p.client.query(sql), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  #assertOpen(): void {
    if (this.#state !== 'open') throw new HypershardError('USAGE', `the routed transaction is ${this.#state}`);
  }
}

/**
 * SET LOCAL of the client's statement_timeout and lock_timeout, to follow a participant's BEGIN:
 * local, so a pooled connection does not carry them to the next transaction. Nothing when unset.
 */
export function timeoutsSql(s: ClientSettings): string {
  const local = (name: string, ms: number | undefined): string => (ms !== undefined && ms > 0 ? `; SET LOCAL ${name} = ${Math.round(ms)}` : '');
  return `${local('statement_timeout', s.statementTimeoutMs)}${local('lock_timeout', s.lockTimeoutMs)}`;
}

/** SET statements for a session in the client's settings (values as literals). */
export function settingsSql(s: ClientSettings): string {
  return `SET TimeZone TO ${quoteLiteral(s.timeZone)}; SET DateStyle TO ${quoteLiteral(s.dateStyle)}; SET IntervalStyle TO ${quoteLiteral(s.intervalStyle)}`;
}
