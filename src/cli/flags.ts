/** Numeric flags, checked: a typo is bad input (exit 2), not a silent default. */
import { HypershardError } from '../errors.js';

/** A whole number ≥ `min`. */
export function integerFlag(flag: string, value: string, min = 0): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new HypershardError('USAGE', `${flag} must be a whole number of at least ${min}, not ${JSON.stringify(value)}`);
  }
  return n;
}

/** --timeout in milliseconds. */
export function timeoutFlag(value: string): number {
  return integerFlag('--timeout', value, 1);
}
