/**
 * The gateway's side of router reads (the router itself: src/route/reads.ts): the data node's
 * answer relayed to the client as protocol messages (RelayQuery). Built-in result types only, in
 * text, or in the formats the client's Bind asked for (asyncpg, pgx and JDBC ask for binary):
 * then the data node is asked for those formats and its rows are relayed as the bytes it sent, so
 * no value is decoded and encoded again. An answer is held until it is complete or large, so a
 * data node that fails or is refused before that costs only a second try through the access node,
 * which the read, being idempotent, allows.
 */
import { EventEmitter } from 'node:events';
import { DatabaseError } from 'pg-protocol';
import { FIRST_USER_OID } from '../route/reads.js';
import { FrameReader } from './protocol/frames.js';
import { B, commandComplete, dataRow, extendedQuery, fieldsMessage, rowDescription, simpleMessage } from './protocol/messages.js';

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
  /** The result format codes of the client's Bind (none: all text). */
  readonly resultFormats: readonly number[];
  /** The client described the portal, whose description carries those formats (a statement's says text). */
  readonly portal: boolean;
}

/** Whether a client's Bind asks for any result in binary. */
const asksBinary = (framing: RelayFraming | undefined): boolean => framing !== undefined && framing.resultFormats.some((f) => f !== 0);

/** No message is larger than a data node may send (1 GB values); a bogus length fails the relay. */
const MAX_RELAYED_MESSAGE = 1 << 30;

/**
 * A query on a node-postgres connection whose answer is relayed as protocol messages:
 * RowDescription with table OIDs and column numbers zeroed (a data node's must not leak),
 * DataRow and CommandComplete as they come, held until complete or HOLD_BYTES. With `framing`,
 * as the answer to the client's extended-protocol messages; when that asks for binary results, the
 * data node is asked the same (Parse, Bind, Describe, Execute, Sync) and each DataRow is relayed as
 * the frame it sent, read from the socket beside node-postgres (whose parser decodes every field
 * as UTF-8 text, which binary values are not), in step with it.
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
  /** Binary results asked for: the data node's DataRow frames, read ahead of node-postgres's parser. */
  readonly #binary: boolean;
  #rows: Buffer[] = [];
  #tap: ((chunk: Buffer) => void) | undefined;
  readonly #done: Promise<RelayOutcome>;
  #finish!: (outcome: RelayOutcome) => void;
  callback: undefined;

  constructor(text: string, node: string, write: (bytes: Buffer) => boolean, framing?: RelayFraming) {
    super();
    this.text = text;
    this.#node = node;
    this.#write = write;
    this.#framing = framing;
    this.#binary = asksBinary(framing);
    this.#done = new Promise((settle) => {
      this.#finish = settle;
    });
  }

  get outcome(): Promise<RelayOutcome> {
    return this.#done;
  }

  submit(connection: { query(text: string): void; stream: NodeJS.ReadableStream & NodeJS.WritableStream }): void {
    this.#connection = connection;
    if (!this.#binary) {
      connection.query(this.text);
      return;
    }
    // The connection is idle (its last answer read whole), so the next byte begins a message.
    const reader = new FrameReader({ typed: true, maxMessageBytes: MAX_RELAYED_MESSAGE });
    this.#tap = (chunk) => {
      // A copy: node-postgres's parser keeps a chunk it was given as its buffer and later copies
      // the next one's bytes into it, so a frame kept as a view of the chunk would change.
      reader.push(Buffer.from(chunk));
      try {
        for (let frame = reader.next(); frame !== undefined; frame = reader.next()) if (frame.type === B.DataRow) this.#rows.push(frame.bytes);
      } catch {
        // A length no message has: no row is relayed from here on (the read is refused, or broken).
        this.#refusal ??= 'relay-out-of-step';
        this.#untap();
      }
    };
    // Before node-postgres's listener: a row's frame is here when its handleDataRow comes.
    connection.stream.prependListener('data', this.#tap);
    connection.stream.write(extendedQuery(this.text, (this.#framing as RelayFraming).resultFormats));
  }

  #untap(): void {
    if (this.#tap !== undefined) this.#connection?.stream.removeListener('data', this.#tap);
    this.#tap = undefined;
    this.#rows = [];
  }

  handleRowDescription(msg: { fields: { name: string; dataTypeID: number; dataTypeSize: number; dataTypeModifier: number; format: string }[] }): void {
    if (this.#refusal !== undefined) return;
    const foreign = msg.fields.find((f) => f.dataTypeID >= FIRST_USER_OID || (f.format !== 'text' && !this.#binary));
    if (foreign !== undefined) {
      this.#refusal = 'result-type';
      return;
    }
    // A data node's table OIDs and column numbers are not the access node's: zeroed. Formats as
    // the access node describes them: a portal's as bound, a statement's (not bound yet) text.
    const portal = this.#framing?.portal === true;
    const description = rowDescription(msg.fields.map((f) => ({ name: f.name, type: f.dataTypeID, size: f.dataTypeSize, modifier: f.dataTypeModifier, format: portal && f.format !== 'text' ? 1 : 0 })));
    if (this.#framing === undefined) this.#out(description);
    else this.#frame(description);
  }

  handleDataRow(msg: { fields: (string | null)[] }): void {
    if (!this.#binary) {
      if (this.#refusal === undefined) this.#out(dataRow(msg.fields));
      return;
    }
    const raw = this.#rows.shift();
    if (this.#refusal !== undefined) return;
    if (raw === undefined || raw.readInt16BE(5) !== msg.fields.length) {
      // Never seen: the frames read beside node-postgres are its messages, in its order.
      this.#refusal = 'relay-out-of-step';
      return;
    }
    this.#out(raw);
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
    this.#untap();
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
    this.#untap();
    this.emit('end');
    if (this.#refusal !== undefined) {
      // Refused after part of the answer went out: the client must not take the rest as whole.
      this.#finish(this.#sent ? { kind: 'broken', error: new Error(`the answer stopped being relayable (${this.#refusal})`) } : { kind: 'refused', reason: this.#refusal });
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
