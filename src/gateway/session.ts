/**
 * One client session through the gateway: one connection to the access node, opened with the
 * client's own startup packet, authenticated end to end (the gateway relays the exchange and
 * keeps no password), then a relay that forwards every message as the bytes it received except
 * the statements it rewrites.
 *
 *   startup (TLS, cancel, startup packet) → auth relay → ready: client messages one after
 *   another through `#handle`, backend messages through the ResponseTracker to the client.
 *
 * Rewrites need the session's TimeZone (every ParameterStatus says it), its resolved search_path
 * and role: read in-band, on this connection, right before the first statement that needs them
 * and again after anything that may have changed them. A rewritten statement the access node
 * refuses before it produced anything runs again as written when that cannot change what the
 * client sees (outside a transaction block, first in its batch), so its error is the server's own.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { droppedStatements } from '../pg/statements.js';
import { parseStatements } from '../rewrite/parser.js';
import { settingsFromRow, SESSION_SETTINGS_SQL, type SessionSettings } from '../rewrite/session.js';
import type { ClusterMetadata, Rewrite, Unchanged } from '../rewrite/model.js';
import type { Queryable } from '../rewrite/discover.js';
import { RoutedCopy } from '../ingest/copy.js';
import type { IngestCluster } from '../ingest/cluster.js';
import type { RoutedTransaction } from '../ingest/transaction.js';
import { settingMs } from '../ingest/settings.js';
import { copyIntoStatement, type CopyIntoStatement } from './copyStatement.js';
import { Lru } from '../pg/lru.js';
import { InbandError, InbandQueries } from './inband.js';
import { beginStatement, clientSettings, insertWorthRouting, MAX_HELD_BYTES, MIN_ROUTED_VALUES_ROWS, plainInsert, valuesWorthRouting, routedBeginSql, ROUTING_SAVEPOINT, routedErrorFields, type GatewayIngest, type PendingRouted } from './routedWrites.js';
import { planRoutedBatch, planRoutedInsert, type InsertParam, type RoutedInsert } from '../ingest/insert.js';
import { quoteIdent } from '../sql/quote.js';
import { errorForOriginal } from './errorPosition.js';
import type { GatewayMetrics } from './metrics.js';
import type { ResolvedGatewayOptions } from './options.js';
import { FrameError, FrameReader, printable, type Frame } from './protocol/frames.js';
import {
  B,
  backendKeyData,
  body,
  commandComplete,
  copyInResponse,
  errorResponse,
  F,
  ProtocolError,
  parseMessage,
  parseStartup,
  readAuthCode,
  readBackendKey,
  readBind,
  readBindNames,
  readDataRow,
  readExecute,
  readParameterDescription,
  readParameterStatus,
  readParse,
  readQuery,
  readRowDescription,
  parameterDescription,
  readSaslMechanisms,
  readTarget,
  type ParseMessage,
  saslMechanisms,
  simpleMessage,
  queryMessage,
  readyForQuery,
  withStatementName,
  type ErrorFields,
} from './protocol/messages.js';
import { isAsync, ResponseTracker, type Request } from './protocol/responses.js';
import type { GatewayRewriter } from './rewriting.js';
import { inlineParameters, inlinableType, textValues } from '../route/boundValues.js';
import { cachedRouterPlan, clockReached, routerConnection, RouterPredictions, type CheckRow, type RouterReadState, type RouterTarget } from '../route/reads.js';
import { HOLD_BYTES, RelayQuery, type RelayFraming } from './routerReads.js';
import { connectUpstream, sendCancel, type Upstream } from './upstream.js';

/** Emitted for every statement the rewriter looked at (one that names a distributed hypertable). */
export interface GatewayRewriteEvent {
  readonly session: number;
  readonly user: string;
  readonly original: string;
  /** What was sent: the rewrite, or the original (a router read's with its bound values written in). */
  readonly sql: string;
  readonly changed: boolean;
  readonly rewrites: readonly Rewrite[];
  readonly unchanged: readonly Unchanged[];
  /** Why the original was sent although the rewriter was asked (its error, a failed rewritten statement). */
  readonly fallback?: string;
}

/** What sessions share: set up once by the gateway. */
export interface SessionContext {
  readonly options: ResolvedGatewayOptions;
  readonly upstream: Upstream;
  /** The access node's database, the one the metadata describes; sessions on others are passed through. */
  readonly database: string;
  readonly rewriter: GatewayRewriter | undefined;
  /** Routed writes to the data nodes; undefined: every write goes through the access node. */
  readonly ingest: GatewayIngest | undefined;
  readonly metrics: GatewayMetrics;
  /** What router reads share (unreachable data nodes, connection state); undefined: they are off. */
  readonly routerReads: RouterReadState | undefined;
  readonly secureContext: tls.SecureContext | undefined;
  readonly cancels: CancelRegistry;
  onRewrite(event: GatewayRewriteEvent): void;
  onClosed(session: Session): void;
}

/** Router-read checks kept prepared on one session. */
const MAX_PREPARED_CHECKS = 32;

/** Backend keys the gateway handed out, by backend process id, for routing CancelRequests. */
export class CancelRegistry {
  readonly #keys = new Map<number, { readonly given: Buffer; readonly real: Buffer; readonly session: Session }>();
  register(pid: number, given: Buffer, real: Buffer, session: Session): void {
    this.#keys.set(pid, { given, real, session });
  }
  unregister(pid: number): void {
    this.#keys.delete(pid);
  }
  /** The real key and the session for a client's (pid, key), when the key is the one the gateway gave out. */
  lookup(pid: number, key: Buffer): { readonly real: Buffer; readonly session: Session } | undefined {
    const entry = this.#keys.get(pid);
    if (entry === undefined || entry.given.length !== key.length || !timingSafeEqual(entry.given, key)) return undefined;
    return entry;
  }
}

const TX_IDLE = 0x49; // 'I'
const TX_FAILED = 0x45; // 'E'
/** Names of the statements and portals the gateway reads the session's settings with (closed right after). */
const SETTINGS_STATEMENT = 'hypershard.session_settings';
/** Client bytes buffered while a message waits for the gateway (a read, a retry) before the client is paused. */
const CLIENT_HIGH_WATER = 1024 * 1024;
/**
 * The settings key of a statement the access node does not hold as the client knows it: the
 * client's unnamed statement after a data node answered it. Matches no session's settings, so a
 * Bind or Describe of it prepares it first.
 */
const NOT_PREPARED = 'not prepared on the access node';
/** How a statement a router read may answer begins (`#holdRead`). */
const READ_START = /^\s*(?:select|with)\b/i;
/** SQL that may drop or replace named statements (DEALLOCATE, DISCARD ALL), found cheaply: a match is taken as one. */
const DROPS_STATEMENTS = /\b(?:deallocate|discard)\b/i;

interface Statement {
  readonly original: string;
  readonly paramTypes: readonly number[];
  /** Its name on the access node (another than the client's after it was prepared again for new settings). */
  serverName: string;
  /** The settings its rewrite was made for; undefined when sent as written. */
  settingsKey: string | undefined;
  /** An INSERT the gateway may route when a batch of it is bound (see #holdInsert). */
  readonly insert?: boolean;
  /**
   * Its parameters' types as the access node resolved them (its answer to the client's Describe):
   * what a value in binary format is, where the Parse declared none (asyncpg, pgx).
   */
  described?: readonly number[];
}

/**
 * Extended-protocol messages kept from the access node while they may be one routed INSERT: from
 * the first Parse or Bind of an INSERT into a hypertable up to the client's Sync, executions of
 * that one statement only. Anything else releases them to the access node as they came.
 */
interface HeldInsert {
  readonly text: string;
  readonly frames: Frame[];
  bytes: number;
  /** Parameter sets of the executions, in order; `bound` is a Bind waiting for its Execute. */
  readonly sets: InsertParam[][];
  bound: InsertParam[] | undefined;
  /** Statement names the held Parses create (the unnamed one included), with the parameter types the last one declared (drivers declare them per row). */
  readonly parsed: Map<string, readonly number[]>;
  /** Errors the access node had sent when holding began: one more by the client's Sync failed the messages before the batch. */
  readonly errors: number;
}

/**
 * An unnamed statement, from its Parse to the client's Sync, kept from the access node while it
 * may be a router read: how libpq's PQexecParams, node-postgres, psycopg and JDBC send a statement
 * (without a name: not prepared to be used again). Anything else releases it as it came.
 */
interface HeldRead {
  readonly text: string;
  readonly paramTypes: readonly number[];
  /** The Bind's values, as text. */
  values: readonly (string | null)[];
  /** The Bind's result format codes. */
  resultFormats: readonly number[];
  readonly frames: Frame[];
  bytes: number;
  /** The access node's answers due so far, in order; 'description' where a Describe's row description goes. */
  readonly answers: ('parse' | 'bind' | 'parameters' | 'description')[];
  executed: boolean;
  /** A Bind of this prepared statement began it (the client's Parse of it went to the access node before; '' the unnamed one). */
  readonly named?: string;
}

/** A routed write opened in the client's transaction, on a hypertable with this many columns. */
interface RoutedOpen {
  readonly tx: RoutedTransaction;
  readonly schema: string;
  readonly name: string;
  readonly columns: number;
}

/**
 * A routed write's statement while it runs, for what interrupts it: the client's cancel, its
 * statement_timeout (measured here over the whole statement, a COPY's data included; the data
 * nodes apply it per statement too, and lock_timeout).
 */
interface RoutedRun {
  readonly started: number;
  tx: RoutedTransaction | undefined;
  /** PostgreSQL's error for why it was interrupted, once it was. */
  interrupted: ErrorFields | undefined;
  /** Past its commit point (#routedCheck): an interrupt no longer changes how it ends. */
  committing: boolean;
  /** Cancel requests on their way to its data-node backends. */
  readonly cancels: Promise<void>[];
  timer: NodeJS.Timeout | undefined;
  repeat: NodeJS.Timeout | undefined;
  /** Looks for a wait on the block's own prepared parts (#watchOwnLocks). */
  watch: NodeJS.Timeout | undefined;
}

/** A client's COPY being routed to the data nodes. */
interface CopyIn {
  readonly copy: RoutedCopy;
  readonly tx: RoutedTransaction;
  readonly table: string;
  /** The gateway opened the access-node transaction (the client was not in a block) and commits it. */
  readonly ownBlock: boolean;
}

interface Decision {
  readonly sql: string;
  readonly changed: boolean;
  readonly settingsKey: string | undefined;
  readonly event: Omit<GatewayRewriteEvent, 'session' | 'user'> | undefined;
}

type Phase = 'startup' | 'auth' | 'ready' | 'closed';

let sessionIds = 0;

export class Session {
  readonly id = (sessionIds += 1);
  readonly #ctx: SessionContext;
  #client: net.Socket;
  #clientTls = false;
  #server: net.Socket | undefined;
  #phase: Phase = 'startup';
  readonly #clientReader: FrameReader;
  readonly #serverReader: FrameReader;
  readonly #tracker = new ResponseTracker();
  /** ParameterStatus values the access node reported. */
  readonly #parameters = new Map<string, string>();
  #startup = new Map<string, string>();
  #txStatus = TX_IDLE;
  #pid: number | undefined;
  /** Extended-protocol messages sent since the last Sync (an open implicit transaction). */
  #sinceSync = 0;
  /** search_path and role as last read; undefined when they may have changed since. */
  #settings: SessionSettings | undefined;
  #settingsChangedInTransaction = false;
  readonly #statements = new Map<string, Statement>();
  /** A statement was prepared rewritten (for some settings, perhaps under another name): from now on Binds and Describes need a look. */
  #preparedRewrites = false;
  #renames = 0;
  #reads = 0;
  #pumping = false;
  #serverBlocked = false;
  #clientPaused = false;
  #toServer: Buffer[] = [];
  #startupTimer: NodeJS.Timeout | undefined;
  #messageTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #draining = false;
  /** The access node offered SCRAM with channel binding, which the gateway withheld from the client. */
  #withheldChannelBinding = false;
  /** Statements of the gateway's own on this session (routed writes decide in the client's transaction). */
  readonly #inband: InbandQueries;
  /** Router-read checks prepared on this session: statement name by text (one forgotten is closed with the next check). */
  readonly #checks = new Lru<string, string>(MAX_PREPARED_CHECKS, (_text, name) => this.#checksToClose.push(name));
  #checksToClose: string[] = [];
  #checkCount = 0;
  /** The last router read of each text on this session (#routerReadAgain). */
  readonly #routerMemo = new Lru<string, { readonly decision: Decision; readonly metadata: ClusterMetadata }>(MAX_PREPARED_CHECKS);
  /** The data-node backend answering this session's router read, while it runs. */
  #routerReading: { readonly host: string; readonly port: number; readonly processID: number; readonly secretKey: number } | undefined;
  /** Where a router read may be sent before its check answers (#routerRead). */
  readonly #predictions = new RouterPredictions(MAX_PREPARED_CHECKS);
  #copyIn: CopyIn | undefined;
  /** A routed COPY failed before the client ended its data: its CopyData, CopyDone, CopyFail are dropped, as PostgreSQL does. */
  #copyDiscard = false;
  /** Routed writes recorded in the client's open transaction block, settled when it ends. */
  #pendingRouted: PendingRouted[] = [];
  /** A statement defining a relation named like a hypertable was sent; its transaction has not ended. */
  #namesDefined = false;
  /** The routed write running, from its statement's arrival to its answer. */
  #routedRun: RoutedRun | undefined;
  /** Messages for the client held until the routed writes of the transaction that just ended are settled. */
  #held: Buffer[] | undefined;
  /** Client messages kept from the access node while they may be a routed INSERT batch. */
  #heldInsert: HeldInsert | undefined;
  /** An unnamed statement held while it may be a router read (#holdRead). */
  #heldRead: HeldRead | undefined;
  /**
   * Whether a Bind of a named statement may be a router read: off once the client's SQL may have
   * dropped or replaced one (DEALLOCATE, DISCARD ALL, then perhaps PREPARE under the same name).
   * What it names is forgotten (#forgetDropped), but a drop that did not run or a statement made
   * again in SQL would leave the gateway's text for a name wrong; the access node then answers
   * each Bind as it knows it.
   */
  #namedReads = true;
  /** Held messages going to the access node after all: they are not held again. */
  #releasing = false;
  /** Some statement is an INSERT the gateway may route: Binds need a look. */
  #insertStatements = false;
  /** The messages since the last Sync are a BEGIN (pgjdbc and psycopg open their block in the batch). */
  #beginOnly = false;
  /** The messages since the last Sync only prepared, described or closed: nothing ran. */
  #nothingRun = true;
  /** ErrorResponses the access node sent this session. */
  #errorsSeen = 0;

