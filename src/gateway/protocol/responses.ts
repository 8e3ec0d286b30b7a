/**
 * Which of the gateway's requests each backend message answers. The access node answers requests
 * in the order they were sent, so a FIFO of what was sent tells, for every message that comes
 * back, whether it goes to the client (the client's own request) or to the gateway (a request it
 * made on its own account, such as reading the session's settings), and when a request is done.
 *
 * The extended-query rule this models: after an ErrorResponse to Parse, Bind, Describe, Execute
 * or Close, the backend skips every message up to the next Sync, so those requests get no answer.
 */
import { B } from './messages.js';

export type RequestKind = 'parse' | 'bind' | 'describe-statement' | 'describe-portal' | 'execute' | 'close' | 'sync' | 'query' | 'function' | 'flush';

/** A request sent to the access node, and what to do with its answer. */
export interface Request {
  readonly kind: RequestKind;
  /**
   * What reaches the client of each message of the answer (notices included): the frame, an
   * edited frame, or null to keep it from the client (the gateway's own requests, a failed
   * attempt it will retry). Default: the frame.
   */
  readonly route?: (type: number, frame: Buffer) => Buffer | null;
  /** Called once when the answer is complete, or skipped (the backend gave none after an earlier error). */
  readonly onDone?: (outcome: 'done' | 'error' | 'skipped') => void;
  /** `route` passes DataRows as they are, so they may be forwarded in bulk without it. */
  readonly rowsAsIs?: boolean;
}

class Pending {
  /** An ErrorResponse was part of the answer (a query goes on to ReadyForQuery). */
  failed = false;
  /** A describe-statement answer is two messages: ParameterDescription, then RowDescription/NoData. */
  seenParameters = false;
  /** Inside a COPY's data (CopyOut/CopyBoth), which ends with CopyDone/CommandComplete. */
  copying = false;
  constructor(
    readonly kind: RequestKind,
    readonly route: Request['route'],
    readonly onDone: Request['onDone'],
    readonly rowsAsIs: boolean,
  ) {}
}

/** Messages the backend may send at any time, between or within answers. */
export function isAsync(type: number): boolean {
  return type === B.NoticeResponse || type === B.NotificationResponse || type === B.ParameterStatus;
}

const EXTENDED = new Set<RequestKind>(['parse', 'bind', 'describe-statement', 'describe-portal', 'execute', 'close']);

export class ResponseTracker {
  readonly #queue: Pending[] = [];
  /** True between an extended-protocol error and the Sync that ends the skipping. */
  #skipping = false;

  get outstanding(): number {
    return this.#queue.length;
  }

  /** DataRows now answer a request that forwards them as they are (they never end a request). */
  get rowsPassThrough(): boolean {
    return this.#queue[0]?.rowsAsIs === true;
  }

  /** No request awaits an answer: the backend is waiting for the next message. */
  get idle(): boolean {
    return this.#queue.length === 0;
  }

  /** Requests sent since the last Sync/Query that are still unanswered (an open extended batch). */
  get openBatch(): boolean {
    return this.#queue.some((r) => EXTENDED.has(r.kind)) || this.#skipping;
  }

  /** The backend is (or will be, once it reaches them) skipping messages up to the next Sync. */
  get skipping(): boolean {
    return this.#skipping;
  }

  sent(request: Request): void {
    if (request.kind === 'flush') return; // Flush is answered by nothing
    // Requests sent while the backend skips get no answer (a Query too); Sync ends the skipping.
    if (this.#skipping && request.kind !== 'sync') {
      request.onDone?.('skipped');
      return;
    }
    this.#queue.push(new Pending(request.kind, request.route, request.onDone, request.route === undefined || request.rowsAsIs === true));
  }

  /**
   * Attributes one backend message to the request it answers; returns what to send the client
   * (null: nothing). ParameterStatus and notifications always reach the client.
   */
  received(type: number, frame: Buffer): Buffer | null {
    const head = this.#queue[0];
    if (head === undefined || type === B.ParameterStatus || type === B.NotificationResponse) return frame;
    const out = head.route === undefined ? frame : head.route(type, frame);
    if (type !== B.NoticeResponse && this.#ends(head, type)) {
      this.#queue.shift();
      head.onDone?.(head.failed ? 'error' : 'done');
      if (type === B.ErrorResponse && EXTENDED.has(head.kind)) this.#skipUntilSync();
      if (type === B.ReadyForQuery) this.#skipping = false;
    }
    return out;
  }

  /** The connection is gone: every request still waiting is told so. */
  abandon(): void {
    for (const r of this.#queue.splice(0)) r.onDone?.('skipped');
  }

  #ends(r: Pending, type: number): boolean {
    if (type === B.ErrorResponse) {
      r.failed = true;
      r.copying = false;
      // An extended request ends with its error; a query, a Sync (a failed COMMIT) or a function call go on to ReadyForQuery.
      return EXTENDED.has(r.kind);
    }
    switch (r.kind) {
      case 'parse':
        return type === B.ParseComplete;
      case 'bind':
        return type === B.BindComplete;
      case 'close':
        return type === B.CloseComplete;
      case 'describe-portal':
        return type === B.RowDescription || type === B.NoData;
      case 'describe-statement':
        if (type === B.ParameterDescription) {
          r.seenParameters = true;
          return false;
        }
        return r.seenParameters && (type === B.RowDescription || type === B.NoData);
      case 'execute':
        if (type === B.CopyOutResponse || type === B.CopyBothResponse) r.copying = true;
        if (r.copying) {
          if (type === B.CopyDone) r.copying = false;
          return false;
        }
        // CopyInResponse: the client streams its data; the answer ends with CommandComplete or an error.
        return type === B.CommandComplete || type === B.EmptyQueryResponse || type === B.PortalSuspended;
      case 'sync':
      case 'query':
      case 'function':
        return type === B.ReadyForQuery;
      case 'flush':
        return false;
    }
  }

  /** After an extended request's error, the requests up to the next Sync get no answer. */
  #skipUntilSync(): void {
    this.#skipping = true;
    while (this.#queue.length > 0) {
      const next = this.#queue[0] as Pending;
      if (!EXTENDED.has(next.kind)) break;
      this.#queue.shift();
      next.onDone?.('skipped');
    }
  }
}
