import { expect } from 'vitest';

/** Relative tolerance for floating-point aggregates summed in a different order on each shard. */
export const FLOAT_TOLERANCE = 1e-9;

function close(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const x = typeof a === 'string' ? Number(a) : a;
  const y = typeof b === 'string' ? Number(b) : b;
  if (typeof x === 'number' && typeof y === 'number' && Number.isFinite(x) && Number.isFinite(y)) {
    return Math.abs(x - y) <= FLOAT_TOLERANCE * Math.max(1, Math.abs(x), Math.abs(y));
  }
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  return false;
}

/** Asserts two result sets are equal, in order when the query orders, floats within FLOAT_TOLERANCE. */
export function expectSameRows(actual: readonly Record<string, unknown>[], expected: readonly Record<string, unknown>[], options: { ordered: boolean; label: string }): void {
  const key = (r: Record<string, unknown>): string => JSON.stringify(Object.values(r));
  const a = options.ordered ? actual : [...actual].sort((p, q) => key(p).localeCompare(key(q)));
  const e = options.ordered ? expected : [...expected].sort((p, q) => key(p).localeCompare(key(q)));
  expect(a.length, options.label).toBe(e.length);
  a.forEach((row, i) => {
    const other = e[i]!;
    expect(Object.keys(row), options.label).toEqual(Object.keys(other));
    for (const column of Object.keys(row)) {
      if (!close(row[column], other[column])) {
        expect({ row: i, column, value: row[column] }, options.label).toEqual({ row: i, column, value: other[column] });
      }
    }
  });
}
