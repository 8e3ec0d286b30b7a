/**
 * Lastpoint: the newest row of each space key, read from the per-shard lastpoint views
 * (`lastpoint: true`, src/sql/lastpoint.ts) instead of the hypertable. Each view returns one row
 * per key of its shard, found by a loose index scan on the data node; a key lives in one shard,
 * so the UNION ALL of the views holds exactly the newest row of every key. With node views, each
 * data node's lastpoint view (the UNION ALL of its shards', src/sql/nodeViews.ts) is read instead:
 * the same rows, one remote query a node.
 *
 *   SELECT DISTINCT ON (space) … FROM h [WHERE <only the space key>] ORDER BY space, time DESC
 *     the hypertable in the FROM becomes that union (same alias, same columns); DISTINCT ON,
 *     ORDER BY and the filter stay and run over one row per key. A filter on the key alone keeps
 *     or drops all rows of a key together, so it commutes with taking each key's newest row.
 *   … JOIN LATERAL (SELECT * FROM h WHERE h.space = outer ORDER BY time DESC LIMIT 1) AS b ON true
 *     (TSBS lastpoint) the LATERAL probe becomes a plain join with the union ON b.space = outer:
 *     per outer row the one newest row of its key, or none, as before.
 *
 * Ties (two rows of a key at its newest time) are broken arbitrarily here as in the original.
 */
import type { JoinExpr, Node, RangeSubselect, SelectStmt, SortBy } from '@pgsql/types';
import { quoteIdent, quoteQualified } from '../sql/quote.js';
import { columnPath, containsNode, integerConstant, isStar, walk } from './ast.js';
import { guardArm } from './access.js';
import type { QualifiedName } from '../plan/layout.js';
import { isAggregateCall } from './aggregates.js';
import type { DistributedTable, RoleAccess, Rewrite, Unchanged } from './model.js';
import { deparse, parseSelect } from './parser.js';
import { resolveColumn, type Scope } from './scope.js';
import { deniedTo } from './shards.js';
import { outputs, resolveItem } from './outputs.js';

export interface LastpointOutcome {
  readonly rewrites: Rewrite[];
  readonly unchanged: Unchanged[];
}

const NONE: LastpointOutcome = { rewrites: [], unchanged: [] };
const refuse = (reason: string): LastpointOutcome => ({ rewrites: [], unchanged: [{ kind: 'lastpoint', reason }] });
/** The access node's work that is left, said once a rewrite is made (the audit sees it as work over shard rows). */
const LEFT = (what: string): Unchanged => ({ kind: 'lastpoint', reason: `${what} runs on the access node over the lastpoint views' rows, one per key and shard (postgres_fdw ships neither a DISTINCT nor a join with a local table)` });

/**
 * The hypertable's lastpoint tables, when every shard has one: each node's (one remote query a
 * data node) when every node view has one, else each shard's.
 */
function views(table: DistributedTable): { readonly tables: QualifiedName[]; readonly said: string; readonly how: string } | undefined {
  const shards = table.shards.map((s) => s.lastpoint);
  if (!shards.every((v) => v !== undefined)) return undefined;
  const nodes = (table.nodes ?? []).map((n) => n.lastpoint);
  if (nodes.length > 0 && nodes.every((v) => v !== undefined)) return { tables: nodes, said: `the ${nodes.length} data nodes' lastpoint views`, how: `each key's newest row, by a loose index scan on its shard; one remote query a data node` };
  return { tables: shards, said: `the ${shards.length} shards' lastpoint views`, how: `each key's newest row, by a loose index scan on its data node` };
}

/** `(SELECT cols FROM v0 UNION ALL … UNION ALL <guard>) AS alias`, as a FROM item. */
function unionOfViews(table: DistributedTable, lastpoints: readonly QualifiedName[], alias: string): Node {
  const columns = table.columns.map((c) => quoteIdent(c.name)).join(', ');
  const arms = lastpoints.map((v) => `SELECT ${columns} FROM ${quoteQualified(v.schema, v.name)}`);
  // Re-checks at run time that the role may read the hypertable whole, with no row security (access.ts).
  arms.push(guardArm(table.columns.length, [table.table]));
  const from = parseSelect(`SELECT * FROM (${arms.join(' UNION ALL ')}) AS ${quoteIdent(alias)}`).fromClause?.[0];
  if (from === undefined) throw new TypeError('no FROM item parsed');
  return from;
}

