/**
 * `x IN (SELECT y FROM …)` becomes `x = ANY(ARRAY(SELECT y FROM …))`. Both compare x with each y
 * by the same operator, with the same three-valued result (an empty list gives false), but the
 * ARRAY sub-select is an InitPlan: evaluated once on the access node and sent to the data nodes
 * as an array parameter, where a semi-join with a local table could not be shipped at all.
 */
import type { Node, SelectStmt, SubLink } from '@pgsql/types';
import { columnPath, isStar, replaceTop, stringValue, walk } from './ast.js';
import type { Rewrite, Unchanged } from './model.js';
import { deparse, parseExpression } from './parser.js';

export function rewriteInSubqueries(where: Node, rewrites: Rewrite[], unchanged: Unchanged[]): Node {
  return replaceTop(where, (node) => ('SubLink' in node ? (convert(node.SubLink, rewrites, unchanged) ?? node) : undefined));
}

function convert(link: SubLink, rewrites: Rewrite[], unchanged: Unchanged[]): Node | undefined {
  if (link.subLinkType !== 'ANY_SUBLINK' || link.testexpr === undefined || link.subselect === undefined || !('SelectStmt' in link.subselect)) return undefined;
  const operator = (link.operName ?? []).map((n) => stringValue(n)).join('.');
  if (operator !== '' && operator !== '=') return undefined;
  if ('RowExpr' in link.testexpr) {
    unchanged.push({ kind: 'in-subquery', reason: `${deparse({ SubLink: link })}: a row-valued IN has no array form` });
    return undefined;
  }
  const select = link.subselect.SelectStmt;
  const first = select.targetList?.[0];
  if (select.op === 'SETOP_NONE' && ((select.targetList ?? []).length !== 1 || (first !== undefined && 'ResTarget' in first && first.ResTarget.val !== undefined && isStar(first.ResTarget.val)))) return undefined;
  const outer = correlation(select);
  if (outer !== undefined) {
    unchanged.push({ kind: 'in-subquery', reason: `IN (SELECT …) refers to ${outer} of the outer query, so it is not one list for the whole statement` });
    return undefined;
  }
  const text = `${deparse(link.testexpr)} = ANY(ARRAY(${deparse(link.subselect)}))`;
  rewrites.push({ kind: 'in-subquery', detail: `${deparse(link.testexpr)} IN (SELECT …) → = ANY(ARRAY(SELECT …)): the list is computed once on the access node and shipped as an array` });
  return parseExpression(text);
}

/** A qualified column reference inside `select` to a name its own FROM lists do not define. */
export function correlation(select: SelectStmt): string | undefined {
  const names = new Set<string>();
  const refs: string[][] = [];
  walk({ SelectStmt: select }, (n) => {
    if ('RangeVar' in n) names.add(n.RangeVar.alias?.aliasname ?? n.RangeVar.relname ?? '');
    if ('RangeSubselect' in n && n.RangeSubselect.alias?.aliasname !== undefined) names.add(n.RangeSubselect.alias.aliasname);
    if ('RangeFunction' in n && n.RangeFunction.alias?.aliasname !== undefined) names.add(n.RangeFunction.alias.aliasname);
    if ('CommonTableExpr' in n && n.CommonTableExpr.ctename !== undefined) names.add(n.CommonTableExpr.ctename);
    if ('ColumnRef' in n) {
      const path = columnPath(n.ColumnRef);
      if (path !== undefined && path.length >= 2) refs.push(path);
    }
  });
  for (const path of refs) {
    const qualifier = path.length >= 3 ? (path[path.length - 2] as string) : (path[0] as string);
    if (!names.has(qualifier)) return path.join('.');
  }
  return undefined;
}
