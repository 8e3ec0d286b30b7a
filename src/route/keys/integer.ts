/**
 * int2, int4 and int8 keys. PostgreSQL hashes int2 and int4 as their int32 value and folds an int8
 * into 32 bits first (`hashint8extended`), so equal numbers hash alike across the three types.
 */
import { hashUint32, type Hash64 } from '../hash.js';

/** C's isspace in the "C" locale: what PostgreSQL's number parsers skip around a value. */
export const C_SPACE = '[ \\t\\n\\r\\v\\f]';
const DECIMAL = new RegExp(`^${C_SPACE}*([+-]?)0*(\\d{1,19})${C_SPACE}*$`);

const LIMITS = {
  2: { min: -32768n, max: 32767n },
  4: { min: -2147483648n, max: 2147483647n },
  8: { min: -9223372036854775808n, max: 9223372036854775807n },
} as const;

/**
 * The value of an integer in PostgreSQL's text form, or undefined when it is not plain decimal
 * (PostgreSQL 16 also reads 0x…, 0o…, 0b… and digit separators) or out of range: the server decides those.
 */
export function parseInteger(text: string, bytes: 2 | 4 | 8): bigint | undefined {
  const match = DECIMAL.exec(text);
  if (match === null) return undefined;
  const digits = match[2] as string;
  const value = match[1] === '-' ? -BigInt(digits) : BigInt(digits);
  const { min, max } = LIMITS[bytes];
  return value < min || value > max ? undefined : value;
}

/** `hashint4extended` / `hashint2extended`: the int32 value as a uint32. */
export function hashInt32(value: number): Hash64 {
  return hashUint32(value >>> 0);
}

/** `hashint8extended`: the low half xor the high half (its complement for negatives). */
export function hashInt64(value: bigint): Hash64 {
  const v = BigInt.asUintN(64, value);
  const lo = Number(v & 0xffffffffn);
  const hi = Number(v >> 32n);
  return hashUint32((lo ^ (value >= 0n ? hi : ~hi)) >>> 0);
}

/** Fast path for int2/int4 text without BigInt. */
const SMALL = new RegExp(`^${C_SPACE}*([+-]?)0*(\\d{1,9})${C_SPACE}*$`);

export function hashIntegerText(text: string, bytes: 2 | 4 | 8): Hash64 | undefined {
  if (bytes !== 8) {
    const small = SMALL.exec(text);
    if (small !== null) {
      const n = Number(small[2]) * (small[1] === '-' ? -1 : 1);
      const limit = bytes === 2 ? 32768 : 2147483648;
      return n < -limit || n > limit - 1 ? undefined : hashInt32(n);
    }
  }
  const value = parseInteger(text, bytes);
  if (value === undefined) return undefined;
  return bytes === 8 ? hashInt64(value) : hashInt32(Number(value));
}
