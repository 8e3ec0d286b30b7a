/**
 * A COPY … FROM STDIN on a node-postgres client whose data goes out behind the statement without
 * waiting for the server's CopyInResponse (pg-copy-streams waits: a round trip per COPY). The
 * statement text may open the transaction first (`SET …; BEGIN; COPY …`, one simple query), so a
 * lane's first COPY costs one round trip, its end included when the rows are few.
 *
 * When the statement fails before the COPY starts (a refused BEGIN, a missing table), the server
 * answers the error and ReadyForQuery and ignores the CopyData and CopyDone that follow (the
 * protocol says a backend not in COPY mode discards them): the stream fails with that error, and
 * what is written after it is dropped here.
 */
import { Writable } from 'node:stream';

/** What node-postgres hands a submittable (its Connection), the parts used here. */
interface PgConnection {
  readonly stream: NodeJS.WritableStream & { write(chunk: Uint8Array): boolean };
  query(text: string): void;
  sendCopyFail(message: string): void;
}

const COPY_DONE = Buffer.from([0x63, 0, 0, 0, 4]);

export class PipelinedCopyIn extends Writable {
  readonly text: string;
  rowCount = 0;
  #connection: PgConnection | undefined;
  /** `_final`'s callback, called at the ReadyForQuery after CopyDone. */
  #ended: ((error?: Error | null) => void) | undefined;
  #state: 'queued' | 'copying' | 'done' = 'queued';

  constructor(text: string) {
    super();
    this.text = text;
    // Until node-postgres submits the statement, data waits in the stream's buffer.
    this.cork();
  }

  /** node-postgres: send the statement (it is the client's active query from now on). */
  submit(connection: PgConnection): void {
    this.#connection = connection;
    connection.query(this.text);
    this.#state = 'copying';
    if (this.destroyed) {
      // Given up before it was sent: the COPY fails at once and the statement ends.
      connection.sendCopyFail('the COPY was abandoned');
      return;
    }
    this.uncork();
  }

  /** node-postgres sets its query timeout through this; nothing to call here. */
  callback(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const connection = this.#connection;
    if (connection === undefined || this.#state !== 'copying') {
      callback();
      return;
    }
    const header = Buffer.allocUnsafe(5);
    header[0] = 0x64;
    header.writeUInt32BE(chunk.length + 4, 1);
    connection.stream.write(header);
    if (connection.stream.write(chunk)) callback();
    else connection.stream.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    const connection = this.#connection;
    if (connection === undefined || this.#state !== 'copying') {
      callback();
      return;
    }
    this.#ended = callback;
    connection.stream.write(COPY_DONE);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Still copying: CopyFail makes the server end the COPY with an error (its answer ends the statement).
    if (this.#state === 'copying' && this.#connection !== undefined && this.#ended === undefined) this.#connection.sendCopyFail(error?.message ?? 'the COPY was abandoned');
    callback(error);
  }

  handleCopyInResponse(): void {}

  handleCommandComplete(message: { text?: string } | undefined): void {
    const match = /^COPY (\d+)/.exec(message?.text ?? '');
    if (match !== null) this.rowCount = Number(match[1]);
  }

  handleError(error: Error): void {
    this.#state = 'done';
    this.#connection = undefined;
    this.#ended = undefined;
    this.destroy(error);
  }

  handleReadyForQuery(): void {
    this.#state = 'done';
    this.#connection = undefined;
    const ended = this.#ended;
    this.#ended = undefined;
    ended?.();
  }
}
