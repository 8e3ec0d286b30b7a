/**
 * GROUP BY keys postgres_fdw keeps on the access node only because of what is done to a value it
 * would ship: `device_id::text` (a dashboard's series name), `to_char(date_bin(…), 'YYYY-MM-DD')`,
 * `COALESCE(region, '?')`. Such a key is a function F of that value x, so the groups of x are
 * finer than those of F(x): each shard groups by x, which ships, and the access node applies F to
 * each group's x and groups the shards' parts by that (as localKeys.ts does for keys that read
 * the session's zone):
 *
 *   device_id::text  → shards: device_id   access node: g::text
 *
 * Only keys of one such value, never the bare time column or a floating-point column (a group per
 * instant or per reading would ship about every row), and F only of casts, operators, COALESCE,
 * GREATEST/LEAST and built-ins the shippability model knows not to be volatile (a volatile F could
 * differ between the rows of one group of x).
 */
import type { Node } from '@pgsql/types';
import { containsNode, operatorName, transform } from './ast.js';
import type { LocalKey } from './localKeys.js';
import { deparse, parseExpression } from './parser.js';
import { baseType, inferType, resolveColumn, type Scope } from './scope.js';
import { deterministicCall, hasColumn, unshippable } from './shippable.js';

/** Built-in operators of numbers, text and comparisons (an operator of one's own could call anything). */
const OPERATORS = new Set(['+', '-', '*', '/', '%', '^', '||', '=', '<>', '!=', '<', '<=', '>', '>=']);
const TOO_FINE = new Set(['timestamptz', 'timestamp', 'double precision', 'float8', 'real', 'float4', 'numeric']);

export function wrappedKey(node: Node, scope: Scope, timeColumn: string | undefined): LocalKey | undefined {
  const inners = new Map<string, Node>();
  let refused = false;
  const visit = (n: Node): void => {
    if (refused) return;
    const columns = hasColumn(n);
    if (columns && unshippable(n, scope) === undefined) {
      inners.set(deparse(n), n);
      return;
    }
    if (!columns) {
      // Constants and session values (the same for every row); never a sub-select or a volatile call.
      if (containsNode(n, (x) => 'SubLink' in x || ('FuncCall' in x && !deterministicCall(x.FuncCall)))) refused = true;
      return;
    }
    if ('FuncCall' in n && deterministicCall(n.FuncCall) && n.FuncCall.over === undefined && n.FuncCall.agg_filter === undefined) n.FuncCall.args?.forEach(visit);
    else if ('TypeCast' in n && n.TypeCast.arg !== undefined) visit(n.TypeCast.arg);
    else if ('A_Expr' in n && n.A_Expr.kind === 'AEXPR_OP' && OPERATORS.has(operatorName(n.A_Expr) ?? '')) [n.A_Expr.lexpr, n.A_Expr.rexpr].forEach((side) => side !== undefined && visit(side));
    else if ('CoalesceExpr' in n) n.CoalesceExpr.args?.forEach(visit);
    else if ('MinMaxExpr' in n) n.MinMaxExpr.args?.forEach(visit);
    else refused = true;
  };
  visit(node);
  const [[text, inner] = []] = [...inners];
  if (refused || inners.size !== 1 || text === undefined || inner === undefined) return undefined;
  if ('ColumnRef' in inner) {
    const column = resolveColumn(inner.ColumnRef, scope);
    if (column === undefined || column.column === timeColumn || TOO_FINE.has(baseType(column.type))) return undefined;
  } else if (TOO_FINE.has(baseType(inferType(inner, scope) ?? '')) && !text.startsWith('date_bin(')) return undefined;
  return {
    shard: text,
    finish: (g) => deparse(transform(node, (n) => (deparse(n) === text ? parseExpression(g) : undefined))),
  };
}
