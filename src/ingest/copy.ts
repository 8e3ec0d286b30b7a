/**
 * A routed COPY into one distributed hypertable, inside a RoutedTransaction: input bytes are
 * parsed once (only the space column is read), each row's bytes go unchanged to a buffer for its
 * shard, full buffers go to the lanes (connections to the shard's data node) writing COPY, in
 * parallel. Memory stays flat: when more than a few megabytes wait for the data nodes, write()
 * waits for them (back-pressure), and a data node that takes nothing for stallTimeoutMs fails
 * the load by name.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { HypershardError, IngestRowError, RoutingError, errorMessage } from '../errors.js';
import type { QualifiedName } from '../plan/layout.js';
import type { HypertableRoute, Partition } from '../route/placement.js';
import type { ShardRouter } from '../route/router.js';
import { KeyValueError } from '../route/serverHash.js';
import { quoteIdent, quoteLiteral, quoteQualified } from '../sql/quote.js';
import { BINARY_HEADER, BINARY_TRAILER, BinaryParser } from './formats/binary.js';
import { CsvParser } from './formats/csv.js';
import { InputError, type CopyFormat, type RowParser } from './formats/rows.js';
import { TextParser } from './formats/text.js';
import { CopyLane, LaneError, type Batch, type CopyTarget } from './lane.js';
import { canonicalEncoding, keyDecoder } from './settings.js';
import type { RoutedTransaction, TransactionWriter } from './transaction.js';

export interface RoutedCopyOptions extends CopyFormat {
  /** The input's columns, in order. @default every column of the table */
  readonly columns?: readonly string[];
}

export interface CopyStats {
  readonly rows: number;
  readonly bytes: number;
  /** Rows per data node. */
  readonly perNode: Readonly<Record<string, number>>;
}

/** A shard's buffer is handed to its lane at this size. */
const FLUSH_BYTES = 256 * 1024;
/** write() waits while more than this waits for the data nodes. */
const HIGH_WATER = 16 * 1024 * 1024;

/** A shard's rows waiting for its lane: their bytes copied into one buffer, and their input lines. */
interface Pending {
  buf: Buffer;
  bytes: number;
  lines: number[];
}

export class RoutedCopy implements TransactionWriter {
  readonly table: QualifiedName;
  readonly #tx: RoutedTransaction;
  readonly #router: ShardRouter;
  readonly #route: HypertableRoute;
  readonly #parser: RowParser;
  readonly #target: CopyTarget;
  /** Partition index → its lane (a promise while the connection opens). */
  readonly #lanes = new Map<number, Promise<CopyLane>>();
  readonly #laneList: CopyLane[] = [];
  readonly #pending = new Map<number, Pending>();
  #pendingBytes = 0;
  #rows = 0;
  #bytes = 0;
  #failed: Error | undefined;
  #finished = false;
  // Rows of the chunk being routed: where their bytes are, their keys and lines.
  #bufs: Buffer[] = [];
  #starts: number[] = [];
  #ends: number[] = [];
  #keys: (string | null)[] = [];
  #lines: number[] = [];

  private constructor(tx: RoutedTransaction, table: QualifiedName, router: ShardRouter, parser: RowParser, target: CopyTarget) {
    this.#tx = tx;
    this.table = table;
    this.#router = router;
    this.#route = router.route;
    this.#parser = parser;
    this.#target = target;
  }

