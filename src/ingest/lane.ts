/**
 * A lane: one connection to a data node, in one transaction, writing rows of some of that node's
 * shards with COPY. Batches queue per lane; the lane keeps a COPY open while batches are for the
 * same shard and switches when they are not. Every row's input line number is kept per open COPY,
 * so the data node's "line N" can be told back as the input's line.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type pg from 'pg';
import { PipelinedCopyIn } from './copyIn.js';

export interface Batch {
  readonly partition: number;
  readonly chunks: readonly Uint8Array[];
  readonly bytes: number;
  readonly rows: number;
  /** Input line of each row, in order. */
  readonly lines: readonly number[];
}

/** How a lane writes one shard's rows: the COPY statement, and what frames the data (binary header and trailer). */
export interface CopyTarget {
  sql(partition: number): string;
  /** The remote table's name as the data node prints it in "COPY name, line N". */
  relname(partition: number): string;
  readonly header: Uint8Array | undefined;
  readonly trailer: Uint8Array | undefined;
}

/** A data node refused a row or a COPY: where, and which input line when it was a row. */
export class LaneError extends Error {
  readonly node: string;
  readonly line: number | undefined;
  readonly code: string | undefined;
  readonly detail: string | undefined;
  readonly column: string | undefined;
  constructor(node: string, message: string, extra: { line?: number | undefined; code?: string | undefined; detail?: string | undefined; column?: string | undefined; cause?: unknown } = {}) {
    super(message, { cause: extra.cause });
    this.node = node;
    this.line = extra.line;
    this.code = extra.code;
    this.detail = extra.detail;
    this.column = extra.column;
  }
}

interface OpenCopy {
  readonly partition: number;
  readonly stream: Writable;
  lines: Uint32Array;
  rows: number;
}

/** Rows per COPY statement before the lane starts another: bounds the line map (4 bytes a row). */
const ROWS_PER_COPY = 500_000;

export class CopyLane {
  readonly node: string;
  readonly client: pg.Client;
  readonly #target: CopyTarget;
  #copy: OpenCopy | undefined;
  readonly #queue: Batch[] = [];
  #queuedBytes = 0;
  #pump: Promise<void> | undefined;
  #pumping = false;
  #error: LaneError | undefined;
  #lastProgress = Date.now();
  rows = 0;
  bytes = 0;
  readonly #onDrain: (() => void)[] = [];

  /** Its transaction's opening statements while not yet sent: they go ahead of the first COPY. */
  readonly #opening: { opening: string | undefined } | undefined;

