/**
 * A stronger order check for the differential harness (issue 13, item 5): where LIMIT/OFFSET
 * may cut through rows the ORDER BY leaves tied, or the ORDER BY sorts by something the query does
 * not output, comparing the two answers with each other is not enough (the keys that place a row
 * are not in it). So the original runs once more on the single-node table, without LIMIT and
 * OFFSET and with every ORDER BY key added as an output (`fullOrderSql`): the full answer, in
 * order, with the keys that place each row. Its rows fall into tie groups (equal on every key,
 * floats within tolerance), and each returned row must be a row of the full answer (every
 * column) from the tie group that covers its position: row i of the answer is at position
 * OFFSET + i of the full one (`checkFullOrder`).
 */
import { deparse, parse } from 'pgsql-parser';
import { FLOAT_TYPE_IDS, type ResultDifference, type TextResult, type TextRow, withinTolerance } from './compare.js';

type Node = { readonly [key: string]: unknown };
const asNode = (v: unknown): Node | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Node) : undefined);
const items = (v: unknown): readonly unknown[] => (Array.isArray(v) ? v : []);
const tagged = (v: unknown, tag: string): Node | undefined => asNode(asNode(v)?.[tag]);
const NUMERIC_TYPE_ID = 1700;

export interface FullOrderQuery {
  readonly sql: string;
  /** Output columns of the original: the full answer's first ones; the keys follow. */
  readonly visible: number;
  readonly keys: number;
  /** Rows the OFFSET skips (0 without one). */
  readonly offset: number;
}

/**
 * The original without LIMIT/OFFSET and with its ORDER BY keys as extra outputs, or why there is
 * none (no ORDER BY, a set operation, WITH TIES, an OFFSET that is not a constant, an ordinal
 * into `*`).
 */
export async function fullOrderSql(sql: string, params: readonly unknown[], visible: number): Promise<FullOrderQuery | string> {
  const tree = asNode(await parse(sql));
  const statements = items(tree?.stmts);
  const raw = asNode(statements[0]);
  const select = tagged(raw?.stmt, 'SelectStmt');
  if (statements.length !== 1 || select === undefined) return 'not one SELECT';
  const sorts = items(select.sortClause).map((s) => tagged(s, 'SortBy'));
  if (sorts.length === 0) return 'no ORDER BY';
  if (select.op !== undefined && select.op !== 'SETOP_NONE') return 'a set operation';
  if (select.limitOption === 'LIMIT_OPTION_WITH_TIES') return 'WITH TIES';
  if (sorts.some((s) => s === undefined || items(s.useOp).length > 0)) return 'ORDER BY … USING';
  const targets = items(select.targetList).map((t) => tagged(t, 'ResTarget'));
  let offset = 0;
  if (select.limitOffset !== undefined) {
    const value = integer(select.limitOffset, params);
    if (value === undefined) return 'an OFFSET that is not a constant';
    offset = value ?? 0;
  }
  const keys: unknown[] = [];
  for (const s of sorts) {
    const node = s?.node;
    const ordinal = tagged(node, 'A_Const') === undefined ? undefined : integer(node, []);
    const fields = items(tagged(node, 'ColumnRef')?.fields).map((f) => tagged(f, 'String')?.sval);
    const star = targets.some((t) => items(tagged(t?.val, 'ColumnRef')?.fields).some((f) => asNode(f)?.A_Star !== undefined));
    if (typeof ordinal === 'number') {
      if (star) return 'an ordinal with * in the select list';
      keys.push(targets[ordinal - 1]?.val);
    } else if (fields.length === 1 && targets.some((t) => t?.name === fields[0])) {
      // ORDER BY an output name means that output's expression.
      keys.push(targets.find((t) => t?.name === fields[0])?.val);
    } else keys.push(node);
  }
  if (keys.some((k) => k === undefined)) return 'an ORDER BY item that names no output';
  const full = {
    ...select,
    targetList: [...items(select.targetList), ...keys.map((val, i) => ({ ResTarget: { name: `_hs_key${i}`, val } }))],
  } as Node;
  // No LIMIT, no OFFSET; a parameter they read stays read (LIMIT NULL is no limit), so the binds still fit.
  const writable = full as Record<string, unknown>;
  for (const [clause, neutral] of [
    ['limitCount', (x: string) => `NULLIF((${x})::bigint, (${x})::bigint)`],
    ['limitOffset', (x: string) => `(${x})::bigint * 0`],
  ] as const) {
    const node = writable[clause];
    if (node !== undefined && JSON.stringify(node).includes('"ParamRef"')) writable[clause] = await expression(neutral(await deparse(node as never)));
    else delete writable[clause];
  }
  delete writable.limitOption;
  const text = await deparse({ ...tree, stmts: [{ ...raw, stmt: { SelectStmt: full } }] } as never);
  return { sql: text, visible, keys: keys.length, offset };
}

