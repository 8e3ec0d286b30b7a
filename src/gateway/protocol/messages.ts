/**
 * The few protocol messages the gateway reads or writes itself. Everything else passes through as
 * bytes. Messages the gateway sends to the access node on its own account (the session-settings
 * read) are built with node-postgres' `pg-protocol` serializer; backend messages it answers a
 * client with (errors, routed-write results, cancel keys) and the frontend messages it inspects
 * are small enough to encode and decode here. See docs in `src/gateway/README` section of the
 * project README for why no framing library is used for the relay itself.
 */
import { isUtf8 } from 'node:buffer';
import { serialize } from 'pg-protocol';

/** Startup-packet request codes (the int32 after the length). */
export const PROTOCOL_3_0 = 196_608; // 3 << 16
export const SSL_REQUEST = 80_877_103;
export const GSSENC_REQUEST = 80_877_104;
export const CANCEL_REQUEST = 80_877_102;

export const enum F {
  Bind = 0x42, // B
  Close = 0x43, // C
  Describe = 0x44, // D
  Execute = 0x45, // E
  FunctionCall = 0x46, // F
  Flush = 0x48, // H
  Parse = 0x50, // P
  Query = 0x51, // Q
  Sync = 0x53, // S
  Terminate = 0x58, // X
  CopyFail = 0x66, // f
  CopyDone = 0x63, // c
  CopyData = 0x64, // d
  Password = 0x70, // p (also SASL responses, GSS responses)
}

export const enum B {
  ParseComplete = 0x31, // 1
  BindComplete = 0x32, // 2
  CloseComplete = 0x33, // 3
  NotificationResponse = 0x41, // A
  CommandComplete = 0x43, // C
  DataRow = 0x44, // D
  ErrorResponse = 0x45, // E
  CopyInResponse = 0x47, // G
  CopyOutResponse = 0x48, // H
  EmptyQueryResponse = 0x49, // I
  BackendKeyData = 0x4b, // K
  NoticeResponse = 0x4e, // N
  Authentication = 0x52, // R
  ParameterStatus = 0x53, // S
  RowDescription = 0x54, // T
  FunctionCallResponse = 0x56, // V
  CopyBothResponse = 0x57, // W
  ReadyForQuery = 0x5a, // Z
  CopyDone = 0x63, // c
  CopyData = 0x64, // d
  NoData = 0x6e, // n
  PortalSuspended = 0x73, // s
  ParameterDescription = 0x74, // t
  NegotiateProtocolVersion = 0x76, // v
}