const isDesc = (s: SortBy): boolean => s.sortby_dir === 'SORTBY_DESC' && (s.sortby_nulls === undefined || s.sortby_nulls === 'SORTBY_NULLS_DEFAULT' || s.sortby_nulls === 'SORTBY_NULLS_FIRST');
const column = (n: Node | undefined, scope: Scope): string | undefined => (n !== undefined && 'ColumnRef' in n ? resolveColumn(n.ColumnRef, scope)?.column : undefined);

/** Whether a ColumnRef names something outside `scope`'s one relation (an outer query's column). */
function isOuter(n: Node, scope: Scope, table: DistributedTable, refName: string): boolean {
  if (!('ColumnRef' in n)) return false;
  const path = columnPath(n.ColumnRef);
  if (path === undefined || resolveColumn(n.ColumnRef, scope) !== undefined) return false;
  if (path.length === 1) return !table.columns.some((c) => c.name === path[0]);
  return path.length === 2 && path[0] !== refName;
}

/** Shapes this module does not look into: set operations, CTEs, grouping, windows, locking. */
function plain(stmt: SelectStmt): boolean {
  return (stmt.op === undefined || stmt.op === 'SETOP_NONE') && stmt.withClause === undefined && (stmt.groupClause ?? []).length === 0 && stmt.havingClause === undefined && (stmt.windowClause ?? []).length === 0 && (stmt.lockingClause ?? []).length === 0 && stmt.intoClause === undefined;
}

/**
 * The plain form, on a SELECT over the hypertable alone. `NONE` when it is not DISTINCT ON or the
 * hypertable has no lastpoint views; a reason when it is, and the rewrite would not be exact.
 */
export function lastpointDistinctOn(stmt: SelectStmt, scope: Scope, access: RoleAccess | undefined): LastpointOutcome {
  const relation = scope.relations[0];
  const table = relation?.hypertable;
  if (scope.relations.length !== 1 || relation === undefined || table === undefined || !scope.simple) return NONE;
  const distinct = stmt.distinctClause ?? [];
  if (distinct.length === 0 || Object.keys(distinct[0] as object).length === 0) return NONE;
  const lastpoints = views(table);
  if (lastpoints === undefined || table.timeColumn === undefined) return NONE;
  const from = stmt.fromClause ?? [];
  if (!plain(stmt) || from.length !== 1 || !('RangeVar' in (from[0] as Node))) return refuse('only a plain SELECT DISTINCT ON from the hypertable alone (no GROUP BY, window, CTE or lock) is read from the lastpoint views');
  // DISTINCT ON and ORDER BY name outputs before input columns (outputs.ts).
  const list = outputs(stmt, scope);
  const resolved = (item: Node | undefined, clause: 'ORDER BY' | 'DISTINCT ON'): Node | undefined => {
    const r = item === undefined ? undefined : resolveItem(item, list, scope, clause);
    return r === undefined || typeof r === 'string' ? undefined : r.expr;
  };
  if (distinct.length !== 1 || column(resolved(distinct[0], 'DISTINCT ON'), scope) !== table.spaceColumn) return refuse(`DISTINCT ON (${distinct.map((d) => deparse(d)).join(', ')}) is not DISTINCT ON the space key ${table.spaceColumn} alone: the lastpoint views hold one row per space key`);
  const sorts = (stmt.sortClause ?? []).map((s) => ('SortBy' in s ? s.SortBy : undefined));
  const [first, second] = sorts;
  if (sorts.length !== 2 || first === undefined || second === undefined || column(resolved(first.node, 'ORDER BY'), scope) !== table.spaceColumn || (first.useOp ?? []).length > 0) {
    return refuse(`ORDER BY is not ${table.spaceColumn}, ${table.timeColumn} DESC: the lastpoint views hold each key's newest row, no other`);
  }
  if (column(resolved(second.node, 'ORDER BY'), scope) !== table.timeColumn || !isDesc(second) || (second.useOp ?? []).length > 0) return refuse(`ORDER BY ${deparse(second.node as Node)} is not ${table.timeColumn} DESC: the lastpoint views hold each key's newest row`);
  if (stmt.whereClause !== undefined) {
    const other = firstOtherColumn(stmt.whereClause, scope, table.spaceColumn);
    if (other !== undefined) return refuse(`the WHERE reads ${other}, not the space key alone (a filter on time or another column changes which row is a key's newest; the lastpoint views hold only that one)`);
    if (containsNode(stmt.whereClause, (n) => 'SubLink' in n || 'FuncCall' in n)) return refuse('the WHERE calls a function or a sub-select, which a per-key filter might not evaluate as a per-row one would');
  }
  if ((stmt.targetList ?? []).some((t) => containsNode(t, (n) => ('FuncCall' in n && (n.FuncCall.over !== undefined || isAggregateCall(n.FuncCall))) || 'SubLink' in n))) {
    return refuse('the SELECT list has a window function, an aggregate or a sub-select');
  }
  if (wholeRow(stmt, relation.refName, table)) return refuse(`${relation.refName} is used as a whole row, whose type a sub-select would change`);
  const denied = access === undefined ? undefined : deniedTo(access, [table.table]);
  if (denied !== undefined) return { rewrites: [], unchanged: [{ kind: 'privileges', reason: denied }] };
  stmt.fromClause = [unionOfViews(table, lastpoints.tables, relation.refName)];
  return {
    rewrites: [{ kind: 'lastpoint', detail: `DISTINCT ON (${table.spaceColumn}) … ORDER BY ${table.spaceColumn}, ${table.timeColumn} DESC: read from ${lastpoints.said} (${lastpoints.how})` }],
    unchanged: [LEFT('DISTINCT ON')],
  };
}

