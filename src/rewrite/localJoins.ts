/**
 * Joins the rewriter leaves on the access node: a distributed hypertable's rows joined with a FROM
 * item postgres_fdw cannot take to a data node with them (a VALUES list, a function, a table or
 * view of the access node, a sub-select or CTE that reads no hypertable). postgres_fdw joins only
 * foreign tables of one server, so such a join runs over the rows the shards send, whatever else
 * of the statement ships. Said as a reason, so that "postgres_fdw already ships" is never said of it.
 *
 * Two hypertables joined are not named (co-located shards can join on their data node), nor are
 * reference tables (the reference-join rewrite, or its reason, speaks for them), nor a sub-select
 * or CTE that aggregates a hypertable (its groups are joined, not its rows).
 */
import type { Node, SelectStmt } from '@pgsql/types';
import { quoteIdent } from '../sql/quote.js';
import { isAggregateCall } from './aggregates.js';
import { walk } from './ast.js';
import type { Scope } from './scope.js';

type Side = 'hypertable' | 'local' | 'neutral';

/**
 * The first FROM item of `stmt` joined on the access node with hypertable rows, described
 * (`the VALUES list v`), or undefined. `readsHypertable` tells whether a sub-select or a CTE of
 * that name reads one.
 */
export function localJoin(stmt: SelectStmt, scope: Scope, readsHypertable: (node: Node) => boolean, cteReads: ReadonlyMap<string, boolean>): string | undefined {
  const items: Node[] = [];
  const flatten = (item: Node): void => {
    if ('JoinExpr' in item) {
      if (item.JoinExpr.larg !== undefined) flatten(item.JoinExpr.larg);
      if (item.JoinExpr.rarg !== undefined) flatten(item.JoinExpr.rarg);
    } else items.push(item);
  };
  for (const item of stmt.fromClause ?? []) flatten(item);
  if (items.length < 2) return undefined;
  const sides = items.map((item) => ({ item, side: sideOf(item, scope, readsHypertable, cteReads) }));
  if (!sides.some((s) => s.side === 'hypertable')) return undefined;
  const local = sides.find((s) => s.side === 'local');
  return local === undefined ? undefined : describe(local.item);
}

function sideOf(item: Node, scope: Scope, readsHypertable: (node: Node) => boolean, cteReads: ReadonlyMap<string, boolean>): Side {
  if ('RangeVar' in item) {
    const rv = item.RangeVar;
    const cte = rv.schemaname === undefined ? cteReads.get(rv.relname ?? '') : undefined;
    if (cte !== undefined) return cte ? 'hypertable' : 'local';
    const relation = scope.relations.find((r) => r.rangeVar === rv);
    if (relation?.hypertable !== undefined) return 'hypertable';
    return relation?.reference !== undefined ? 'neutral' : 'local';
  }
  if ('RangeSubselect' in item) return item.RangeSubselect.subquery !== undefined && readsHypertable(item.RangeSubselect.subquery) ? 'hypertable' : 'local';
  return 'local';
}

function describe(item: Node): string {
  if ('RangeVar' in item) {
    const rv = item.RangeVar;
    const name = `${rv.schemaname === undefined ? '' : `${shown(rv.schemaname)}.`}${shown(rv.relname ?? '')}`;
    return `${name}${rv.alias?.aliasname === undefined ? '' : ` ${shown(rv.alias.aliasname)}`} (not distributed)`;
  }
  const alias = 'RangeSubselect' in item ? item.RangeSubselect.alias?.aliasname : 'RangeFunction' in item ? item.RangeFunction.alias?.aliasname : undefined;
  const named = alias === undefined ? '' : ` ${shown(alias)}`;
  if ('RangeSubselect' in item) {
    const values = item.RangeSubselect.subquery !== undefined && 'SelectStmt' in item.RangeSubselect.subquery && item.RangeSubselect.subquery.SelectStmt.valuesLists !== undefined;
    return values ? `the VALUES list${named}` : `the sub-select${named}`;
  }
  if ('RangeFunction' in item) return `the function call${named}`;
  return 'a FROM item of the access node';
}

/**
 * Whether a SELECT (not a set operation: its arms are asked each) hands on fewer rows than it
 * reads: it groups, aggregates, takes DISTINCT or a LIMIT at its top (a LATERAL newest-row probe
 * is one). A join with its output is a join with the groups or first rows the shards made (when that
 * ships; else its own reason speaks), not with every row they hold.
 */
export function reducesRows(node: Node): boolean {
  if (!('SelectStmt' in node)) return false;
  const s = node.SelectStmt;
  if ((s.groupClause ?? []).length > 0 || s.distinctClause !== undefined || s.havingClause !== undefined || s.limitCount !== undefined) return true;
  let aggregate = false;
  for (const target of s.targetList ?? []) {
    walk(target, (n) => {
      // An aggregate inside a sub-select is that sub-select's.
      if ('SubLink' in n) return false;
      if ('FuncCall' in n && isAggregateCall(n.FuncCall)) aggregate = true;
      return !aggregate;
    });
  }
  return aggregate;
}

/** A name as SQL would need it written: bare when it is a plain lower-case identifier. */
const shown = (name: string): string => (/^[a-z_][a-z0-9_$]*$/.test(name) ? name : quoteIdent(name));
