/**
 * The gateway's side of router reads (the router itself: src/route/reads.ts): the data node's
 * answer relayed to the client as protocol messages (RelayQuery). Built-in result types only, in
 * text; an answer is held until it is complete or large, so a data node that fails or is refused
 * before that costs only a second try through the access node, which the read, being idempotent,
 * allows.
 */
import { EventEmitter } from 'node:events';
import { DatabaseError } from 'pg-protocol';
import { FIRST_USER_OID } from '../route/reads.js';
import { B, commandComplete, dataRow, fieldsMessage, rowDescription, simpleMessage } from './protocol/messages.js';

export type RelayOutcome =
  | { readonly kind: 'sent' }
  /** Nothing reached the client: the statement may go to the access node. */
  | { readonly kind: 'refused'; readonly reason: string; readonly error?: unknown }
  /** Part of the answer reached the client, then the connection broke. */
  | { readonly kind: 'broken'; readonly error: unknown };

const NO_DATA = simpleMessage(B.NoData);

/** Bytes of an answer held before the first reaches the client (until then a failure can still go to the access node). */
export const HOLD_BYTES = 256 * 1024;

/**
 * The answers the access node would have sent around the rows for a client's extended-protocol
 * messages (Parse, Bind, a Describe), where the data node is asked a simple query.
 */
export interface RelayFraming {
  /** ParseComplete, and BindComplete or ParameterDescription: what precedes a row description. */
  readonly before: Buffer;
  /** Whether the client described the statement or portal: else no RowDescription is its to see. */
  readonly describe: boolean;
  /** What follows the row description (BindComplete after a statement's Describe). */
  readonly after: Buffer;
}

/**
 * A simple query on a node-postgres connection whose answer is relayed as protocol messages:
 * RowDescription with table OIDs and column numbers zeroed (a data node's must not leak),
 * DataRow and CommandComplete as they come, held until complete or HOLD_BYTES. With `framing`,
 * as the answer to the client's extended-protocol messages.
 */
export class RelayQuery extends EventEmitter {
  readonly text: string;
  readonly #write: (bytes: Buffer) => boolean;
  readonly #node: string;
  #framing: RelayFraming | undefined;
  #held: Buffer[] = [];
  #heldBytes = 0;
  #sent = false;
  #refusal: string | undefined;
  #connection: { stream: NodeJS.ReadableStream } | undefined;
  readonly #done: Promise<RelayOutcome>;
  #finish!: (outcome: RelayOutcome) => void;
  callback: undefined;

  constructor(text: string, node: string, write: (bytes: Buffer) => boolean, framing?: RelayFraming) {
    super();
    this.text = text;
    this.#node = node;
    this.#write = write;
    this.#framing = framing;
    this.#done = new Promise((settle) => {
      this.#finish = settle;
    });
  }

  get outcome(): Promise<RelayOutcome> {
    return this.#done;
  }

  submit(connection: { query(text: string): void; stream: NodeJS.ReadableStream }): void {
    this.#connection = connection;
    connection.query(this.text);
  }

  handleRowDescription(msg: { fields: { name: string; dataTypeID: number; dataTypeSize: number; dataTypeModifier: number; format: string }[] }): void {
    if (this.#refusal !== undefined) return;
    const foreign = msg.fields.find((f) => f.dataTypeID >= FIRST_USER_OID || f.format !== 'text');
    if (foreign !== undefined) {
      this.#refusal = 'result-type';
      return;
    }
    // A data node's table OIDs and column numbers are not the access node's: zeroed.
    const description = rowDescription(msg.fields.map((f) => ({ name: f.name, type: f.dataTypeID, size: f.dataTypeSize, modifier: f.dataTypeModifier })));
    if (this.#framing === undefined) this.#out(description);
    else this.#frame(description);
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    if (this.#refusal !== undefined) return;
    this.#out(dataRow(msg.fields));
  }

  handleCommandComplete(msg: { text: string }): void {
    if (this.#refusal !== undefined) return;
    // A statement without rows has no description to follow: a Describe of it says NoData.
    this.#frame(NO_DATA);
    this.#out(commandComplete(msg.text));
  }

  /** The answers to the client's Parse, Bind and Describe, `description` the Describe's (once, before anything else). */
  #frame(description: Buffer): void {
    const framing = this.#framing;
    if (framing === undefined) return;
    this.#framing = undefined;
    this.#out(Buffer.concat(framing.describe ? [framing.before, description, framing.after] : [framing.before, framing.after]));
  }

  handleEmptyQuery(): void {
    this.#refusal ??= 'empty';
  }

  handlePortalSuspended(): void {
    this.#refusal ??= 'unexpected-message';
  }

  handleCopyInResponse(): void {
    this.#refusal ??= 'unexpected-message';
  }

  handleCopyData(): void {
    this.#refusal ??= 'unexpected-message';
  }

  /** node-postgres ends the query at an error (the ReadyForQuery after it is its own). */
  handleError(error: unknown): void {
    this.emit('end');
    if (!(error instanceof DatabaseError)) {
      this.#finish(this.#sent ? { kind: 'broken', error } : { kind: 'refused', reason: 'data-node-failed', error });
      return;
    }
    // A statement timeout or cancel is what the access node would answer too; any other error
    // before the client heard anything goes to the access node, which says its own.
    if (!this.#sent && error.code !== '57014') {
      this.#finish({ kind: 'refused', reason: 'data-node-error', error });
      return;
    }
    // Cancelled before the description: the statement was parsed and bound, and failed running.
    this.#frame(Buffer.alloc(0));
    this.#out(errorFrame(error, this.#node));
    this.#flush();
    this.#finish({ kind: 'sent' });
  }

  handleReadyForQuery(): void {
    this.emit('end');
    if (this.#refusal !== undefined && !this.#sent) {
      this.#finish({ kind: 'refused', reason: this.#refusal });
      return;
    }
    this.#flush();
    this.#finish({ kind: 'sent' });
  }

  #out(bytes: Buffer): void {
    this.#held.push(bytes);
    this.#heldBytes += bytes.length;
    if (this.#sent || this.#heldBytes >= HOLD_BYTES) this.#flush();
  }

  #flush(): void {
    if (this.#held.length === 0) return;
    const bytes = this.#held.length === 1 ? (this.#held[0] as Buffer) : Buffer.concat(this.#held);
    this.#held = [];
    this.#heldBytes = 0;
    this.#sent = true;
    // A slow client stops the data node's stream, as the access node's is stopped.
    if (!this.#write(bytes)) this.#connection?.stream.pause();
  }

  resume(): void {
    this.#connection?.stream.resume();
  }
}

/** The data node's error as the client would read the access node's, its node named in CONTEXT. */
function errorFrame(e: DatabaseError, node: string): Buffer {
  const fields: [string, string | undefined][] = [
    ['S', e.severity], ['V', e.severity], ['C', e.code], ['M', e.message], ['D', e.detail], ['H', e.hint],
    ['W', [e.where, `router read on data node ${node} (hypershard gateway)`].filter((w) => w !== undefined && w !== '').join('\n')],
    ['n', e.constraint], ['d', e.dataType], ['c', e.column],
  ];
  return fieldsMessage(B.ErrorResponse, fields.filter((f): f is [string, string] => f[1] !== undefined));
}
