/**
 * Stable expressions as constants. postgres_fdw ships only immutable expressions, so a filter
 * like `time >= now() - interval '1 hour'` stays on the access node and every row of the
 * window's chunks crosses the network. Wrapped as an uncorrelated scalar sub-select, the same
 * expression becomes an InitPlan: evaluated once on the access node, in the statement's own
 * transaction and settings, and sent to the data nodes as a parameter value. The answer cannot
 * change: a stable expression without column references has one value per statement.
 */
import type { Node } from '@pgsql/types';
import { functionName, operatorName, replaceTop } from './ast.js';
import { localDateOf } from './dates.js';
import type { Rewrite } from './model.js';
import { deparse, parseExpression } from './parser.js';

/** Functions that read the clock or the session (STABLE) and that we wrap. */
const STABLE = new Set(['now', 'transaction_timestamp', 'statement_timestamp', 'date_trunc', 'to_timestamp', 'to_date', 'age', 'make_timestamptz', 'date_part', 'extract', 'current_setting', 'timezone']);
/** Functions safe inside a wrapped expression (immutable or stable; never volatile). */
const SAFE = new Set([...STABLE, 'date_bin', 'make_interval', 'make_timestamp', 'make_date', 'justify_days', 'justify_hours', 'justify_interval', 'abs', 'greatest', 'least', 'coalesce', 'nullif', 'round', 'trunc', 'floor', 'ceil', 'to_char', 'lower', 'upper']);

const EXPRESSION_KINDS = new Set(['FuncCall', 'SQLValueFunction', 'A_Expr', 'TypeCast', 'CoalesceExpr', 'MinMaxExpr', 'CaseExpr']);

interface Assessment {
  /** Column- and volatile-free, so evaluating it once is exact. */
  readonly constant: boolean;
  /** Holds something postgres_fdw will not ship (a stable function, a time literal operation). */
  readonly stable: boolean;
}

function assess(node: Node): Assessment {
  const kind = Object.keys(node)[0] as string;
  const body = (node as Record<string, unknown>)[kind];
  if (kind === 'ColumnRef' || kind === 'SubLink' || kind === 'SelectStmt' || kind === 'A_Star') return { constant: false, stable: false };
  if (kind === 'A_Const' || kind === 'ParamRef') return { constant: true, stable: false };
  if (kind === 'SQLValueFunction') return { constant: true, stable: true };
  let stable = false;
  if (kind === 'FuncCall') {
    const call = (node as { FuncCall: import('@pgsql/types').FuncCall }).FuncCall;
    const name = functionName(call);
    if (!SAFE.has(name) || call.over !== undefined || call.agg_star === true || call.agg_distinct === true || call.agg_filter !== undefined) return { constant: false, stable: false };
    stable = STABLE.has(name);
  }
  if (kind === 'TypeCast') {
    // A cast of a literal to a time type is folded at parse time; a cast of a computed value is not.
    const cast = (node as { TypeCast: import('@pgsql/types').TypeCast }).TypeCast;
    const arg = cast.arg;
    if (arg !== undefined && !isLiteral(arg)) stable = true;
  }
  if (kind === 'A_Expr') {
    // `timestamptz ± interval` is stable (it reads TimeZone for day arithmetic).
    stable = true;
  }
  let constant = true;
  const visit = (value: unknown): void => {
    if (!constant) return;
    if (Array.isArray(value)) for (const v of value) visit(v);
    else if (value !== null && typeof value === 'object') {
      const keys = Object.keys(value);
      if (keys.length === 1 && /^[A-Z]/.test(keys[0] as string)) {
        const a = assess(value as Node);
        constant &&= a.constant;
        stable ||= a.stable;
      } else for (const k of keys) visit((value as Record<string, unknown>)[k]);
    }
  };
  visit(body);
  return { constant, stable };
}

/**
 * Wraps every maximal stable constant sub-expression of `node`; returns the new tree. One compared
 * with a timestamptz column (`columnType` tells) is cast to timestamptz inside the sub-select
 * when it may be a date or a timestamp: the comparison would convert it the same way (in the
 * session's TimeZone), and a timestamptz-to-date comparison is itself STABLE and never shipped.
 */