async function expression(text: string): Promise<unknown> {
  const tree = asNode(await parse(`SELECT ${text}`));
  return tagged(items(tagged(asNode(items(tree?.stmts)[0])?.stmt, 'SelectStmt')?.targetList)[0], 'ResTarget')?.val;
}

function integer(v: unknown, params: readonly unknown[]): number | null | undefined {
  const constant = tagged(v, 'A_Const');
  if (constant !== undefined) {
    if (constant.isnull === true) return null;
    const ival = asNode(constant.ival);
    return ival === undefined ? undefined : typeof ival.ival === 'number' ? ival.ival : 0;
  }
  const param = tagged(v, 'ParamRef');
  if (param !== undefined && typeof param.number === 'number') {
    const value = params[param.number - 1];
    if (value === null) return null;
    const n = Number(value);
    return Number.isInteger(n) ? n : undefined;
  }
  const cast = tagged(v, 'TypeCast');
  return cast === undefined ? undefined : integer(cast.arg, params);
}

/**
 * Whether each row of `actual` is a row of the full answer from the tie group at its position.
 * `tolerant`: visible columns compared within tolerance besides floats.
 */
export function checkFullOrder(query: FullOrderQuery, full: TextResult, actual: TextResult, tolerant: ReadonlySet<number>): ResultDifference | undefined {
  const loose = (i: number): boolean => FLOAT_TYPE_IDS.has(full.columns[i]?.typeId ?? 0) || (i >= query.visible ? full.columns[i]?.typeId === NUMERIC_TYPE_ID : tolerant.has(i));
  const same = (x: string | null | undefined, y: string | null | undefined, i: number): boolean =>
    x === y || (x !== null && y !== null && x !== undefined && y !== undefined && loose(i) && withinTolerance(Number(x), Number(y)));
  const keyColumns = Array.from({ length: query.keys }, (_, k) => query.visible + k);
  const tied = (x: TextRow, y: TextRow): boolean => keyColumns.every((c) => same(x[c], y[c], c));
  // Tie groups of the full answer: [start, end) runs of rows equal on every key.
  const groupOf: number[] = [];
  const groups: { start: number; end: number }[] = [];
  for (let i = 0; i < full.rows.length; i++) {
    if (i === 0 || !tied(full.rows[i - 1]!, full.rows[i]!)) groups.push({ start: i, end: i + 1 });
    else groups[groups.length - 1]!.end = i + 1;
    groupOf.push(groups.length - 1);
  }
  const used = new Set<number>();
  for (let i = 0; i < actual.rows.length; i++) {
    const position = query.offset + i;
    const row = actual.rows[i]!;
    const group = groups[groupOf[position] ?? -1];
    if (group === undefined) return { message: `row ${i} is past the end of the full answer (${full.rows.length} rows, OFFSET ${query.offset})`, actual: { index: i, row } };
    let match = -1;
    for (let j = group.start; j < group.end && match === -1; j++) {
      if (!used.has(j) && row.every((v, c) => same(v, full.rows[j]![c], c))) match = j;
    }
    if (match === -1) {
      return {
        message: `row ${i} is no row of the full answer's tie group at position ${position} (rows ${group.start}–${group.end - 1}, placed by every ORDER BY key)`,
        expected: { index: i, row: full.rows[group.start]!.slice(0, query.visible) },
        actual: { index: i, row },
      };
    }
    used.add(match);
  }
  return undefined;
}
