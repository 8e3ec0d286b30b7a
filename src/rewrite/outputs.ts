/**
 * What the items of ORDER BY, DISTINCT ON and GROUP BY stand for, resolved against the SELECT
 * list as PostgreSQL does (parse_clause.c, findTargetlistEntrySQL92). An integer constant is a
 * position in the list as `*` expands it. A bare name is first an output's name (its alias, or
 * the one FigureColname gives: `value::text` is named `value`), then an input column; in GROUP BY
 * the other way round. A name outputs of different expressions share is error 42702, and ORDER
 * BY under SELECT DISTINCT must name outputs (42P10): such statements are left for PostgreSQL to
 * refuse, since a rewrite could turn them into ones it answers (DISTINCT as GROUP BY does).
 */
import type { Node, SelectStmt } from '@pgsql/types';
import { columnName, columnPath, integerConstant, isStar, stringValue, transform, walk } from './ast.js';
import { deparse } from './parser.js';
import { resolveColumn, type Scope } from './scope.js';

export interface Output {
  /** Undefined when only the catalog could tell (see columnName). */
  readonly name: string | undefined;
  readonly expr: Node;
}

export type Clause = 'ORDER BY' | 'DISTINCT ON' | 'GROUP BY';

/** An item as an output (by position or name) or an expression over the inputs. */
export interface Resolved {
  readonly expr: Node;
  readonly output: boolean;
}

/**
 * The SELECT list as PostgreSQL expands it: `*` and `r.*` as the relations' columns. Undefined
 * when a `*` covers something whose columns are not known (a sub-select, a USING join's merged
 * columns).
 */
export function outputs(stmt: SelectStmt, scope: Scope): readonly Output[] | undefined {
  const out: Output[] = [];
  for (const t of stmt.targetList ?? []) {
    if (!('ResTarget' in t) || t.ResTarget.val === undefined) return undefined;
    const val = t.ResTarget.val;
    if (!isStar(val)) {
      out.push({ name: t.ResTarget.name ?? columnName(val), expr: val });
      continue;
    }
    const qualifier = (('ColumnRef' in val ? val.ColumnRef.fields : undefined) ?? []).slice(0, -1).map((f) => stringValue(f));
    if (qualifier.length > 1 || !scope.innerJoins || mergesColumns(stmt)) return undefined;
    const relations = qualifier.length === 0 ? scope.relations : scope.relations.filter((r) => r.refName === qualifier[0]);
    if (relations.length === 0) return undefined;
    for (const r of relations) {
      const table = r.hypertable ?? r.reference;
      if (table === undefined) return undefined;
      for (const c of table.columns) out.push({ name: c.name, expr: { ColumnRef: { fields: [{ String: { sval: r.refName } }, { String: { sval: c.name } }] } } });
    }
  }
  return out;
}

/** A join USING or NATURAL, whose `*` shows the joined columns once. */
function mergesColumns(stmt: SelectStmt): boolean {
  let found = false;
  for (const item of stmt.fromClause ?? []) {
    walk({ List: { items: [item] } }, (n) => {
      if ('JoinExpr' in n && (n.JoinExpr.isNatural === true || (n.JoinExpr.usingClause ?? []).length > 0)) found = true;
      return !found && !('SubLink' in n) && !('RangeSubselect' in n);
    });
  }
  return found;
}

/** Bare column names qualified with their relation, so equal expressions deparse equally. */
export function qualified(node: Node, scope: Scope): Node {
  return transform(node, (n) => {
    if (!('ColumnRef' in n)) return undefined;
    const path = columnPath(n.ColumnRef);
    const resolved = resolveColumn(n.ColumnRef, scope);
    if (path?.length !== 1 || resolved === undefined) return undefined;
    return { ColumnRef: { fields: [{ String: { sval: resolved.relation.refName } }, { String: { sval: path[0] as string } }] } };
  });
}

/** The name a bare one-field column reference (`x`, `"X"`) names, else undefined. */
export function bareName(node: Node): string | undefined {
  const path = 'ColumnRef' in node ? columnPath(node.ColumnRef) : undefined;
  return path?.length === 1 ? path[0] : undefined;
}

const same = (a: Node, b: Node, scope: Scope): boolean => deparse(qualified(a, scope)) === deparse(qualified(b, scope));

/**
 * What `item` of `clause` stands for, or why PostgreSQL refuses it (or the rewriter cannot tell
 * what it stands for).
 */
export function resolveItem(item: Node, list: readonly Output[] | undefined, scope: Scope, clause: Clause): Resolved | string {
  const position = integerConstant(item);
  if (position !== undefined) {
    const output = list?.[position - 1];
    if (list === undefined) return `${clause} ${position}: the columns a * stands for are not known here`;
    return output === undefined ? `${clause} position ${position} is not in select list` : { expr: output.expr, output: true };
  }
  const name = bareName(item);
  if (name === undefined) return { expr: item, output: false };
  if (clause === 'GROUP BY') {
    // An input column of this level comes first (ambiguous or not, PostgreSQL then looks no further).
    const known = scope.innerJoins && scope.relations.every((r) => (r.hypertable ?? r.reference) !== undefined);
    if (!known) return `${clause} ${name}: whether it is an input column is not known here`;
    if (scope.relations.some((r) => (r.hypertable ?? r.reference)?.columns.some((c) => c.name === name))) return { expr: item, output: false };
  }
  if (list === undefined || list.some((o) => o.name === undefined)) return `${clause} ${name}: the names of the outputs are not all known here`;
  const named = list.filter((o) => o.name === name);
  const first = named[0];
  if (first === undefined) return { expr: item, output: false };
  if (named.some((o) => !same(o.expr, first.expr, scope))) return `${clause} "${name}" is ambiguous: PostgreSQL refuses it (42702)`;
  return { expr: first.expr, output: true };
}

/**
 * Why PostgreSQL would refuse the statement's ORDER BY, DISTINCT ON or GROUP BY items (or what
 * they stand for cannot be told), or undefined when they resolve.
 */
export function misresolved(stmt: SelectStmt, scope: Scope): string | undefined {
  const list = outputs(stmt, scope);
  const resolve = (item: Node, clause: Clause): Resolved | string => resolveItem(item, list, scope, clause);
  for (const item of stmt.groupClause ?? []) {
    if ('GroupingSet' in item) continue;
    const r = resolve(item, 'GROUP BY');
    if (typeof r === 'string') return r;
  }
  const distinct = stmt.distinctClause ?? [];
  for (const item of distinct) {
    if (Object.keys(item).length === 0) continue;
    const r = resolve(item, 'DISTINCT ON');
    if (typeof r === 'string') return r;
  }
  // SELECT DISTINCT (not ON) sorts its distinct rows: by outputs only.
  const plainDistinct = distinct.length === 1 && Object.keys(distinct[0] as object).length === 0;
  for (const s of stmt.sortClause ?? []) {
    if (!('SortBy' in s) || s.SortBy.node === undefined) continue;
    const r = resolve(s.SortBy.node, 'ORDER BY');
    if (typeof r === 'string') return r;
    if (plainDistinct && !r.output && !(list ?? []).some((o) => same(o.expr, r.expr, scope))) {
      return `SELECT DISTINCT … ORDER BY ${deparse(s.SortBy.node)}: for SELECT DISTINCT, ORDER BY expressions must appear in select list, so PostgreSQL refuses it (42P10)`;
    }
  }
  return undefined;
}