export function wrapStable(node: Node, rewrites: Rewrite[], columnType: (n: Node) => string | undefined = () => undefined): Node {
  const wrap = (n: Node, cast: boolean): Node | undefined => {
    if (!EXPRESSION_KINDS.has(Object.keys(n)[0] as string)) return undefined;
    const a = assess(n);
    if (!a.constant || !a.stable || isTimeLiteralCast(n)) return undefined;
    const text = deparse(n);
    const typed = cast && resultType(n) !== 'timestamptz';
    rewrites.push({ kind: 'stable-expression', detail: `${text} → evaluated once on the access node (InitPlan)${typed ? ' as a timestamptz, as the comparison with the column converts it' : ''}, shipped as a constant` });
    return parseExpression(typed ? `(SELECT (${text})::timestamptz)` : `(SELECT ${text})`);
  };
  return replaceTop(node, (n) => {
    if ('A_Expr' in n && (n.A_Expr.kind === 'AEXPR_OP_ANY' || n.A_Expr.kind === 'AEXPR_OP_ALL')) {
      // `x = ANY ((SELECT …))` reads as a sub-select of rows, not one array: the array side stays.
      const lexpr = n.A_Expr.lexpr;
      return lexpr === undefined ? n : { A_Expr: { ...n.A_Expr, lexpr: wrapStable(lexpr, rewrites, columnType) } };
    }
    if ('A_Expr' in n && COMPARISON_KINDS.has(n.A_Expr.kind ?? '') && n.A_Expr.lexpr !== undefined && n.A_Expr.rexpr !== undefined) {
      const e = n.A_Expr;
      const op = operatorName(e);
      // A column's local date (left where dates.ts could not make a range) is itself STABLE: the
      // comparison stays on the access node, so a constant beside it would ship nothing.
      if (localDateOf(e.lexpr as Node, columnType) !== undefined || (e.kind === 'AEXPR_OP' && localDateOf(e.rexpr as Node, columnType) !== undefined)) return n;
      const left = columnType(e.lexpr as Node) === 'timestamptz';
      const right = e.kind === 'AEXPR_OP' && columnType(e.rexpr as Node) === 'timestamptz';
      if ((e.kind === 'AEXPR_OP' && !COMPARISONS.has(op)) || (!left && !right)) return wrap(n, false);
      const side = (x: Node, cast: boolean): Node => wrap(x, cast) ?? wrapStable(x, rewrites, columnType);
      const rexpr = 'List' in (e.rexpr as Node) ? { List: { items: ((e.rexpr as { List: { items?: Node[] } }).List.items ?? []).map((i) => side(i, left)) } } : side(e.rexpr as Node, left);
      return { A_Expr: { ...e, lexpr: side(e.lexpr as Node, right), rexpr } };
    }
    return wrap(n, false);
  });
}

const COMPARISONS = new Set(['=', '<>', '!=', '<', '<=', '>', '>=']);
const COMPARISON_KINDS = new Set(['AEXPR_OP', 'AEXPR_BETWEEN', 'AEXPR_NOT_BETWEEN', 'AEXPR_BETWEEN_SYM', 'AEXPR_NOT_BETWEEN_SYM']);
const TIMESTAMPTZ_FUNCTIONS = new Set(['now', 'transaction_timestamp', 'statement_timestamp', 'make_timestamptz', 'to_timestamp']);

/** The type of a stable expression where it is plainly timestamptz; undefined when it may be a date or timestamp. */
function resultType(n: Node): string | undefined {
  if ('SQLValueFunction' in n) return n.SQLValueFunction.op === 'SVFOP_CURRENT_TIMESTAMP' || n.SQLValueFunction.op === 'SVFOP_CURRENT_TIMESTAMP_N' ? 'timestamptz' : undefined;
  if ('FuncCall' in n) {
    const name = functionName(n.FuncCall);
    if (TIMESTAMPTZ_FUNCTIONS.has(name)) return 'timestamptz';
    if (name === 'date_trunc' && n.FuncCall.args?.[1] !== undefined && n.FuncCall.args.length === 2) return resultType(n.FuncCall.args[1]);
    return undefined;
  }
  if ('TypeCast' in n) {
    const names = n.TypeCast.typeName?.names ?? [];
    const last = names[names.length - 1];
    return last !== undefined && 'String' in last && last.String.sval === 'timestamptz' ? 'timestamptz' : undefined;
  }
  // timestamptz ± interval is a timestamptz; date ± interval a timestamp, date ± integer a date.
  if ('A_Expr' in n && n.A_Expr.lexpr !== undefined) return resultType(n.A_Expr.lexpr);
  return undefined;
}

/** `'2026-01-01'::timestamptz` is a constant at parse time, `$1::timestamptz` a parameter: both ship. */
function isTimeLiteralCast(node: Node): boolean {
  const arg = 'TypeCast' in node ? node.TypeCast.arg : undefined;
  return arg !== undefined && isLiteral(arg);
}

/** A literal, a parameter, or an ARRAY[…] of them: folded to a constant before planning, so a cast of it ships. */
function isLiteral(node: Node): boolean {
  if ('A_Const' in node || 'ParamRef' in node) return true;
  if ('TypeCast' in node) return node.TypeCast.arg !== undefined && isLiteral(node.TypeCast.arg);
  return 'A_ArrayExpr' in node && (node.A_ArrayExpr.elements ?? []).every(isLiteral);
}
