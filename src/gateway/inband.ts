/**
 * Statements of the gateway's own on a client's session: the routed writes of a client decide
 * their outcome in that client's access-node transaction (shard locks, the commit record), so
 * they run there, between the client's messages, with answers the client never sees.
 *
 * Only at rest (no request of the client's outstanding). Statements with parameters go as
 * Parse/Bind/Execute under names of the gateway's own, closed after, then a Sync: inside a
 * transaction block a Sync leaves it open, and outside one the gateway has opened its own block
 * (a routed write always runs in one). Errors reject with the server's fields, as pg's do.
 */
import pg from 'pg';
import { serialize } from 'pg-protocol';
import type { Queryable } from '../rewrite/discover.js';
import { B, body, queryMessage, readDataRow, readFields, readRowDescription } from './protocol/messages.js';
import type { Request } from './protocol/responses.js';

/** How the in-band statements reach the session's connection. */
export interface InbandChannel {
  send(bytes: Buffer, request: Request): void;
  flush(): void;
}

/** An error the access node answered an in-band statement with, carrying its fields like pg's DatabaseError. */
export class InbandError extends Error {
  readonly code: string;
  readonly fields: ReadonlyMap<string, string>;
  constructor(fields: Map<string, string>) {
    super(fields.get('M') ?? 'error');
    this.code = fields.get('C') ?? 'XX000';
    this.fields = fields;
  }
}

const EMPTY_RESULT = { rows: [], command: '', rowCount: null, oid: 0, fields: [] };

export class InbandQueries implements Queryable {
  readonly #channel: InbandChannel;
  readonly #prefix: string;
  #count = 0;

  constructor(channel: InbandChannel, prefix: string) {
    this.#channel = channel;
    this.#prefix = prefix;
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    // A simple query of several statements: the last result is the one returned.
    return this.#run<R>(text, values).then((results) => results.at(-1) ?? (EMPTY_RESULT as unknown as pg.QueryResult<R>));
  }

  /** A simple query of several statements in one message (one round trip): each statement's result, in order. */
  queryAll(text: string): Promise<pg.QueryResult[]> {
    return this.#run(text, undefined);
  }

  /**
   * A statement kept prepared on the session under `name` (planned once, where a simple query is
   * planned each time): parsed first when `text` is given (its parameters' types inferred),
   * `close` statements closed before it, executed with `values` (text), all in one round trip.
   * The name is the gateway's; a client's DISCARD or DEALLOCATE can still drop it, and the
   * execution then fails like any other.
   */
  executePrepared<R extends pg.QueryResultRow = pg.QueryResultRow>(name: string, text: string | undefined, close: readonly string[] = [], values: readonly (string | null)[] = []): Promise<pg.QueryResult<R>> {
    const { route, settle } = this.#collect<R>();
    return new Promise<pg.QueryResult<R>[]>((resolve, reject) => {
      for (const old of close) this.#channel.send(serialize.close({ type: 'S', name: old }), { kind: 'close', route });
      if (text !== undefined) this.#channel.send(serialize.parse({ name, text }), { kind: 'parse', route });
      this.#channel.send(serialize.bind({ portal: name, statement: name, values: [...values] }), { kind: 'bind', route });
      this.#channel.send(serialize.describe({ type: 'P', name }), { kind: 'describe-portal', route });
      this.#channel.send(serialize.execute({ portal: name }), { kind: 'execute', route });
      this.#channel.send(serialize.close({ type: 'P', name }), { kind: 'close', route });
      this.#channel.send(serialize.sync(), { kind: 'sync', route, onDone: () => settle(resolve, reject) });
      this.#channel.flush();
    }).then((results) => results.at(-1) ?? (EMPTY_RESULT as unknown as pg.QueryResult<R>));
  }

  #collect<R extends pg.QueryResultRow>(): {
    route: (type: number, frame: Buffer) => null;
    settle: (resolve: (results: pg.QueryResult<R>[]) => void, reject: (error: InbandError) => void) => void;
  } {
    let columns: { name: string; type: number }[] = [];
    let rows: R[] = [];
    const results: pg.QueryResult<R>[] = [];
    let error: InbandError | undefined;
    const route = (type: number, frame: Buffer): null => {
      switch (type) {
        case B.ErrorResponse:
          error ??= new InbandError(readFields(frame));
          break;
        case B.RowDescription:
          columns = readRowDescription(frame);
          rows = [];
          break;
        case B.DataRow:
          rows.push(decodeRow(columns, readDataRow(frame)) as R);
          break;
        case B.CommandComplete: {
          const command = body(frame).cstring();
          results.push({ rows, command: command.split(' ')[0] ?? '', rowCount: rowCountOf(command), oid: 0, fields: [] } as unknown as pg.QueryResult<R>);
          columns = [];
          rows = [];
          break;
        }
      }
      return null;
    };
    const settle = (resolve: (results: pg.QueryResult<R>[]) => void, reject: (error: InbandError) => void): void => {
      if (error !== undefined) reject(error);
      else resolve(results);
    };
    return { route, settle };
  }

  #run<R extends pg.QueryResultRow>(text: string, values: unknown[] | undefined): Promise<pg.QueryResult<R>[]> {
    const { route, settle } = this.#collect<R>();
    return new Promise((resolve, reject) => {
      const onDone = (): void => settle(resolve, reject);
      if (values === undefined || values.length === 0) {
        this.#channel.send(queryMessage(text), { kind: 'query', route, onDone });
      } else {
        const name = `${this.#prefix}.${(this.#count += 1)}`;
        this.#channel.send(serialize.parse({ name, text }), { kind: 'parse', route });
        this.#channel.send(serialize.bind({ portal: name, statement: name, values: values.map(textValue) }), { kind: 'bind', route });
        this.#channel.send(serialize.describe({ type: 'P', name }), { kind: 'describe-portal', route });
        this.#channel.send(serialize.execute({ portal: name }), { kind: 'execute', route });
        this.#channel.send(serialize.close({ type: 'P', name }), { kind: 'close', route });
        this.#channel.send(serialize.close({ type: 'S', name }), { kind: 'close', route });
        this.#channel.send(serialize.sync(), { kind: 'sync', route, onDone });
      }
      this.#channel.flush();
    });
  }
}

function decodeRow(columns: readonly { name: string; type: number }[], values: (Buffer | null)[]): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  columns.forEach((c, i) => {
    const v = values[i];
    row[c.name] = v === null || v === undefined ? null : typeParser(c.type)(v.toString('utf8'));
  });
  return row;
}

function typeParser(oid: number): (text: string) => unknown {
  // pg-types declares the OIDs it knows as an enum; any OID is accepted (unknown ones parse as text).
  const getTypeParser = pg.types.getTypeParser as (oid: number, format: 'text') => (text: string) => unknown;
  return getTypeParser(oid, 'text');
}

function rowCountOf(tag: string): number | null {
  const last = tag.split(' ').at(-1);
  return last !== undefined && /^\d+$/.test(last) ? Number(last) : null;
}

/** A parameter in PostgreSQL's text form (arrays as array literals). */
export function textValue(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return `{${value.map(arrayElement).join(',')}}`;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'boolean') return value ? 't' : 'f';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (Buffer.isBuffer(value)) return `\\x${value.toString('hex')}`;
  // As node-postgres sends an object: its JSON (a jsonb or json parameter).
  return JSON.stringify(value);
}

function arrayElement(value: unknown): string {
  const text = textValue(value);
  if (text === null) return 'NULL';
  if (Array.isArray(value)) return text;
  return `"${text.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