  /**
   * Locks every shard of `table` in `tx`, reads its route and checks that a COPY of these columns
   * routed to the data nodes does what COPY through the access node would.
   * @throws RoutingError (not routable, with the reason) or HypershardError `USAGE` (bad options).
   */
  static async open(tx: RoutedTransaction, table: QualifiedName, options: RoutedCopyOptions): Promise<RoutedCopy> {
    const router = await tx.router(table);
    const route = router.route;
    const name = `${table.schema}.${table.name}`;
    const generated = route.columns.filter((c) => c.generated);
    if (generated.length > 0) throw new RoutingError(`${name} has generated columns on the access node (${generated.map((c) => c.name).join(', ')}), which routing cannot compute`);
    const columns = options.columns ?? route.columns.map((c) => c.name);
    const seen = new Set<string>();
    for (const c of columns) {
      if (!route.columns.some((rc) => rc.name === c)) throw new HypershardError('USAGE', `column "${c}" of relation "${table.name}" does not exist`);
      if (seen.has(c)) throw new HypershardError('USAGE', `column "${c}" specified more than once`);
      seen.add(c);
    }
    const keyField = columns.indexOf(route.key.name);
    if (keyField === -1) throw new RoutingError(`the input has no column "${route.key.name}", the space column of ${name}: every row would be NULL there`);
    const defaulted = route.columns.filter((c) => !seen.has(c.name) && c.default !== undefined);
    if (defaulted.length > 0) {
      throw new RoutingError(
        `${defaulted.map((c) => `column "${c.name}" (DEFAULT ${c.default ?? ''})`).join(', ')} of ${name} would be filled by the access node's default, which routing cannot evaluate there; list ${defaulted.length === 1 ? 'it' : 'them'} in the input`,
      );
    }
    for (const c of [...(options.forceNull ?? []), ...(options.forceNotNull ?? [])]) {
      if (!seen.has(c)) throw new HypershardError('USAGE', `FORCE_NULL / FORCE_NOT_NULL column "${c}" is not among the input's columns`);
    }
    const encoding = canonicalEncoding(options.encoding ?? tx.settings.clientEncoding);
    const decode = keyDecoder(encoding);
    const byte = (value: string | undefined, fallback: string, what: string): number => {
      const v = value ?? fallback;
      if (Buffer.byteLength(v) !== 1) throw new HypershardError('USAGE', `COPY ${what} must be a single one-byte character`);
      return v.charCodeAt(0);
    };
    let parser: RowParser;
    const match = options.header === 'match' ? columns : undefined;
    const keyName = route.key.name;
    if (options.format === 'binary') {
      parser = new BinaryParser({ keyField, keyName, keyType: route.key.typeOid, fields: columns.length, decode });
    } else if (options.format === 'csv') {
      const quote = byte(options.quote, '"', 'quote');
      parser = new CsvParser({
        delimiter: byte(options.delimiter, ',', 'delimiter'),
        quote,
        escape: byte(options.escape, String.fromCharCode(quote), 'escape'),
        nullString: Buffer.from(options.null ?? '', 'utf8'),
        keyField,
        keyName,
        header: options.header !== undefined && options.header !== false,
        forceNull: options.forceNull?.includes(keyName) ?? false,
        forceNotNull: options.forceNotNull?.includes(keyName) ?? false,
        decode,
        ...(match === undefined ? {} : { matchHeader: match }),
      });
    } else {
      parser = new TextParser({
        delimiter: byte(options.delimiter, '\t', 'delimiter'),
        nullString: Buffer.from(options.null ?? '\\N', 'utf8'),
        keyField,
        keyName,
        header: options.header !== undefined && options.header !== false,
        decode,
        ...(match === undefined ? {} : { matchHeader: match }),
      });
    }
    const target = copyTarget(route, columns, options, encoding);
    const copy = new RoutedCopy(tx, table, router, parser, target);
    tx.attach(copy);
    return copy;
  }

  /** The table's route as read when the COPY opened (its shard locks held). */
  get route(): HypertableRoute {
    return this.#route;
  }