  constructor(ctx: SessionContext, client: net.Socket) {
    this.#ctx = ctx;
    this.#client = client;
    const max = ctx.options.maxMessageBytes;
    this.#clientReader = new FrameReader({ typed: false, maxMessageBytes: max });
    // The backend is trusted more than clients; its messages are bounded by PostgreSQL's own 1 GB.
    this.#serverReader = new FrameReader({ typed: true, maxMessageBytes: 0x4000_0000 });
    client.setNoDelay(true);
    this.#attachClient(client);
    this.#inband = new InbandQueries(
      {
        send: (bytes, request) => this.#send(bytes, request),
        flush: () => this.#flushServer(),
      },
      `hypershard.inband.${this.id}`,
    );
    this.#startupTimer = setTimeout(() => this.#fail('startup-timeout', { severity: 'FATAL', code: '08P01', message: `hypershard gateway: the connection did not finish starting up within ${ctx.options.startupTimeoutMs} ms` }), ctx.options.startupTimeoutMs);
  }

  /** A client's cancel reaches the data node answering its router read, if one is running (the access node's backend is idle then). */
  cancelRouterRead(): void {
    const target = this.#routerReading;
    if (target === undefined) return;
    const key = Buffer.alloc(4);
    key.writeInt32BE(target.secretKey);
    void sendCancel(target, target.processID, key, this.#ctx.options.connectTimeoutMs);
  }

  /**
   * A client's cancel stops its routed write while it runs, up to its commit point: the client
   * gets PostgreSQL's 57014 and nothing of it is committed. Past that point (the commit record
   * sent, or a single data node's COMMIT) the write ends as it would have: as on PostgreSQL, a
   * cancel does not undo a commit under way.
   */
  cancelRoutedWrite(): void {
    this.#interruptRouted({ code: '57014', message: 'canceling statement due to user request' });
  }

  #interruptRouted(fields: ErrorFields): void {
    const run = this.#routedRun;
    if (run === undefined || run.committing || run.interrupted !== undefined) return;
    run.interrupted = fields;
    this.#cancelParticipants(run);
    // A statement sent as the request went out may have missed it (its backend was idle then):
    // again until the write ends (its connections are not pooled again, so no one else's is hit).
    run.repeat = setInterval(() => this.#cancelParticipants(run), 1000);
    run.repeat.unref();
  }

  #cancelParticipants(run: RoutedRun): void {
    if (run.committing || run.tx === undefined) return;
    for (const backend of run.tx.interrupt()) {
      const key = Buffer.alloc(4);
      key.writeInt32BE(backend.secretKey);
      run.cancels.push(sendCancel(backend, backend.processID, key, this.#ctx.options.connectTimeoutMs));
    }
  }

  /** A routed write's statement begins. */
  #routedStart(): RoutedRun {
    const run: RoutedRun = { started: Date.now(), tx: undefined, interrupted: undefined, committing: false, cancels: [], timer: undefined, repeat: undefined, watch: undefined };
    this.#routedRun = run;
    return run;
  }

  /** Its transaction is open: it runs under the client's statement_timeout from the statement's start. */
  #routedOpened(tx: RoutedTransaction): void {
    const run = this.#routedRun;
    if (run === undefined) return;
    run.tx = tx;
    const ms = tx.settings.statementTimeoutMs ?? 0;
    if (ms > 0) {
      run.timer = setTimeout(() => this.#interruptRouted({ code: '57014', message: 'canceling statement due to statement timeout' }), Math.max(0, ms - (Date.now() - run.started)));
      run.timer.unref();
    }
    if (this.#pendingRouted.length > 0) {
      // One look at a time: a slow node does not stack them up.
      let looking = false;
      run.watch = setInterval(() => {
        if (looking) return;
        looking = true;
        void this.#watchOwnLocks(run).catch(() => undefined).finally(() => (looking = false));
      }, OWN_LOCK_CHECK_MS);
      run.watch.unref();
    }
  }

  /**
   * A routed write in a block whose earlier routed writes are prepared on the data nodes, their
   * rows locked until the block ends: one waiting for those rows (the same key again under a
   * unique index, an upsert of it) would wait forever, the block's end waiting on it. No
   * deadlock detector sees it (the holder is a prepared transaction): the gateway looks, and ends
   * the statement as PostgreSQL ends a deadlock.
   */
  async #watchOwnLocks(run: RoutedRun): Promise<void> {
    const ingest = this.#ctx.ingest;
    if (ingest === undefined || run.tx === undefined || run.interrupted !== undefined || run.committing) return;
    const own = new Set(this.#pendingRouted.flatMap((p) => p.prepared.participants.map((q) => q.gid)));
    const byNode = new Map<string, number[]>();
    for (const p of run.tx.participants()) {
      const pid = (p.client as unknown as { processID?: number | null }).processID;
      if (p.state === 'open' && typeof pid === 'number') byNode.set(p.node, [...(byNode.get(p.node) ?? []), pid]);
    }
    for (const [node, pids] of byNode) {
      const client = await ingest.cluster.acquireData(node);
      let reusable = true;
      try {
        const { rows } = await client.query<{ gid: string }>(OWN_LOCK_SQL, [pids]);
        const held = rows.find((r) => own.has(r.gid));
        if (held !== undefined && this.#routedRun === run) {
          this.#interruptRouted({
            code: '40P01',
            message: 'deadlock detected',
            detail: `This statement waits on data node ${node} for rows an earlier statement of this transaction block wrote there (prepared transaction ${held.gid}), which stay locked until the block ends.`,
            hint: 'Routed writes of one transaction block do not see each other\'s rows: commit between them, or SET hypershard.route = off for such a transaction.',
          });
          return;
        }
      } catch {
        reusable = false;
      } finally {
        ingest.cluster.releaseData(node, client, reusable);
      }
    }
  }

  /**
   * Where a routed write stops when interrupted: with its error, once the cancel requests sent are
   * delivered (so none arrives late at a statement of the rollback). With `commit` the write
   * passes its commit point: from here it ends as it would have.
   */
  async #routedCheck(commit = false): Promise<void> {
    const run = this.#routedRun;
    if (run === undefined) return;
    await Promise.all(run.cancels);
    if (run.interrupted !== undefined) throw new CopyFailed(run.interrupted.message, run.interrupted.code);
    if (commit) {
      run.committing = true;
      clearTimeout(run.timer);
    }
  }

  /** The routed write's statement was answered. */
  #routedEnd(): void {
    const run = this.#routedRun;
    if (run === undefined) return;
    clearTimeout(run.timer);
    clearInterval(run.repeat);
    clearInterval(run.watch);
    this.#routedRun = undefined;
  }

  get user(): string {
    return this.#startup.get('user') ?? '';
  }

  get closed(): boolean {
    return this.#phase === 'closed';
  }

  /** At rest: no statement running, no transaction open, nothing unread. */
  get idle(): boolean {
    return this.#phase === 'ready' && this.#tracker.idle && this.#txStatus === TX_IDLE && this.#clientReader.pending === 0 && this.#copyIn === undefined && this.#held === undefined && this.#heldInsert === undefined;
  }

  /** Closes the session now if idle, else as soon as it is (graceful shutdown). */
  drain(): void {
    this.#draining = true;
    if (this.#phase !== 'ready' || this.idle) this.terminate();
  }

  /** Ends the session with an error of the gateway's (FATAL, 08006: the connection to the server is lost). */
  abort(reason: string, message: string): void {
    this.#fail(reason, { severity: 'FATAL', code: '08006', message: `hypershard gateway: ${message}` });
  }

  /** Ends the session with the message PostgreSQL sends on a shutdown. */
  terminate(): void {
    this.#fail(undefined, { severity: 'FATAL', code: '57P01', message: 'terminating connection due to administrator command (hypershard gateway shutting down)' });
  }

  // ------------------------------------------------------------------ sockets

  #attachClient(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.#onClientData(chunk));
    socket.on('error', () => this.#close());
    socket.on('close', () => this.#close());
    socket.on('drain', () => this.#server?.resume());
  }

  #onClientData(chunk: Buffer): void {
    this.#ctx.metrics.bytesFromClients += chunk.length;
    this.#clientReader.push(chunk);
    if (this.#idleTimer !== undefined) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
    }
    if (this.#phase === 'startup') this.#readStartup();
    else this.#pump();
  }

  #onServerData(chunk: Buffer): void {
    this.#serverReader.push(chunk);
    const out: Buffer[] = [];
    try {
      for (;;) {
        // Rows of a result the client gets as they are: forwarded in bulk, no Buffer per row.
        if (this.#phase === 'ready' && this.#tracker.rowsPassThrough && this.#held === undefined) {
          const rows = this.#serverReader.run((type) => type === B.DataRow);
          if (rows !== undefined) {
            out.push(rows);
            continue;
          }
        }
        const frame = this.#serverReader.next();
        if (frame === undefined) break;
        const forward = this.#phase === 'ready' ? this.#fromServer(frame) : this.#fromServerDuringAuth(frame);
        if (forward !== null) (this.#held ?? out).push(forward);
      }
    } catch (error) {
      this.#fail('backend-protocol', { severity: 'FATAL', code: '08P01', message: `hypershard gateway: the access node sent an invalid message: ${(error as Error).message}` });
      return;
    }
    if (out.length > 0) this.#writeClient(out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out));
    this.#afterServerMessages();
  }

  #writeClient(bytes: Buffer): void {
    if (this.#phase === 'closed') return;
    this.#ctx.metrics.bytesToClients += bytes.length;
    // A slow client stops the backend's stream: results are never buffered whole.
    if (!this.#client.write(bytes)) this.#server?.pause();
  }

  #send(bytes: Buffer, request?: Request): void {
    if (request !== undefined) this.#tracker.sent(request);
    this.#toServer.push(bytes);
  }

  #flushServer(): void {
    const server = this.#server;
    if (server === undefined || this.#toServer.length === 0) return;
    const bytes = this.#toServer.length === 1 ? (this.#toServer[0] as Buffer) : Buffer.concat(this.#toServer);
    this.#toServer = [];
    if (!server.write(bytes)) {
      this.#serverBlocked = true;
      this.#pauseClient();
    }
  }

  #pauseClient(): void {
    if (!this.#clientPaused) {
      this.#clientPaused = true;
      this.#client.pause();
    }
  }

  #resumeClient(): void {
    if (this.#clientPaused && !this.#serverBlocked) {
      this.#clientPaused = false;
      this.#client.resume();
    }
  }

  // ------------------------------------------------------------------ startup

  #readStartup(): void {
    let frame: Frame | undefined;
    try {
      frame = this.#clientReader.next();
      if (frame === undefined) return;
      const packet = parseStartup(frame.bytes);
      switch (packet.kind) {
        case 'ssl':
          this.#answerSsl();
          return;
        case 'gssenc':
          this.#client.write(Buffer.from('N'));
          return;
        case 'cancel': {
          const found = this.#ctx.cancels.lookup(packet.pid, packet.key);
          if (found !== undefined) {
            void sendCancel(this.#ctx.upstream, packet.pid, found.real, this.#ctx.options.connectTimeoutMs);
            found.session.cancelRouterRead();
            found.session.cancelRoutedWrite();
          }
          this.#close();
          return;
        }
        case 'startup':
          this.#startup = new Map(packet.parameters);
          this.#clientReader.typed = true;
          this.#phase = 'auth';
          void this.#connectServer(packet.bytes);
          return;
      }
    } catch (error) {
      const message = error instanceof FrameError || error instanceof ProtocolError ? error.message : String(error);
      this.#fail('invalid-startup', { severity: 'FATAL', code: '08P01', message: `hypershard gateway: ${message}` });
    }
  }

  #answerSsl(): void {
    const context = this.#ctx.secureContext;
    if (context === undefined || this.#clientTls) {
      this.#client.write(Buffer.from('N'));
      return;
    }
    // Bytes sent after an SSLRequest and before the handshake would bypass TLS: refuse them.
    if (this.#clientReader.pending > 0) {
      this.#fail('data-after-ssl-request', { severity: 'FATAL', code: '08P01', message: 'hypershard gateway: received unencrypted data after SSL request' });
      return;
    }
    const raw = this.#client;
    raw.removeAllListeners('data');
    raw.removeAllListeners('error');
    raw.removeAllListeners('close');
    raw.removeAllListeners('drain');
    raw.write(Buffer.from('S'));
    const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
    secure.on('error', () => this.#close());
    raw.on('error', () => this.#close());
    this.#client = secure;
    this.#clientTls = true;
    this.#attachClient(secure);
  }

  async #connectServer(startup: Buffer): Promise<void> {
    try {
      const { socket } = await connectUpstream(this.#ctx.upstream, this.#ctx.options.connectTimeoutMs);
      if (this.#phase === 'closed') {
        socket.destroy();
        return;
      }
      this.#server = socket;
      socket.on('data', (chunk: Buffer) => this.#onServerData(chunk));
      socket.on('error', () => this.#serverGone());
      socket.on('close', () => this.#serverGone());
      socket.on('drain', () => {
        this.#serverBlocked = false;
        this.#resumeClient();
        this.#pump();
      });
      socket.write(startup);
      this.#pump();
    } catch (error) {
      this.#fail('upstream-unreachable', { severity: 'FATAL', code: '08006', message: `hypershard gateway: ${(error as Error).message}` });
    }
  }

  /** During authentication: relay, except the SASL offer (no channel binding through the gateway) and the cancel key. */
  #fromServerDuringAuth(frame: Frame): Buffer | null {
    switch (frame.type) {
      case B.Authentication: {
        const code = readAuthCode(frame.bytes);
        if (code === 10) {
          // SCRAM-SHA-256-PLUS binds to the TLS channel, which ends at the gateway: offer the rest.
          const offered = readSaslMechanisms(frame.bytes);
          const usable = offered.filter((m) => !m.endsWith('-PLUS'));
          if (usable.length === offered.length) return frame.bytes;
          this.#withheldChannelBinding = true;
          return saslMechanisms(usable);
        }
        return frame.bytes;
      }
      case B.BackendKeyData: {
        const { pid, key } = readBackendKey(frame.bytes);
        const given = randomBytes(key.length);
        this.#pid = pid;
        this.#ctx.cancels.register(pid, given, key, this);
        return backendKeyData(pid, given);
      }
      case B.ParameterStatus: {
        const { name, value } = readParameterStatus(frame.bytes);
        this.#parameters.set(name, value);
        return frame.bytes;
      }
      case B.ReadyForQuery:
        this.#txStatus = frame.bytes[5] as number;
        this.#phase = 'ready';
        if (this.#startupTimer !== undefined) clearTimeout(this.#startupTimer);
        this.#startupTimer = undefined;
        return frame.bytes;
      default:
        return frame.bytes;
    }
  }

  // ------------------------------------------------------------------ ready: backend → client

  #fromServer(frame: Frame): Buffer | null {
    const type = frame.type;
    if (type === B.ParameterStatus) this.#noteParameter(frame.bytes);
    if (type === B.ErrorResponse) this.#errorsSeen += 1;
    const out = this.#tracker.received(type, frame.bytes);
    if (type === B.ReadyForQuery) this.#noteReady(frame.bytes[5] as number);
    return out;
  }

  #noteParameter(bytes: Buffer): void {
    const { name, value } = readParameterStatus(bytes);
    this.#parameters.set(name, value);
    // PostgreSQL 18 reports search_path; every version reports when the role's superuser status changes.
    if (name === 'search_path' || name === 'session_authorization' || name === 'is_superuser') this.#settings = undefined;
  }

  #noteReady(status: number): void {
    const ended = this.#txStatus !== TX_IDLE && status === TX_IDLE;
    this.#txStatus = status;
    // SET LOCAL, or SET in a transaction rolled back, is undone when the transaction ends.
    if (ended && this.#settingsChangedInTransaction) this.#settings = undefined;
    if (status === TX_IDLE) this.#settingsChangedInTransaction = false;
    if (ended && this.#pendingRouted.length > 0 && this.#held === undefined) this.#settleRouted();
    // The names it defined are committed (or rolled back) now: the catalogs are read again.
    if (status === TX_IDLE && this.#namesDefined) {
      this.#namesDefined = false;
      this.#rewriter?.context.invalidate();
    }
  }

  /**
   * The client's transaction ended with routed writes recorded in it: commit or roll back their
   * prepared parts as it decided, holding what the client is told meanwhile (its COMMIT's answer),
   * so its next statement sees its rows.
   */
  #settleRouted(): void {
    const pending = this.#pendingRouted;
    const ingest = this.#ctx.ingest as GatewayIngest;
    this.#pendingRouted = [];
    this.#held = [];
    void Promise.all(pending.map((p) => ingest.settle(p, this.#ctx.options.statementTimeoutMs).catch(() => 'left' as const))).then((outcomes) => {
      for (const o of outcomes) this.#ctx.metrics.routedSettled(o);
      const held = this.#held ?? [];
      this.#held = undefined;
      if (held.length > 0) this.#writeClient(held.length === 1 ? (held[0] as Buffer) : Buffer.concat(held));
      this.#afterServerMessages();
    });
  }

  #afterServerMessages(): void {
    if (this.#phase !== 'ready') return;
    if (this.#draining && this.idle) {
      this.terminate();
      return;
    }
    if (this.#ctx.options.idleTimeoutMs > 0 && this.idle && this.#idleTimer === undefined) {
      this.#idleTimer = setTimeout(
        () => this.#fail('idle-timeout', { severity: 'FATAL', code: '57P05', message: `terminating connection due to idle-session timeout (hypershard gateway: ${this.#ctx.options.idleTimeoutMs} ms)` }),
        this.#ctx.options.idleTimeoutMs,
      );
    }
  }

  // ------------------------------------------------------------------ ready: client → backend

  /**
   * Handles client messages strictly in order; one that must wait (a read, a retry) holds the ones
   * behind it. Runs of messages that need only bookkeeping go to the backend as one slice.
   */
  #pump(): void {
    if (this.#pumping || this.#phase === 'startup' || this.#phase === 'closed' || this.#server === undefined) return;
    try {
      while (!this.#serverBlocked) {
        let waiting: Promise<void> | undefined;
        const copying = this.#copyIn !== undefined || this.#copyDiscard ? this.#clientReader.run((type) => type === F.CopyData) : undefined;
        if (copying !== undefined) {
          if (this.#copyDiscard) continue;
          waiting = this.#copyData(copying);
        } else {
          const run = this.#clientReader.run((type, buffer, start) => this.#passes(type, buffer, start));
          if (run !== undefined) {
            this.#toServer.push(run);
            continue;
          }
          const frame = this.#clientReader.next();
          if (frame === undefined) break;
          waiting = this.#handle(frame);
          if (this.closed) return;
        }
        if (waiting !== undefined) {
          this.#pumping = true;
          this.#flushServer();
          if (this.#clientReader.pending > CLIENT_HIGH_WATER) this.#pauseClient();
          waiting.then(
            () => {
              this.#pumping = false;
              this.#pump();
            },
            (error: unknown) => this.#pumpFailed(error),
          );
          return;
        }
      }
      this.#flushServer();
      if (!this.#serverBlocked) this.#resumeClient();
    } catch (error) {
      this.#pumpFailed(error);
      return;
    }
    this.#armMessageTimer();
  }

  #pumpFailed(error: unknown): void {
    this.#pumping = false;
    const message = error instanceof FrameError || error instanceof ProtocolError ? error.message : `internal error: ${String(error)}`;
    this.#fail(error instanceof FrameError ? 'invalid-length' : 'invalid-message', { severity: 'FATAL', code: '08P01', message: `hypershard gateway: ${message}` });
  }

  /**
   * Whether a message can go to the backend as it is, with only its bookkeeping done here (which
   * this does): everything but statement texts, names the gateway renamed, and the end.
   */
  #passes(type: number, buffer: Buffer, start: number): boolean {
    if (this.#phase === 'auth') return type === F.Password && !this.#withheldChannelBinding;
    if (this.#heldInsert !== undefined || this.#heldRead !== undefined) return false;
    switch (type) {
      case F.Execute:
        this.#sinceSync += 1;
        this.#nothingRun = false;
        this.#tracker.sent({ kind: 'execute' });
        return true;
      case F.Sync:
        this.#sinceSync = 0;
        this.#nothingRun = true;
        this.#beginOnly = false;
        this.#tracker.sent({ kind: 'sync' });
        return true;
      case F.Bind:
        // A statement rewritten for the session's settings may have to be prepared again first;
        // a batch of a routable INSERT may be held; a named statement's execution may be a router
        // read (its values may pin one shard where its text, as prepared, reads all).
        if (this.#preparedRewrites || this.#insertStatements || this.#beginOnly || (this.#namedReads && this.#ctx.routerReads !== undefined)) return false;
        this.#sinceSync += 1;
        this.#nothingRun = false;
        this.#tracker.sent({ kind: 'bind' });
        return true;
      case F.Describe: {
        const statement = buffer[start + 5] === 0x53;
        // A statement's parameter types are read on the way back (#handle), for router reads.
        if (statement && (this.#preparedRewrites || this.#ctx.routerReads !== undefined)) return false;
        this.#sinceSync += 1;
        this.#tracker.sent({ kind: statement ? 'describe-statement' : 'describe-portal' });
        return true;
      }
      case F.Close:
        if (buffer[start + 5] === 0x53) return false; // the statement map must forget it
        this.#sinceSync += 1;
        this.#tracker.sent({ kind: 'close' });
        return true;
      case F.Flush:
        return true;
      case F.CopyData:
      case F.CopyDone:
      case F.CopyFail:
        // A routed COPY's data is the gateway's to read.
        return this.#copyIn === undefined && !this.#copyDiscard;
      case F.FunctionCall:
        this.#nothingRun = false;
        this.#tracker.sent({ kind: 'function' });
        return true;
      default:
        return false;
    }
  }

  /** A client that stops in the middle of a message is closed after messageTimeoutMs. */
  #armMessageTimer(): void {
    if (this.#messageTimer !== undefined) clearTimeout(this.#messageTimer);
    this.#messageTimer = undefined;
    if (this.#clientReader.pending > 0 && this.#phase !== 'closed') {
      this.#messageTimer = setTimeout(
        () => this.#fail('stalled-message', { severity: 'FATAL', code: '08P01', message: `hypershard gateway: the client sent part of a message and nothing more for ${this.#ctx.options.messageTimeoutMs} ms` }),
        this.#ctx.options.messageTimeoutMs,
      );
    }
  }

  #handle(frame: Frame): Promise<void> | undefined {
    const { type, bytes } = frame;
    if (this.#phase === 'auth') {
      // Password, SASL and GSS responses, relayed as they are; the backend judges them.
      if (this.#withheldChannelBinding && this.#clientTls && type === F.Password && claimsChannelBinding(bytes)) {
        // The client, on TLS, says it could bind to the channel ("y"); the access node, on TLS too,
        // would take that as a downgrade attack. Say what is going on instead of its riddle.
        this.#fail('channel-binding', {
          severity: 'FATAL',
          code: '28000',
          message: 'hypershard gateway: SCRAM channel binding cannot pass through the gateway when both the client and the access node use TLS',
          hint: 'Connect with channel_binding=disable (TLS still protects the connection to the gateway), or have the gateway reach the access node without TLS.',
        });
        return undefined;
      }
      this.#send(bytes);
      return undefined;
    }
    if (this.#copyIn !== undefined) return this.#copyMessage(frame);
    if (this.#copyDiscard) {
      if (type === F.CopyData || type === F.CopyDone || type === F.CopyFail) return undefined;
      this.#copyDiscard = false;
    }
    if (this.#heldInsert !== undefined) return this.#holdMore(frame);
    if (this.#heldRead !== undefined) return this.#holdReadMore(frame);
    switch (type) {
      case F.Query:
        return this.#onQuery(bytes);
      case F.Parse: {
        const parse = readParse(bytes);
        return this.#holdInsert(frame, parse) || this.#holdRead(frame, parse) ? undefined : this.#onParse(bytes, parse);
      }
      case F.Bind:
        return this.#holdInsert(frame) || this.#holdNamedRead(frame) ? undefined : this.#onBind(bytes);
      case F.Describe: {
        const target = readTarget(bytes);
        const statement = target.kind === 'S' ? this.#statements.get(target.name) : undefined;
        const describe = (): void => {
          this.#sinceSync += 1;
          if (target.kind === 'P') {
            this.#send(bytes, { kind: 'describe-portal' });
            return;
          }
          const route = (answer: number, message: Buffer): Buffer => {
            if (answer === B.ParameterDescription && statement !== undefined && this.#statements.get(target.name) === statement) statement.described = readParameterDescription(message);
            return message;
          };
          this.#send(this.#renamed(bytes, target.name), { kind: 'describe-statement', ...(statement === undefined ? {} : { route }) });
        };
        if (statement?.settingsKey !== NOT_PREPARED) {
          describe();
          return undefined;
        }
        return this.#prepareAgain(target.name, statement).then(describe);
      }
      case F.Execute:
        this.#sinceSync += 1;
        this.#nothingRun = false;
        this.#send(bytes, { kind: 'execute' });
        return undefined;
      case F.Close: {
        const target = readTarget(bytes);
        this.#sinceSync += 1;
        let sent = bytes;
        if (target.kind === 'S') {
          sent = this.#renamed(bytes, target.name);
          this.#statements.delete(target.name);
        }
        this.#send(sent, { kind: 'close' });
        return undefined;
      }
      case F.Sync:
        this.#sinceSync = 0;
        this.#nothingRun = true;
        this.#beginOnly = false;
        this.#send(bytes, { kind: 'sync' });
        return undefined;
      case F.Flush:
      case F.CopyData:
      case F.CopyDone:
      case F.CopyFail:
        this.#send(bytes);
        return undefined;
      case F.FunctionCall:
        this.#nothingRun = false;
        this.#send(bytes, { kind: 'function' });
        return undefined;
      case F.Terminate:
        this.#send(bytes);
        this.#flushServer();
        this.#server?.end();
        this.#close();
        return undefined;
      default:
        throw new ProtocolError(`invalid frontend message type ${printable(type)}`);
    }
  }

  /** Whether a statement may be an INSERT whose batches are routed. */
  #batchable(text: string): boolean {
    return this.#ctx.ingest?.batchable(text) ?? false;
  }

  /** Notes a statement prepared as written under the client's name. */
  #registerStatement(name: string, text: string, paramTypes: readonly number[]): void {
    const insert = this.#batchable(text);
    this.#statements.set(name, { original: text, paramTypes, serverName: name, settingsKey: undefined, insert });
    if (insert) this.#insertStatements = true;
  }

  /** A Describe or Close naming a statement the gateway prepared under another name. */
  #renamed(bytes: Buffer, name: string): Buffer {
    const statement = this.#statements.get(name);
    if (statement === undefined || statement.serverName === name) return bytes;
    const kind = bytes[5] as number;
    const nameBytes = Buffer.from(`${statement.serverName}\0`, 'utf8');
    const frame = Buffer.alloc(6 + nameBytes.length);
    frame[0] = bytes[0] as number;
    frame.writeInt32BE(frame.length - 1, 1);
    frame[5] = kind;
    nameBytes.copy(frame, 6);
    return frame;
  }

  #onQuery(bytes: Buffer): Promise<void> | undefined {
    const text = readQuery(bytes);
    if (DROPS_STATEMENTS.test(text)) this.#forgetDropped(text);
    this.#ctx.metrics.statements += 1;
    const copy = this.#routableCopy(text);
    if (copy !== undefined) return this.#copyInRouted(bytes, copy);
    if (this.#mayRoute()) {
      if (insertWorthRouting(text)) return this.#insertRouted(bytes, text, true);
      if (valuesWorthRouting(text)) return this.#insertRouted(bytes, text, false);
    }
    if (plainInsert(text) || this.#asWrittenAtOnce(text) !== undefined) {
      this.#sinceSync = 0;
      this.#send(bytes, { kind: 'query' });
      return undefined;
    }
    return this.#queryRewritten(bytes, text);
  }

  async #queryRewritten(bytes: Buffer, text: string): Promise<void> {
    // At rest and outside a block, keys of a key sub-select are read first on this session (referenceKeys.ts).
    const atRest = this.#tracker.idle && this.#txStatus === TX_IDLE && this.#rewriter?.statement(text).count === 1;
    const repeat = atRest && this.#routerMemo.get(text) !== undefined;
    if (repeat && (await this.#routerReadAgain(text))) return;
    // A simple query refused by a guard runs again as written, so keys read before may be reused;
    // not after a router read's repeat was refused (its keys may be what changed).
    const decision = await this.#rewriteFor(text, atRest ? this.#inband : undefined, !repeat);
    this.#sinceSync = 0;
    if (!decision.changed) {
      this.#send(bytes, { kind: 'query' });
      return;
    }
    this.#ctx.metrics.rewritten += 1;
    const retryable = this.#tracker.idle && this.#txStatus === TX_IDLE && this.#rewriter?.statement(text).count === 1;
    if (retryable && this.#ctx.routerReads !== undefined && (await this.#routerRead(decision, this.#ctx.routerReads))) {
      this.#rememberRouterRead(text, decision);
      this.#emit(decision);
      return;
    }
    if (!retryable) {
      this.#emit(decision);
      this.#send(queryMessage(decision.sql), { kind: 'query', route: positionsFor(text, decision.sql), rowsAsIs: true });
      return;
    }
    // Hold the messages behind it until the first answer tells whether the rewrite was accepted.
    // A RowDescription does not tell: it is sent before the plan runs, and a guard (an InitPlan:
    // access.ts's, referenceKeys.ts's, dates.ts's) fails when it runs, before the first row. It is
    // held (with what comes after it) until a row, the end or an error.
    const attempt: { state: 'waiting' | 'accepted' | 'refused'; refusal?: string } = { state: 'waiting' };
    const first = deferred<void>();
    const done = deferred<void>();
    const positions = positionsFor(text, decision.sql);
    let held: Buffer[] = [];
    this.#send(queryMessage(decision.sql), {
      kind: 'query',
      route: (type, frame) => {
        if (attempt.state === 'waiting' && (type === B.RowDescription || (isAsync(type) && held.length > 0))) {
          held.push(positions(type, frame));
          return null;
        }
        if (attempt.state === 'waiting' && !isAsync(type)) {
          attempt.state = type === B.ErrorResponse ? 'refused' : 'accepted';
          if (attempt.state === 'refused') attempt.refusal = errorText(frame);
          first.resolve();
        }
        if (attempt.state === 'refused') return null;
        const out = positions(type, frame);
        if (held.length === 0) return out;
        const all = Buffer.concat([...held, out]);
        held = [];
        return all;
      },
      onDone: () => {
        first.resolve();
        done.resolve();
      },
    });
    this.#flushServer();
    await first.promise;
    if (attempt.state !== 'refused') {
      this.#emit(decision);
      return;
    }
    await done.promise;
    this.#ctx.metrics.retried += 1;
    this.#rewriter?.context.noteRefused(attempt.refusal ?? '');
    this.#emit(decision, `the rewritten statement failed (${attempt.refusal ?? 'error'}); ran as written`);
    this.#send(bytes, { kind: 'query' });
  }

  /**
   * The rewrite a text last had as a router read on this session, tried again as it is: its keys
   * (a key sub-select's, read first) are not read again, since the check's keys guard reads them
   * under the check's snapshot and refuses when they changed; a refusal of any kind forgets it and
   * the statement takes the whole path. Saves the key read and the rewrite, a round trip and CPU.
   */
  async #routerReadAgain(text: string, framing?: RelayFraming): Promise<boolean> {
    const state = this.#ctx.routerReads;
    const memo = this.#routerMemo.get(text);
    if (state === undefined || memo === undefined) return false;
    const settings = this.#knownSettings();
    this.#routerMemo.delete(text);
    if (settings === undefined || !settings.enabled || settingsKey(settings) !== memo.decision.settingsKey || this.#rewriter?.context.metadata !== memo.metadata) return false;
    if (!(await this.#routerRead(memo.decision, state, true, framing))) return false;
    this.#routerMemo.set(text, memo);
    this.#ctx.metrics.examined += 1;
    this.#ctx.metrics.rewritten += 1;
    this.#ctx.metrics.routerRepeats += 1;
    this.#emit(memo.decision);
    return true;
  }

  #rememberRouterRead(text: string, decision: Decision): void {
    const metadata = this.#rewriter?.context.metadata;
    if (metadata === undefined || decision.settingsKey === undefined) return;
    this.#routerMemo.set(text, { decision, metadata });
  }

  /**
   * A rewrite that reads one shard, answered by its data node straight (routerReads.ts). At rest,
   * outside a block. False when it was not (nothing reached the client): the access node answers.
   * `framing`: the statement came as extended-protocol messages, answered as such.
   */
  async #routerRead(decision: Decision, state: RouterReadState, repeat = false, framing?: RelayFraming): Promise<boolean> {
    const metrics = this.#ctx.metrics;
    const refused = (reason: string): false => {
      // A repeat refused takes the whole path next: its reason is counted apart.
      metrics.routerFallback(repeat ? `repeat:${reason}` : reason);
      return false;
    };
    const cluster = this.#ctx.ingest?.cluster;
    if (cluster === undefined) return refused('no-data-node-connections');
    const settings = this.#knownSettings();
    const metadata = this.#rewriter?.context.metadata;
    if (settings === undefined || metadata === undefined) return refused('settings-unknown');
    const plan = cachedRouterPlan(decision.sql, metadata, settings);
    if (typeof plan === 'string') return refused(plan);
    // A statement over tables an earlier check covered goes to the data node with its check
    // (RouterPredictions): its answer is held until the check names that very target, else dropped unseen.
    const prediction = this.#predictions.predict(plan, cluster, state);
    const ahead = prediction.target === undefined ? undefined : this.#startRelay(prediction.target, cluster, state, framing, true);
    let row: CheckRow | undefined;
    try {
      row = await this.#routerCheck(plan.check(), this.#predictions.checkValues(plan, prediction));
    } catch (error) {
      void ahead?.then((r) => (typeof r === 'string' ? undefined : r.drop()));
      this.#predictions.confirm(plan, undefined, prediction, cluster, state);
      // The client cancelled while the check ran: the statement is not run another way.
      if (error instanceof InbandError && error.code === '57014') {
        this.#writeClient(Buffer.concat([errorResponse({ code: error.code, message: error.message }), readyForQuery(TX_IDLE)]));
        return true;
      }
      // A guard that does not hold, a privilege missing: the access node says what it says.
      return refused('check-failed');
    }
    const confirmed = this.#predictions.confirm(plan, row, prediction, cluster, state);
    const target = confirmed.target;
    const sent = ahead === undefined ? undefined : await ahead;
    const kept = typeof sent === 'object' && confirmed.ahead ? sent : undefined;
    if (typeof sent === 'object' && kept === undefined) sent.drop();
    if (typeof target === 'string') return refused(target);
    const relay = kept ?? (await this.#startRelay(target, cluster, state, framing, false));
    if (typeof relay === 'string') return refused(relay);
    if (kept !== undefined) metrics.routerSentAhead += 1;
    const { node } = target;
    this.#routerReading = relay.backend;
    // A small answer (relayed whole, as it is held until complete) goes out with the ReadyForQuery in one write.
    this.#client.cork();
    try {
      relay.approve();
      const outcome = await relay.query.outcome.finally(() => (this.#routerReading = undefined));
      cluster.releaseReader(node, relay.client, outcome.kind === 'sent');
      if (outcome.kind === 'refused') {
        if (outcome.reason === 'data-node-failed') state.failed(node);
        return refused(outcome.reason);
      }
      if (outcome.kind === 'broken') {
        this.#writeClient(errorResponse({ code: '08006', message: `hypershard gateway: the connection to data node ${node} broke during a router read: ${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)}` }));
      }
      metrics.routerReads += 1;
      // The clock it was given has come before the client has the whole answer.
      await clockReached(confirmed.notBefore);
      this.#writeClient(readyForQuery(TX_IDLE));
      return true;
    } finally {
      if (this.#client.writableCorked > 0) this.#client.uncork();
    }
  }

  /**
   * The target's statement sent on a data-node connection, its answer relayed to the client; or
   * why it was not sent. `held`: nothing reaches the client before approve() (a read sent ahead
   * of its check; past HOLD_BYTES the data node's stream waits); drop() discards it unseen and
   * gives the connection back when the data node is done.
   */
  async #startRelay(target: RouterTarget, cluster: IngestCluster, state: RouterReadState, framing: RelayFraming | undefined, held: boolean): Promise<StartedRelay | string> {
    const metrics = this.#ctx.metrics;
    const client = await routerConnection(cluster, state, target);
    if (typeof client === 'string') return client;
    let pending: Buffer[] | undefined = held ? [] : undefined;
    let pendingBytes = 0;
    let dropped = false;
    const toClient = (bytes: Buffer): boolean => {
      if (this.#phase === 'closed') return true;
      metrics.bytesToClients += bytes.length;
      const flowing = this.#client.write(bytes);
      if (!flowing) {
        this.#client.once('drain', () => query.resume());
        // Corked for the ReadyForQuery to follow: more than a socket buffers goes out now.
        if (this.#client.writableCorked > 0) this.#client.uncork();
      }
      return flowing;
    };
    const query: RelayQuery = new RelayQuery(target.text, target.node, (bytes) => {
      if (dropped) return true;
      if (pending === undefined) return toClient(bytes);
      pending.push(bytes);
      pendingBytes += bytes.length;
      return pendingBytes < HOLD_BYTES;
    }, framing);
    void client.query(query as unknown as pg.QueryConfig);
    // node-postgres keeps the backend's key data as public fields.
    const key = client as unknown as { host: string; port: number; processID: number | null; secretKey: number | null };
    const backend = key.processID !== null && key.secretKey !== null ? { host: key.host, port: key.port, processID: key.processID, secretKey: key.secretKey } : undefined;
    return {
      query,
      client,
      backend,
      approve: () => {
        const waiting = pending;
        pending = undefined;
        if (waiting === undefined) return;
        let flowing = true;
        for (const bytes of waiting) flowing = toClient(bytes) && flowing;
        if (flowing) query.resume();
      },
      drop: () => {
        dropped = true;
        pending = undefined;
        query.resume();
        void query.outcome.then((outcome) => {
          cluster.releaseReader(target.node, client, outcome.kind === 'sent');
          if (outcome.kind === 'refused' && outcome.reason === 'data-node-failed') state.failed(target.node);
        });
      },
    };
  }

  /**
   * A router read's check, prepared on this session once per text and kept (MAX_PREPARED_CHECKS,
   * the least recently used closed): planning was most of its cost (1.2 ms as a simple query, 0.4
   * prepared). One that fails, dropped by the client's DISCARD or a guard that no longer holds, is
   * closed and prepared again next time.
   */
  async #routerCheck(text: string, values?: readonly (string | null)[]): Promise<CheckRow | undefined> {
    const known = this.#checks.get(text);
    const name = known ?? `hypershard.check.${this.id}.${(this.#checkCount += 1)}`;
    if (known === undefined) this.#checks.set(text, name);
    const close = this.#checksToClose;
    this.#checksToClose = [];
    try {
      return (await this.#inband.executePrepared<CheckRow & pg.QueryResultRow>(name, known === undefined ? text : undefined, close, values)).rows[0];
    } catch (error) {
      this.#checks.delete(text);
      this.#checksToClose.push(name);
      throw error;
    }
  }

  /** `decided`: what a held read was found to need (#routeRead), not decided again. */
  #onParse(bytes: Buffer, parse: ParseMessage, decided?: Decision): Promise<void> | undefined {
    this.#ctx.metrics.statements += 1;
    if (this.#namedReads && DROPS_STATEMENTS.test(parse.text)) this.#namedReads = false;
    this.#beginOnly = this.#sinceSync === 0 && this.#tracker.idle && this.#txStatus === TX_IDLE && beginStatement(parse.text);
    if (decided !== undefined) return this.#parseRewritten(bytes, parse, decided);
    const quick = this.#asWrittenAtOnce(parse.text);
    if (quick !== undefined) {
      // Prepared as written: its name means that text, whatever the settings.
      if (parse.name === '' || !this.#statements.has(parse.name)) this.#registerStatement(parse.name, parse.text, parse.paramTypes);
      this.#sinceSync += 1;
      this.#send(bytes, { kind: 'parse' });
      return undefined;
    }
    return this.#parseRewritten(bytes, parse);
  }

  async #parseRewritten(bytes: Buffer, parse: ParseMessage, decided?: Decision): Promise<void> {
    // The unnamed statement is parsed again for each execution: at rest and outside a block, the
    // keys of a key sub-select are read first (a named one would keep its first execution's keys).
    const atRest = parse.name === '' && this.#tracker.idle && this.#sinceSync === 0 && this.#txStatus === TX_IDLE;
    const decision = decided ?? (await this.#rewriteFor(parse.text, atRest ? this.#inband : undefined));
    // A Parse names its statement as the client does. A name already in use is refused by the
    // backend, and the statement prepared under it first stays the one the name means.
    const insert = !decision.changed && this.#batchable(parse.text);
    const statement: Statement = { original: parse.text, paramTypes: parse.paramTypes, serverName: parse.name, settingsKey: decision.settingsKey, insert };
    if (parse.name === '' || !this.#statements.has(parse.name)) {
      this.#statements.set(parse.name, statement);
      if (insert) this.#insertStatements = true;
    }
    const quiet = this.#tracker.idle && this.#sinceSync === 0 && this.#txStatus === TX_IDLE;
    const retryable = decision.changed && quiet;
    this.#sinceSync += 1;
    if (!decision.changed) {
      // A named SELECT its values may pin to one shard: answered now, so that its Bind, sent with
      // it (JDBC), finds the session at rest for a router read (#holdNamedRead).
      if (quiet && parse.name !== '' && this.#namedReads && this.#ctx.routerReads !== undefined && READ_START.test(parse.text)) await this.#sendAnswered(bytes, { kind: 'parse' });
      else this.#send(bytes, { kind: 'parse' });
      return;
    }
    this.#ctx.metrics.rewritten += 1;
    this.#preparedRewrites = true;
    const sent = parseMessage(statement.serverName, decision.sql, parse.paramTypes);
    if (!retryable) {
      this.#emit(decision);
      this.#send(sent, { kind: 'parse', route: positionsFor(parse.text, decision.sql), rowsAsIs: true });
      return;
    }
    // Ask for the answer now: if the rewrite is refused, prepare the text as written instead.
    let refusal: string | undefined;
    await this.#sendAnswered(sent, {
      kind: 'parse',
      route: (type, frame) => {
        if (type !== B.ErrorResponse) return frame;
        refusal = errorText(frame);
        return null;
      },
    });
    if (refusal === undefined) {
      this.#emit(decision);
      return;
    }
    // The backend now skips to the next Sync: send one of our own (nothing ran, nothing to commit).
    await this.#gatewaySync();
    this.#ctx.metrics.retried += 1;
    this.#rewriter?.context.noteRefused(refusal);
    this.#emit(decision, `the rewritten statement failed (${refusal}); ran as written`);
    statement.settingsKey = undefined;
    this.#send(parseMessage(statement.serverName, parse.text, parse.paramTypes), { kind: 'parse' });
  }

  /** Sends a request with a Flush after it, so the access node answers it now; resolves once it has. */
  async #sendAnswered(bytes: Buffer, request: Request): Promise<void> {
    const done = deferred<void>();
    this.#send(bytes, { ...request, onDone: () => done.resolve() });
    this.#send(serialize.flush());
    this.#flushServer();
    await done.promise;
  }

  #onBind(bytes: Buffer): Promise<void> | undefined {
    this.#sinceSync += 1;
    this.#nothingRun = false;
    const bind = readBindNames(bytes);
    const statement = this.#statements.get(bind.statement);
    if (this.#beginOnly && !(statement !== undefined && beginStatement(statement.original))) this.#beginOnly = false;
    const send = (): void => {
      const sent = statement === undefined || statement.serverName === bind.statement ? bytes : withStatementName(bytes, statement.serverName);
      this.#send(sent, { kind: 'bind' });
    };
    const known = this.#knownSettings();
    if (statement?.settingsKey === undefined || (known !== undefined && settingsKey(known) === statement.settingsKey)) {
      send();
      return undefined;
    }
    return (async () => {
      const settings = await this.#currentSettings();
      if (settings === undefined || settingsKey(settings) !== statement.settingsKey) await this.#prepareAgain(bind.statement, statement);
      send();
    })();
  }

  /**
   * The session's settings changed since this statement was rewritten (a SET TimeZone, say): its
   * rewrite may no longer be exact, so it is prepared again, for the settings now, under a name of
   * the gateway's; the client keeps using its own name.
   */
  async #prepareAgain(name: string, statement: Statement): Promise<void> {
    const decision = await this.#decide(statement.original);
    const serverName = name === '' ? '' : `${name}/hypershard:${(this.#renames += 1)}`;
    this.#send(parseMessage(serverName, decision.sql, statement.paramTypes), {
      kind: 'parse',
      // Its success is not the client's to see; its failure is (the client's Bind then fails too).
      route: (type, frame) => (type === B.ErrorResponse ? frame : null),
    });
    if (decision.changed) this.#emit(decision);
    statement.serverName = serverName;
    statement.settingsKey = decision.settingsKey;
  }

  // ------------------------------------------------------------------ routed COPY

  /** A COPY … FROM STDIN this session may route to the data nodes (checked further in-band). */
  #routableCopy(text: string): CopyIntoStatement | undefined {
    return this.#mayRoute() ? copyIntoStatement(text) : undefined;
  }

  /** Whether this session's next statement may be a routed write: at rest, in the spec's database. */
  #mayRoute(): boolean {
    if (this.#ctx.ingest === undefined || !this.#tracker.idle || this.#tracker.skipping || this.#txStatus === TX_FAILED || this.#held !== undefined) return false;
    return this.#startup.get('replication') === undefined && (this.#startup.get('database') ?? this.user) === this.#ctx.database;
  }

  /**
   * Opens a routed write in the client's transaction (or one the gateway opens) after checking
   * in-band that `relation` is a hypertable this session may fill that way. Inside a client's block
   * the checks run under a savepoint, released once the write is set up.
   * @throws Unroutable (or the check's error) with everything undone: the statement then goes as written
   */
  async #routedBegin(relation: string, ownBlock: boolean): Promise<RoutedOpen> {
    const ingest = this.#ctx.ingest as GatewayIngest;
    if (!ownBlock && this.#blockPreparedFull(ingest)) {
      this.#ctx.metrics.fallback('block-prepared-limit');
      throw new Unroutable();
    }
    let tx: RoutedTransaction | undefined;
    try {
      // Extended-protocol messages without their Sync yet (asyncpg prepares with a Flush): the
      // statement, a simple query, would end their implicit transaction; a Sync of the gateway's does.
      if (this.#sinceSync !== 0) {
        await this.#gatewaySync();
        this.#sinceSync = 0;
        this.#nothingRun = true;
      }
      // One round trip: the block, the check and the shard locks of the relation's last write.
      const guess = ingest.guess(relation);
      const results = await this.#inband.queryAll(routedBeginSql(ownBlock, relation, guess));
      const row = results[1]?.rows[0] as { schema: string; name: string; columns: number; allowed: boolean; statement_timeout: string; lock_timeout: string } | undefined;
      const hypertable = row === undefined ? undefined : ingest.cluster.spec.hypertables.find((h) => h.schema === row.schema && h.name === row.name);
      if (row === undefined || hypertable === undefined || !row.allowed) throw new Unroutable();
      const table = { schema: row.schema, name: row.name };
      ingest.learn(relation, table);
      const timeouts = { statementTimeoutMs: settingMs(row.statement_timeout) ?? 0, lockTimeoutMs: settingMs(row.lock_timeout) ?? 0 };
      tx = await ingest.cluster.begin({ settings: { ...clientSettings(this.#parameters), ...timeouts }, access: this.#inband });
      this.#routedOpened(tx);
      await this.#routedCheck();
      const signature = (results[3]?.rows[0] as { signature?: string } | undefined)?.signature;
      // The guess held: the locks are the ones the write takes, and the route read after them is current.
      if (guess !== undefined && guess.table.schema === table.schema && guess.table.name === table.name && signature === guess.route.signature) {
        tx.adoptLocks(table, guess.route, guess.route.partitions.map((p) => p.remainder));
        this.#ctx.metrics.lockGuess('held');
      } else if (guess !== undefined) {
        this.#ctx.metrics.lockGuess('missed');
      }
      return { tx, schema: row.schema, name: row.name, columns: row.columns };
    } catch (error) {
      await tx?.abort('not routed').catch(() => undefined);
      await this.#inband.query(ownBlock ? 'ROLLBACK' : `ROLLBACK TO SAVEPOINT ${ROUTING_SAVEPOINT}; RELEASE SAVEPOINT ${ROUTING_SAVEPOINT}`).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Whether this block's routed writes hold a quarter of some data node's prepared transactions
   * (max_prepared_transactions, shared by every session): each routed write in a block stays
   * prepared until the block ends, so a block of many writes would exhaust them (53200 for every
   * session). Its further writes then go through the access node.
   */
  #blockPreparedFull(ingest: GatewayIngest): boolean {
    const held = new Map<string, number>();
    for (const p of this.#pendingRouted) for (const part of p.prepared.participants) held.set(part.node, (held.get(part.node) ?? 0) + 1);
    for (const [node, n] of held) {
      const max = ingest.cluster.preparedTransactionsRead(node);
      if (max !== undefined && n >= Math.max(1, Math.floor(max / 4))) return true;
    }
    return false;
  }

  /**
   * A routed write's rows are written: they are prepared on their data nodes and the commit record
   * is written in the client's transaction. Outside a block the gateway commits it now and then the
   * data nodes; inside one, that waits for the client's COMMIT (see #settleRouted).
   */
  async #routedCommit(tx: RoutedTransaction, ownBlock: boolean): Promise<void> {
    await tx.finish();
    // Outside a client's block, rows that all went to one data node commit there alone; the
    // gateway's block then only held the shard locks. Its COMMIT is the commit point.
    const single = ownBlock && tx.participants().length === 1;
    await this.#routedCheck(single);
    if (single && (await tx.commitSingle()) !== undefined) {
      // The rows are committed: ending the block only releases the locks.
      await this.#inband.query('COMMIT').catch(() => undefined);
      this.#ctx.metrics.routedSettled('committed');
      return;
    }
    const prepared = await tx.prepare();
    // The commit record is the commit point: up to it an interrupt rolls everything back.
    await this.#routedCheck(true);
    if (!ownBlock) {
      await tx.writeCommitRecord(prepared);
      this.#pendingRouted.push({ tx, prepared });
      return;
    }
    // The gateway's own block: the record and its COMMIT in one message.
    const command = await tx.writeCommitRecordAndCommit(prepared, this.#inband);
    if (command !== 'COMMIT') {
      await tx.abort('the access node did not commit');
      throw new CopyFailed('the access node rolled back the transaction deciding the routed write; nothing was committed', '40000');
    }
    const outcome = await tx.commitPrepared(prepared);
    if (outcome.inDoubt.length > 0) this.#ctx.ingest?.recoverSoon();
    this.#ctx.metrics.routedSettled(outcome.inDoubt.length === 0 ? 'committed' : 'left');
  }

  /**
   * A routed write failed: nothing of it is committed, the client's transaction block (if any) is
   * failed as PostgreSQL's would be (its COMMIT must not look successful), and the client gets the error.
   */
  async #routedFailed(tx: RoutedTransaction, ownBlock: boolean, fields: ErrorFields, before?: Buffer): Promise<void> {
    // The write was interrupted: that is why it failed, whatever the data node answered to it.
    const run = this.#routedRun;
    if (run !== undefined) await Promise.all(run.cancels);
    const answer = run?.interrupted ?? fields;
    await tx.abort(answer.message).catch(() => undefined);
    if (tx.leftPrepared.length > 0) this.#ctx.ingest?.recoverSoon();
    if (ownBlock) await this.#inband.query('ROLLBACK').catch(() => undefined);
    this.#ctx.metrics.routedFailed += 1;
    await this.#statementFailed(ownBlock, answer, before);
  }

  /** A routed write's statement fails, its write undone: a client's block is failed as PostgreSQL's would be (its COMMIT must not look successful). */
  async #statementFailed(ownBlock: boolean, fields: ErrorFields, before?: Buffer): Promise<void> {
    if (!ownBlock && this.#txStatus !== TX_FAILED) {
      await this.#inband.query(`DO $$BEGIN RAISE EXCEPTION 'hypershard gateway: a routed write of this transaction failed'; END$$`).catch(() => undefined);
    }
    this.#routedEnd();
    this.#writeClient(Buffer.concat([...(before === undefined ? [] : [before]), errorResponse(fields), readyForQuery(this.#txStatus)]));
  }

  /** Why a routed write's statement stopped before it was under way, when it was interrupted (a cancel, a timeout) rather than found not routable. */
  #interruptedBy(error: unknown): ErrorFields | undefined {
    if (this.#routedRun?.interrupted !== undefined) return this.#routedRun.interrupted;
    // The client's cancel (forwarded to the access node) or its statement_timeout stopped the gateway's check.
    return error instanceof InbandError && error.code === '57014' ? { code: error.code, message: error.message } : undefined;
  }

  /** A write that will not be routed after all: what was set up is undone and the statement goes to the access node as written. */
  async #notRouted(bytes: Buffer, opened: RoutedOpen | undefined, ownBlock: boolean, error: unknown): Promise<void> {
    if (opened !== undefined) {
      await opened.tx.abort('not routed').catch(() => undefined);
      await this.#inband.query(ownBlock ? 'ROLLBACK' : `ROLLBACK TO SAVEPOINT ${ROUTING_SAVEPOINT}; RELEASE SAVEPOINT ${ROUTING_SAVEPOINT}`).catch(() => undefined);
    }
    // Interrupted while being set up: the statement ends with that error, it is not run another way.
    const interrupted = this.#interruptedBy(error);
    if (interrupted !== undefined) return this.#statementFailed(ownBlock, interrupted);
    this.#routedEnd();
    if (!(error instanceof Unroutable)) this.#ctx.metrics.fallback(error instanceof InbandError ? 'routing-check-failed' : 'not-routable');
    this.#send(bytes, { kind: 'query' });
  }

  /**
   * Starts a routed COPY and asks the client for its data. When the checks say no, the statement
   * goes to the access node as written.
   */
  async #copyInRouted(bytes: Buffer, statement: CopyIntoStatement): Promise<void> {
    const ownBlock = this.#txStatus === TX_IDLE;
    let opened: RoutedOpen | undefined;
    this.#routedStart();
    try {
      opened = await this.#routedBegin(statement.relation, ownBlock);
      const copy = await RoutedCopy.open(opened.tx, { schema: opened.schema, name: opened.name }, { ...statement.format, ...(statement.columns === undefined ? {} : { columns: statement.columns }) });
      await this.#routedCheck();
      if (!ownBlock) await this.#inband.query(`RELEASE SAVEPOINT ${ROUTING_SAVEPOINT}`);
      this.#copyIn = { copy, tx: opened.tx, table: opened.name, ownBlock };
      this.#ctx.metrics.routedCopies += 1;
      this.#writeClient(copyInResponse(statement.format.format === 'binary', statement.columns?.length ?? opened.columns));
    } catch (error) {
      await this.#notRouted(bytes, opened, ownBlock, error);
    }
  }

  /**
   * A multi-row or upserting INSERT into a hypertable, planned with the session's search_path and
   * role: its rows are written on their data nodes and committed with the client's transaction.
   * What planRoutedInsert or the in-band checks refuse goes to the access node as written.
   */
  async #insertRouted(bytes: Buffer, text: string, parse: boolean): Promise<void> {
    const ingest = this.#ctx.ingest as GatewayIngest;
    const ownBlock = this.#txStatus === TX_IDLE;
    let opened: RoutedOpen | undefined;
    let plan: RoutedInsert | undefined;
    this.#routedStart();
    try {
      const session = await this.#currentSettings();
      if (session === undefined) throw new Unroutable();
      const settings = {
        ...clientSettings(this.#parameters),
        searchPath: session.searchPath.map(quoteIdent).join(', '),
        role: session.role,
        standardConformingStrings: this.#parameters.get('standard_conforming_strings') === 'on',
      };
      const planned = await planRoutedInsert(ingest.cluster, text, [], settings, { parse, minRows: parse ? 1 : MIN_ROUTED_VALUES_ROWS });
      if (!planned.routable) {
        this.#ctx.metrics.fallback('insert-not-routable');
        throw new Unroutable();
      }
      plan = planned;
      opened = await this.#routedBegin(`${quoteIdent(plan.table.schema)}.${quoteIdent(plan.table.name)}`, ownBlock);
      if (!ownBlock) await this.#inband.query(`RELEASE SAVEPOINT ${ROUTING_SAVEPOINT}`);
    } catch (error) {
      await this.#notRouted(bytes, opened, ownBlock, error);
      return;
    }
    const { tx, name } = opened;
    try {
      const rows = await plan.run(tx);
      await this.#routedCommit(tx, ownBlock);
      this.#ctx.metrics.routedInserts += 1;
      this.#ctx.metrics.routedRows += rows;
      this.#routedEnd();
      this.#writeClient(Buffer.concat([commandComplete(`INSERT 0 ${rows}`), readyForQuery(this.#txStatus)]));
    } catch (error) {
      await this.#routedFailed(tx, ownBlock, error instanceof CopyFailed ? { code: error.code, message: error.message } : routedErrorFields(error, name, 'INSERT'));
    }
  }

  /** A run of the client's CopyData frames: their payloads go to the routed COPY (which waits when the data nodes are behind). */
  #copyData(run: Buffer): Promise<void> | undefined {
    const state = this.#copyIn as CopyIn;
    // Cancelled or timed out: the COPY ends at its next data, as on PostgreSQL.
    if (this.#routedRun?.interrupted !== undefined) return this.#copyFailed(state, new CopyFailed(this.#routedRun.interrupted.message, this.#routedRun.interrupted.code));
    let size = 0;
    for (let i = 0; i < run.length; i += 1 + run.readInt32BE(i + 1)) size += run.readInt32BE(i + 1) - 4;
    let chunk: Buffer;
    if (size === run.length - 5) chunk = run.subarray(5);
    else {
      chunk = Buffer.allocUnsafe(size);
      let at = 0;
      for (let i = 0; i < run.length; ) {
        const length = run.readInt32BE(i + 1);
        at += run.copy(chunk, at, i + 5, i + 1 + length);
        i += 1 + length;
      }
    }
    return state.copy.write(chunk).catch((error: unknown) => this.#copyFailed(state, error));
  }

  /** A message of the client's while its routed COPY runs: its end, its failure, or a protocol error. */
  #copyMessage(frame: Frame): Promise<void> {
    const state = this.#copyIn as CopyIn;
    switch (frame.type) {
      case F.CopyData:
        return this.#copyData(frame.bytes) ?? Promise.resolve();
      case F.CopyDone:
        return this.#copyDone(state);
      case F.CopyFail:
        return this.#copyFailed(state, new CopyFailed(`COPY from stdin failed: ${body(frame.bytes).cstring()}`));
      case F.Flush:
      case F.Sync:
        // libpq may send these during COPY; PostgreSQL ignores them there.
        return Promise.resolve();
      default:
        return this.#copyFailed(state, new CopyFailed(`unexpected message type 0x${frame.type.toString(16).padStart(2, '0')} during COPY from stdin`, '08P01'));
    }
  }

  /** The client's data ended: the COPY commits with the client's transaction (see #routedCommit). */
  async #copyDone(state: CopyIn): Promise<void> {
    try {
      this.#copyIn = undefined;
      await this.#routedCommit(state.tx, state.ownBlock);
      const rows = state.copy.stats.rows;
      this.#ctx.metrics.routedRows += rows;
      this.#routedEnd();
      this.#writeClient(Buffer.concat([commandComplete(`COPY ${rows}`), readyForQuery(this.#txStatus)]));
    } catch (error) {
      await this.#copyFailed(state, error);
    }
  }

  /**
   * A routed COPY failed (a bad row, a data node, the client's CopyFail): as any routed write's
   * failure, and data the client still sends for this COPY is dropped.
   */
  async #copyFailed(state: CopyIn, error: unknown): Promise<void> {
    if (this.#copyIn === state) {
      this.#copyIn = undefined;
      this.#copyDiscard = true;
    }
    await this.#routedFailed(state.tx, state.ownBlock, error instanceof CopyFailed ? { code: error.code, message: error.message } : routedErrorFields(error, state.table));
  }


  // ------------------------------------------------------------------ routed INSERT batches (extended protocol)

  /**
   * Starts holding when `frame` (a Parse, read as `parse`, or a Bind) begins a batch of an INSERT
   * the gateway may route: a driver's executemany/executeBatch, or one execution of a multi-row or
   * unnest INSERT.
   * @returns whether the frame is now held
   */
  #holdInsert(frame: Frame, parse?: ParseMessage): boolean {
    if (this.#releasing || !this.#mayHold()) return false;
    let text: string;
    const parsed = new Map<string, readonly number[]>();
    if (parse !== undefined) {
      // A name in use is the backend's to refuse.
      if (!this.#batchable(parse.text) || (parse.name !== '' && this.#statements.has(parse.name))) return false;
      text = parse.text;
      parsed.set(parse.name, parse.paramTypes);
    } else {
      const bind = readBindNames(frame.bytes);
      const statement = this.#statements.get(bind.statement);
      if (statement?.insert !== true || statement.serverName !== bind.statement || bind.portal !== '') return false;
      text = statement.original;
    }
    this.#heldInsert = { text, frames: [], bytes: 0, sets: [], bound: undefined, parsed, errors: this.#errorsSeen };
    if (frame.type === F.Bind) this.#holdBind(this.#heldInsert, frame);
    this.#heldInsert.frames.push(frame);
    this.#heldInsert.bytes += frame.bytes.length;
    return true;
  }

  /**
   * Whether a batch may be held now: routing is possible, and the messages since the last Sync ran
   * nothing (asyncpg prepares with Parse, Describe, Flush and binds in the same batch) or a BEGIN.
   */
  #mayHold(): boolean {
    if (this.#ctx.ingest === undefined || this.#held !== undefined || this.#copyIn !== undefined || this.#txStatus === TX_FAILED || this.#tracker.skipping) return false;
    if (this.#startup.get('replication') !== undefined || (this.#startup.get('database') ?? this.user) !== this.#ctx.database) return false;
    // Parse, Bind, [Describe,] Execute of the BEGIN.
    return this.#sinceSync === 0 ? this.#tracker.idle : this.#nothingRun || (this.#beginOnly && this.#sinceSync <= 4);
  }

  /** A Bind of the held statement: its parameters, as the client sent them, with the types its statement's Parse declared. */
  #holdBind(held: HeldInsert, frame: Frame): boolean {
    const utf8 = (this.#parameters.get('client_encoding') ?? '').toUpperCase() === 'UTF8';
    const bind = utf8 ? readBind(frame.bytes, 'utf8') : readBind(frame.bytes);
    if (bind.portal !== '' || held.bound !== undefined) return false;
    // Text that is not UTF-8: the access node refuses it as it should (a routed COPY would be told another error).
    if (utf8 && bind.values.some((v, i) => bind.formats[i] === 0 && Buffer.isBuffer(v))) return false;
    const types = held.parsed.get(bind.statement) ?? this.#statements.get(bind.statement)?.paramTypes ?? [];
    held.bound = bind.values.map((value, i) => {
      const typeOid = types[i] ?? 0;
      return { value, format: bind.formats[i] === 1 ? ('binary' as const) : ('text' as const), ...(typeOid === 0 ? {} : { typeOid }) };
    });
    return true;
  }

  /** The next message of a held batch: held too when it is more of the same, else the batch is released. */
  #holdMore(frame: Frame): Promise<void> | undefined {
    const held = this.#heldInsert as HeldInsert;
    let more = false;
    switch (frame.type) {
      case F.Parse: {
        const parse = readParse(frame.bytes);
        more = parse.text === held.text && (parse.name === '' || !(this.#statements.has(parse.name) || held.parsed.has(parse.name)));
        if (more) held.parsed.set(parse.name, parse.paramTypes);
        break;
      }
      case F.Bind: {
        const name = readBindNames(frame.bytes).statement;
        const known = this.#statements.get(name);
        more = (held.parsed.has(name) || (known?.original === held.text && known.serverName === name && known.settingsKey === undefined)) && this.#holdBind(held, frame);
        break;
      }
      case F.Describe: {
        const target = readTarget(frame.bytes);
        more = target.kind === 'P' ? target.name === '' && held.bound !== undefined : held.parsed.has(target.name) || this.#statements.get(target.name)?.original === held.text;
        break;
      }
      case F.Execute:
        more = readExecute(frame.bytes).portal === '' && held.bound !== undefined;
        if (more) {
          held.sets.push(held.bound as InsertParam[]);
          held.bound = undefined;
        }
        break;
      case F.Sync:
        this.#heldInsert = undefined;
        return this.#routeHeld(held, frame);
      default:
        break;
    }
    if (!more) return this.#release(held, [frame]);
    held.frames.push(frame);
    held.bytes += frame.bytes.length;
    // A batch too large to keep goes to the access node as it came.
    return held.bytes > MAX_HELD_BYTES ? this.#release(held, []) : undefined;
  }

  /** Held messages (and what follows them) go to the access node as they came, as if never held. */
  #release(held: HeldInsert, after: readonly Frame[]): Promise<void> {
    if (this.#heldInsert === held) this.#heldInsert = undefined;
    return this.#releaseFrames([...held.frames, ...after]);
  }

  /** `decided`: what the first frame, a Parse, was already found to need. */
  async #releaseFrames(frames: readonly Frame[], decided?: Decision): Promise<void> {
    this.#releasing = true;
    try {
      for (const [i, frame] of frames.entries()) {
        const waiting = i === 0 && decided !== undefined ? this.#onParse(frame.bytes, readParse(frame.bytes), decided) : this.#handle(frame);
        if (waiting !== undefined) {
          this.#flushServer();
          await waiting;
        }
        if (this.closed) return;
      }
    } finally {
      this.#releasing = false;
    }
  }

  /**
   * The client's Sync ended a held batch: its rows are routed as one write, committed with the
   * client's transaction (the gateway's own outside a block), and the client gets the answers the
   * access node would have sent. What cannot be routed goes to the access node as it came.
   */
  async #routeHeld(held: HeldInsert, sync: Frame): Promise<void> {
    const ingest = this.#ctx.ingest as GatewayIngest;
    const release = (): Promise<void> => this.#release(held, [sync]);
    // One execution of a one-row statement is cheaper through the access node: not even planned.
    if (held.sets.length === 0 || held.bound !== undefined || (held.sets.length === 1 && !/\)\s*,\s*\(|unnest/i.test(held.text))) return release();
    let plan: RoutedInsert;
    try {
      const session = await this.#currentSettings();
      if (session === undefined) return await release();
      const settings = {
        ...clientSettings(this.#parameters),
        searchPath: session.searchPath.map(quoteIdent).join(', '),
        role: session.role,
        standardConformingStrings: this.#parameters.get('standard_conforming_strings') === 'on',
      };
      const planned = await planRoutedBatch(ingest.cluster, held.text, held.sets, settings, { minRows: MIN_ROUTED_VALUES_ROWS });
      if (!planned.routable) {
        this.#ctx.metrics.fallback('insert-not-routable');
        return await release();
      }
      plan = planned;
    } catch {
      this.#ctx.metrics.fallback('routing-check-failed');
      return release();
    }
    // What came before the batch (a BEGIN, a Parse) is answered first; its answers are the client's.
    if (this.#sinceSync !== 0) {
      const begin = this.#beginOnly;
      await this.#gatewaySync();
      this.#sinceSync = 0;
      this.#beginOnly = false;
      this.#nothingRun = true;
      // It failed: the backend would have skipped the batch up to the client's Sync.
      if (this.#errorsSeen !== held.errors || (begin && this.#txStatus === TX_IDLE)) {
        this.#writeClient(readyForQuery(this.#txStatus));
        return;
      }
    }
    // The access node failing here fails what the client sent anyway: sent as it came, it says so.
    const prepared = await this.#prepareHeld(held).catch(() => undefined);
    if (prepared === undefined) return release();
    const ownBlock = this.#txStatus === TX_IDLE;
    const answers = heldAnswers(held.frames, prepared, plan.rows / held.sets.length);
    let opened: RoutedOpen | undefined;
    this.#routedStart();
    try {
      opened = await this.#routedBegin(`${quoteIdent(plan.table.schema)}.${quoteIdent(plan.table.name)}`, ownBlock);
      if (!ownBlock) await this.#inband.query(`RELEASE SAVEPOINT ${ROUTING_SAVEPOINT}`);
    } catch (error) {
      if (opened !== undefined) {
        await opened.tx.abort('not routed').catch(() => undefined);
        await this.#inband.query(ownBlock ? 'ROLLBACK' : `ROLLBACK TO SAVEPOINT ${ROUTING_SAVEPOINT}; RELEASE SAVEPOINT ${ROUTING_SAVEPOINT}`).catch(() => undefined);
      }
      // Interrupted while being set up: the batch fails with that error at its first execution.
      const interrupted = this.#interruptedBy(error);
      if (interrupted !== undefined) return this.#statementFailed(ownBlock, interrupted, answers.beforeFirstExecute);
      this.#routedEnd();
      if (!(error instanceof Unroutable)) this.#ctx.metrics.fallback(error instanceof InbandError ? 'routing-check-failed' : 'not-routable');
      await this.#unprepareHeld(held);
      return release();
    }
    try {
      const rows = await plan.run(opened.tx);
      await this.#routedCommit(opened.tx, ownBlock);
      this.#ctx.metrics.routedInserts += held.sets.length;
      this.#ctx.metrics.routedRows += rows;
      this.#routedEnd();
      this.#writeClient(Buffer.concat([...answers.all, readyForQuery(this.#txStatus)]));
    } catch (error) {
      await this.#routedFailed(opened.tx, ownBlock, error instanceof CopyFailed ? { code: error.code, message: error.message } : routedErrorFields(error, opened.name, 'INSERT'), answers.beforeFirstExecute);
    }
  }

  /**
   * Prepares the held batch's statements on the access node, as its Parses ask (each name once,
   * the last text wins as it would), and reads what its statement Describes answer.
   * @returns those answers by the held frame's index, or undefined when the access node refused
   *   one (nothing is left prepared: the batch then goes as it came, and the client sees why)
   */
  async #prepareHeld(held: HeldInsert): Promise<Map<number, Buffer[]> | undefined> {
    const answers = new Map<number, Buffer[]>();
    const describes = held.frames.map((f, i) => [f, i] as const).filter(([f]) => f.type === F.Describe && f.bytes[5] === 0x53);
    if (held.parsed.size === 0 && describes.length === 0) return answers;
    const inBlock = this.#txStatus !== TX_IDLE;
    // In a block a refused Parse would fail it: under a savepoint, undone when refused.
    if (inBlock) await this.#inband.query(`SAVEPOINT ${ROUTING_SAVEPOINT}`);
    let refused = false;
    const capture = (into: Buffer[]) => (type: number, frame: Buffer): null => {
      if (type === B.ErrorResponse) refused = true;
      else if (type !== B.NoticeResponse) into.push(frame);
      return null;
    };
    for (const [name, types] of held.parsed) {
      this.#send(parseMessage(name, held.text, types), { kind: 'parse', route: capture([]) });
    }
    for (const [frame, i] of describes) {
      const into: Buffer[] = [];
      answers.set(i, into);
      this.#send(frame.bytes, { kind: 'describe-statement', route: capture(into) });
    }
    await this.#gatewaySync();
    if (refused) {
      if (inBlock) await this.#inband.query(`ROLLBACK TO SAVEPOINT ${ROUTING_SAVEPOINT}; RELEASE SAVEPOINT ${ROUTING_SAVEPOINT}`).catch(() => undefined);
      else await this.#unprepareHeld(held);
      return undefined;
    }
    if (inBlock) await this.#inband.query(`RELEASE SAVEPOINT ${ROUTING_SAVEPOINT}`);
    for (const [name, types] of held.parsed) this.#registerStatement(name, held.text, types);
    return answers;
  }

  /** Undoes #prepareHeld's named statements, so that the client's own Parses of them succeed. */
  async #unprepareHeld(held: HeldInsert): Promise<void> {
    const named = [...held.parsed.keys()].filter((n) => n !== '');
    if (named.length === 0) return;
    for (const name of named) {
      this.#statements.delete(name);
      this.#send(serialize.close({ type: 'S', name }), { kind: 'close', route: () => null });
    }
    await this.#gatewaySync();
  }

  // ------------------------------------------------------------------ router reads (extended protocol)

  /**
   * Starts holding when `frame`, a Parse, may begin a router read: the unnamed statement, its
   * parameters of types a literal can stand for, one SELECT that names a hypertable, this session
   * at rest (as #queryRewritten's).
   * @returns whether the frame is now held
   */
  #holdRead(frame: Frame, parse: ParseMessage): boolean {
    if (parse.name !== '' || !this.#mayHoldRead(parse.text, parse.paramTypes)) return false;
    this.#heldRead = { text: parse.text, paramTypes: parse.paramTypes, values: [], resultFormats: [], frames: [frame], bytes: frame.bytes.length, answers: ['parse'], executed: false };
    return true;
  }

  /**
   * Starts holding a Bind of a prepared statement that may be a router read, as #holdRead an
   * unnamed one's Parse: drivers prepare what they run often (JDBC and psycopg from the fifth
   * execution, asyncpg and pgx always, node-postgres given a name), and each execution with its
   * values is then one read. The text is the client's Parse's, which went to the access node. The
   * unnamed statement too, bound in a batch after the one that parsed it (pgx's describe-exec mode),
   * unless a data node answered that Parse (the access node does not hold it then).
   */
  #holdNamedRead(frame: Frame): boolean {
    // A Bind's values are read only when it may be a read at all (#mayHoldRead: the session at rest too).
    if (!this.#namedReads) return false;
    const names = readBindNames(frame.bytes);
    const statement = this.#statements.get(names.statement);
    if (statement === undefined || statement.insert === true || statement.settingsKey === NOT_PREPARED || names.portal !== '') return false;
    // Once the client described the statement, every parameter's type as the access node resolved
    // it (declared ones as declared); before, the Parse's (0: left to the server).
    const types = statement.described ?? statement.paramTypes;
    if (!this.#mayHoldRead(statement.original, types, true)) return false;
    const bind = readBind(frame.bytes, 'utf8');
    const values = textValues(types, bind.formats, bind.values);
    if (values === undefined) return false;
    this.#heldRead = { text: statement.original, paramTypes: types, values, resultFormats: bind.resultFormats, frames: [frame], bytes: frame.bytes.length, answers: ['bind'], executed: false, named: bind.statement };
    return true;
  }

  /**
   * Router reads on, this session at rest (no block, nothing since the last Sync), not releasing
   * held messages. `prepared`: or only Parses, Describes and Closes since the Sync, all answered
   * (asyncpg prepares with a Flush, then binds): the check's own Sync on this session ends them.
   */
  #atRestForRead(prepared = false): boolean {
    const quiet = this.#sinceSync === 0 || (prepared && this.#nothingRun);
    return !this.#releasing && this.#ctx.routerReads !== undefined && quiet && this.#txStatus === TX_IDLE && this.#mayRoute();
  }

  /** Whether a statement may be held as a router read: this session at rest, one SELECT that names a hypertable, parameters of types a literal can stand for. */
  #mayHoldRead(text: string, paramTypes: readonly number[], prepared = false): boolean {
    if (!this.#atRestForRead(prepared) || !paramTypes.every(inlinableType) || !READ_START.test(text)) return false;
    const rewriter = this.#rewriter;
    if (rewriter === undefined || this.#unrewritable() !== undefined || !rewriter.mentionsHypertable(text)) return false;
    const info = rewriter.statement(text);
    return info.parsed && info.count === 1 && !info.changesSettings && !info.changesAccess && !info.transactional && info.definesRelations.size === 0 && rewriter.mayTouch(info);
  }

  /**
   * The next message of a held read: a Bind of it (values in text, or in binary of declared
   * types; results in any format), one Describe, an Execute of all its rows, then the Sync that
   * routes it. Anything else releases it.
   */
  #holdReadMore(frame: Frame): Promise<void> | undefined {
    const held = this.#heldRead as HeldRead;
    if (frame.type === F.Sync) {
      this.#heldRead = undefined;
      return held.executed ? this.#routeRead(held, frame) : this.#releaseFrames([...held.frames, frame]);
    }
    const bound = held.answers.includes('bind');
    let more = false;
    switch (held.executed ? undefined : frame.type) {
      case F.Bind: {
        const bind = readBind(frame.bytes, 'utf8');
        // Values in binary only of the types the Parse declared.
        const values = textValues(held.paramTypes, bind.formats, bind.values);
        if (!bound && bind.portal === '' && bind.statement === '' && values !== undefined) {
          more = true;
          held.answers.push('bind');
          held.values = values;
          held.resultFormats = bind.resultFormats;
        }
        break;
      }
      case F.Describe: {
        const target = readTarget(frame.bytes);
        more = !held.answers.includes('description') && target.name === '' && (target.kind === 'S' ? held.named === undefined : bound);
        if (more) held.answers.push(...(target.kind === 'S' ? (['parameters', 'description'] as const) : (['description'] as const)));
        break;
      }
      case F.Execute: {
        const execute = readExecute(frame.bytes);
        more = bound && execute.portal === '' && execute.maxRows === 0;
        held.executed = more;
        break;
      }
      default:
        break;
    }
    held.bytes += frame.bytes.length;
    // Values too large to keep go to the access node as they came.
    if (!more || held.bytes > MAX_HELD_BYTES) {
      this.#heldRead = undefined;
      return this.#releaseFrames([...held.frames, frame]);
    }
    held.frames.push(frame);
    return undefined;
  }

  /**
   * The client's Sync ended a held read: answered by a data node when it reads one shard (as a
   * simple query's would be, #queryRewritten), else sent to the access node as it came, with the
   * rewrite found here.
   */
  async #routeRead(held: HeldRead, sync: Frame): Promise<void> {
    const frames = [...held.frames, sync];
    // Values become literals; a statement Describe's parameter types must then all be declared.
    const text = held.values.length === 0 ? held.text : inlineParameters(held.text, held.paramTypes, held.values);
    const described = held.answers.includes('parameters') && (held.paramTypes.length !== held.values.length || held.paramTypes.includes(0));
    if (text === undefined || described) return this.#releaseFrames(frames);
    // What is decided for the text itself goes with its Parse to the access node (a named statement's went before).
    const asSent = (decision: Decision | undefined): Decision | undefined => (text === held.text && held.named === undefined ? decision : undefined);
    const quick = this.#asWrittenAtOnce(text);
    const state = this.#ctx.routerReads;
    if (quick !== undefined || state === undefined) return this.#releaseFrames(frames, asSent(quick));
    const framing = readFraming(held);
    if (await this.#routerReadAgain(text, framing)) return this.#answeredElsewhere(held);
    const decision = await this.#rewriteFor(text, this.#inband);
    if (!decision.changed || !(await this.#routerRead(decision, state, false, framing))) return this.#releaseFrames(frames, asSent(decision));
    this.#ctx.metrics.rewritten += 1;
    this.#rememberRouterRead(text, decision);
    // Its statement as the client wrote it; what ran is the rewrite of it with the values written in.
    this.#emit(text === held.text || decision.event === undefined ? decision : { ...decision, event: { ...decision.event, original: held.text } });
    this.#answeredElsewhere(held);
  }

  /**
   * The client's SQL drops named statements (DEALLOCATE, DISCARD ALL): the gateway forgets them,
   * so a Bind of one goes to the access node under the client's name, which says it does not
   * exist (the gateway's renamed copies of it would have answered). Named statements are then no
   * router reads on this session: a DEALLOCATE that did not run (an error before it in the same
   * query) or one the gateway cannot read must not leave a data node answering for a name.
   */
  #forgetDropped(text: string): void {
    this.#namedReads = false;
    let statements;
    try {
      statements = parseStatements(text);
    } catch {
      return;
    }
    for (const { stmt } of statements) {
      const dropped = stmt === undefined ? undefined : droppedStatements(stmt);
      if (dropped === undefined) continue;
      if ('name' in dropped) this.#statements.delete(dropped.name);
      else for (const name of this.#statements.keys()) if (name !== '') this.#statements.delete(name);
    }
  }

  /** The client's unnamed statement was answered by a data node: the access node's unnamed statement is another. (A named one's is the same.) */
  #answeredElsewhere(held: HeldRead): void {
    this.#ctx.metrics.statements += 1;
    // The client's Sync ended its messages; the access node's ended with the check's.
    this.#sinceSync = 0;
    this.#nothingRun = true;
    if (held.named !== undefined) return;
    this.#statements.set('', { original: held.text, paramTypes: held.paramTypes, serverName: '', settingsKey: NOT_PREPARED, insert: false });
    // Binds and statement Describes then go through #handle, which prepares it first.
    this.#preparedRewrites = true;
  }

  // ------------------------------------------------------------------ rewriting

  get #rewriter(): GatewayRewriter | undefined {
    return this.#ctx.rewriter;
  }

  /**
   * The cheap part of the decision, without waiting: the text as written when it cannot be
   * rewritten (undefined: it may be, `#decide` finds out). Notes what the statement may make stale.
   */
  #asWrittenAtOnce(text: string): Decision | undefined {
    const asWritten: Decision = { sql: text, changed: false, settingsKey: undefined, event: undefined };
    const rewriter = this.#rewriter;
    if (rewriter === undefined) return asWritten;
    const noted = rewriter.noteStatement(text);
    if (noted.names) this.#namesDefined = true;
    if (noted.settings) {
      this.#settings = undefined;
      this.#settingsChangedInTransaction = true;
      if (rewriter.mentionsHypertable(text)) this.#ctx.metrics.fallback('changes-settings');
      return asWritten;
    }
    if (!rewriter.mentionsHypertable(text)) return asWritten;
    const info = rewriter.statement(text);
    if (!info.parsed || !rewriter.mayTouch(info)) return asWritten;
    const unavailable = this.#unrewritable();
    if (unavailable !== undefined) {
      this.#ctx.metrics.fallback(unavailable);
      return asWritten;
    }
    return undefined;
  }

  /** What to send for a statement text: its rewrite for this session, or the text itself. */
  async #decide(text: string): Promise<Decision> {
    const quick = this.#asWrittenAtOnce(text);
    if (quick !== undefined) return quick;
    return this.#rewriteFor(text);
  }

  /**
   * `keys`: this session at rest, where the keys of a key sub-select may be read first (else it
   * stays a sub-select); `reuseKeys` where a guard's refusal is run again as written (the simple
   * query protocol): in the extended protocol it would reach the client.
   */
  async #rewriteFor(text: string, keys?: Queryable, reuseKeys = false): Promise<Decision> {
    const asWritten: Decision = { sql: text, changed: false, settingsKey: undefined, event: undefined };
    const rewriter = this.#rewriter as GatewayRewriter;
    const settings = await this.#currentSettings();
    if (settings === undefined) {
      this.#ctx.metrics.fallback('settings-unknown');
      return asWritten;
    }
    if (!settings.enabled) {
      this.#ctx.metrics.fallback('disabled-by-session');
      return asWritten;
    }
    if (!(await rewriter.ready(settings.role, settings.timeZone))) {
      this.#ctx.metrics.fallback('catalogs-unreadable');
      return asWritten;
    }
    this.#ctx.metrics.examined += 1;
    const { result, cached } = keys !== undefined && rewriter.context.keyLookup(text, settings) !== undefined
      ? { result: await rewriter.context.rewriteWithKeys(text, settings, keys, undefined, this.#txStatus !== TX_IDLE, reuseKeys), cached: false }
      : rewriter.rewrite(text, settings);
    if (cached) this.#ctx.metrics.cacheHits += 1;
    const base = { original: text, rewrites: [], unchanged: [] };
    if ('error' in result) {
      this.#ctx.metrics.fallback('rewriter-error');
      return { ...asWritten, event: { ...base, sql: text, changed: false, fallback: `the rewriter failed: ${result.error}` } };
    }
    const event = { original: text, sql: result.sql, changed: result.changed, rewrites: result.rewrites, unchanged: result.unchanged };
    if (!result.changed) {
      this.#ctx.metrics.fallback(`unchanged:${result.unchanged[0]?.kind ?? 'statement'}`);
      this.#emit({ ...asWritten, event });
      return asWritten;
    }
    return { sql: result.sql, changed: true, settingsKey: settingsKey(settings), event };
  }

  /** Why this session's statements are not rewritten at all, if they are not. */
  #unrewritable(): string | undefined {
    if (this.#startup.get('replication') !== undefined) return 'replication-connection';
    if ((this.#startup.get('database') ?? this.user) !== this.#ctx.database) return 'other-database';
    // The rewriter works on text; a client in another encoding would get its bytes re-encoded.
    if ((this.#parameters.get('client_encoding') ?? '').toUpperCase() !== 'UTF8') return 'client-encoding';
    // The parser reads literals with standard rules: with backslash escapes, 'x\' OR k = 6 --' is
    // one literal to the server and a condition to the parser, so nothing is rewritten.
    if (this.#parameters.get('standard_conforming_strings') !== 'on') return 'nonstandard-strings';
    // A relation named like a hypertable was defined and its transaction has not ended: the
    // catalogs as the gateway reads them (on its own connection) do not show it yet.
    if (this.#namesDefined) return 'relations-defined';
    return this.#rewriter?.unavailable === undefined ? undefined : 'metadata-unavailable';
  }

  /** The settings a rewrite depends on, when known without reading them. */
  #knownSettings(): SessionSettings | undefined {
    const timeZone = this.#parameters.get('TimeZone');
    return this.#settings === undefined || timeZone === undefined ? undefined : { ...this.#settings, timeZone };
  }

  /** The settings a rewrite depends on, read in-band when not known. */
  async #currentSettings(): Promise<SessionSettings | undefined> {
    const timeZone = this.#parameters.get('TimeZone');
    if (timeZone === undefined) return undefined;
    this.#settings ??= await this.#readSettings();
    return this.#settings === undefined ? undefined : { ...this.#settings, timeZone };
  }

  /**
   * Reads the session's settings on its own connection, with a statement and portal of the
   * gateway's own (prepared, run and closed, so a client's DISCARD or DEALLOCATE cannot touch
   * them). At rest it ends with a Sync; inside the client's open batch with a Flush, so the batch's
   * implicit transaction is left as the client made it. Not in a failed transaction: there the
   * read would fail and the client's statement fails anyway.
   */
  #readSettings(): Promise<SessionSettings | undefined> {
    if (this.#txStatus === TX_FAILED || this.#tracker.skipping) return Promise.resolve(undefined);
    const atRest = this.#tracker.idle && this.#sinceSync === 0;
    const result = deferred<SessionSettings | undefined>();
    let columns: { name: string; type: number }[] = [];
    let row: (Buffer | null)[] | undefined;
    let failed = false;
    // Inside the client's batch an error makes the backend skip the client's messages up to its
    // Sync: the client must then see that error, as its batch's.
    const swallow = (type: number, frame: Buffer): Buffer | null => {
      if (type === B.ErrorResponse) {
        failed = true;
        return atRest ? null : frame;
      }
      if (type === B.RowDescription) columns = readRowDescription(frame);
      if (type === B.DataRow) row = readDataRow(frame);
      return null;
    };
    const finish = (outcome: 'done' | 'error' | 'skipped'): void => {
      if (outcome !== 'done' || failed || row === undefined) {
        result.resolve(undefined);
        return;
      }
      try {
        const values = row;
        const parsed = Object.fromEntries(columns.map((c, i) => {
          const value = values[i];
          // pg-types declares its parsers' result as any, and the server's type OIDs as its enum.
          // oxlint-disable-next-line typescript/no-unsafe-enum-assignment -- an OID from RowDescription
          const parse = pg.types.getTypeParser(c.type as Parameters<typeof pg.types.getTypeParser>[0], 'text') as (text: string) => unknown;
          return [c.name, value === null || value === undefined ? null : parse(value.toString('utf8'))];
        }));
        result.resolve(settingsFromRow(parsed));
      } catch {
        result.resolve(undefined);
      }
    };
    // A name of its own each time: one a failed read left behind cannot make the next fail.
    const name = `${SETTINGS_STATEMENT}.${(this.#reads += 1)}`;
    this.#send(serialize.parse({ name, text: SESSION_SETTINGS_SQL }), { kind: 'parse', route: swallow });
    this.#send(serialize.bind({ portal: name, statement: name }), { kind: 'bind', route: swallow });
    this.#send(serialize.describe({ type: 'P', name }), { kind: 'describe-portal', route: swallow });
    this.#send(serialize.execute({ portal: name }), { kind: 'execute', route: swallow });
    // In a transaction block a portal outlives its statement: close both.
    this.#send(serialize.close({ type: 'P', name }), { kind: 'close', route: swallow });
    this.#send(serialize.close({ type: 'S', name }), { kind: 'close', route: swallow, ...(atRest ? {} : { onDone: finish }) });
    if (atRest) {
      this.#send(serialize.sync(), { kind: 'sync', route: swallow, onDone: finish });
    } else this.#send(serialize.flush());
    this.#flushServer();
    return result.promise;
  }

  /** A Sync of the gateway's own; its ReadyForQuery is not the client's. */
  #gatewaySync(): Promise<void> {
    const done = deferred<void>();
    this.#send(serialize.sync(), { kind: 'sync', route: () => null, onDone: () => done.resolve() });
    this.#flushServer();
    return done.promise;
  }

  #emit(decision: Decision, fallback?: string): void {
    if (decision.event === undefined) return;
    const event: GatewayRewriteEvent = { session: this.id, user: this.user, ...decision.event, ...(fallback === undefined ? {} : { sql: decision.event.original, changed: false, fallback }) };
    this.#ctx.onRewrite(event);
  }

  // ------------------------------------------------------------------ ending

  /** Sends the client an error (a FATAL one ends the session) and closes. */
  #fail(reason: string | undefined, error: ErrorFields): void {
    if (this.#phase === 'closed') return;
    if (reason !== undefined) this.#ctx.metrics.protocolError(reason);
    if (!this.#client.destroyed) this.#client.end(errorResponse(error));
    this.#close();
  }

  #serverGone(): void {
    if (this.#phase === 'closed') return;
    // Whatever the backend said last (a FATAL error, say) was forwarded; the client now sees the end.
    this.#client.end();
    this.#close();
  }

  #close(): void {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    for (const timer of [this.#startupTimer, this.#messageTimer, this.#idleTimer]) if (timer !== undefined) clearTimeout(timer);
    // Routed writes of a session that ends: a COPY in progress is undone; those recorded in an
    // open block end as the access node ends that block (rolled back, unless its COMMIT got there).
    const ingest = this.#ctx.ingest;
    if (this.#copyIn !== undefined) void this.#copyIn.tx.abort('the client connection closed').catch(() => undefined);
    this.#copyIn = undefined;
    // A routed INSERT under way (waiting for a lock, say) is cancelled on its data nodes, so it
    // does not go on to prepare and commit for a client that is gone.
    this.#interruptRouted({ code: '57P01', message: 'the client connection closed' });
    this.#routedEnd();
    for (const p of this.#pendingRouted) void ingest?.settle(p, 60_000).then((o) => this.#ctx.metrics.routedSettled(o), () => undefined);
    this.#pendingRouted = [];
    if (this.#pid !== undefined) this.#ctx.cancels.unregister(this.#pid);
    this.#tracker.abandon();
    const server = this.#server;
    if (server !== undefined && !server.destroyed) {
      server.end(serialize.end());
      setTimeout(() => server.destroy(), 1000).unref();
    }
    setImmediate(() => {
      if (!this.#client.destroyed) this.#client.destroy();
    });
    this.#ctx.onClosed(this);
  }
}

/** The statement is not one the gateway routes: it goes to the access node as written. */
class Unroutable extends Error {}

/** How often a routed write in a block with prepared parts looks for a wait on them. */
const OWN_LOCK_CHECK_MS = 1000;

/** The prepared transactions the given backends wait for (a row a prepared insert or update holds). */
const OWN_LOCK_SQL = `SELECT x.gid FROM pg_catalog.pg_locks w JOIN pg_catalog.pg_prepared_xacts x ON w.locktype = 'transactionid' AND x.transaction = w.transactionid WHERE NOT w.granted AND w.pid = ANY ($1::int[])`;

/** A routed COPY ended by the client or the protocol, with PostgreSQL's code for it. */
class CopyFailed extends Error {
  readonly code: string;
  constructor(message: string, code = '57014') {
    super(message);
    this.code = code;
  }
}

/** A SASLInitialResponse whose SCRAM gs2 header says "y": the client supports channel binding but was not offered it. */
function claimsChannelBinding(frame: Buffer): boolean {
  try {
    const r = body(frame);
    const mechanism = r.cstring();
    const length = r.int32();
    return mechanism.startsWith('SCRAM-') && length > 0 && r.bytes(1)[0] === 0x79;
  } catch {
    return false; // not a SASLInitialResponse (a later SASL message, a password): the backend judges it
  }
}

/**
 * What the access node would have answered a routed batch's messages, in order: ParseComplete,
 * BindComplete, NoData for the portal (no RETURNING), the statement's description as read,
 * `INSERT 0 n` for each execution.
 */
function heldAnswers(frames: readonly Frame[], described: ReadonlyMap<number, Buffer[]>, perExecution: number): { all: Buffer[]; beforeFirstExecute: Buffer } {
  const all: Buffer[] = [];
  let before: Buffer[] | undefined;
  frames.forEach((frame, i) => {
    switch (frame.type) {
      case F.Parse:
        all.push(simpleMessage(B.ParseComplete));
        break;
      case F.Bind:
        all.push(simpleMessage(B.BindComplete));
        break;
      case F.Describe:
        all.push(...(described.get(i) ?? [simpleMessage(B.NoData)]));
        break;
      case F.Execute:
        before ??= [...all];
        all.push(commandComplete(`INSERT 0 ${perExecution}`));
        break;
      default:
        break;
    }
  });
  return { all, beforeFirstExecute: Buffer.concat(before ?? all) };
}

/** What the access node would have answered a held read's Parse, Bind and Describe. */
function readFraming({ answers, paramTypes, resultFormats }: HeldRead): RelayFraming {
  const message = (answer: HeldRead['answers'][number]): Buffer =>
    answer === 'parse' ? simpleMessage(B.ParseComplete) : answer === 'bind' ? simpleMessage(B.BindComplete) : parameterDescription(paramTypes);
  const at = answers.indexOf('description');
  const before = at < 0 ? answers : answers.slice(0, at);
  const after = at < 0 ? [] : answers.slice(at + 1);
  return { before: Buffer.concat(before.map(message)), describe: at >= 0, after: Buffer.concat(after.map(message)), resultFormats, portal: at >= 0 && !answers.includes('parameters') };
}

/** Settings a rewrite depends on, as one comparable key. */
function settingsKey(settings: SessionSettings): string {
  return JSON.stringify(settings);
}

/** Moves error positions from the rewritten text to the client's. */
function positionsFor(original: string, sent: string): (type: number, frame: Buffer) => Buffer {
  return (type, frame) => (type === B.ErrorResponse || type === B.NoticeResponse ? errorForOriginal(frame, original, sent) : frame);
}

function errorText(frame: Buffer): string {
  const r = body(frame);
  let code = '';
  let message = '';
  for (;;) {
    const field = r.byte();
    if (field === 0) break;
    const value = r.cstring();
    if (field === 0x43) code = value;
    if (field === 0x4d) message = value;
  }
  return code === '' ? message : `${code}: ${message}`;
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  let settled = false;
  return {
    promise,
    resolve: (value) => {
      if (settled) return;
      settled = true;
      resolve(value);
    },
  };
}

/** A router read's statement on its way (Session#startRelay). */
interface StartedRelay {
  readonly query: RelayQuery;
  readonly client: pg.Client;
  /** Its data-node backend, for a client's cancel. */
  readonly backend: { readonly host: string; readonly port: number; readonly processID: number; readonly secretKey: number } | undefined;
  /** Lets what it holds, and the rest, reach the client. */
  approve(): void;
  /** Discards it unseen; its connection goes back when the data node is done. */
  drop(): void;
}
