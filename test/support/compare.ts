import { expect } from 'vitest';

/** Relative tolerance for floating-point aggregates summed in a different order on each shard. */
export const FLOAT_TOLERANCE = 1e-9;

/**
 * |x − y| ≤ FLOAT_TOLERANCE · max(1, |x|, |y|): relative, and absolute below 1, where values come
 * from sums that cancel (a variance of nearly equal values) and a relative bound means nothing.
 * NaN equals NaN and an infinity only itself, as PostgreSQL compares floats.
 */
export function withinTolerance(x: number, y: number): boolean {
  if (x === y || (Number.isNaN(x) && Number.isNaN(y))) return true;
  if (!Number.isFinite(x) || !Number.isFinite(y)) return false;
  return Math.abs(x - y) <= FLOAT_TOLERANCE * Math.max(1, Math.abs(x), Math.abs(y));
}

function close(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const x = typeof a === 'string' ? Number(a) : a;
  const y = typeof b === 'string' ? Number(b) : b;
  if (typeof x === 'number' && typeof y === 'number' && Number.isFinite(x) && Number.isFinite(y)) return withinTolerance(x, y);
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

// ---------------------------------------------------------------------------------------------
// Answers in PostgreSQL's own text output, compared as far as the query determines them.

export type TextRow = readonly (string | null)[];

/** A result as the server printed it: exact for every type, one string (or NULL) per value. */
export interface TextResult {
  readonly columns: readonly { readonly name: string; readonly typeId: number }[];
  readonly rows: readonly TextRow[];
}

/** float4 and float8: always compared within FLOAT_TOLERANCE. */
export const FLOAT_TYPE_IDS: ReadonlySet<number> = new Set([700, 701]);

/** What a query determines about its answer, from which the comparison follows. */
export interface ResultShape {
  /**
   * Columns the answer is sorted by, in ORDER BY order: the longest prefix of the ORDER BY that is
   * visible in the answer. Rows equal on these columns (ties) may come in any order.
   */
  readonly orderedBy: readonly number[];
  /**
   * No two rows can tie on `orderedBy`, so LIMIT and OFFSET cut nothing arbitrary — unless the
   * order is by a float, which two answers may round apart.
   */
  readonly total: boolean;
  /** OFFSET may have skipped part of the first tie group; LIMIT may have cut the last one. */
  readonly cutBefore: boolean;
  readonly cutAfter: boolean;
  /** Columns compared within FLOAT_TOLERANCE besides float columns (numeric averages, variances). */
  readonly tolerant: ReadonlySet<number>;
}

export interface ResultDifference {
  readonly message: string;
  /** The first row that differs, from each answer, with its position. */
  readonly expected?: { readonly index: number; readonly row: TextRow };
  readonly actual?: { readonly index: number; readonly row: TextRow };
}

function sameText(a: string | null, b: string | null, tolerant: boolean): boolean {
  if (a === b) return true;
  if (a === null || b === null || !tolerant) return false;
  return withinTolerance(Number(a), Number(b));
}

/**
 * Matches every expected row to an actual row (a multiset comparison), floats within tolerance;
 * the first expected row without a partner, and an unmatched actual row beside it, when not.
 */
function unmatched(
  expected: readonly TextRow[],
  actual: readonly TextRow[],
  tolerant: readonly boolean[],
): { expected: number; actual: number | undefined } | undefined {
  // Most rows match exactly; the others must agree exactly on the non-tolerant columns, so they
  // are paired within a bucket of those.
  const exactKey = (row: TextRow): string => JSON.stringify(row);
  const looseKey = (row: TextRow): string => JSON.stringify(row.filter((_, c) => !tolerant[c]));
  const exact = new Map<string, number[]>();
  const loose = new Map<string, number[]>();
  actual.forEach((row, i) => {
    for (const [map, key] of [[exact, exactKey(row)], [loose, looseKey(row)]] as const) {
      const list = map.get(key);
      if (list === undefined) map.set(key, [i]);
      else list.push(i);
    }
  });
  const used = new Set<number>();
  for (let i = 0; i < expected.length; i++) {
    const row = expected[i]!;
    const same = exact.get(exactKey(row));
    while (same !== undefined && same.length > 0 && used.has(same[same.length - 1]!)) same.pop();
    let partner = same?.pop();
    const candidates = loose.get(looseKey(row)) ?? [];
    partner ??= candidates.find((j) => !used.has(j) && row.every((v, c) => sameText(v, actual[j]![c]!, tolerant[c]!)));
    if (partner === undefined) {
      const nearby = candidates.find((j) => !used.has(j)) ?? actual.findIndex((_, j) => !used.has(j));
      return { expected: i, actual: nearby === -1 ? undefined : nearby };
    }
    used.add(partner);
  }
  return undefined;
}

/**
 * Compares an answer with the expected one as far as the query determines it: column names and
 * types, row count, tie groups in ORDER BY order and the rows within each as a multiset — except
 * a tie group that LIMIT or OFFSET may have cut, of which only the ORDER BY keys are determined.
 * When only column names differ, the values are compared all the same, and a difference in them
 * is reported first.
 */
export function compareTextResults(expected: TextResult, actual: TextResult, shape: ResultShape): ResultDifference | undefined {
  const listColumns = (r: TextResult, part: (c: TextResult['columns'][number]) => string | number): string => r.columns.map(part).join(', ');
  const types = (r: TextResult): string => listColumns(r, (c) => c.typeId);
  if (types(expected) !== types(actual)) {
    const full = (r: TextResult): string => listColumns(r, (c) => `${c.name}:${c.typeId}`);
    return { message: `column types (name:type oid) differ: expected ${full(expected)}, got ${full(actual)}` };
  }
  const names = (r: TextResult): string => listColumns(r, (c) => c.name);
  const renamed = names(expected) === names(actual) ? undefined : `column names differ: expected ${names(expected)}, got ${names(actual)}`;
  const values = compareValues(expected, actual, shape);
  if (values === undefined) return renamed === undefined ? undefined : { message: renamed };
  return renamed === undefined ? values : { ...values, message: `${values.message}; also ${renamed}` };
}

function compareValues(expected: TextResult, actual: TextResult, shape: ResultShape): ResultDifference | undefined {
  const tolerant = expected.columns.map((c, i) => FLOAT_TYPE_IDS.has(c.typeId) || shape.tolerant.has(i));
  const e = expected.rows;
  const a = actual.rows;
  if (e.length !== a.length) {
    const missing = unmatched(e, a, tolerant);
    const extra = unmatched(a, e, tolerant);
    return {
      message: `${e.length} rows expected, ${a.length} returned`,
      ...(missing === undefined ? {} : { expected: { index: missing.expected, row: e[missing.expected]! } }),
      ...(extra === undefined ? {} : { actual: { index: extra.expected, row: a[extra.expected]! } }),
    };
  }
  // Whether the query leaves the order of two rows open: equal on every ORDER BY column up to
  // the first float one, and that within tolerance. A last-bit difference in a float may put
  // either row first, and then the columns after it decide nothing.
  const open = (x: TextRow, y: TextRow): boolean => {
    for (const c of shape.orderedBy) {
      if (tolerant[c]) return sameText(x[c]!, y[c]!, true);
      if (x[c] !== y[c]) return false;
    }
    return true;
  };
  // A total order leaves no ties for LIMIT / OFFSET to cut through, unless it sorts by a float,
  // where the row just past the cut may be a last-bit neighbour of the row before it.
  const cuttable = !shape.total || shape.orderedBy.some((c) => tolerant[c]);
  // Tie groups: runs of rows whose order is open (the whole answer without ORDER BY). Groups
  // follow each other in order; within one, the rows are compared as a multiset.
  for (let start = 0; start < e.length; ) {
    let end = start + 1;
    while (end < e.length && open(e[end - 1]!, e[end]!)) end++;
    const expectedGroup = e.slice(start, end);
    const actualGroup = a.slice(start, end);
    const ties = end - start === 1 ? `row ${start}` : `rows ${start}–${end - 1} (tied on the ORDER BY columns, compared as a multiset)`;
    const cut = (start === 0 && shape.cutBefore) || (end === e.length && shape.cutAfter);
    if (cut && cuttable) {
      // LIMIT / OFFSET cut through the ties: any of them may come back, with their keys.
      const stray = actualGroup.findIndex((row) => !expectedGroup.some((x) => open(x, row)));
      if (stray !== -1) {
        return {
          message: `${ties}, cut by LIMIT/OFFSET: returned row ${start + stray} has other ORDER BY keys`,
          expected: { index: start, row: e[start]! },
          actual: { index: start + stray, row: a[start + stray]! },
        };
      }
    } else {
      const miss = unmatched(expectedGroup, actualGroup, tolerant);
      if (miss !== undefined) {
        const row = expectedGroup[miss.expected]!;
        const elsewhere = unmatched([row], a, tolerant) === undefined;
        return {
          message: elsewhere ? `${ties}: the expected row comes back in another place (out of order)` : `${ties}: no returned row matches the expected row`,
          expected: { index: start + miss.expected, row },
          ...(miss.actual === undefined ? {} : { actual: { index: start + miss.actual, row: a[start + miss.actual]! } }),
        };
      }
    }
    start = end;
  }
  return undefined;
}
