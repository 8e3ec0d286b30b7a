/**
 * PostgreSQL's binary format (COPY BINARY fields, binary Bind parameters) to text that the type's
 * input function reads back as the same value under any DateStyle, IntervalStyle or TimeZone:
 * ISO dates, timestamps with an explicit offset, intervals in ISO 8601, shortest round-trip
 * floats, exact numerics. The router reads keys from it; the gateway can send parameters with it.
 */
import { TYPE_OID } from '../route/keyType.js';

/** A decoder, by type OID; `decodeText` turns the bytes of a text-like value into a string (client encoding). */
export type BinaryDecoder = (bytes: Uint8Array, decodeText: (b: Uint8Array) => string) => string;

const view = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

/**
 * A fixed-size value (at most 8 bytes, its length checked) read through one DataView kept for it:
 * a routed batch decodes millions of them, and a DataView each was most of the cost. Read at once,
 * before anything else decodes.
 */
const scratch = new DataView(new ArrayBuffer(8));
const scratchBytes = new Uint8Array(scratch.buffer);
const fixed = (b: Uint8Array): DataView => {
  scratchBytes.set(b);
  return scratch;
};

/** Microseconds in a day, and 2000-01-01 as a Julian day. */
const USECS_PER_DAY = 86_400_000_000n;
const POSTGRES_EPOCH_JDATE = 2451545;

function need(b: Uint8Array, n: number, type: string): void {
  if (b.length !== n) throw new RangeError(`binary ${type} must be ${n} bytes, got ${b.length}`);
}

/** PostgreSQL's j2date: a Julian day to year (astronomical: 0 is 1 BC), month, day. */
export function j2date(jd: number): { year: number; month: number; day: number } {
  let julian = jd + 32044;
  let quad = Math.floor(julian / 146097);
  const extra = (julian - quad * 146097) * 4 + 3;
  julian += 60 + quad * 3 + Math.floor(extra / 146097);
  quad = Math.floor(julian / 1461);
  julian -= quad * 1461;
  let y = Math.floor((julian * 4) / 1461);
  julian = y !== 0 ? ((julian + 305) % 365) + 123 : ((julian + 306) % 366) + 123;
  y += quad * 4;
  const year = y - 4800;
  quad = Math.floor((julian * 2141) / 65536);
  const day = julian - Math.floor((7834 * quad) / 256);
  const month = ((quad + 10) % 12) + 1;
  return { year, month, day };
}

const pad = (n: number | bigint, w: number): string => String(n).padStart(w, '0');

function dateText(days: number): string {
  if (days === 2147483647) return 'infinity';
  if (days === -2147483648) return '-infinity';
  const { year, month, day } = j2date(days + POSTGRES_EPOCH_JDATE);
  // Years before 1 are written with BC (astronomical 0 = 1 BC).
  return year > 0 ? `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}` : `${pad(1 - year, 4)}-${pad(month, 2)}-${pad(day, 2)} BC`;
}

function timeText(usec: bigint): string {
  const s = usec / 1_000_000n;
  const frac = usec % 1_000_000n;
  const text = `${pad(s / 3600n, 2)}:${pad((s / 60n) % 60n, 2)}:${pad(s % 60n, 2)}`;
  return frac === 0n ? text : `${text}.${pad(frac, 6).replace(/0+$/, '')}`;
}

function timestampText(usec: bigint, zone: boolean): string {
  if (usec === 9223372036854775807n) return 'infinity';
  if (usec === -9223372036854775808n) return '-infinity';
  let days = usec / USECS_PER_DAY;
  let rest = usec % USECS_PER_DAY;
  if (rest < 0n) {
    rest += USECS_PER_DAY;
    days -= 1n;
  }
  const date = dateText(Number(days));
  const bc = date.endsWith(' BC');
  const text = `${bc ? date.slice(0, -3) : date} ${timeText(rest)}${zone ? '+00' : ''}`;
  return bc ? `${text} BC` : text;
}

/** Shortest text that reads back as the same float4 (9 significant digits always do). */
function realText(f: number): string {
  if (Number.isNaN(f)) return 'NaN';
  if (!Number.isFinite(f)) return f > 0 ? 'Infinity' : '-Infinity';
  if (Object.is(f, -0)) return '-0';
  for (let p = 1; p <= 9; p += 1) {
    const s = f.toPrecision(p);
    if (Math.fround(Number(s)) === f) return String(Number(s));
  }
  return f.toPrecision(9);
}

function doubleText(d: number): string {
  if (Number.isNaN(d)) return 'NaN';
  if (!Number.isFinite(d)) return d > 0 ? 'Infinity' : '-Infinity';
  if (Object.is(d, -0)) return '-0';
  return String(d);
}