  get stats(): CopyStats {
    const perNode: Record<string, number> = {};
    for (const lane of this.#laneList) perNode[lane.node] = (perNode[lane.node] ?? 0) + lane.rows;
    return { rows: this.#rows, bytes: this.#bytes, perNode };
  }

  /** The last input line read (what a progress display shows). */
  get line(): number {
    return this.#parser.line;
  }

  /**
   * Parses, routes and buffers a chunk of input; resolves when it may take the next one.
   * @throws IngestRowError for a bad row (line and reason), a data node's error naming it.
   */
  async write(chunk: Buffer): Promise<void> {
    this.#throwIfFailed();
    try {
      this.#parser.push(chunk, this);
    } catch (error) {
      throw this.#fail(error instanceof InputError ? new IngestRowError(error.line, error.message) : error);
    }
    await this.#routeRows();
    await this.#backpressure();
  }

  /** The end of the input. Then the transaction may prepare. */
  async finish(): Promise<void> {
    if (this.#finished) return;
    this.#throwIfFailed();
    try {
      this.#parser.end(this);
    } catch (error) {
      throw this.#fail(error instanceof InputError ? new IngestRowError(error.line, error.message) : error);
    }
    await this.#routeRows();
    for (const partition of Array.from(this.#pending.keys())) await this.#flush(partition); // #flush deletes from #pending
    this.#finished = true;
    // Together: each lane's end is a round trip to its node.
    const ended = await Promise.allSettled(this.#laneList.map((lane) => lane.finish()));
    const failed = ended.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw this.#fail(this.#laneError(failed.reason));
  }

  async abandon(reason: string): Promise<void> {
    this.#failed ??= new HypershardError('ABORTED', reason);
    this.#pending.clear();
    await Promise.all(this.#laneList.map((l) => l.abandon(reason)));
  }

  /** RowSink: rows of the chunk being parsed. */
  row(buf: Buffer, start: number, end: number, key: string | null, line: number): void {
    this.#bufs.push(buf);
    this.#starts.push(start);
    this.#ends.push(end);
    this.#keys.push(key);
    this.#lines.push(line);
  }

  async #routeRows(): Promise<void> {
    const { length } = this.#keys;
    if (length === 0) return;
    const bufs = this.#bufs;
    const starts = this.#starts;
    const ends = this.#ends;
    const keys = this.#keys;
    const lines = this.#lines;
    this.#bufs = [];
    this.#starts = [];
    this.#ends = [];
    this.#keys = [];
    this.#lines = [];
    const partitions = new Int32Array(length);
    let unknown: number[] | undefined;
    for (let i = 0; i < length; i += 1) {
      const p = this.#router.partitionOf(keys[i] as string | null);
      if (p === undefined) (unknown ??= []).push(i);
      else partitions[i] = p;
    }
    if (unknown !== undefined) {
      const resolved = await this.#router.partitionsOf(unknown.map((i) => keys[i] as string | null));
      unknown.forEach((row, j) => {
        const p = resolved[j] as number | KeyValueError;
        // The server's own error for the value (22P02, 22003 …), as the access node would give it.
        if (p instanceof KeyValueError) throw this.#fail(new IngestRowError(lines[row] as number, p.message, { column: this.#route.key.name, cause: p }));
        partitions[row] = p;
      });
    }
    for (let i = 0; i < length; i += 1) {
      const p = partitions[i] as number;
      if (p === -1) throw this.#fail(new IngestRowError(lines[i] as number, `no partition of relation "${this.table.name}" found for row`));
      const start = starts[i] as number;
      const size = (ends[i] as number) - start;
      let pending = this.#pending.get(p);
      if (pending === undefined) {
        pending = { buf: Buffer.allocUnsafe(Math.max(FLUSH_BYTES + FLUSH_BYTES / 4, size)), bytes: 0, lines: [] };
        this.#pending.set(p, pending);
      } else if (pending.bytes + size > pending.buf.length) {
        const grown = Buffer.allocUnsafe(Math.max(pending.buf.length * 2, pending.bytes + size));
        pending.buf.copy(grown, 0, 0, pending.bytes);
        pending.buf = grown;
      }
      (bufs[i] as Buffer).copy(pending.buf, pending.bytes, start, start + size);
      pending.bytes += size;
      pending.lines.push(lines[i] as number);
      this.#pendingBytes += size;
      this.#rows += 1;
      this.#bytes += size;
      if (pending.bytes >= FLUSH_BYTES) await this.#flush(p);
    }
  }

  async #flush(partition: number): Promise<void> {
    const pending = this.#pending.get(partition);
    if (pending === undefined) return;
    this.#pending.delete(partition);
    this.#pendingBytes -= pending.bytes;
    const lane = await this.#lane(partition);
    const batch: Batch = { partition, chunks: [pending.buf.subarray(0, pending.bytes)], bytes: pending.bytes, rows: pending.lines.length, lines: pending.lines };
    lane.enqueue(batch);
  }

  #lane(partition: number): Promise<CopyLane> {
    let lane = this.#lanes.get(partition);
    if (lane === undefined) {
      const p = this.#route.partitions[partition] as Partition;
      const onNode = this.#route.partitions.map((q, i) => ({ q, i })).filter(({ q }) => q.dataNode === p.dataNode);
      const lanes = Math.min(onNode.length, this.#tx.cluster.options.lanesPerNode);
      const slot = onNode.findIndex(({ i }) => i === partition) % lanes;
      // Partitions sharing a slot share its lane.
      const sibling = onNode.find(({ i }) => this.#lanes.has(i) && onNode.findIndex((x) => x.i === i) % lanes === slot);
      lane = sibling === undefined
        ? this.#tx.participant(p.dataNode, slot, { deferBegin: true }).then((participant) => {
            const l = new CopyLane(p.dataNode, participant.client, this.#target, participant);
            this.#laneList.push(l);
            return l;
          })
        : (this.#lanes.get(sibling.i) as Promise<CopyLane>);
      this.#lanes.set(partition, lane);
    }
    return lane;
  }

  /**
   * Waits while more than HIGH_WATER bytes are queued. Only lanes holding data are waited on: a
   * lane with nothing queued is "drained" at once, and waiting on it made this loop spin in
   * microtasks, starving the sockets it waited for (and piling up timers) when one lane was behind.
   */
  async #backpressure(): Promise<void> {
    const stall = this.#tx.cluster.options.stallTimeoutMs;
    for (;;) {
      this.#throwLaneErrors();
      const busy = this.#laneList.filter((l) => l.queuedBytes > 0);
      const inLanes = busy.reduce((n, l) => n + l.queuedBytes, 0);
      if (inLanes + this.#pendingBytes <= HIGH_WATER) return;
      if (busy.length === 0) {
        // Only rows buffered per shard: send them on rather than wait for nothing.
        for (const partition of Array.from(this.#pending.keys())) await this.#flush(partition);
        continue;
      }
      const stuck = busy.find((l) => l.idleMs > stall);
      if (stuck !== undefined) throw this.#fail(new HypershardError('NODE_TIMEOUT', `data node ${stuck.node} took no data for ${Math.round(stuck.idleMs / 1000)} s (${stuck.state}); nothing was committed`));
      const tick = new AbortController();
      try {
        await Promise.race([...busy.map((l) => l.drainedTo(Math.floor(l.queuedBytes / 2))), sleep(1000, undefined, { signal: tick.signal, ref: false })]);
      } finally {
        tick.abort();
      }
    }
  }

  #throwLaneErrors(): void {
    const failed = this.#laneList.find((l) => l.error !== undefined);
    if (failed?.error !== undefined) throw this.#fail(this.#laneError(failed.error));
  }

  #laneError(error: unknown): Error {
    if (!(error instanceof LaneError)) return error instanceof Error ? error : new Error(String(error));
    if (error.line !== undefined) return new IngestRowError(error.line, error.message, { column: error.column, node: error.node, cause: error });
    return new HypershardError('NODE_WRITE', `data node ${error.node}: ${error.message}; nothing was committed`, { cause: error });
  }

  #fail(error: unknown): Error {
    const e = error instanceof Error ? error : new Error(errorMessage(error));
    this.#failed ??= e;
    return this.#failed;
  }

  #throwIfFailed(): void {
    if (this.#failed !== undefined) throw this.#failed;
  }
}

/** The COPY statement for each partition's remote table, with the input's options (never HEADER: it was read here). */
function copyTarget(route: HypertableRoute, columns: readonly string[], options: RoutedCopyOptions, encoding: string): CopyTarget {
  const remote = (p: Partition, c: string): string => quoteIdent(p.remoteColumns.get(c) ?? c);
  const sql = (index: number): string => {
    const p = route.partitions[index] as Partition;
    const with_: string[] = [`FORMAT ${options.format}`];
    if (options.format !== 'binary') {
      if (options.delimiter !== undefined) with_.push(`DELIMITER ${quoteLiteral(options.delimiter)}`);
      if (options.null !== undefined) with_.push(`NULL ${quoteLiteral(options.null)}`);
      with_.push(`ENCODING ${quoteLiteral(encoding)}`);
    }
    if (options.format === 'csv') {
      if (options.quote !== undefined) with_.push(`QUOTE ${quoteLiteral(options.quote)}`);
      if (options.escape !== undefined) with_.push(`ESCAPE ${quoteLiteral(options.escape)}`);
      if ((options.forceNull ?? []).length > 0) with_.push(`FORCE_NULL (${(options.forceNull ?? []).map((c) => remote(p, c)).join(', ')})`);
      if ((options.forceNotNull ?? []).length > 0) with_.push(`FORCE_NOT_NULL (${(options.forceNotNull ?? []).map((c) => remote(p, c)).join(', ')})`);
    }
    return `COPY ${quoteQualified(p.remote.schema, p.remote.name)} (${columns.map((c) => remote(p, c)).join(', ')}) FROM STDIN WITH (${with_.join(', ')})`;
  };
  return {
    sql,
    relname: (index) => (route.partitions[index] as Partition).remote.name,
    header: options.format === 'binary' ? BINARY_HEADER : undefined,
    trailer: options.format === 'binary' ? BINARY_TRAILER : undefined,
  };
}
