/**
 * date, time, timestamp and timestamptz keys, in their ISO forms: PostgreSQL stores days (date,
 * int4) or microseconds (int8) since 2000-01-01 and midnight, hashed with `hashint4extended` /
 * `hashint8extended`. ISO `YYYY-MM-DD` reads the same under every DateStyle; a timestamptz
 * needs its offset written, or a session TimeZone that is UTC. Other spellings (`Jan 2 2024`,
 * `today`, BC years, zone names) are left to the server, which reads them under the session's
 * DateStyle and TimeZone.
 */
import type { Hash64 } from '../hash.js';
import { hashInt32, hashInt64 } from './integer.js';

const SP = '[ \\t\\n\\r\\v\\f]';
const DATE = '(\\d{4,5})-(\\d{1,2})-(\\d{1,2})';
const TIME = '(\\d{1,2}):(\\d{2})(?::(\\d{2})(?:\\.(\\d{1,12}))?)?';
const ZONE = `(?:${SP}*(Z|[+-]\\d{2}(?::?\\d{2}(?::?\\d{2})?)?))?`;

const DATE_RE = new RegExp(`^${SP}*${DATE}${SP}*$`);
const TIME_RE = new RegExp(`^${SP}*${TIME}${SP}*$`);
const TIMESTAMP_RE = new RegExp(`^${SP}*${DATE}(?:(?:${SP}+|T)${TIME})?${ZONE}${SP}*$`);

const POSTGRES_EPOCH_JDATE = 2451545;
const USECS_PER_DAY = 86_400_000_000n;

/** PostgreSQL's date2j: the Julian day of a Gregorian date. */
export function date2j(year: number, month: number, day: number): number {
  let y = year;
  let m = month;
  if (m > 2) {
    m += 1;
    y += 4800;
  } else {
    m += 13;
    y += 4799;
  }
  const century = Math.trunc(y / 100);
  let julian = y * 365 - 32167;
  julian += Math.trunc(y / 4) - century + Math.trunc(century / 4);
  julian += Math.trunc((7834 * m) / 256) + day;
  return julian;
}

function validDate(year: number, month: number, day: number): boolean {
  if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] as number;
  return day <= days;
}

/** rint(): halves go to the even neighbour. */
function rint(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Microseconds of `HH:MM[:SS[.frac]]`, or undefined outside 00:00:00 … 23:59:59.999999. */
function timeOfDay(h: string | undefined, mi: string | undefined, s: string | undefined, frac: string | undefined): bigint | undefined {
  if (h === undefined || mi === undefined) return 0n;
  const hours = Number(h);
  const minutes = Number(mi);
  const seconds = s === undefined ? 0 : Number(s);
  if (hours > 23 || minutes > 59 || seconds > 59) return undefined;
  // ParseFractionalSecond: strtod of ".ddd", then rint(frac * 1e6).
  const fsec = frac === undefined ? 0 : rint(Number(`0.${frac}`) * 1_000_000);
  if (fsec >= 1_000_000) return undefined;
  return BigInt(((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + fsec);
}

/** Offset east of UTC in seconds, from Z, ±HH, ±HH:MM, ±HHMM, ±HH:MM:SS. */
function zoneOffset(zone: string): number | undefined {
  if (zone === 'Z') return 0;
  const sign = zone[0] === '-' ? -1 : 1;
  const digits = zone.slice(1).replaceAll(':', '');
  if (digits.length % 2 !== 0) return undefined;
  const h = Number(digits.slice(0, 2));
  const m = digits.length >= 4 ? Number(digits.slice(2, 4)) : 0;
  const s = digits.length >= 6 ? Number(digits.slice(4, 6)) : 0;
  if (h > 14 || m > 59 || s > 59) return undefined;
  return sign * (h * 3600 + m * 60 + s);
}

const SCALES = [1_000_000n, 100_000n, 10_000n, 1_000n, 100n, 10n, 1n];

/** AdjustTimestampForTypmod / AdjustTimeForTypmod: rounds to `typmod` fractional digits, halves away from zero. */
function roundToPrecision(t: bigint, typmod: number): bigint {
  if (typmod < 0 || typmod > 6) return t;
  const scale = SCALES[typmod] as bigint;
  const offset = scale / 2n;
  return t >= 0n ? ((t + offset) / scale) * scale : -(((-t + offset) / scale) * scale);
}

export function hashDateText(text: string): Hash64 | undefined {
  const m = DATE_RE.exec(text);
  if (m === null) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (!validDate(y, mo, d)) return undefined;
  return hashInt32(date2j(y, mo, d) - POSTGRES_EPOCH_JDATE);
}

export function hashTimeText(text: string, typmod: number): Hash64 | undefined {
  const m = TIME_RE.exec(text);
  if (m === null) return undefined;
  const t = timeOfDay(m[1], m[2], m[3], m[4]);
  if (t === undefined) return undefined;
  const rounded = roundToPrecision(t, typmod);
  // Rounding 23:59:59.9999995 up reaches 24:00:00, which time keeps but the fast path does not claim.
  return rounded >= USECS_PER_DAY ? undefined : hashInt64(rounded);
}

/** UTC-equivalent TimeZone settings: a timestamptz written without an offset is then UTC. */
const UTC_ZONES = new Set(['utc', 'etc/utc', 'gmt', 'etc/gmt', 'uct', 'etc/uct', 'universal', 'etc/universal', 'zulu', 'etc/zulu', 'gmt0', 'etc/gmt0', 'greenwich', 'etc/greenwich', 'gmt+0', 'gmt-0', 'etc/gmt+0', 'etc/gmt-0']);

export function isUtcZone(timeZone: string): boolean {
  return UTC_ZONES.has(timeZone.toLowerCase());
}

/**
 * `withZone`: timestamptz. `sessionIsUtc`: the session's TimeZone is UTC, so a value without an
 * offset can be read here; otherwise only the server knows the zone's rules for that date.
 */
export function hashTimestampText(text: string, typmod: number, withZone: boolean, sessionIsUtc: boolean): Hash64 | undefined {
  const m = TIMESTAMP_RE.exec(text);
  if (m === null) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (!validDate(y, mo, d)) return undefined;
  const time = timeOfDay(m[4], m[5], m[6], m[7]);
  if (time === undefined) return undefined;
  const zone = m[8];
  let offset = 0;
  if (withZone) {
    if (zone !== undefined) {
      const o = zoneOffset(zone);
      if (o === undefined) return undefined;
      offset = o;
    } else if (!sessionIsUtc) {
      return undefined;
    }
  } else if (zone !== undefined) {
    // timestamp ignores a written zone; rare enough to leave to the server.
    return undefined;
  }
  const local = BigInt(date2j(y, mo, d) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY + time;
  return hashInt64(roundToPrecision(local - BigInt(offset) * 1_000_000n, typmod));
}
