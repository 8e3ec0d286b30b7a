/**
 * numeric keys. `hash_numeric_extended` hashes the base-10000 digits with leading and trailing
 * zero digits stripped, xor the weight of the first one; the sign and the display scale are not
 * hashed (so 5 and -5 hash alike), NaN and ±Infinity hash as the seed and zero as seed - 1.
 * A column with a typmod rounds the value first (half away from zero), as numeric_in does.
 */
import { hashBytes, PARTITION_SEED, type Hash64 } from '../hash.js';
import { C_SPACE } from './integer.js';

const DECIMAL = new RegExp(`^${C_SPACE}*([+-]?)(\\d*)(?:\\.(\\d*))?(?:[eE]([+-]?\\d{1,4}))?${C_SPACE}*$`);
const SPECIAL = new RegExp(`^${C_SPACE}*([+-]?)(nan|infinity|inf)${C_SPACE}*$`, 'i');

/** A finite numeric: decimal digits without leading or trailing zeros, and the power of ten of the last one. */
export interface Decimal {
  readonly negative: boolean;
  /** '' for zero. */
  readonly digits: string;
  readonly exponent: number;
}

export type NumericValue = Decimal | 'NaN' | 'Infinity' | '-Infinity';

/** numeric(p, s) as a typmod: precision and scale, or undefined for a plain numeric. */
export interface NumericTypmod {
  readonly precision: number;
  readonly scale: number;
}

export function numericTypmod(typmod: number): NumericTypmod | undefined {
  if (typmod < 4) return undefined;
  const t = typmod - 4;
  // The scale is an 11-bit signed field from PostgreSQL 15 (negative scales).
  const scale = ((t & 0x7ff) ^ 1024) - 1024;
  return { precision: (t >> 16) & 0xffff, scale };
}

export function parseNumeric(text: string): NumericValue | undefined {
  const m = DECIMAL.exec(text);
  if (m === null) {
    const special = SPECIAL.exec(text);
    if (special === null) return undefined;
    const word = (special[2] as string).toLowerCase();
    if (word === 'nan') return special[1] === '' ? 'NaN' : undefined;
    return special[1] === '-' ? '-Infinity' : 'Infinity';
  }
  const intPart = m[2] as string;
  // Exponents past ±1000 and very long inputs: the limits differ between versions, the server decides.
  if (Math.abs(Number(m[4] ?? '0')) > 1000 || text.length > 1000) return undefined;
  const fracPart = m[3] ?? '';
  if (intPart === '' && fracPart === '') return undefined;
  const all = intPart + fracPart;
  let exponent = Number(m[4] ?? '0') - fracPart.length;
  const start = all.search(/[1-9]/);
  if (start === -1) return { negative: false, digits: '', exponent: 0 };
  let end = all.length;
  while (all.charCodeAt(end - 1) === 48) end -= 1;
  exponent += all.length - end;
  return { negative: m[1] === '-', digits: all.slice(start, end), exponent };
}

/** Rounds to `scale` decimal places, half away from zero (numeric's round_var). */
export function roundDecimal(d: Decimal, scale: number): Decimal {
  if (d.digits === '' || d.exponent >= -scale) return d;
  // Digits whose power of ten is below 10^-scale go; the first of them decides.
  const keep = d.digits.length - (-scale - d.exponent);
  if (keep < 0) return { negative: false, digits: '', exponent: 0 };
  const first = keep < d.digits.length ? d.digits.charCodeAt(keep) - 48 : 0;
  let kept = d.digits.slice(0, keep);
  if (first >= 5) {
    // Increment the kept digits as a decimal string.
    const chars = kept.split('');
    let i = chars.length - 1;
    while (i >= 0 && chars[i] === '9') chars[i--] = '0';
    if (i < 0) chars.unshift('1');
    else chars[i] = String.fromCharCode((chars[i] as string).charCodeAt(0) + 1);
    kept = chars.join('');
  }
  const exponent = -scale;
  const trimmed = kept.replace(/0+$/, '');
  if (trimmed === '') return { negative: false, digits: '', exponent: 0 };
  return { negative: d.negative, digits: trimmed, exponent: exponent + (kept.length - trimmed.length) };
}

/** Applies numeric(p, s): the rounded value, or undefined when it does not fit (an error in PostgreSQL). */
export function applyTypmod(value: NumericValue, typmod: NumericTypmod | undefined): NumericValue | undefined {
  if (typmod === undefined || value === 'NaN') return value;
  if (typeof value === 'string') return undefined; // infinity overflows numeric(p, s)
  const rounded = roundDecimal(value, typmod.scale);
  if (rounded.digits === '') return rounded;
  const leadingPower = rounded.exponent + rounded.digits.length - 1;
  return leadingPower + 1 > typmod.precision - typmod.scale ? undefined : rounded;
}

/** Base-10000 digits (most significant first) and the weight of the first. */
export function toNumericDigits(d: Decimal): { digits: number[]; weight: number } {
  const top = d.exponent + d.digits.length - 1;
  const weight = Math.floor(top / 4);
  const bottom = Math.floor(d.exponent / 4);
  const groups = Array.from({ length: weight - bottom + 1 }, () => 0);
  for (let i = 0; i < d.digits.length; i += 1) {
    const power = top - i;
    const group = Math.floor(power / 4);
    groups[weight - group] = (groups[weight - group] as number) + (d.digits.charCodeAt(i) - 48) * 10 ** (power - group * 4);
  }
  return { digits: groups, weight };
}

export function hashNumeric(value: NumericValue): Hash64 {
  if (typeof value === 'string') return PARTITION_SEED;
  if (value.digits === '') {
    // seed - 1
    return PARTITION_SEED.lo === 0 ? { hi: (PARTITION_SEED.hi - 1) >>> 0, lo: 0xffffffff } : { hi: PARTITION_SEED.hi, lo: PARTITION_SEED.lo - 1 };
  }
  const { digits, weight } = toNumericDigits(value);
  const bytes = new Uint8Array(digits.length * 2);
  digits.forEach((g, i) => {
    bytes[2 * i] = g & 0xff;
    bytes[2 * i + 1] = g >> 8;
  });
  const h = hashBytes(bytes);
  // The hash xor the int weight, widened to 64 bits with its sign.
  return { hi: (h.hi ^ (weight < 0 ? 0xffffffff : 0)) >>> 0, lo: (h.lo ^ weight) >>> 0 };
}

export function hashNumericText(text: string, typmod: number): Hash64 | undefined {
  const parsed = parseNumeric(text);
  const value = parsed === undefined ? undefined : applyTypmod(parsed, numericTypmod(typmod));
  return value === undefined ? undefined : hashNumeric(value);
}