/** A column of the relation other than `space` that `node` reads, or undefined. */
function firstOtherColumn(node: Node, scope: Scope, space: string): string | undefined {
  let found: string | undefined;
  walk(node, (n) => {
    if (found !== undefined || !('ColumnRef' in n)) return;
    const c = resolveColumn(n.ColumnRef, scope)?.column;
    if (c !== space) found = c ?? deparse(n);
  });
  return found;
}

/** Whether the statement reads `refName` as a whole-row value (`SELECT c FROM h AS c`). */
function wholeRow(stmt: SelectStmt, refName: string, table: DistributedTable): boolean {
  if (table.columns.some((c) => c.name === refName)) return false;
  return containsNode({ SelectStmt: stmt }, (n) => 'ColumnRef' in n && !isStar(n) && (columnPath(n.ColumnRef) ?? []).join('.') === refName);
}

/**
 * The LATERAL form, on a SELECT whose FROM joins a LATERAL sub-select probing the hypertable for
 * one key's newest row. `scopeOf` gives a sub-select's scope.
 */
export function lastpointLateral(stmt: SelectStmt, scopeOf: (s: SelectStmt) => Scope | undefined, access: RoleAccess | undefined): LastpointOutcome {
  const out: LastpointOutcome = { rewrites: [], unchanged: [] };
  const visit = (item: Node): void => {
    if (!('JoinExpr' in item)) return;
    const join = item.JoinExpr;
    if (join.larg !== undefined) visit(join.larg);
    if (join.rarg !== undefined) visit(join.rarg);
    const rarg = join.rarg;
    if (rarg === undefined || !('RangeSubselect' in rarg) || rarg.RangeSubselect.lateral !== true) return;
    const outcome = lateralJoin(join, rarg.RangeSubselect, scopeOf, access);
    out.rewrites.push(...outcome.rewrites);
    out.unchanged.push(...outcome.unchanged);
  };
  for (const item of stmt.fromClause ?? []) visit(item);
  return out;
}