/** A cursor over one message body; every read is bounds-checked (a short body is a protocol violation). */
export class BodyReader {
  #offset: number;
  constructor(
    private readonly buffer: Buffer,
    start: number,
  ) {
    this.#offset = start;
  }
  get offset(): number {
    return this.#offset;
  }
  get remaining(): number {
    return this.buffer.length - this.#offset;
  }
  byte(): number {
    this.#need(1);
    return this.buffer[this.#offset++] as number;
  }
  int16(): number {
    this.#need(2);
    const v = this.buffer.readInt16BE(this.#offset);
    this.#offset += 2;
    return v;
  }
  int32(): number {
    this.#need(4);
    const v = this.buffer.readInt32BE(this.#offset);
    this.#offset += 4;
    return v;
  }
  bytes(n: number): Buffer {
    this.#need(n);
    const v = this.buffer.subarray(this.#offset, this.#offset + n);
    this.#offset += n;
    return v;
  }
  /** `n` bytes of UTF-8 text as a string; the bytes themselves when they are not valid UTF-8 (never a replacement character in their place). */
  utf8(n: number): string | Buffer {
    this.#need(n);
    const start = this.#offset;
    this.#offset += n;
    // ASCII (most values: numbers, timestamps) is valid as it is; anything else is checked.
    if (asciiOnly(this.buffer, start, start + n)) return this.buffer.toString('latin1', start, start + n);
    const bytes = this.buffer.subarray(start, start + n);
    return isUtf8(bytes) ? bytes.toString('utf8') : bytes;
  }
  rest(): Buffer {
    return this.bytes(this.remaining);
  }
  /** A NUL-terminated string, as raw bytes. */
  cstringBytes(): Buffer {
    const end = this.buffer.indexOf(0, this.#offset);
    if (end < 0) throw new ProtocolError('a string in the message is not terminated');
    const v = this.buffer.subarray(this.#offset, end);
    this.#offset = end + 1;
    return v;
  }
  cstring(): string {
    return this.cstringBytes().toString('utf8');
  }
  #need(n: number): void {
    if (n < 0 || this.#offset + n > this.buffer.length) throw new ProtocolError('the message is shorter than its contents say');
  }
}

function asciiOnly(buffer: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i += 1) if ((buffer[i] as number) > 0x7f) return false;
  return true;
}

/** A message that does not follow the protocol: the connection that sent it is closed. */
export class ProtocolError extends Error {}

/** A typed message's body reader (after type byte and length). */
export function body(frame: Buffer): BodyReader {
  return new BodyReader(frame, 5);
}

// ---------------------------------------------------------------- startup

export type StartupPacket =
  | { readonly kind: 'ssl' }
  | { readonly kind: 'gssenc' }
  | { readonly kind: 'cancel'; readonly pid: number; readonly key: Buffer }
  | { readonly kind: 'startup'; readonly version: number; readonly parameters: ReadonlyMap<string, string>; readonly bytes: Buffer };

export function parseStartup(frame: Buffer): StartupPacket {
  const reader = new BodyReader(frame, 4);
  const code = reader.int32();
  if (code === SSL_REQUEST) return { kind: 'ssl' };
  if (code === GSSENC_REQUEST) return { kind: 'gssenc' };
  if (code === CANCEL_REQUEST) {
    const pid = reader.int32();
    return { kind: 'cancel', pid, key: Buffer.from(reader.rest()) };
  }
  if (code >> 16 !== 3) throw new ProtocolError(`unsupported frontend protocol ${code >> 16}.${code & 0xffff}: server supports 3.0 to 3.2`);
  const parameters = new Map<string, string>();
  for (;;) {
    const name = reader.cstring();
    if (name === '') break;
    parameters.set(name, reader.cstring());
  }
  return { kind: 'startup', version: code, parameters, bytes: frame };
}

// ---------------------------------------------------------------- frontend messages the gateway reads

export interface ParseMessage {
  readonly name: string;
  readonly text: string;
  readonly paramTypes: readonly number[];
}

export function readQuery(frame: Buffer): string {
  return body(frame).cstring();
}

export function readParse(frame: Buffer): ParseMessage {
  const r = body(frame);
  const name = r.cstring();
  const text = r.cstring();
  const n = r.int16();
  const paramTypes: number[] = [];
  for (let i = 0; i < n; i += 1) paramTypes.push(r.int32() >>> 0);
  return { name, text, paramTypes };
}

export interface BindMessage<V extends Buffer | string = Buffer> {
  readonly portal: string;
  readonly statement: string;
  /** Format code per parameter (0 text, 1 binary), expanded from the message's short forms. */
  readonly formats: readonly number[];
  /** Binary values as bytes; text values as bytes too, or as strings when read with readBind(frame, 'utf8'). */
  readonly values: readonly (Buffer | V | null)[];
  readonly resultFormats: readonly number[];
}

/** The portal and the statement a Bind names, its values left unread (every Bind passes here; most need no more). */
export function readBindNames(frame: Buffer): { readonly portal: string; readonly statement: string } {
  const r = body(frame);
  return { portal: r.cstring(), statement: r.cstring() };
}

/**
 * A Bind whole. With `text` 'utf8' (the client's encoding), text-format values are decoded here,
 * straight from the frame: a routed batch reads a thousand rows' values per message, and a
 * Buffer per value, decoded later, cost as much again. A text value that is not valid UTF-8
 * stays bytes (the access node is the one to refuse it).
 */
export function readBind(frame: Buffer): BindMessage;
export function readBind(frame: Buffer, text: 'utf8'): BindMessage<string>;
export function readBind(frame: Buffer, text?: 'utf8'): BindMessage<Buffer | string> {
  const r = body(frame);
  const portal = r.cstring();
  const statement = r.cstring();
  const nf = r.int16();
  const codes: number[] = [];
  for (let i = 0; i < nf; i += 1) codes.push(r.int16());
  const nv = r.int16();
  const formats: number[] = [];
  const values: (Buffer | string | null)[] = [];
  for (let i = 0; i < nv; i += 1) {
    const format = nf === 0 ? 0 : nf === 1 ? (codes[0] as number) : (codes[i] ?? 0);
    formats.push(format);
    const len = r.int32();
    values.push(len === -1 ? null : text !== undefined && format === 0 ? r.utf8(len) : r.bytes(len));
  }
  const nr = r.int16();
  const resultFormats: number[] = [];
  for (let i = 0; i < nr; i += 1) resultFormats.push(r.int16());
  return { portal, statement, formats, values, resultFormats };
}

/** Describe or Close: 'S' (statement) or 'P' (portal) and a name. */
export function readTarget(frame: Buffer): { readonly kind: 'S' | 'P'; readonly name: string } {
  const r = body(frame);
  const kind = r.byte();
  if (kind !== 0x53 && kind !== 0x50) throw new ProtocolError(`invalid DESCRIBE/CLOSE message subtype ${kind}`);
  return { kind: kind === 0x53 ? 'S' : 'P', name: r.cstring() };
}

export function readExecute(frame: Buffer): { readonly portal: string; readonly maxRows: number } {
  const r = body(frame);
  return { portal: r.cstring(), maxRows: r.int32() };
}

// ---------------------------------------------------------------- backend messages the gateway reads

/** ErrorResponse / NoticeResponse fields by code letter (S, V, C, M, D, H, P, p, q, W, …). */
export function readFields(frame: Buffer): Map<string, string> {
  const r = body(frame);
  const fields = new Map<string, string>();
  for (;;) {
    const code = r.byte();
    if (code === 0) break;
    fields.set(String.fromCharCode(code), r.cstring());
  }
  return fields;
}

export function readParameterStatus(frame: Buffer): { readonly name: string; readonly value: string } {
  const r = body(frame);
  return { name: r.cstring(), value: r.cstring() };
}

export function readBackendKey(frame: Buffer): { readonly pid: number; readonly key: Buffer } {
  const r = body(frame);
  return { pid: r.int32(), key: Buffer.from(r.rest()) };
}

export function readDataRow(frame: Buffer): (Buffer | null)[] {
  const r = body(frame);
  const n = r.int16();
  const values: (Buffer | null)[] = [];
  for (let i = 0; i < n; i += 1) {
    const len = r.int32();
    values.push(len === -1 ? null : r.bytes(len));
  }
  return values;
}

/** ParameterDescription: the type OID of each parameter, as the backend resolved it. */
export function readParameterDescription(frame: Buffer): number[] {
  const r = body(frame);
  const n = r.int16();
  const types: number[] = [];
  for (let i = 0; i < n; i += 1) types.push(r.int32() >>> 0);
  return types;
}

/** RowDescription: each column's name and type OID. */
export function readRowDescription(frame: Buffer): { readonly name: string; readonly type: number }[] {
  const r = body(frame);
  const n = r.int16();
  const columns: { name: string; type: number }[] = [];
  for (let i = 0; i < n; i += 1) {
    const name = r.cstring();
    r.int32(); // table OID
    r.int16(); // column number
    const type = r.int32() >>> 0;
    r.int16(); // type size
    r.int32(); // type modifier
    r.int16(); // format
    columns.push({ name, type });
  }
  return columns;
}

export function readAuthCode(frame: Buffer): number {
  return body(frame).int32();
}

/** AuthenticationSASL's mechanisms. */
export function readSaslMechanisms(frame: Buffer): string[] {
  const r = body(frame);
  r.int32();
  const mechanisms: string[] = [];
  for (;;) {
    const m = r.cstring();
    if (m === '') break;
    mechanisms.push(m);
  }
  return mechanisms;
}

// ---------------------------------------------------------------- encoding

class Writer {
  readonly #parts: Buffer[] = [];
  #length = 0;
  byte(v: number): this {
    return this.#push(Buffer.from([v]));
  }
  int16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    return this.#push(b);
  }
  int32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    return this.#push(b);
  }
  cstring(v: string): this {
    return this.#push(Buffer.from(`${v}\0`, 'utf8'));
  }
  raw(b: Buffer): this {
    return this.#push(b);
  }
  frame(type: number): Buffer {
    const head = Buffer.alloc(5);
    head[0] = type;
    head.writeInt32BE(this.#length + 4, 1);
    return Buffer.concat([head, ...this.#parts], this.#length + 5);
  }
  #push(b: Buffer): this {
    this.#parts.push(b);
    this.#length += b.length;
    return this;
  }
}

export interface ErrorFields {
  readonly severity?: 'ERROR' | 'FATAL';
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
  /** Context: where it happened (`COPY metrics, line 3`). */
  readonly where?: string;
}

export function errorResponse(e: ErrorFields): Buffer {
  return fieldsMessage(B.ErrorResponse, [
    ['S', e.severity ?? 'ERROR'],
    ['V', e.severity ?? 'ERROR'],
    ['C', e.code],
    ['M', e.message],
    ...(e.detail === undefined ? [] : [['D', e.detail] as const]),
    ...(e.hint === undefined ? [] : [['H', e.hint] as const]),
    ...(e.where === undefined ? [] : [['W', e.where] as const]),
  ]);
}

export function noticeResponse(e: { readonly code: string; readonly message: string; readonly severity?: string }): Buffer {
  const severity = e.severity ?? 'NOTICE';
  return fieldsMessage(B.NoticeResponse, [
    ['S', severity],
    ['V', severity],
    ['C', e.code],
    ['M', e.message],
  ]);
}

/** An ErrorResponse or NoticeResponse from its fields (in their order). */
export function fieldsMessage(type: number, fields: Iterable<readonly [string, string]>): Buffer {
  const w = new Writer();
  for (const [code, value] of fields) w.byte(code.charCodeAt(0)).cstring(value);
  return w.byte(0).frame(type);
}

export function backendKeyData(pid: number, key: Buffer): Buffer {
  return new Writer().int32(pid).raw(key).frame(B.BackendKeyData);
}

export function readyForQuery(status: number): Buffer {
  return new Writer().byte(status).frame(B.ReadyForQuery);
}

export function commandComplete(tag: string): Buffer {
  return new Writer().cstring(tag).frame(B.CommandComplete);
}

/** A RowDescription of columns that name no table, in text unless a format code (1: binary) says otherwise. */
export function rowDescription(fields: readonly { readonly name: string; readonly type: number; readonly size: number; readonly modifier: number; readonly format?: number }[]): Buffer {
  const w = new Writer().int16(fields.length);
  for (const f of fields) w.cstring(f.name).int32(0).int16(0).int32(f.type).int16(f.size).int32(f.modifier).int16(f.format ?? 0);
  return w.frame(B.RowDescription);
}

/**
 * A DataRow of text values, in one buffer sized from their UTF-8 lengths first: a buffer per field
 * and their concatenation were most of what relaying a many-row answer cost.
 */
export function dataRow(fields: readonly (string | null)[]): Buffer {
  let length = 4 + 2;
  for (const f of fields) length += 4 + (f === null ? 0 : Buffer.byteLength(f, 'utf8'));
  const row = Buffer.allocUnsafe(1 + length);
  row[0] = B.DataRow;
  row.writeInt32BE(length, 1);
  row.writeInt16BE(fields.length, 5);
  let at = 7;
  for (const f of fields) {
    if (f === null) {
      row.writeInt32BE(-1, at);
      at += 4;
    } else {
      const n = row.write(f, at + 4, 'utf8');
      row.writeInt32BE(n, at);
      at += 4 + n;
    }
  }
  return row;
}

export function copyInResponse(binary: boolean, columns: number): Buffer {
  const w = new Writer().byte(binary ? 1 : 0).int16(columns);
  for (let i = 0; i < columns; i += 1) w.int16(binary ? 1 : 0);
  return w.frame(B.CopyInResponse);
}

export function simpleMessage(type: number): Buffer {
  return new Writer().frame(type);
}

/** A statement's Describe answer, first part: the types of its parameters. */
export function parameterDescription(types: readonly number[]): Buffer {
  const w = new Writer().int16(types.length);
  // OIDs are unsigned: written as the int32 of their bits.
  for (const t of types) w.int32(t | 0);
  return w.frame(B.ParameterDescription);
}

export function saslMechanisms(mechanisms: readonly string[]): Buffer {
  const w = new Writer().int32(10);
  for (const m of mechanisms) w.cstring(m);
  return w.byte(0).frame(B.Authentication);
}

/** A CancelRequest for a backend, in the key's own length (4 bytes in protocol 3.0, longer in 3.2). */
export function cancelRequest(pid: number, key: Buffer): Buffer {
  const b = Buffer.alloc(12 + key.length);
  b.writeInt32BE(b.length, 0);
  b.writeInt32BE(CANCEL_REQUEST, 4);
  b.writeInt32BE(pid, 8);
  key.copy(b, 12);
  return b;
}

export function sslRequest(): Buffer {
  const b = Buffer.alloc(8);
  b.writeInt32BE(8, 0);
  b.writeInt32BE(SSL_REQUEST, 4);
  return b;
}

/** A Query message, for statements sent in place of the client's. */
export function queryMessage(text: string): Buffer {
  return new Writer().cstring(text).frame(F.Query);
}

/** A Parse message with the client's name and parameter types but another text. */
export function parseMessage(name: string, text: string, paramTypes: readonly number[]): Buffer {
  const w = new Writer().cstring(name).cstring(text).int16(paramTypes.length);
  for (const t of paramTypes) w.int32(t | 0);
  return w.frame(F.Parse);
}

/**
 * Parse, Bind, Describe (portal), Execute and Sync of one statement without parameters, its
 * results in these format codes (as a Bind takes them: none, one for all, or one per column).
 */
export function extendedQuery(text: string, resultFormats: readonly number[]): Buffer {
  const bind = new Writer().cstring('').cstring('').int16(0).int16(0).int16(resultFormats.length);
  for (const f of resultFormats) bind.int16(f);
  // node-postgres's serializer writes one format for all results; the Bind is written here.
  return Buffer.concat([parseMessage('', text, []), bind.frame(F.Bind), serialize.describe({ type: 'P', name: '' }), serialize.execute({ portal: '', rows: 0 }), serialize.sync()]);
}

/** A Bind message naming another statement, the rest of the client's message kept byte for byte. */
export function withStatementName(bind: Buffer, statement: string): Buffer {
  const r = body(bind);
  const portal = r.cstringBytes();
  r.cstringBytes();
  const rest = bind.subarray(r.offset);
  return new Writer().raw(Buffer.concat([portal, Buffer.from([0])])).cstring(statement).raw(rest).frame(F.Bind);
}