  constructor(node: string, client: pg.Client, target: CopyTarget, opening?: { opening: string | undefined }) {
    this.node = node;
    this.client = client;
    this.#target = target;
    this.#opening = opening;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** What the lane is doing, for an error that says why it stopped. */
  get state(): string {
    const copy = this.#copy;
    const stream = copy === undefined ? 'no COPY open' : `COPY of shard ${copy.partition} ${copy.stream.writableNeedDrain ? 'waiting for the data node to take data' : 'open'} (${copy.stream.writableLength} bytes buffered${copy.stream.destroyed ? ', destroyed' : ''})`;
    return `${this.#queue.length} batches queued, ${this.#pumping ? this.#phase : 'not writing'}, ${stream}`;
  }
  #phase = 'writing';

  get error(): LaneError | undefined {
    return this.#error;
  }

  /** Milliseconds since the data node last took data or answered. */
  get idleMs(): number {
    return this.#queue.length === 0 ? 0 : Date.now() - this.#lastProgress;
  }

  enqueue(batch: Batch): void {
    if (this.#error !== undefined) return;
    this.#queue.push(batch);
    this.#queuedBytes += batch.bytes;
    // #pumping is cleared in #run's own finally, in the same tick its loop finds the queue empty:
    // a batch queued by a waiter that #wake() released must start a new run, not join the ending one.
    if (!this.#pumping) {
      this.#pumping = true;
      this.#pump = this.#run();
    }
  }

  /** Resolves when the queued bytes fall to `bytes` or below (or the lane failed). */
  async drainedTo(bytes: number): Promise<void> {
    while (this.#queuedBytes > bytes && this.#error === undefined) await new Promise<void>((resolve) => this.#onDrain.push(resolve));
  }

  /** Writes everything queued and ends the open COPY. @throws LaneError */
  async finish(): Promise<void> {
    await this.#pump;
    if (this.#error !== undefined) throw this.#error;
    await this.#endCopy();
    // #endCopy may have set it (TypeScript keeps the narrowing from before the await).
    const failed = this.#error as LaneError | undefined;
    if (failed !== undefined) throw failed;
  }

  /** Gives up: the COPY in progress fails (CopyFail), so the transaction can be rolled back. */
  async abandon(reason: string): Promise<void> {
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    const copy = this.#copy;
    this.#copy = undefined;
    if (copy !== undefined && !copy.stream.destroyed) {
      const closed = once(copy.stream, 'close').catch(() => undefined);
      copy.stream.destroy(new Error(reason));
      await closed;
    }
    this.#wake();
  }

  async #run(): Promise<void> {
    try {
      for (let batch = this.#queue.shift(); batch !== undefined; batch = this.#queue.shift()) {
        let copy = this.#copy;
        if (copy === undefined || copy.partition !== batch.partition || copy.rows + batch.rows > ROWS_PER_COPY) {
          this.#phase = 'ending a COPY';
          await this.#endCopy();
          this.#phase = 'writing';
          copy = this.#startCopy(batch.partition);
        }
        let lines = copy.lines;
        if (copy.rows + batch.rows > lines.length) {
          const grown = new Uint32Array(Math.max(lines.length * 2, copy.rows + batch.rows, 1024));
          grown.set(lines.subarray(0, copy.rows));
          lines = grown;
          copy.lines = grown;
        }
        for (let i = 0; i < batch.lines.length; i += 1) lines[copy.rows + i] = batch.lines[i] as number;
        copy.rows += batch.rows;
        for (const chunk of batch.chunks) {
          if (!copy.stream.write(chunk)) await writable(copy.stream);
          this.#lastProgress = Date.now();
          if (this.#error !== undefined) return;
        }
        this.rows += batch.rows;
        this.bytes += batch.bytes;
        this.#queuedBytes -= batch.bytes;
        this.#wake();
      }
    } catch (error) {
      this.#fail(error);
    } finally {
      this.#pumping = false;
    }
  }

  #startCopy(partition: number): OpenCopy {
    const opening = this.#opening?.opening;
    if (this.#opening !== undefined) this.#opening.opening = undefined;
    const stream = new PipelinedCopyIn(opening === undefined ? this.#target.sql(partition) : `${opening}; ${this.#target.sql(partition)}`);
    this.client.query(stream as unknown as pg.Submittable);
    const copy: OpenCopy = { partition, stream, lines: new Uint32Array(0), rows: 0 };
    stream.on('error', (error: unknown) => this.#fail(error, copy));
    if (this.#target.header !== undefined) stream.write(this.#target.header);
    this.#copy = copy;
    return copy;
  }

  async #endCopy(): Promise<void> {
    const copy = this.#copy;
    if (copy === undefined) return;
    this.#copy = undefined;
    if (this.#target.trailer !== undefined) copy.stream.write(this.#target.trailer);
    const done = new Promise<void>((resolve) => {
      copy.stream.once('finish', resolve);
      copy.stream.once('error', () => resolve());
      copy.stream.once('close', resolve);
    });
    copy.stream.end();
    await done;
    this.#lastProgress = Date.now();
  }

  #fail(error: unknown, copy = this.#copy): void {
    if (this.#error !== undefined) return;
    const e = error as { message?: string; code?: string; where?: string; detail?: string; column?: string };
    let line: number | undefined;
    let column: string | undefined;
    if (copy !== undefined && typeof e.where === 'string') {
      // "COPY <relname>, line N[, column c: "…"]": the relation name is known, so a name
      // containing ", line 5" cannot mislead the parse.
      const prefix = `COPY ${this.#target.relname(copy.partition)}, line `;
      const at = e.where.indexOf(prefix);
      if (at !== -1) {
        const rest = e.where.slice(at + prefix.length);
        const n = /^(\d+)/.exec(rest);
        if (n !== null) {
          const row = Number(n[1]) - 1;
          if (row >= 0 && row < copy.rows) line = copy.lines[row];
          const col = /^\d+, column (.*?)(?:: "|$)/s.exec(rest);
          if (col !== null) column = col[1];
        }
      }
    }
    this.#error = new LaneError(this.node, e.message ?? String(error), { line, code: e.code, detail: e.detail, column, cause: error });
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    this.#wake();
  }

  #wake(): void {
    for (const resolve of this.#onDrain.splice(0)) resolve();
  }
}

/**
 * Resolves when a stream that refused a write drains, fails or closes, leaving no listener behind
 * (a race of events.once() calls would keep the loser's, one per wait, on a long COPY).
 */
function writable(stream: Writable): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('error', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('error', done);
    stream.on('close', done);
  });
}
