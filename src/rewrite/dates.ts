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
 * InitPlan, as stable.ts does) and shipped; the range lets each data node exclude chunks.
 *
 * Where the offset changes (daylight saving) the same holds as long as no change touches a local
 * midnight: each midnight then exists once and the local date never moves back (a change that
 * skips or repeats a midnight breaks both). Only the changes near a date's own midnights matter,
 * and the access node's zone data says from which date on to 2099-12-29 none touches one
 * (zoneGrid.ts, `midnightsFixedSince`: all of 1900–2100 in America/New_York, after the 1940s in
 * Europe/Berlin). A literal outside those dates is left as written; any other date is guarded
 * (42P01 outside them, as access.ts's guard), and the statement then runs as written. Where
 * changes still touch midnights (America/Santiago), it is left as written.
 */
import type { A_Expr, Node } from '@pgsql/types';
import { quoteLiteral } from '../sql/quote.js';
import { guardFailure } from './guardFailure.js';
import { FLIPPED_OPERATORS, functionName, operatorName, replaceTop } from './ast.js';
import type { Rewrite } from './model.js';
import { deparse, parseExpression } from './parser.js';
import { MIDNIGHTS_UNTIL } from './zoneGrid.js';

/**
 * How a session's zone makes local dates ranges: a fixed offset (every date), or offset changes
 * that touch no midnight from `from` on to MIDNIGHTS_UNTIL (zoneGrid.ts's midnightsFixedSince).
 */
export type LocalDates = 'fixed' | { readonly from: string };

/** The relation name a date outside those dates fails with (at most 63 bytes, as access.ts's). */
export const DATE_SPAN_GUARD_NAME = 'hypershard: a date beyond the zone data read; run as written';


/** Rewrites every `<timestamptz column>::date <op> <date>` in `node` to a range on the column. */
export function dateRanges(node: Node, rewrites: Rewrite[], columnType: (n: Node) => string | undefined, zone: LocalDates | undefined): Node {
  if (zone === undefined) return node;
  return replaceTop(node, (n) => {
    if (!('A_Expr' in n) || n.A_Expr.kind !== 'AEXPR_OP') return undefined;
    const e: A_Expr = n.A_Expr;
    const op = operatorName(e);
    if (FLIPPED_OPERATORS[op] === undefined || e.lexpr === undefined || e.rexpr === undefined) return undefined;
    const leftColumn = localDateOf(e.lexpr, columnType);
    const rightColumn = localDateOf(e.rexpr, columnType);
    const [column, value, o] =
      leftColumn !== undefined && isDate(e.rexpr) ? [leftColumn, e.rexpr, FLIPPED_OPERATORS[op] === '<>' ? '<>' : op] : rightColumn !== undefined && isDate(e.lexpr) ? [rightColumn, e.lexpr, FLIPPED_OPERATORS[op] as string] : [undefined, undefined, op];
    if (column === undefined || value === undefined) return undefined;
    // A literal outside the span would always fail the guard: left as written.
    const literal = literalDate(value);
    const span = zone === 'fixed' ? undefined : { first: zone.from, last: MIDNIGHTS_UNTIL };
    const known = span === undefined || (literal !== undefined && literal >= span.first && literal <= span.last);
    if (!known && literal !== undefined) return undefined;
    const col = deparse(column);
    const d = `(${deparse(value)})::date`;
    const midnight = (day: string): string => (span === undefined || known ? `${day}::timestamptz` : spanGuarded(d, day, span.first, span.last));
    const start = `(SELECT ${midnight(d)})`;
    const next = `(SELECT ${midnight(`(${d} + 1)`)})`;
    const range: Record<string, string> = {
      '=': `(${col} >= ${start} AND ${col} < ${next})`,
      '<>': `(${col} < ${start} OR ${col} >= ${next})`,
      '>=': `${col} >= ${start}`,
      '>': `${col} >= ${next}`,
      '<': `${col} < ${start}`,
      '<=': `${col} < ${next}`,
    };
    const text = range[o === '!=' ? '<>' : o] as string;
    const why = zone === 'fixed' ? "the session's zone has a fixed offset" : `no offset change of the session's zone touches a local midnight from ${zone.from} on, by the access node's zone data`;
    rewrites.push({ kind: 'date-range', detail: `${deparse(n)} → ${text}: a range on ${col} with bounds at local midnights (${why}), evaluated once and shipped, so the data nodes filter and exclude chunks` });
    return parseExpression(text);
  });
}

/** `day`'s midnight, or the guard's error when `d` is outside the dates the zone data covers. */
function spanGuarded(d: string, day: string, first: string, last: string): string {
  const fail = `CAST(${guardFailure(DATE_SPAN_GUARD_NAME)}::text AS timestamptz)`;
  return `CASE WHEN ${d} BETWEEN ${quoteLiteral(first)}::date AND ${quoteLiteral(last)}::date THEN ${day}::timestamptz ELSE ${fail} END`;
}

/** A date literal (`'2026-03-08'`, `'2026-03-08'::date`) as YYYY-MM-DD, known without running anything. */
function literalDate(n: Node): string | undefined {
  const literal = 'TypeCast' in n && n.TypeCast.arg !== undefined ? n.TypeCast.arg : n;
  const text = 'A_Const' in literal ? literal.A_Const.sval?.sval : undefined;
  return text !== undefined && /^\d{4}-\d{2}-\d{2}$/.test(text) ? text : undefined;
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
    const op = operatorName(n.A_Expr);
    const r = n.A_Expr.rexpr;
    return (op === '+' || op === '-') && 'A_Const' in r && r.A_Const.ival !== undefined && !('A_Const' in n.A_Expr.lexpr) && isDate(n.A_Expr.lexpr);
  }
  return false;
}
