/**
 * Whether the single-node and the distributed answer to a query are the same. Rows are compared
 * as multisets (sorted canonically), numbers within a relative tolerance: shards aggregate floats
 * in another order than one node does.
 */
import type pg from 'pg';

export const FLOAT_TOLERANCE = 1e-9;

export interface Comparison {
  readonly equal: boolean;
  /** The first difference, for the report; undefined when equal. */
  readonly difference?: string;
}

const canonical = (v: unknown): string =>
  v instanceof Date ? v.toISOString() : typeof v === 'number' ? v.toPrecision(8) : v === null ? '\u0000null' : typeof v === 'string' ? v : JSON.stringify(v);

function sortRows(rows: readonly pg.QueryResultRow[]): pg.QueryResultRow[] {
  const keyed = rows.map((r) => ({ r, key: Object.values(r).map(canonical).join('\u0001') }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return keyed.map((k) => k.r);
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime();
  // numeric and bigint arrive as strings; compare them as numbers too.
  const x = typeof a === 'string' && a.trim() !== '' ? Number(a) : a;
  const y = typeof b === 'string' && b.trim() !== '' ? Number(b) : b;
  if (typeof x === 'number' && typeof y === 'number' && Number.isFinite(x) && Number.isFinite(y)) {
    return Math.abs(x - y) <= FLOAT_TOLERANCE * Math.max(Math.abs(x), Math.abs(y), Number.MIN_VALUE);
  }
  return false;
}

export function compareAnswers(single: readonly pg.QueryResultRow[], distributed: readonly pg.QueryResultRow[]): Comparison {
  if (single.length !== distributed.length) {
    return { equal: false, difference: `${single.length} rows on the single node, ${distributed.length} distributed` };
  }
  const a = sortRows(single);
  const b = sortRows(distributed);
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    const columns = Object.keys(x);
    if (columns.join(',') !== Object.keys(y).join(',')) return { equal: false, difference: `columns differ: ${columns.join(',')} vs ${Object.keys(y).join(',')}` };
    for (const c of columns) {
      if (!sameValue(x[c], y[c])) {
        return { equal: false, difference: `row ${i} column ${c}: single ${canonical(x[c])}, distributed ${canonical(y[c])}` };
      }
    }
  }
  return { equal: true };
}