function lateralJoin(join: JoinExpr, sub: RangeSubselect, scopeOf: (s: SelectStmt) => Scope | undefined, access: RoleAccess | undefined): LastpointOutcome {
  const inner = sub.subquery !== undefined && 'SelectStmt' in sub.subquery ? sub.subquery.SelectStmt : undefined;
  const scope = inner === undefined ? undefined : scopeOf(inner);
  const relation = scope?.relations[0];
  const table = relation?.hypertable;
  if (inner === undefined || scope === undefined || relation === undefined || table === undefined || scope.relations.length !== 1 || !scope.simple) return NONE;
  const lastpoints = views(table);
  // Only a probe for one newest row is this module's to judge.
  if (lastpoints === undefined || table.timeColumn === undefined || inner.limitCount === undefined || (inner.sortClause ?? []).length === 0) return NONE;
  const alias = sub.alias?.aliasname;
  const why = `LATERAL (… ${table.table.name} … LIMIT 1)`;
  if (alias === undefined || (sub.alias?.colnames ?? []).length > 0) return refuse(`${why} has no alias, or renames its columns`);
  if ((join.jointype !== 'JOIN_INNER' && join.jointype !== 'JOIN_LEFT') || join.isNatural === true || (join.usingClause ?? []).length > 0) return refuse(`${why} is not joined by INNER or LEFT JOIN … ON true`);
  if (join.quals !== undefined && !('A_Const' in join.quals && join.quals.A_Const.boolval?.boolval === true)) return refuse(`${why} is joined ON a condition, not ON true`);
  if (!plain(inner) || (inner.distinctClause ?? []).length > 0 || inner.limitOffset !== undefined || integerConstant(inner.limitCount) !== 1) return refuse(`${why} is not a plain ORDER BY … LIMIT 1 probe`);
  const targets = inner.targetList ?? [];
  const target = targets[0];
  if (targets.length !== 1 || target === undefined || !('ResTarget' in target) || target.ResTarget.val === undefined || !isStar(target.ResTarget.val)) {
    return refuse(`${why} does not select *: the join with the lastpoint views needs the key among its columns`);
  }
  const sorts = (inner.sortClause ?? []).map((s) => ('SortBy' in s ? s.SortBy : undefined));
  const sort = sorts[0];
  if (sorts.length !== 1 || sort === undefined || column(sort.node, scope) !== table.timeColumn || !isDesc(sort) || (sort.useOp ?? []).length > 0) return refuse(`${why} is not ordered by ${table.timeColumn} DESC alone`);
  const where = inner.whereClause;
  const eq = where !== undefined && 'A_Expr' in where && where.A_Expr.kind === 'AEXPR_OP' && (where.A_Expr.name ?? []).length === 1 && deparse((where.A_Expr.name ?? [])[0] as Node) === '"="' ? where.A_Expr : undefined;
  const sides = eq === undefined || eq.lexpr === undefined || eq.rexpr === undefined ? [] : [eq.lexpr, eq.rexpr];
  const keySide = sides.findIndex((s) => column(s, scope) === table.spaceColumn);
  const outer = sides[1 - keySide];
  if (keySide < 0 || outer === undefined || !isOuter(outer, scope, table, relation.refName)) {
    return refuse(`${why}: its WHERE is not ${table.spaceColumn} = a column of the outer query alone (a filter on time or another column changes which row is a key's newest)`);
  }
  const denied = access === undefined ? undefined : deniedTo(access, [table.table]);
  if (denied !== undefined) return { rewrites: [], unchanged: [{ kind: 'privileges', reason: denied }] };
  const union = unionOfViews(table, lastpoints.tables, alias);
  join.rarg = union;
  join.quals = { A_Expr: { kind: 'AEXPR_OP', name: [{ String: { sval: '=' } }], lexpr: { ColumnRef: { fields: [{ String: { sval: alias } }, { String: { sval: table.spaceColumn } }] } }, rexpr: outer } };
  return {
    rewrites: [{ kind: 'lastpoint', detail: `LATERAL newest row of ${table.table.name} per ${table.spaceColumn} = ${deparse(outer)} → a join ON ${alias}.${table.spaceColumn} = ${deparse(outer)} with ${lastpoints.said} (${lastpoints.how})` }],
    unchanged: [LEFT('the join')],
  };
}
