/**
 * The client session settings that decide what a value's text means. A routed write must read
 * `'2024-01-01 00:00'` as the same instant the access node would in that client's session, so the
 * data nodes parse the rows under these settings: the gateway passes the client session's, the
 * loader the access node's defaults (or what the user gives).
 */
import { HypershardError } from '../errors.js';

export interface ClientSettings {
  /** e.g. `Europe/Berlin`; a timestamptz written without an offset is local to it. */
  readonly timeZone: string;
  /** e.g. `ISO, MDY`: how `01/02/2024` reads. */
  readonly dateStyle: string;
  /** `postgres`, `postgres_verbose`, `sql_standard` or `iso_8601`: how signs in interval input apply. */
  readonly intervalStyle: string;
  /** The encoding the rows are written in (PostgreSQL's name: UTF8, LATIN1, WIN1252 …). */
  readonly clientEncoding: string;
  /** The client's statement_timeout (ms), for each statement on the data nodes; unset or 0: none set (the node's default). */
  readonly statementTimeoutMs?: number;
  /** The client's lock_timeout (ms), likewise. */
  readonly lockTimeoutMs?: number;
}

/** What a session gets without settings of its own, before the server's defaults are read. */
export const DEFAULT_SETTINGS: ClientSettings = { timeZone: 'UTC', dateStyle: 'ISO, MDY', intervalStyle: 'postgres', clientEncoding: 'UTF8' };

/** Node's decoders for PostgreSQL encodings whose bytes never hide an ASCII delimiter. */
const ENCODINGS: Readonly<Record<string, string>> = {
  UTF8: 'utf-8', UNICODE: 'utf-8', SQL_ASCII: 'latin1',
  LATIN1: 'latin1', LATIN2: 'iso-8859-2', LATIN3: 'iso-8859-3', LATIN4: 'iso-8859-4', LATIN5: 'windows-1254',
  LATIN6: 'iso-8859-10', LATIN7: 'iso-8859-13', LATIN8: 'iso-8859-14', LATIN9: 'iso-8859-15', LATIN10: 'iso-8859-16',
  WIN866: 'ibm866', WIN874: 'windows-874', WIN1250: 'windows-1250', WIN1251: 'windows-1251', WIN1252: 'windows-1252',
  WIN1253: 'windows-1253', WIN1254: 'windows-1254', WIN1255: 'windows-1255', WIN1256: 'windows-1256',
  WIN1257: 'windows-1257', WIN1258: 'windows-1258', KOI8R: 'koi8-r', KOI8U: 'koi8-u',
  ISO_8859_5: 'iso-8859-5', ISO_8859_6: 'iso-8859-6', ISO_8859_7: 'iso-8859-7', ISO_8859_8: 'iso-8859-8',
  EUC_JP: 'euc-jp', EUC_KR: 'euc-kr', EUC_CN: 'gb2312',
};

/** PostgreSQL spells encodings many ways (utf-8, Latin1, win1252); its canonical name. */
export function canonicalEncoding(name: string): string {
  const upper = name.trim().toUpperCase().replace(/[-_ ]/g, '');
  const canonical = Object.keys(ENCODINGS).find((k) => k.replace(/_/g, '') === upper);
  if (canonical === undefined) {
    throw new HypershardError(
      'USAGE',
      `client encoding ${JSON.stringify(name)} is not supported by routed writes (SJIS, BIG5, GBK, GB18030, UHC and JOHAB can hide a delimiter inside a character); convert the input to UTF8`,
    );
  }
  return canonical === 'UNICODE' ? 'UTF8' : canonical;
}

/** A decoder for key values written in `encoding`. */
export function keyDecoder(encoding: string): (bytes: Uint8Array) => string {
  const label = ENCODINGS[canonicalEncoding(encoding)] as string;
  if (label === 'utf-8') return (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
  if (label === 'latin1') return (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
  const decoder = new TextDecoder(label);
  return (b) => decoder.decode(b);
}

/** Milliseconds in a time setting as `current_setting` shows it (`0`, `250ms`, `3s`, `1min`, `2h`, `1d`); undefined when unreadable. */
export function settingMs(shown: string): number | undefined {
  const m = /^\s*(\d+)\s*(ms|s|min|h|d)?\s*$/.exec(shown);
  if (m === null) return undefined;
  const unit = { ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'min' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** `SET` statements putting a connection in these settings (values as literals, never identifiers). */
export const SETTINGS_SQL = `SELECT pg_catalog.set_config('TimeZone', $1, false), pg_catalog.set_config('DateStyle', $2, false), pg_catalog.set_config('IntervalStyle', $3, false)`;

export function settingsParams(s: ClientSettings): string[] {
  return [s.timeZone, s.dateStyle, s.intervalStyle];
}

/** The settings a new session on this connection gets (its role's and database's defaults). */
export const READ_SETTINGS_SQL = `SELECT pg_catalog.current_setting('TimeZone') AS time_zone, pg_catalog.current_setting('DateStyle') AS date_style, pg_catalog.current_setting('IntervalStyle') AS interval_style`;
