/**
 * A timestamptz column's local date compared with a date (`time::date = current_date`,
 * `date(time) >= '2026-01-01'`) reads the session's TimeZone, so postgres_fdw keeps the whole
 * filter on the access node and every row of every chunk crosses the network. In a zone whose
 * offset never changes, the local date only moves forward with the instant, so the comparison is
 * a range on the column itself, with bounds at local midnights:
 *
 *   t::date =  d   ⇔  d::timestamptz <= t < (d + 1)::timestamptz
 *   t::date >= d   ⇔  t >= d::timestamptz          t::date > d   ⇔  t >= (d + 1)::timestamptz
 *   t::date <  d   ⇔  t <  d::timestamptz          t::date <= d  ⇔  t <  (d + 1)::timestamptz
 *   t::date <> d   ⇔  t < d::timestamptz OR t >= (d + 1)::timestamptz
 *
 * NULL on either side gives NULL on both. The bounds are evaluated once on the access node (an
 * InitPlan, as stable.ts does) and shipped; the range lets each data node exclude chunks. Where
 * the offset changes (daylight saving), a transition at midnight can move the local date back, so
 * the comparison is left as written.
 */
import type { A_Expr, Node } from '@pgsql/types';
import { functionName, replaceTop } from './ast.js';
import type { Rewrite } from './model.js';
import { deparse, parseExpression } from './parser.js';

const FLIPPED: Record<string, string> = { '=': '=', '<>': '<>', '!=': '<>', '<': '>', '<=': '>=', '>': '<', '>=': '<=' };

/** Rewrites every `<timestamptz column>::date <op> <date>` in `node` to a range on the column. */
export function dateRanges(node: Node, rewrites: Rewrite[], columnType: (n: Node) => string | undefined, fixedOffset: boolean): Node {
  if (!fixedOffset) return node;
  return replaceTop(node, (n) => {
    if (!('A_Expr' in n) || n.A_Expr.kind !== 'AEXPR_OP') return undefined;
    const e: A_Expr = n.A_Expr;
    const op = (e.name ?? []).map((x) => ('String' in x ? x.String.sval : '')).join('');
    if (FLIPPED[op] === undefined || e.lexpr === undefined || e.rexpr === undefined) return undefined;
    const leftColumn = localDateOf(e.lexpr, columnType);
    const rightColumn = localDateOf(e.rexpr, columnType);
    const [column, value, o] =
      leftColumn !== undefined && isDate(e.rexpr) ? [leftColumn, e.rexpr, FLIPPED[op] === '<>' ? '<>' : op] : rightColumn !== undefined && isDate(e.lexpr) ? [rightColumn, e.lexpr, FLIPPED[op] as string] : [undefined, undefined, op];
    if (column === undefined || value === undefined) return undefined;
    const col = deparse(column);
    const d = `(${deparse(value)})::date`;
    const start = `(SELECT ${d}::timestamptz)`;
    const next = `(SELECT (${d} + 1)::timestamptz)`;
    const range: Record<string, string> = {
      '=': `(${col} >= ${start} AND ${col} < ${next})`,
      '<>': `(${col} < ${start} OR ${col} >= ${next})`,
      '>=': `${col} >= ${start}`,
      '>': `${col} >= ${next}`,
      '<': `${col} < ${start}`,
      '<=': `${col} < ${next}`,
    };
    const text = range[o === '!=' ? '<>' : o] as string;
    rewrites.push({ kind: 'date-range', detail: `${deparse(n)} → ${text}: a range on ${col} with bounds at local midnights (the session's zone has a fixed offset), evaluated once and shipped, so the data nodes filter and exclude chunks` });
    return parseExpression(text);
  });
}

/** The timestamptz column whose local date `n` is (`col::date`, `CAST(col AS date)`, `date(col)`). */
export function localDateOf(n: Node, columnType: (n: Node) => string | undefined): Node | undefined {
  let arg: Node | undefined;
  if ('TypeCast' in n && typeNameOf(n.TypeCast.typeName?.names) === 'date') arg = n.TypeCast.arg;
  else if ('FuncCall' in n && functionName(n.FuncCall) === 'date' && n.FuncCall.args?.length === 1 && n.FuncCall.over === undefined) arg = n.FuncCall.args[0];
  return arg !== undefined && 'ColumnRef' in arg && columnType(arg) === 'timestamptz' ? arg : undefined;
}

function typeNameOf(names: readonly Node[] | undefined): string | undefined {
  const last = names?.[names.length - 1];
  return last !== undefined && 'String' in last ? last.String.sval : undefined;
}

/**
 * Plainly a date and free of columns and volatile calls: a string literal (read as a date), a
 * literal or parameter cast to date, CURRENT_DATE, or one of those ± an integer literal.
 */
function isDate(n: Node): boolean {
  if ('A_Const' in n) return n.A_Const.sval !== undefined;
  if ('SQLValueFunction' in n) return n.SQLValueFunction.op === 'SVFOP_CURRENT_DATE';
  if ('TypeCast' in n) {
    const arg = n.TypeCast.arg;
    return typeNameOf(n.TypeCast.typeName?.names) === 'date' && arg !== undefined && ('A_Const' in arg || 'ParamRef' in arg);
  }
  if ('A_Expr' in n && n.A_Expr.kind === 'AEXPR_OP' && n.A_Expr.lexpr !== undefined && n.A_Expr.rexpr !== undefined) {
    const op = (n.A_Expr.name ?? []).map((x) => ('String' in x ? x.String.sval : '')).join('');
    const r = n.A_Expr.rexpr;
    return (op === '+' || op === '-') && 'A_Const' in r && r.A_Const.ival !== undefined && !('A_Const' in n.A_Expr.lexpr) && isDate(n.A_Expr.lexpr);
  }
  return false;
}
