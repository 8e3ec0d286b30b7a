/**
 * The rewriter: SQL a user wrote in, SQL that postgres_fdw ships out, with what was done and
 * what was not (and why). Each rewrite applies only where the answer provably stays the same;
 * a statement none applies to comes back byte for byte.
 *
 *   parse → the SELECT (or the one inside EXPLAIN, DECLARE, COPY, CREATE TABLE AS: wrappers.ts)
 *   → per SELECT: buckets, stable expressions, IN-lists → per-shard expansion → deparse
 */
import type { Node, SelectStmt } from '@pgsql/types';
import { columnName, containsNode, selectStatements, transform, walk } from './ast.js';
import { fixedOffsetZone, rewriteBucket } from './buckets.js';
import { rewriteInSubqueries } from './inSubquery.js';
import type { ClusterMetadata, Rewrite, RewriteOptions, RewriteResult, Unchanged } from './model.js';
import { deparse, parseStatements } from './parser.js';
import { baseType, DEFAULT_SEARCH_PATH, resolveColumn, scopeOf, type Scope } from './scope.js';
import { isAggregateCall } from './aggregates.js';
import { expandShards, firstUnshippable } from './shards.js';
import { lastpointDistinctOn, lastpointLateral } from './lastpoint.js';
import { wrapStable } from './stable.js';
import { dateRanges, type LocalDates } from './dates.js';
import { fieldFilters } from './localKeys.js';
import { wrappedSelect } from './wrappers.js';
import { localJoin, reducesRows } from './localJoins.js';
import { shippableBooleanTests } from './booleanTests.js';

/** @throws the parser's error when `sql` is not valid SQL. */
export function rewriteSql(sql: string, metadata: ClusterMetadata, options: RewriteOptions = {}): RewriteResult {
  const statements = parseStatements(sql);
  const rewrites: Rewrite[] = [];
  const unchanged: Unchanged[] = [];
  let touches = false;
  const texts: string[] = [];
  let changed = false;
  const bytes = Buffer.from(sql, 'utf8');
  for (const s of statements) {
    const original = bytes.subarray(s.location, s.length === undefined ? undefined : s.location + s.length).toString('utf8').trim();
    const wrapped = wrappedSelect(s.stmt, original);
    if (typeof wrapped !== 'object') {
      if (wrapped !== undefined) unchanged.push({ kind: 'statement', reason: wrapped });
      texts.push(original);
      continue;
    }
    const result = rewriteSelect(wrapped.select, metadata, options);
    touches ||= result.touches;
    rewrites.push(...result.rewrites);
    unchanged.push(...result.unchanged);
    if (result.rewrites.length > 0) {
      changed = true;
      texts.push(wrapped.write(deparse({ SelectStmt: wrapped.select })));
    } else texts.push(original);
  }
  if (!touches && unchanged.length === 0) unchanged.push({ kind: 'statement', reason: 'reads no distributed hypertable' });
  else if (rewrites.length === 0 && unchanged.length === 0) unchanged.push({ kind: 'statement', reason: 'postgres_fdw already ships what this statement asks of the data nodes' });
  return { sql: changed ? texts.join(';\n') : sql, changed, touchesHypertable: touches, rewrites: dedupe(rewrites), unchanged: dedupe(unchanged) };
}