function numericText(b: Uint8Array): string {
  const v = view(b);
  const ndigits = v.getInt16(0);
  const weight = v.getInt16(2);
  const sign = v.getUint16(4);
  const dscale = v.getInt16(6);
  if (sign === 0xc000) return 'NaN';
  if (sign === 0xd000) return 'Infinity';
  if (sign === 0xf000) return '-Infinity';
  need(b, 8 + 2 * ndigits, 'numeric');
  const digits = Array.from({ length: ndigits }, (_, i) => v.getInt16(8 + 2 * i));
  // Integer part: groups with weight >= 0; fraction: the rest, dscale digits.
  let int = '';
  for (let w = weight, i = 0; w >= 0; w -= 1, i += 1) int += i === 0 ? String(digits[i] ?? 0) : pad(digits[i] ?? 0, 4);
  if (int === '') int = '0';
  let frac = '';
  for (let i = weight + 1; frac.length < dscale; i += 1) frac += pad(i >= 0 ? (digits[i] ?? 0) : 0, 4);
  frac = frac.slice(0, dscale);
  const text = dscale > 0 ? `${int}.${frac}` : int;
  return sign === 0x4000 ? `-${text}` : text;
}

/** ISO 8601 with a sign per field: read the same under every IntervalStyle. */
function intervalText(b: Uint8Array): string {
  need(b, 16, 'interval');
  const v = view(b);
  const usec = v.getBigInt64(0);
  const days = v.getInt32(8);
  const months = v.getInt32(12);
  // PostgreSQL 17's infinite intervals.
  if (months === 2147483647 && days === 2147483647 && usec === 9223372036854775807n) return 'infinity';
  if (months === -2147483648 && days === -2147483648 && usec === -9223372036854775808n) return '-infinity';
  const abs = usec < 0n ? -usec : usec;
  const secs = abs / 1_000_000n;
  const frac = abs % 1_000_000n;
  const sign = usec < 0n ? '-' : '';
  const seconds = frac === 0n ? `${secs}` : `${secs}.${pad(frac, 6).replace(/0+$/, '')}`;
  return `P${months}M${days}DT${sign}${seconds}S`;
}

