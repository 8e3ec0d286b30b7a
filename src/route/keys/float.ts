/**
 * real and double precision keys: `hashfloat8extended` hashes the 8 bytes of the double (a real
 * widened to double first), 0 and -0 hash as the seed itself, and every NaN as the standard one.
 */
import { hashBytes, PARTITION_SEED, type Hash64 } from '../hash.js';
import { C_SPACE } from './integer.js';

const DECIMAL = new RegExp(`^${C_SPACE}*([+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?)${C_SPACE}*$`);
const SPECIAL = new RegExp(`^${C_SPACE}*([+-]?)(nan|infinity|inf)${C_SPACE}*$`, 'i');

const scratch = new DataView(new ArrayBuffer(8));
const scratchBytes = new Uint8Array(scratch.buffer);

/** The double PostgreSQL reads from `text`, or undefined when only the server can tell (hex floats, out of range). */
export function parseDouble(text: string): number | undefined {
  const decimal = DECIMAL.exec(text);
  if (decimal !== null) {
    const value = Number(decimal[1]);
    // Overflow and underflow are errors in float8in: let the server say so.
    if (!Number.isFinite(value)) return undefined;
    if (value === 0 && /[1-9]/.test((decimal[1] as string).split(/[eE]/)[0] as string)) return undefined;
    return value;
  }
  const special = SPECIAL.exec(text);
  if (special === null) return undefined;
  const word = (special[2] as string).toLowerCase();
  // "-NaN" is not accepted by float8in.
  if (word === 'nan') return special[1] === '' ? Number.NaN : undefined;
  return special[1] === '-' ? -Infinity : Infinity;
}

/**
 * The real PostgreSQL reads (strtof rounds the decimal once, to float): undefined where rounding
 * to double first could land elsewhere (a double exactly halfway between two floats), or where
 * the value over- or underflows.
 */
export function parseReal(text: string): number | undefined {
  const d = parseDouble(text);
  if (d === undefined || !Number.isFinite(d) || d === 0) return d;
  const f = Math.fround(d);
  if (!Number.isFinite(f) || Math.abs(f) < 1.1754943508222875e-38) return undefined;
  if (f === d) return f;
  // The float on the other side of d: if d lies exactly halfway, double rounding may have chosen.
  const bits = new Float32Array([f]);
  const view = new Int32Array(bits.buffer);
  view[0] = (view[0] as number) + ((d > f) === (f > 0) ? 1 : -1);
  const other = bits[0] as number;
  return Math.abs(d - f) === Math.abs(other - d) ? undefined : f;
}

export function hashDouble(value: number): Hash64 {
  if (value === 0) return PARTITION_SEED;
  if (Number.isNaN(value)) {
    // get_float8_nan(): the quiet NaN 0x7FF8000000000000.
    scratch.setUint32(0, 0, true);
    scratch.setUint32(4, 0x7ff80000, true);
  } else {
    scratch.setFloat64(0, value, true);
  }
  return hashBytes(scratchBytes, 0, 8);
}

export function hashDoubleText(text: string): Hash64 | undefined {
  const value = parseDouble(text);
  return value === undefined ? undefined : hashDouble(value);
}

export function hashRealText(text: string): Hash64 | undefined {
  const value = parseReal(text);
  return value === undefined ? undefined : hashDouble(value);
}