function rewriteSelect(root: SelectStmt, metadata: ClusterMetadata, options: RewriteOptions): { touches: boolean; rewrites: Rewrite[]; unchanged: Unchanged[] } {
  const searchPath = options.searchPath ?? DEFAULT_SEARCH_PATH;
  const ctes = new Set<string>();
  walk({ SelectStmt: root }, (n) => {
    if ('CommonTableExpr' in n && n.CommonTableExpr.ctename !== undefined) ctes.add(n.CommonTableExpr.ctename);
  });
  const selects = [...new Set(selectStatements(root))];
  // Local dates as ranges of instants: in a fixed-offset zone, or one whose changes never touch a midnight (its grid says).
  const grid = options.zoneGrid;
  const since = grid !== undefined && grid.zone === options.timeZone ? grid.midnightsFixedSince : undefined;
  const localDates: LocalDates | undefined = fixedOffsetZone(options.timeZone) ? 'fixed' : since === undefined ? undefined : { from: since };
  const scopes = new Map(selects.map((s) => [s, scopeOf(s, metadata, searchPath, ctes)]));
  const touches = [...scopes.values()].some((scope) => scope.relations.some((r) => r.hypertable !== undefined));
  const rewrites: Rewrite[] = [];
  const unchanged: Unchanged[] = [];
  if (!touches) return { touches, rewrites, unchanged };
  unchanged.push(...localJoins(root, selects, scopes));
  // The deparser writes FETCH FIRST n ROWS WITH TIES as LIMIT n, which can drop rows.
  if (selects.some((s) => s.limitOption === 'LIMIT_OPTION_WITH_TIES')) {
    return { touches, rewrites, unchanged: [{ kind: 'statement', reason: 'FETCH FIRST … WITH TIES cannot be written back faithfully by the SQL deparser, so the statement is left as written' }] };
  }

  // date_trunc calls left to the access node, per SELECT: a per-shard rewrite may ship them after all.
  const truncLeft = new Map<SelectStmt, Unchanged[]>();
  for (const stmt of selects) {
    const scope = scopes.get(stmt);
    if (scope === undefined) continue;
    const reads = scope.relations.some((r) => r.hypertable !== undefined);
    const buckets = (node: Node): Node =>
      transform(node, (n) => {
        if (!('FuncCall' in n)) return undefined;
        const outcome = rewriteBucket(n.FuncCall, scope, options.timeZone);
        if (outcome?.rewrite !== undefined) rewrites.push(outcome.rewrite);
        if (outcome?.unchanged !== undefined) {
          unchanged.push(outcome.unchanged);
          truncLeft.set(stmt, [...(truncLeft.get(stmt) ?? []), outcome.unchanged]);
        }
        return outcome?.node;
      });
    if (reads) {
      // IS [NOT] TRUE in any clause a shard may be given (join conditions too): the per-shard
      // rewrites then see shippable filters.
      const tests = (node: Node): Node => shippableBooleanTests(node, rewrites);
      eachClause(stmt, tests);
      if (stmt.fromClause !== undefined) stmt.fromClause = stmt.fromClause.map((item) => joinQuals(item, tests));
      eachClause(stmt, buckets);
    }
    // Stable expressions anywhere a filter sits, since PostgreSQL pushes outer filters into sub-selects.
    const columnType = (n: Node): string | undefined => {
      const type = 'ColumnRef' in n ? resolveColumn(n.ColumnRef, scope)?.type : undefined;
      return type === undefined ? undefined : baseType(type);
    };
    // First a column's local date compared with a date, as a range on the column (its bounds are InitPlans already).
    if (reads && stmt.whereClause !== undefined) stmt.whereClause = dateRanges(stmt.whereClause, rewrites, columnType, localDates);
    if (reads && stmt.whereClause !== undefined) stmt.whereClause = fieldFilters(stmt.whereClause, rewrites, scope, options.timeZone, options.zoneGrid);
    if (stmt.whereClause !== undefined) stmt.whereClause = wrapStable(stmt.whereClause, rewrites, columnType);
    if (stmt.havingClause !== undefined) stmt.havingClause = wrapStable(stmt.havingClause, rewrites, columnType);
    if (stmt.fromClause !== undefined) stmt.fromClause = stmt.fromClause.map((item) => joinQuals(item, (quals) => wrapStable(quals, rewrites, columnType)));
    if (reads && stmt.whereClause !== undefined) stmt.whereClause = rewriteInSubqueries(stmt.whereClause, rewrites, unchanged);
  }
  // Lastpoint queries read the per-shard lastpoint views instead (outermost first: a LATERAL probe
  // is seen from the SELECT that joins it). What they replace is gone from the tree, so the
  // SELECTs and their scopes are taken again for the per-shard expansion.
  let lastpointMade = false;
  for (const stmt of selects) {
    const scope = scopes.get(stmt);
    if (scope === undefined || !selectStatements(root).includes(stmt)) continue;
    for (const outcome of [lastpointLateral(stmt, (s) => scopes.get(s), options.access), lastpointDistinctOn(stmt, scope, options.access)]) {
      rewrites.push(...outcome.rewrites);
      unchanged.push(...outcome.unchanged);
      lastpointMade ||= outcome.rewrites.length > 0;
    }
  }
  const expanding = lastpointMade ? [...new Set(selectStatements(root))] : selects;
  if (lastpointMade) for (const s of expanding) scopes.set(s, scopeOf(s, metadata, searchPath, ctes));
  // Innermost first, so an expanded sub-select is already in its final form when copied.
  for (const stmt of [...expanding].reverse()) {
    const scope = scopes.get(stmt);
    if (scope === undefined) continue;
    const outcome = expandShards(stmt, scope, options.access, { timeZone: options.timeZone, grid: options.zoneGrid });
    rewrites.push(...outcome.rewrites);
    unchanged.push(...outcome.unchanged);
    for (const note of truncLeft.get(stmt) ?? []) {
      const unit = /^date_trunc\(('[^']*')/.exec(note.reason)?.[1];
      if (unit !== undefined && outcome.truncShipped?.includes(unit) === true) unchanged.splice(unchanged.indexOf(note), 1);
    }
    // Left as it is: say what keeps its work on the access node, if anything visibly does.
    if (outcome.rewrites.length === 0 && outcome.unchanged.length === 0 && scope.relations.some((r) => r.hypertable !== undefined)) {
      const aggregated = (stmt.groupClause ?? []).length > 0 || (stmt.targetList ?? []).some((t) => containsNode(t, (n) => 'FuncCall' in n && isAggregateCall(n.FuncCall, scope)));
      // Grouped, what is evaluated per row is the WHERE, the keys and the aggregates (arguments,
      // FILTER); an output around them (COALESCE(sum(x), 0)) is evaluated per group.
      const calls: Node[] = [];
      if (aggregated) {
        walk({ List: { items: [...(stmt.targetList ?? []), ...(stmt.havingClause === undefined ? [] : [stmt.havingClause])] } }, (n) => {
          if ('SubLink' in n) return false;
          if ('FuncCall' in n && isAggregateCall(n.FuncCall, scope)) {
            calls.push(n);
            return false;
          }
          return true;
        });
      }
      const blocked = firstUnshippable([stmt.whereClause, ...(aggregated ? [...(stmt.groupClause ?? []), ...calls] : [])], scope);
      if (blocked !== undefined) unchanged.push({ kind: 'statement', reason: `${blocked}: postgres_fdw keeps it on the access node, over every row it needs from the shards, and no rewrite here can ship it` });
    }
  }
  return { touches, rewrites, unchanged };
}

/** What each SELECT joins on the access node with hypertable rows (localJoins.ts), before any rewrite moves its FROM. */
function localJoins(root: SelectStmt, selects: readonly SelectStmt[], scopes: ReadonlyMap<SelectStmt, Scope>): Unchanged[] {
  const reads = (s: SelectStmt): boolean => scopes.get(s)?.relations.some((r) => r.hypertable !== undefined) === true;
  // selectStatements: the SELECT, those nested in it and its set operation's arms.
  const readsHypertable = (node: Node): boolean => 'SelectStmt' in node && selectStatements(node.SelectStmt).some(reads);
  // A sub-select or CTE that groups what it reads hands on groups, not hypertable rows (localJoins.ts).
  const readsRows = (node: Node): boolean => {
    const s = 'SelectStmt' in node ? node.SelectStmt : undefined;
    if (s?.larg !== undefined && s.rarg !== undefined) return readsRows({ SelectStmt: s.larg }) || readsRows({ SelectStmt: s.rarg });
    return readsHypertable(node) && !reducesRows(node);
  };
  const cteReads = new Map<string, boolean>();
  walk({ SelectStmt: root }, (n) => {
    if ('CommonTableExpr' in n && n.CommonTableExpr.ctename !== undefined && n.CommonTableExpr.ctequery !== undefined) cteReads.set(n.CommonTableExpr.ctename, readsRows(n.CommonTableExpr.ctequery));
  });
  const found: Unchanged[] = [];
  for (const stmt of selects) {
    const scope = scopes.get(stmt);
    const item = scope === undefined ? undefined : localJoin(stmt, scope, readsRows, cteReads);
    if (item !== undefined) found.push({ kind: 'statement', reason: `${item} is joined on the access node with every hypertable row the shards send for the join: postgres_fdw joins only foreign tables of one data node (a reference table's copies join beside each shard)` });
  }
  return found;
}

/**
 * `rewrite` applied to the expressions of a SELECT's outputs, WHERE, GROUP BY, HAVING, ORDER BY
 * and DISTINCT ON alike (DISTINCT ON must keep matching the leading ORDER BY items); a rewritten
 * output keeps the name PostgreSQL gave the original (`time_bucket`, not `date_bin`).
 */
function eachClause(stmt: SelectStmt, rewrite: (node: Node) => Node): void {
  if (stmt.targetList !== undefined) stmt.targetList = stmt.targetList.map((t) => keepName(t, rewrite));
  if (stmt.groupClause !== undefined) stmt.groupClause = stmt.groupClause.map(rewrite);
  if (stmt.sortClause !== undefined) stmt.sortClause = stmt.sortClause.map(rewrite);
  if (stmt.distinctClause !== undefined) stmt.distinctClause = stmt.distinctClause.map((d) => (Object.keys(d).length === 0 ? d : rewrite(d)));
  if (stmt.whereClause !== undefined) stmt.whereClause = rewrite(stmt.whereClause);
  if (stmt.havingClause !== undefined) stmt.havingClause = rewrite(stmt.havingClause);
}

function keepName(target: Node, rewrite: (node: Node) => Node): Node {
  if (!('ResTarget' in target) || target.ResTarget.val === undefined || target.ResTarget.name !== undefined) return rewrite(target);
  const name = columnName(target.ResTarget.val);
  const val = rewrite(target.ResTarget.val);
  return { ResTarget: { ...target.ResTarget, val, ...(name === undefined || columnName(val) === name ? {} : { name }) } };
}

/** `item` with `rewrite` applied to the ON conditions of its joins. */
function joinQuals(item: Node, rewrite: (quals: Node) => Node): Node {
  if (!('JoinExpr' in item)) return item;
  const join = { ...item.JoinExpr };
  if (join.larg !== undefined) join.larg = joinQuals(join.larg, rewrite);
  if (join.rarg !== undefined) join.rarg = joinQuals(join.rarg, rewrite);
  if (join.quals !== undefined) join.quals = rewrite(join.quals);
  return { JoinExpr: join };
}

function dedupe<T extends { kind: string }>(items: readonly T[]): T[] {
  const seen = new Set<string>();
  return items.filter((i) => {
    const key = JSON.stringify(i);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