function inetText(b: Uint8Array): string {
  const family = b[0];
  const bits = b[1] as number;
  const nb = b[3] as number;
  const addr = b.subarray(4, 4 + nb);
  if (family === 2) return `${Array.from(addr).join('.')}/${bits}`;
  const groups = Array.from({ length: 8 }, (_, i) => (((addr[2 * i] ?? 0) << 8) | (addr[2 * i + 1] ?? 0)).toString(16));
  return `${groups.join(':')}/${bits}`;
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

function uuidText(b: Uint8Array): string {
  need(b, 16, 'uuid');
  const h = hex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** An array element as array_out would write it: quoted when it must be. */
function arrayElement(text: string): string {
  if (text === '' || /^null$/i.test(text) || /[{}",\\\s]/.test(text)) return `"${text.replace(/["\\]/g, (c) => `\\${c}`)}"`;
  return text;
}

function arrayText(b: Uint8Array, decodeText: (b: Uint8Array) => string): string {
  const v = view(b);
  const ndim = v.getInt32(0);
  const elementType = v.getUint32(8);
  if (ndim === 0) return '{}';
  const dims: { length: number; lower: number }[] = [];
  for (let i = 0; i < ndim; i += 1) dims.push({ length: v.getInt32(12 + 8 * i), lower: v.getInt32(16 + 8 * i) });
  const decode = BINARY_DECODERS.get(elementType);
  if (decode === undefined) throw new RangeError(`no binary decoder for array elements of type ${elementType}`);
  let at = 12 + 8 * ndim;
  const next = (): string => {
    const len = v.getInt32(at);
    at += 4;
    if (len === -1) return 'NULL';
    const value = decode(b.subarray(at, at + len), decodeText);
    at += len;
    return arrayElement(value);
  };
  const level = (d: number): string => {
    const { length } = dims[d] as { length: number };
    const items = Array.from({ length }, () => (d === ndim - 1 ? next() : level(d + 1)));
    return `{${items.join(',')}}`;
  };
  const bounds = dims.some((d) => d.lower !== 1) ? `${dims.map((d) => `[${d.lower}:${d.lower + d.length - 1}]`).join('')}=` : '';
  return bounds + level(0);
}

const text: BinaryDecoder = (b, decodeText) => decodeText(b);

export const BINARY_DECODERS: ReadonlyMap<number, BinaryDecoder> = new Map<number, BinaryDecoder>([
  [TYPE_OID.bool, (b) => (need(b, 1, 'boolean'), b[0] === 0 ? 'f' : 't')],
  [TYPE_OID.int2, (b) => (need(b, 2, 'smallint'), String(fixed(b).getInt16(0)))],
  [TYPE_OID.int4, (b) => (need(b, 4, 'integer'), String(fixed(b).getInt32(0)))],
  [TYPE_OID.int8, (b) => (need(b, 8, 'bigint'), String(fixed(b).getBigInt64(0)))],
  [TYPE_OID.float4, (b) => (need(b, 4, 'real'), realText(fixed(b).getFloat32(0)))],
  [TYPE_OID.float8, (b) => (need(b, 8, 'double precision'), doubleText(fixed(b).getFloat64(0)))],
  [TYPE_OID.numeric, numericText],
  [TYPE_OID.text, text],
  [TYPE_OID.varchar, text],
  [TYPE_OID.bpchar, text],
  [19, text], // name
  [114, text], // json
  [TYPE_OID.jsonb, (b, decodeText) => {
    if (b[0] !== 1) throw new RangeError(`unsupported jsonb binary version ${b[0] ?? 'none'}`);
    return decodeText(b.subarray(1));
  }],
  [TYPE_OID.bytea, (b) => `\\x${hex(b)}`],
  [TYPE_OID.uuid, uuidText],
  [TYPE_OID.date, (b) => (need(b, 4, 'date'), dateText(fixed(b).getInt32(0)))],
  [TYPE_OID.time, (b) => (need(b, 8, 'time'), timeText(fixed(b).getBigInt64(0)))],
  [TYPE_OID.timetz, (b) => {
    need(b, 12, 'time with time zone');
    // The zone is stored in seconds west of UTC; written as an offset east.
    const west = view(b).getInt32(8);
    const east = -west;
    const a = Math.abs(east);
    return `${timeText(view(b).getBigInt64(0))}${east < 0 ? '-' : '+'}${pad(Math.floor(a / 3600), 2)}:${pad(Math.floor(a / 60) % 60, 2)}:${pad(a % 60, 2)}`;
  }],
  [TYPE_OID.timestamp, (b) => (need(b, 8, 'timestamp'), timestampText(fixed(b).getBigInt64(0), false))],
  [TYPE_OID.timestamptz, (b) => (need(b, 8, 'timestamp with time zone'), timestampText(fixed(b).getBigInt64(0), true))],
  [TYPE_OID.interval, intervalText],
  [TYPE_OID.inet, inetText],
  [TYPE_OID.cidr, inetText],
  [TYPE_OID.macaddr, (b) => (need(b, 6, 'macaddr'), Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':'))],
  [26, (b) => (need(b, 4, 'oid'), String(fixed(b).getUint32(0)))], // oid
]);

/** Array types of the decodable element types: arrays decode through their elements. */
const ARRAY_OIDS: Readonly<Record<number, number>> = {
  1000: TYPE_OID.bool, 1005: TYPE_OID.int2, 1007: TYPE_OID.int4, 1016: TYPE_OID.int8, 1021: TYPE_OID.float4,
  1022: TYPE_OID.float8, 1231: TYPE_OID.numeric, 1009: TYPE_OID.text, 1015: TYPE_OID.varchar, 1014: TYPE_OID.bpchar,
  3807: TYPE_OID.jsonb, 199: 114, 1001: TYPE_OID.bytea, 2951: TYPE_OID.uuid, 1182: TYPE_OID.date, 1183: TYPE_OID.time,
  1270: TYPE_OID.timetz, 1115: TYPE_OID.timestamp, 1185: TYPE_OID.timestamptz, 1187: TYPE_OID.interval,
  1041: TYPE_OID.inet, 651: TYPE_OID.cidr, 1040: TYPE_OID.macaddr, 1003: 19, 1028: 26,
};
for (const oid of Object.keys(ARRAY_OIDS)) (BINARY_DECODERS as Map<number, BinaryDecoder>).set(Number(oid), arrayText);

/**
 * A value in binary format as text its type's input function reads back to the same value.
 * @throws RangeError for a type without a decoder or malformed bytes.
 */
export function binaryToText(typeOid: number, bytes: Uint8Array, decodeText: (b: Uint8Array) => string = (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8')): string {
  const decode = BINARY_DECODERS.get(typeOid);
  if (decode === undefined) throw new RangeError(`no binary decoder for type ${typeOid}`);
  return decode(bytes, decodeText);
}
