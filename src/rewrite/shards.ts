/**
 * Queries over one distributed hypertable rewritten as a UNION ALL of one query per shard, each
 * reading that shard's foreign table directly. A query on a single foreign table is what
 * postgres_fdw ships whole: its aggregate, ORDER BY and LIMIT run on the data node. The access
 * node then only combines one small result per shard.
 *
 *   partial aggregates  GROUP BY without the space key: each shard aggregates its rows; the
 *                       access node combines per group (aggregates.ts; count(DISTINCT x) and
 *                       its kin from each shard's distinct values of x), then applies HAVING,
 *                       ORDER BY and LIMIT. (A LIMIT inside the shard's query would be exact when
 *                       the ORDER BY sorts groups totally, but the planner then prefers fetching
 *                       sorted rows and aggregating locally, which it costs as stopping early:
 *                       the data node still sorts everything, and every row crosses.)
 *   ORDER BY … LIMIT n  each shard returns its first n rows; the access node merges them.
 *   DISTINCT ON (key)   keys from a GROUP BY each shard finishes, then one indexed probe per key.
 *   reference joins     reference tables in the FROM read the copy beside each shard.
 *   shard pinning       a space-key predicate (`= v`, `IN (…)`, `= ANY(…)`) gates each shard's
 *                       arm with satisfies_hash_partition(), PostgreSQL's own routing function:
 *                       for constants the planner removes the other arms; for run-time values
 *                       the gate skips them or makes them answer at once (see Gate).
 *   node arms           with node views (src/sql/nodeViews.ts), one arm per data node reads the
 *                       UNION ALL of its shards instead of one arm per shard: each shard asked
 *                       costs ~1 ms of remote round trips and planning whatever it holds. Partial
 *                       aggregates per node combine as per shard (a key's rows are all in one
 *                       shard, so on one node); a gate tests the node's shards together. Arms are
 *                       per node when that asks fewer remote queries, and never mixed with shard
 *                       arms (a node view's name stands for its shard set: a stale rewrite fails
 *                       on a name a move replaced rather than read a shard twice or not at all).
 */
import type { ColumnRef, Node, SelectStmt } from '@pgsql/types';
import { quoteIdent, quoteLiteral, quoteQualified } from '../sql/quote.js';
import { columnName, columnPath, containsNode, functionName, integerConstant, isNullConstant, isStar, operatorName, replaceTop, sameExpression, stringValue, transform, walk } from './ast.js';
import { bareName, misresolved, outputs, qualified, resolveItem } from './outputs.js';
import { bookendOf, distinctValues, isAggregateCall, overValues, splitAggregate } from './aggregates.js';
import { hashUint32, remainderOf, rowHash } from '../route/hash.js';
import { guardArm, tableKey } from './access.js';
import { correlation } from './inSubquery.js';
import type { QualifiedName } from '../plan/layout.js';
import type { DistributedTable, Rewrite, RoleAccess, SessionZone, ShardTarget, Unchanged } from './model.js';
import { deparse, parseExpression, parseSelect } from './parser.js';
import { baseType, inferType, type Relation, resolveColumn, type Scope, typeClass } from './scope.js';
import { unshippable } from './shippable.js';
import { localMidnightOrigin } from './buckets.js';
import { localTimeKey } from './localKeys.js';
import { epochKey } from './epochKeys.js';
import { wrappedKey } from './wrappedKeys.js';

export interface ShardOutcome {
  readonly rewrites: Rewrite[];
  readonly unchanged: Unchanged[];
  /** Units of `date_trunc` group keys each shard now groups by a bucket of (localKeys.ts): no longer left on the access node. */
  readonly truncShipped?: readonly string[];
}

const UNION_ALIAS = '_hs';
/** Functions known to be plain (non-aggregate) functions, safe to evaluate after combining. */
const SCALAR = new Set(['date_bin', 'date_trunc', 'date_part', 'extract', 'round', 'trunc', 'floor', 'ceil', 'ceiling', 'abs', 'sqrt', 'power', 'ln', 'log', 'exp', 'sign', 'mod', 'greatest', 'least', 'coalesce', 'nullif', 'lower', 'upper', 'length', 'concat', 'to_char', 'now', 'timezone', 'make_interval', 'age']);

/** Functions that may appear in a space-key value the gates evaluate separately (never volatile). */
const NON_VOLATILE = new Set([...SCALAR, 'unnest', 'array_agg', 'count', 'min', 'max', 'sum', 'array_length', 'cardinality']);

/**
 * What a per-shard rewrite reads in place of the tables the statement names (the hypertable,
 * reference tables), and whether the role may have that (see access.ts): `denied` is why not.
 */
interface Direct {
  readonly tables: readonly { schema: string; name: string }[];
  readonly denied: string | undefined;
}

/** Tries the per-shard rewrites on one SELECT, editing it in place when one applies. */
export function expandShards(stmt: SelectStmt, scope: Scope, access: RoleAccess | undefined, zone: SessionZone = {}): ShardOutcome {
  // Work on a copy: a refused rewrite leaves the statement exactly as it was.
  const work = structuredClone(stmt);
  const outcome = expandCopy(work, scope, access, zone);
  if (outcome.rewrites.length > 0) {
    for (const key of Object.keys(stmt)) delete (stmt as Record<string, unknown>)[key];
    Object.assign(stmt, work);
  }
  return outcome;
}

function expandCopy(stmt: SelectStmt, scope: Scope, access: RoleAccess | undefined, zone: SessionZone): ShardOutcome {
  const out: ShardOutcome = { rewrites: [], unchanged: [] };
  const distributed = scope.relations.filter((r) => r.hypertable !== undefined);
  const relation = distributed[0];
  if (distributed.length !== 1 || relation?.hypertable === undefined || !scope.innerJoins) return out;
  if (stmt.op !== undefined && stmt.op !== 'SETOP_NONE') return out;
  const table = relation.hypertable;
  const refuse = (kind: Unchanged['kind'], reason: string): ShardOutcome => ({ ...out, unchanged: [{ kind, reason }] });
  // Joined only with reference tables, each with a copy beside every shard: the join can run per shard.
  const others = scope.relations.filter((r) => r !== relation);
  if (others.length > 0) {
    const missing = others.find((r) => r.reference === undefined || table.shards.some((s) => !r.reference?.copies.some((c) => c.server === s.server)));
    if (missing !== undefined) return refuse('reference-join', `${missing.refName} is not a reference table copied to every data node, so the join cannot run beside each shard`);
  }
  if ((stmt.lockingClause ?? []).length > 0 || stmt.intoClause !== undefined) return out;
  const windowed = (stmt.windowClause ?? []).length > 0 || containsWindow(stmt);
  if (windowed && others.length > 0) return refuse('partial-aggregate', 'window functions: postgres_fdw ships none, so they run on the access node over the rows the shards send');

  // A statement PostgreSQL refuses must stay one it refuses.
  const unresolved = misresolved(stmt, scope);
  if (unresolved !== undefined) return refuse('statement', unresolved);
  normalizeColumns(stmt, scope);
  const tables = [relation, ...others].map((r) => (r.hypertable ?? r.reference)?.table).filter((t) => t !== undefined);
  const direct: Direct = { tables, denied: access === undefined ? undefined : deniedTo(access, tables) };
  if (windowed) return windowOnOneShard(stmt, scope, relation, table, direct);
  // SELECT DISTINCT is GROUP BY every output (the same rows, NULLs alike): postgres_fdw ships a
  // GROUP BY, never a DISTINCT.
  const distinct = asGroupBy(stmt, scope);
  const aggregated = (stmt.groupClause ?? []).length > 0 || stmt.havingClause !== undefined || (stmt.targetList ?? []).some((t) => containsAggregate(t, scope));
  if (aggregated) {
    const outcome = partialAggregate(stmt, scope, relation, table, direct, zone, distinct);
    return distinct && outcome.rewrites.length > 0 ? { ...outcome, rewrites: [{ kind: 'distinct-as-group-by', detail: 'SELECT DISTINCT → GROUP BY of every output: the same rows, and a GROUP BY each shard can run' }, ...outcome.rewrites] } : outcome;
  }
  if (others.length > 0) return refuse('reference-join', 'only aggregates over a hypertable joined with reference tables are run per shard');
  if ((stmt.distinctClause ?? []).some((d) => Object.keys(d).length > 0)) return distinctOnSpace(stmt, scope, relation, table, direct, access, zone);
  if (stmt.limitCount !== undefined && !isNullConstant(stmt.limitCount)) return limitPerShard(stmt, scope, relation, table, direct);
  const pinned = onlyShard(stmt, scope, relation, table, direct) ?? keysPerNode(stmt, scope, relation, table, direct);
  if (pinned !== undefined) return pinned;
  if (stmt.sortClause !== undefined) return refuse('limit-per-shard', ORDER_WITHOUT_LIMIT);
  return out;
}

/**
 * A statement with window functions, whose constant space keys hash to one shard: it reads that
 * shard's foreign table (onlyShard), the rest as written. postgres_fdw ships no window function,
 * so the access node still computes them, over that shard's rows; but the statement now reads
 * one shard, which a router read (the gateway, hypershard/pg) sends whole to its data node.
 */
function windowOnOneShard(stmt: SelectStmt, scope: Scope, relation: Relation, table: DistributedTable, direct: Direct): ShardOutcome {
  const reason = 'window functions: postgres_fdw ships none, so they run on the access node over the rows the shards send';
  const pinned = onlyShard(stmt, scope, relation, table, direct);
  if (pinned === undefined) return { rewrites: [], unchanged: [{ kind: 'partial-aggregate', reason }] };
  const rows = 'window functions: postgres_fdw ships none, so they run on the access node over the one shard’s rows (a router read runs the statement whole on its data node)';
  return { rewrites: pinned.rewrites, unchanged: [...pinned.unchanged.filter((u) => u.kind !== 'limit-per-shard'), { kind: 'partial-aggregate', reason: rows }] };
}

/**
 * A plain SELECT (no aggregate, DISTINCT or LIMIT) whose constant space keys hash to one shard
 * reads that shard's foreign table, behind the guard: the same rows the planner's pruning would
 * read, and a statement the gateway can send to that shard's data node (src/route/reads.ts).
 */
function onlyShard(stmt: SelectStmt, scope: Scope, relation: Relation, table: DistributedTable, direct: Direct): ShardOutcome | undefined {
  if (direct.denied !== undefined || stmt.whereClause === undefined) return undefined;
  const gate = shardGate(stmt, scope, relation, table);
  const shards = gatedShards(gate, table);
  const shard = shards[0];
  if (gate?.only === undefined || shards.length !== 1 || shard === undefined) return undefined;
  const blocked = firstUnshippable([stmt.whereClause], scope);
  // Constant keys: the one shard's arm needs no gate of its own, only the WHERE.
  readArms(stmt, relation, table, direct, [`SELECT * FROM ${quoteQualified(shard.table.schema, shard.table.name)} AS ${quoteIdent(relation.refName)} WHERE ${deparse(stmt.whereClause)}`]);
  // What the access node still does itself: filter what postgres_fdw will not ship, put the rows in order.
  const unchanged: Unchanged[] = [];
  if (blocked !== undefined) unchanged.push({ kind: 'shard-pinning', reason: `${blocked}: postgres_fdw keeps that filter on the access node, over every row of the one shard read` });
  if (stmt.sortClause !== undefined) unchanged.push({ kind: 'limit-per-shard', reason: ORDER_WITHOUT_LIMIT });
  return { rewrites: [{ kind: 'shard-pinning', detail: gate.detail }], unchanged };
}

/**
 * The statement reads `relation` from `arms` (each a whole row of the hypertable, its WHERE
 * within) and the guard (access.ts) instead: its FROM is their UNION ALL, under the relation's
 * name, and its WHERE is gone.
 */
function readArms(stmt: SelectStmt, relation: Relation, table: DistributedTable, direct: Direct, arms: readonly string[]): void {
  const union = [...arms, guardArm(table.columns.length, direct.tables)].map((a) => `(${a})`).join(' UNION ALL ');
  stmt.fromClause = parseSelect(`SELECT * FROM (${union}) AS ${quoteIdent(relation.refName)}`).fromClause ?? [];
  delete stmt.whereClause;
}

const ORDER_WITHOUT_LIMIT = 'ORDER BY without LIMIT: every row the shards send is the answer, and the access node puts them in order';

/**
 * A plain SELECT whose space keys come from a sub-select (`IN (SELECT id FROM tags …)`, known only
 * as the statement runs), over a hypertable with node views: one arm per data node, each sent only
 * the keys that hash to its shards. As written, every shard is asked (PostgreSQL prunes no hash
 * partition by an InitPlan's array), each a remote transaction and cursor of its own; per node,
 * half as many at 2 shards a node. Not for parameters or constants: the planner prunes by those
 * itself (at planning, or as a generic plan starts), and a node arm cannot skip its node.
 */
function keysPerNode(stmt: SelectStmt, scope: Scope, relation: Relation, table: DistributedTable, direct: Direct): ShardOutcome | undefined {
  if (direct.denied !== undefined || stmt.whereClause === undefined || correlation(stmt) !== undefined) return undefined;
  const gate = shardGate(stmt, scope, relation, table);
  const conjunct = gate?.replaces;
  if (gate?.filter === undefined || gate.only !== undefined || conjunct === undefined) return undefined;
  const fromSubselect = 'A_Expr' in conjunct && conjunct.A_Expr.kind !== 'AEXPR_OP' && containsNode(conjunct, (n) => 'SubLink' in n);
  const asks = armTargets(gate, table);
  if (!fromSubselect || !asks.some((t) => t.node) || firstUnshippable([stmt.whereClause], scope) !== undefined) return undefined;
  const ref = quoteIdent(relation.refName);
  readArms(stmt, relation, table, direct, asks.map((target) => gated(gate, target, (where) => `SELECT * FROM ${quoteQualified(target.table.schema, target.table.name)} AS ${ref}${where}`, stmt.whereClause)));
  const unchanged: Unchanged[] = stmt.sortClause === undefined ? [] : [{ kind: 'limit-per-shard', reason: ORDER_WITHOUT_LIMIT }];
  return { rewrites: [{ kind: 'shard-pinning', detail: `${gate.detail}; ${asked(asks)} is asked instead of each shard` }], unchanged };
}

/** Turns a plain SELECT DISTINCT (no aggregate, window or `*`) into GROUP BY 1, 2, …; true when it did. */
function asGroupBy(stmt: SelectStmt, scope: Scope): boolean {
  const distinct = stmt.distinctClause ?? [];
  if (distinct.length !== 1 || Object.keys(distinct[0] as object).length > 0) return false;
  const targets = stmt.targetList ?? [];
  if ((stmt.groupClause ?? []).length > 0 || stmt.havingClause !== undefined || targets.length === 0) return false;
  if (targets.some((t) => containsAggregate(t, scope) || !('ResTarget' in t) || t.ResTarget.val === undefined || isStar(t.ResTarget.val) || containsNode(t, (n) => 'SubLink' in n))) return false;
  delete stmt.distinctClause;
  stmt.groupClause = targets.map((_, i) => ({ A_Const: { ival: { ival: i + 1 }, location: -1 } }));
  return true;
}

/** Why the role may not have these tables read per shard, or undefined when it may. */
export function deniedTo(access: RoleAccess, tables: readonly { schema: string; name: string }[]): string | undefined {
  for (const t of tables) {
    const key = tableKey(t);
    if (!access.tables.has(key)) return `what role ${access.role} may see of ${key} is not known`;
    const reason = access.tables.get(key);
    if (reason !== undefined) return reason;
  }
  return undefined;
}

const denied = (direct: Direct): ShardOutcome => ({ rewrites: [], unchanged: [{ kind: 'privileges', reason: direct.denied ?? '' }] });

function partialAggregate(stmt: SelectStmt, scope: Scope, relation: Relation, table: DistributedTable, direct: Direct, zone: SessionZone, fromDistinct = false): ShardOutcome {
  const refuse = (reason: string): ShardOutcome => ({ rewrites: [], unchanged: [{ kind: 'partial-aggregate', reason }] });
  const targets = (stmt.targetList ?? []).map((t) => ('ResTarget' in t ? t.ResTarget : undefined));
  if (targets.some((t) => t === undefined || t.val === undefined || isStar(t.val))) return refuse('SELECT * with GROUP BY');
  if ((stmt.groupClause ?? []).some((g) => 'GroupingSet' in g)) return refuse('GROUPING SETS, ROLLUP and CUBE are left to the access node');
  const isSpace = (node: Node): boolean => 'ColumnRef' in node && resolveColumn(node.ColumnRef, scope)?.column === table.spaceColumn && resolveColumn(node.ColumnRef, scope)?.relation === relation;

  // GROUP BY items: an ordinal or an output name means that target's expression.
  const list = outputs(stmt, scope);
  const groups: Node[] = [];
  for (const item of stmt.groupClause ?? []) {
    const resolved = resolveItem(item, list, scope, 'GROUP BY');
    if (typeof resolved === 'string') return refuse(resolved);
    if (!groups.some((g) => sameExpression(g, resolved.expr))) groups.push(resolved.expr);
  }
  // Grouped by the space key, PostgreSQL aggregates per shard itself, unless a DISTINCT stands in
  // the way (it never ships one), or constant keys leave one shard (then it aggregates locally).
  const gate = shardGate(stmt, scope, relation, table);
  const limited = stmt.limitCount !== undefined && !isNullConstant(stmt.limitCount);
  // (With a LIMIT, the planner costs the shards' groups for the first rows only and fetches their
  // rows sorted instead: planned per shard and whole, each shard aggregates.)
  const bySpace = groups.some(isSpace);
  // Keys that read the session's zone, grouped per shard by a bucket of the time column and
  // finished on the access node (localKeys.ts).
  const local = groups.map((g) => (unshippable(g, scope) === undefined ? undefined : (epochKey(g, scope) ?? localTimeKey(g, scope, zone.timeZone, zone.grid) ?? wrappedKey(g, scope, table.timeColumn))));
  const shardKeys = groups.map((g, k) => local[k]?.shard ?? deparse(g));
  const outerKeys = groups.map((_, k) => local[k]?.finish(`${UNION_ALIAS}.g${k}`) ?? `${UNION_ALIAS}.g${k}`);
  const finished = groups.filter((_, k) => local[k] !== undefined);
  const asks = armTargets(gate, table);
  // Per shard, PostgreSQL's partitionwise aggregate asks every shard; per node is fewer queries.
  // (Not with hypershard's first/last, which postgres_fdw never ships: split into built-ins, they do.)
  const bookends = [...targets.map((t) => t?.val as Node | undefined), stmt.havingClause].some((n) => n !== undefined && containsNode(n, (x) => 'FuncCall' in x && bookendOf(x.FuncCall, scope) !== undefined));
  if (bySpace && !fromDistinct && gate?.only === undefined && !limited && finished.length === 0 && !bookends && !asks.some((t) => t.node)) return { rewrites: [], unchanged: [] };

  // Aggregates anywhere in the outputs, HAVING and ORDER BY, each split once.
  const aggregateNodes = [...targets.map((t) => t?.val as Node), stmt.havingClause, ...(stmt.sortClause ?? []).map((s) => ('SortBy' in s ? s.SortBy.node : undefined))];
  const everyCall: import('@pgsql/types').FuncCall[] = [];
  for (const node of aggregateNodes) {
    if (node === undefined) continue;
    transform(node, (n) => {
      if ('FuncCall' in n && isAggregateCall(n.FuncCall, scope)) everyCall.push(n.FuncCall);
      return undefined;
    });
  }
  // Grouped by the space key, every group lies on one shard: an output the rewrite cannot place
  // above the shards (a sub-select) is left as written, where PostgreSQL's partitionwise aggregate
  // ships the aggregates per shard when nothing else keeps them on the access node.
  const wholeFits = !fromDistinct && finished.length === 0 && !bookends;
  const groupsWhole = bySpace && wholeFits;
  const ships = (): boolean => firstUnshippable([stmt.whereClause, ...groups, ...everyCall.map((c) => ({ FuncCall: c }) as Node)], scope) === undefined;
  // A DISTINCT aggregate no shard can finish (count(DISTINCT x), x not the space key): each shard
  // groups by x as well and returns its distinct values, the access node aggregates those.
  // Buckets of a zone-reading key are finer than its groups: several per group on one shard hold
  // the same space key, so its DISTINCT count or sum is not the sum of theirs (taken from values).
  const spaceDistinct = finished.length > 0 ? (): boolean => false : isSpace;
  const byValues = everyCall.some((c) => c.agg_distinct === true && typeof splitAggregate(c, scope, spaceDistinct) === 'string' && typeof distinctValues(c, scope) !== 'string');
  const keys: string[] = [];
  const viaValues: string[] = [];
  const partials: string[] = [];
  const combined = new Map<string, string>();
  const problems: string[] = [];
  const calls: Node[] = [];
  const collect = (node: Node): void => {
    transform(node, (n) => {
      if ('FuncCall' in n && isAggregateCall(n.FuncCall, scope) && !combined.has(deparse(n))) {
        calls.push(n);
        if (byValues && n.FuncCall.agg_distinct === true) {
          const values = distinctValues(n.FuncCall, scope);
          if (typeof values !== 'string') {
            if (!keys.includes(values.key)) keys.push(values.key);
            combined.set(deparse(n), values.combine(`${UNION_ALIAS}.d${keys.indexOf(values.key)}`));
            viaValues.push(deparse(n));
            return undefined;
          }
          // Per (group, value) parts of a DISTINCT count or sum over the space key would count a key once per value.
          if (!['min', 'max', 'bool_and', 'bool_or', 'every'].includes(functionName(n.FuncCall))) {
            problems.push(values);
            return undefined;
          }
        }
        const split = splitAggregate(n.FuncCall, scope, spaceDistinct);
        const values = typeof split === 'string' && n.FuncCall.agg_distinct === true ? distinctValues(n.FuncCall, scope) : undefined;
        // Of a DISTINCT aggregate that could be computed from values, why it was not.
        if (typeof split === 'string') problems.push(typeof values === 'string' && overValues(functionName(n.FuncCall)) ? values : split);
        else {
          const columns = split.partials.map((p) => {
            const existing = partials.indexOf(p);
            if (existing >= 0) return `${UNION_ALIAS}.p${existing}`;
            partials.push(p);
            return `${UNION_ALIAS}.p${partials.length - 1}`;
          });
          combined.set(deparse(n), split.combine(columns));
        }
      }
      return undefined;
    });
  };
  for (const t of targets) collect(t?.val as Node);
  if (stmt.havingClause !== undefined) collect(stmt.havingClause);
  for (const s of stmt.sortClause ?? []) if ('SortBy' in s && s.SortBy.node !== undefined) collect(s.SortBy.node);
  // Every group on one shard (grouped by the space key, or one shard left): an aggregate that
  // cannot be split is computed whole where its group lies. As written, PostgreSQL's partitionwise
  // aggregate ships it per shard (grouped by the key, no LIMIT, no node views: left so); else each
  // arm returns its groups' aggregates whole and the access node only puts the groups together
  // (under a LIMIT, materialized, so the shards are planned for every group, not sorted rows).
  let wholeGroups = false;
  if (problems.length > 0) {
    const oneShard = gate?.only !== undefined && gatedShards(gate, table).length === 1;
    if (!((bySpace || oneShard) && wholeFits && ships())) return refuse(problems.join('; '));
    if (!oneShard && !limited && !asks.some((t) => t.node)) return { rewrites: [], unchanged: [] };
    wholeGroups = true;
    keys.length = 0;
    viaValues.length = 0;
    partials.length = 0;
    combined.clear();
    for (const call of calls) {
      const text = deparse(call);
      if (combined.has(text)) continue;
      partials.push(text);
      combined.set(text, `${UNION_ALIAS}.p${partials.length - 1}`);
    }
  }

  // Outside the shards, a group expression is its column and an aggregate its combination.
  let failure: string | undefined;
  const outer = (node: Node): Node =>
    replaceTop(node, (n) => {
      const g = groups.findIndex((group) => sameExpression(group, n));
      if (g >= 0) return parseExpression(outerKeys[g] as string);
      if ('FuncCall' in n && isAggregateCall(n.FuncCall, scope)) return parseExpression(combined.get(deparse(n)) as string);
      if ('ColumnRef' in n) failure ??= `${deparse(n)} is neither grouped nor aggregated`;
      if ('SubLink' in n) failure ??= 'a sub-select among the outputs of a grouped query';
      if ('FuncCall' in n && !SCALAR.has(functionName(n.FuncCall))) failure ??= `${functionName(n.FuncCall)}() might be an aggregate or have side effects; only known functions are moved above the shards`;
      return undefined;
    });
  const newTargets: string[] = [];
  for (const t of targets) {
    const val = t?.val as Node;
    // Each output keeps the name PostgreSQL gave it as written.
    const name = t?.name ?? columnName(val);
    if (name === undefined) return refuse(`${deparse(val)}: its name is the first column a * stands for, not known here`);
    newTargets.push(`${deparse(outer(val))} AS ${quoteIdent(name)}`);
  }
  const having = stmt.havingClause === undefined ? undefined : outer(stmt.havingClause);
  const sorts = (stmt.sortClause ?? []).map((s) => {
    if (!('SortBy' in s) || s.SortBy.node === undefined) return s;
    const node = s.SortBy.node;
    // A bare output name or an ordinal refers to the (identically named) outer outputs.
    const resolved = resolveItem(node, list, scope, 'ORDER BY');
    if (typeof resolved !== 'string' && resolved.output) return s;
    return { SortBy: { ...s.SortBy, node: outer(node) } };
  });
  const distinct = (stmt.distinctClause ?? []).map((d) => (Object.keys(d).length === 0 ? d : outer(d)));
  if (failure !== undefined) return groupsWhole && ships() ? { rewrites: [], unchanged: [] } : refuse(failure);
  const blocked = firstUnshippable([stmt.whereClause, ...shardKeys.map(parseExpression), ...calls], scope);
  if (blocked !== undefined) return refuse(`${blocked}: postgres_fdw would keep it on the access node, over every row a shard sends, so no shard could finish the aggregate`);
  if (direct.denied !== undefined) return denied(direct);

  // Without GROUP BY, an empty WITH keeps the access node from planning min()/max() as its own
  // ORDER BY … LIMIT 1 over the shard (whose LIMIT postgres_fdw does not send, so a fetch_size
  // of rows would cross): the aggregate ships whole, and the data node uses its own index.
  const whole = groups.length + keys.length === 0 ? 'WITH _hs_whole AS (SELECT) ' : '';
  const keyCount = groups.length + keys.length;
  const arms = asks.map((target) => {
    const columns = [...shardKeys.map((g, k) => `${g} AS g${k}`), ...keys.map((v, k) => `${v} AS d${k}`), ...partials.map((p, k) => `${p} AS p${k}`)];
    return gated(gate, target, (where) => `${whole}SELECT ${columns.join(', ')} FROM ${armFrom(stmt, scope, target)}${where}${keyCount > 0 ? ` GROUP BY ${Array.from({ length: keyCount }, (_, k) => k + 1).join(', ')}` : ''}`, stmt.whereClause);
  });
  arms.push(guardArm(keyCount + partials.length, direct.tables));
  // Under a LIMIT the planner costs the arms for the first rows only, and prefers sorted rows
  // aggregated on the access node (which it thinks it can stop early, and cannot: every row is
  // sorted first). Materialized, the arms are planned whole: each shard aggregates.
  const union = arms.map((a) => `(${a})`).join(' UNION ALL ');
  const materialize = limited;
  const rebuilt = parseSelect(
    (materialize ? `WITH ${UNION_ALIAS} AS MATERIALIZED (${union}) SELECT ${newTargets.join(', ')} FROM ${UNION_ALIAS}` : `SELECT ${newTargets.join(', ')} FROM (${union}) AS ${UNION_ALIAS}`) +
      (groups.length > 0 && !wholeGroups ? ` GROUP BY ${outerKeys.join(', ')}` : '') +
      (having === undefined ? '' : ` ${wholeGroups ? 'WHERE' : 'HAVING'} ${deparse(having)}`),
  );
  stmt.targetList = rebuilt.targetList ?? [];
  stmt.fromClause = rebuilt.fromClause ?? [];
  if (rebuilt.withClause !== undefined) {
    stmt.withClause = stmt.withClause === undefined ? rebuilt.withClause : { ...stmt.withClause, ctes: [...(stmt.withClause.ctes ?? []), ...(rebuilt.withClause.ctes ?? [])] };
  }
  delete stmt.whereClause;
  if (rebuilt.whereClause !== undefined) stmt.whereClause = rebuilt.whereClause;
  if (rebuilt.groupClause === undefined) delete stmt.groupClause;
  else stmt.groupClause = rebuilt.groupClause;
  if (rebuilt.havingClause === undefined) delete stmt.havingClause;
  else stmt.havingClause = rebuilt.havingClause;
  if (stmt.sortClause !== undefined) stmt.sortClause = sorts;
  if (stmt.distinctClause !== undefined) stmt.distinctClause = distinct;

  const rewrites: Rewrite[] = [
    {
      kind: 'partial-aggregate',
      detail: wholeGroups
        ? `${bySpace ? `GROUP BY ${groups.map((g) => deparse(g)).join(', ')} holds the space key ${table.spaceColumn}` : (gate?.detail ?? '')}, so each group's rows are on one shard: ${asked(asks)} computes ${partials.join(', ')} whole for its groups on its data node${materialize ? ' (planned whole, not for the first rows)' : ''}, the access node puts the groups together`
        :
        (bySpace
          ? `GROUP BY ${groups.map((g) => deparse(g)).join(', ')} holds the space key ${table.spaceColumn}${limited ? ' and the statement a LIMIT' : ''}: `
          : `${groups.length > 0 ? `GROUP BY ${groups.map((g) => deparse(g)).join(', ')}` : 'the aggregate'} lacks the space key ${table.spaceColumn}: `) +
        `${asked(asks)} aggregates its own rows on its data node${materialize ? ' (planned whole, not for the first rows)' : ''}, the access node combines ${[...combined.keys()].join(', ') || 'the groups'}` +
        (viaValues.length > 0 ? ` (${viaValues.join(', ')} from the distinct values each shard returns per group)` : '') +
        (finished.length > 0
          ? `; ${finished.map((g) => deparse(g)).join(', ')} read${finished.length === 1 ? 's' : ''} the session's zone (${zone.timeZone ?? ''}, ${zone.grid === undefined || localMidnightOrigin(zone.timeZone) !== undefined ? 'a fixed offset' : 'whose offsets change only between buckets of its grid'}): each shard groups by ${finished.length === 1 ? 'a bucket' : 'buckets'} of the time column (${shardKeys.filter((_, k) => local[k] !== undefined).join(', ')}), the access node applies ${finished.length === 1 ? 'it' : 'them'} to each bucket's start`
          : ''),
    },
  ];
  if (gate !== undefined) rewrites.push({ kind: 'shard-pinning', detail: gate.detail });
  const joined = scope.relations.filter((r) => r.reference !== undefined).map((r) => r.refName);
  if (joined.length > 0) rewrites.push({ kind: 'reference-join', detail: `the join with ${joined.join(', ')} is offered beside each shard, on the data node's copy (postgres_fdw runs it there unless its estimates favour joining few rows on the access node; EXPLAIN shows which)` });
  const truncShipped = finished.flatMap((g) => ('FuncCall' in g && functionName(g.FuncCall) === 'date_trunc' ? [deparse(g.FuncCall.args?.[0] as Node)] : []));
  return { rewrites, unchanged: [], truncShipped };
}

/** The FROM clause of one arm: the shard or node view for the hypertable, that server's copy for each reference table. */
function armFrom(stmt: SelectStmt, scope: Scope, shard: ArmTarget): string {
  const swap = (node: Node): Node | undefined => {
    if (!('RangeVar' in node)) return undefined;
    const rv = node.RangeVar;
    const refName = rv.alias?.aliasname ?? rv.relname ?? '';
    const relation = scope.relations.find((r) => r.refName === refName);
    const target = relation?.hypertable !== undefined ? shard.table : relation?.reference?.copies.find((c) => c.server === shard.server)?.table;
    if (target === undefined) throw new TypeError(`no table for ${refName} beside ${shard.table.name}`);
    return { RangeVar: { ...rv, schemaname: target.schema, relname: target.name, inh: true, alias: { aliasname: refName } } };
  };
  return (stmt.fromClause ?? []).map((item) => deparse(transform(item, swap))).join(', ');
}

function limitPerShard(stmt: SelectStmt, scope: Scope, relation: Relation, table: DistributedTable, direct: Direct): ShardOutcome {
  const refuse = (reason: string): ShardOutcome => ({ rewrites: [], unchanged: [{ kind: 'limit-per-shard', reason }] });
  if ((stmt.distinctClause ?? []).length > 0) return refuse('DISTINCT with ORDER BY … LIMIT');
  const limit = limitText(stmt);
  if (limit === undefined) return refuse('LIMIT and OFFSET must be constants or parameters to be sent to every shard');
  // Per row of an outer query without an ORDER BY, arms gated outside keep the LIMIT on the access
  // node (seen in EXPLAIN), and nothing is gained: run-time pruning asks only the key's shard.
  const outer = correlation(stmt);
  if (outer !== undefined && (stmt.sortClause ?? []).length === 0) {
    return refuse(`LIMIT without ORDER BY per row of an outer query (${outer}): run-time partition pruning already asks only the shards that can match, and any of their rows will do`);
  }
  const list = outputs(stmt, scope);
  const keys: string[] = [];
  for (const s of stmt.sortClause ?? []) {
    if (!('SortBy' in s) || s.SortBy.node === undefined || (s.SortBy.useOp ?? []).length > 0) return refuse('ORDER BY … USING');
    const resolved = resolveItem(s.SortBy.node, list, scope, 'ORDER BY');
    if (typeof resolved === 'string') return refuse(resolved);
    const expr = resolved.expr;
    if (!onlyColumnsOf(expr, scope, relation) || containsNode(expr, (n) => 'SubLink' in n)) return refuse(`ORDER BY ${deparse(s.SortBy.node)} is not an expression over the hypertable's columns`);
    const type = inferType(expr, scope);
    if (!typeClass.collationFree(type)) return refuse(`ORDER BY ${deparse(expr)}: ${type === undefined ? 'its type cannot be told' : `${type} sorts by collation`}, which a data node may not share`);
    keys.push(`${deparse(expr)}${direction(s.SortBy)}`);
    const blocked = unshippable(expr, scope);
    if (blocked !== undefined) return refuse(`ORDER BY ${deparse(expr)}: ${blocked}, so postgres_fdw would not send the ORDER BY … LIMIT`);
  }
  const filtered = firstUnshippable([stmt.whereClause], scope);
  if (filtered !== undefined) return refuse(`${filtered}: postgres_fdw would keep the filter on the access node, so every shard would send all its rows`);
  if (direct.denied !== undefined) return denied(direct);
  const gate = shardGate(stmt, scope, relation, table);
  const asks = armTargets(gate, table);
  const arms = asks.map((target) => {
    return gated(gate, target, (where) => `SELECT * FROM ${quoteQualified(target.table.schema, target.table.name)} AS ${quoteIdent(relation.refName)}${where}${keys.length === 0 ? '' : ` ORDER BY ${keys.join(', ')}`} LIMIT ${limit}`, stmt.whereClause);
  });
  readArms(stmt, relation, table, direct, arms);
  const rewrites: Rewrite[] = [
    {
      kind: 'limit-per-shard',
      detail:
        keys.length === 0
          ? `LIMIT ${limit} without ORDER BY: ${asked(asks)} returns at most that many rows, the access node takes the first of them`
          : `ORDER BY ${keys.join(', ')} LIMIT ${limit}: ${asked(asks)} returns its first rows, the access node merges them`,
    },
  ];
  if (gate !== undefined) rewrites.push({ kind: 'shard-pinning', detail: gate.detail });
  return { rewrites, unchanged: [] };
}

/**
 * `SELECT DISTINCT ON (space key) … ORDER BY space key, k…` (lastpoint): one row per key, the
 * first by k. postgres_fdw ships no DISTINCT, so every row of every shard would cross. Instead
 * the keys come from a GROUP BY on the space key (each shard finishes it), and each key's row is
 * fetched by an indexed probe, ORDER BY k LIMIT 1, on the one shard that holds the key.
 */
function distinctOnSpace(stmt: SelectStmt, scope: Scope, relation: Relation, table: DistributedTable, direct: Direct, access: RoleAccess | undefined, zone: SessionZone): ShardOutcome {
  const refuse = (reason: string): ShardOutcome => ({ rewrites: [], unchanged: [{ kind: 'distinct-on-per-shard', reason }] });
  const isSpace = (n: Node | undefined): boolean => n !== undefined && 'ColumnRef' in n && resolveColumn(n.ColumnRef, scope)?.column === table.spaceColumn;
  const list = outputs(stmt, scope);
  const resolve = (item: Node | undefined, clause: 'ORDER BY' | 'DISTINCT ON'): Node | undefined => {
    const resolved = item === undefined ? undefined : resolveItem(item, list, scope, clause);
    return resolved === undefined || typeof resolved === 'string' ? undefined : resolved.expr;
  };
  const on = (stmt.distinctClause ?? []).map((d) => resolve(d, 'DISTINCT ON'));
  if (on.length !== 1 || !isSpace(on[0])) return refuse(`DISTINCT ON (${(stmt.distinctClause ?? []).map((d) => deparse(d)).join(', ')}) is not DISTINCT ON the space key ${table.spaceColumn} alone`);
  if (table.columns.find((c) => c.name === table.spaceColumn)?.notNull !== true) return refuse(`the space key ${table.spaceColumn} may be NULL, and a NULL key has no shard to probe`);
  const sorts = (stmt.sortClause ?? []).map((s) => ('SortBy' in s ? s.SortBy : undefined));
  if (sorts.length === 0 || !isSpace(resolve(sorts[0]?.node, 'ORDER BY'))) return refuse('ORDER BY does not start with the space key');
  const rest: string[] = [];
  for (const s of sorts.slice(1)) {
    const expr = resolve(s?.node, 'ORDER BY');
    if (s === undefined || expr === undefined || (s.useOp ?? []).length > 0 || !onlyColumnsOf(expr, scope, relation) || !typeClass.collationFree(inferType(expr, scope))) {
      return refuse(`ORDER BY ${s?.node === undefined ? '?' : deparse(s.node)} cannot be evaluated per shard`);
    }
    rest.push(`${deparse(expr)}${direction(s)}`);
  }
  if (stmt.whereClause !== undefined && containsNode(stmt.whereClause, (n) => 'ColumnRef' in n && !onlyColumnsOf(n, scope, relation))) return refuse('the WHERE refers to an enclosing query');
  const blocked = firstUnshippable([stmt.whereClause], scope);
  if (blocked !== undefined) return refuse(`${blocked}: postgres_fdw would keep the filter on the access node, so the probes would read every row`);
  if (direct.denied !== undefined) return denied(direct);
  const ref = quoteIdent(relation.refName);
  const space = `${ref}.${quoteIdent(table.spaceColumn)}`;
  const parent = quoteQualified(table.table.schema, table.table.name);
  const where = stmt.whereClause === undefined ? '' : `(${deparse(stmt.whereClause)}) AND `;
  const probe = parseSelect(`SELECT * FROM ${parent} AS ${ref} WHERE ${where}${space} = _hs_keys.k${rest.length > 0 ? ` ORDER BY ${rest.join(', ')}` : ''} LIMIT 1`);
  const probeOutcome = expandCopy(probe, scope, access, zone);
  const keys = `SELECT ${space} AS k FROM ${parent} AS ${ref}${stmt.whereClause === undefined ? '' : ` WHERE ${deparse(stmt.whereClause)}`} GROUP BY 1`;
  const rebuilt = parseSelect(`SELECT * FROM (${keys}) AS _hs_keys CROSS JOIN LATERAL (${deparse({ SelectStmt: probe })}) AS ${ref}`);
  stmt.fromClause = rebuilt.fromClause ?? [];
  // `*` would now include the key column: name the relation's columns instead.
  stmt.targetList = (stmt.targetList ?? []).map((t) => {
    const val = 'ResTarget' in t ? t.ResTarget.val : undefined;
    const bare = val !== undefined && 'ColumnRef' in val && (val.ColumnRef.fields ?? []).length === 1 && isStar(val);
    return bare && 'ResTarget' in t ? { ResTarget: { ...t.ResTarget, val: parseExpression(`${ref}.*`) } } : t;
  });
  delete stmt.whereClause;
  delete stmt.distinctClause;
  return {
    rewrites: [
      { kind: 'distinct-on-per-shard', detail: `DISTINCT ON (${table.spaceColumn}): keys from a GROUP BY each shard finishes, then one indexed probe${rest.length > 0 ? ` (ORDER BY ${rest.join(', ')} LIMIT 1)` : ''} per key on its shard` },
      ...probeOutcome.rewrites.filter((r) => r.kind === 'shard-pinning'),
    ],
    unchanged: [],
  };
}

interface Gate {
  /** Constant keys: the shards they hash to (computed here as PostgreSQL does), the only arms made, ungated. */
  readonly only?: ReadonlySet<number>;
  /** Whether an arm over these shards (one, or a node's) may hold matching rows. */
  readonly test: (shards: readonly ShardTarget[]) => string;
  /** A condition on the space column for each arm's WHERE (shipped), instead of the test. */
  readonly filter?: (shards: readonly ShardTarget[]) => string;
  /**
   * The WHERE conjunct the filter stands for on each arm: given the arm's own partition bounds the
   * two are the same condition, and the conjunct left beside it would only make the planner count
   * its selectivity twice (estimating so few rows that a LIMIT or sort is not worth shipping).
   */
  readonly replaces?: Node;
  readonly detail: string;
  /**
   * Outside the arm's own query a gate is a one-time filter that skips the shard's query (its
   * remote transaction is still begun as the executor starts, and committed: 2 round trips of
   * the 5), but the arm is then no longer an async foreign scan, so the
   * shards that do run, run one after another. Inside, postgres_fdw ships it as a parameter: every
   * shard is asked (and one the gate rules out answers at once), concurrently. One value reaches
   * one shard, so its gate goes outside; a list may reach several, so its gate goes inside.
   * (Constant gates are folded by the planner either way.)
   */
  readonly outside: boolean;
}

/** The shards a gate lets through: those its constant keys hash to, else all (gated at run time). */
function gatedShards(gate: Gate | undefined, table: DistributedTable): readonly ShardTarget[] {
  const only = gate?.only;
  return only === undefined ? table.shards : table.shards.filter((s) => only.has(s.index));
}

/** What one arm reads: a shard's foreign table, or a node view's (a data node's shards at once). */
interface ArmTarget {
  readonly table: QualifiedName;
  /** Its foreign table's server: reference-table copies beside it are read through the same. */
  readonly server: string;
  readonly shards: readonly ShardTarget[];
  readonly node: boolean;
}

/**
 * The arms to make: one per node view when the gated shards span fewer nodes than shards (fewer
 * remote queries), else one per gated shard. A node arm reads all its node's shards, which the
 * arm's WHERE (the statement's, and the gate) filters as it would each shard. Not when constant
 * keys leave out some of a node's shards: its view cannot skip them (a UNION ALL is not pruned by
 * hash), so the data node would plan and probe every chunk of each (at 64 shards, 8 hosts' keys
 * on 8 shards through 2 node views took 131 ms).
 */
function armTargets(gate: Gate | undefined, table: DistributedTable): readonly ArmTarget[] {
  const shards = gatedShards(gate, table);
  const nodes = (table.nodes ?? []).filter((n) => shards.some((s) => n.shards.includes(s.index)));
  const partial = gate?.only !== undefined && nodes.some((n) => n.shards.some((i) => !shards.some((s) => s.index === i)));
  if (table.nodes !== undefined && nodes.length < shards.length && !partial) {
    return nodes.map((n) => ({ table: n.table, server: n.server, shards: table.shards.filter((s) => n.shards.includes(s.index)), node: true }));
  }
  return shards.map((s) => ({ table: s.table, server: s.server, shards: [s], node: false }));
}

/** Who is asked, for a rewrite's detail: `each of 64 shards`, `each of 2 data nodes (…)`. */
function asked(targets: readonly ArmTarget[]): string {
  const shards = targets.reduce((n, t) => n + t.shards.length, 0);
  if (targets.some((t) => t.node)) return `each of ${targets.length} data node${targets.length === 1 ? '' : 's'} (once, through its node view over its shards: ${shards} in all)`;
  return `each of ${targets.length} shard${targets.length === 1 ? '' : 's'}`;
}

/** One arm, built around its WHERE, with the gate of its shards where it serves best. */
function gated(gate: Gate | undefined, target: ArmTarget, arm: (where: string) => string, where: Node | undefined): string {
  if (gate?.only !== undefined) return arm(where === undefined ? '' : ` WHERE ${deparse(where)}`);
  const { shards } = target;
  const own = gate === undefined ? undefined : gate.filter !== undefined ? gate.filter(shards) : gate.outside ? undefined : gate.test(shards);
  const kept = where === undefined || gate?.filter === undefined || gate.replaces === undefined ? where : without(where, gate.replaces);
  const conditions = [kept === undefined ? undefined : `(${deparse(kept)})`, own].filter((c) => c !== undefined);
  const query = arm(conditions.length === 0 ? '' : ` WHERE ${conditions.join(' AND ')}`);
  return gate?.outside === true ? `SELECT * FROM (${query}) AS _hs_arm WHERE ${gate.test(shards)}` : query;
}

/** `where` without the top-level conjunct `conjunct` (that very node), or undefined when nothing is left. */
function without(where: Node, conjunct: Node): Node | undefined {
  if (where === conjunct) return undefined;
  const rest = conjuncts(where).filter((c) => c !== conjunct);
  return rest.length === 1 ? rest[0] : { BoolExpr: { boolop: 'AND_EXPR', args: rest } };
}

/** `LIMIT n OFFSET m` as the per-shard `n + m`. */
function limitText(stmt: SelectStmt): string | undefined {
  // A number, or a string LIMIT reads as one (`LIMIT '10'`, as a driver's untyped value is written).
  const constant = (n: Node | undefined): number | undefined => integerConstant(n) ?? untypedInteger(n);
  const simple = (n: Node | undefined): boolean => n === undefined || constant(n) !== undefined || 'ParamRef' in n;
  if (!simple(stmt.limitCount) || !simple(stmt.limitOffset) || stmt.limitOption === 'LIMIT_OPTION_WITH_TIES') return undefined;
  const count = deparse(stmt.limitCount as Node);
  if (stmt.limitOffset === undefined) return count;
  const a = constant(stmt.limitCount);
  const b = constant(stmt.limitOffset);
  return a !== undefined && b !== undefined ? String(a + b) : `(${count} + ${deparse(stmt.limitOffset)})`;
}

function direction(s: import('@pgsql/types').SortBy): string {
  const dir = s.sortby_dir === 'SORTBY_DESC' ? ' DESC' : s.sortby_dir === 'SORTBY_ASC' ? ' ASC' : '';
  const nulls = s.sortby_nulls === 'SORTBY_NULLS_FIRST' ? ' NULLS FIRST' : s.sortby_nulls === 'SORTBY_NULLS_LAST' ? ' NULLS LAST' : '';
  return dir + nulls;
}

/**
 * The arm filter that keeps only shards a space-key predicate can match, or undefined when the
 * WHERE has none. Only integer space keys: their equality is exact, and an out-of-range value
 * (which matches nothing) is kept from the cast.
 */
function shardGate(stmt: SelectStmt, scope: Scope, relation: Relation, table: DistributedTable): Gate | undefined {
  const spaceType = table.columns.find((c) => c.name === table.spaceColumn)?.type;
  if (!typeClass.integer(spaceType) || stmt.whereClause === undefined) return undefined;
  const base = baseType(spaceType as string);
  const range = base === 'smallint' ? [-32768, 32767] : base === 'integer' ? [-2147483648, 2147483647] : undefined;
  const parent = quoteLiteral(quoteQualified(table.table.schema, table.table.name));
  const hashes = (value: string, shards: readonly ShardTarget[]): string => {
    const checks = shards.map((shard) => `satisfies_hash_partition(${parent}::regclass::oid, ${shard.modulus}, ${shard.remainder}, (${value})::${base})`);
    const check = checks.length === 1 ? (checks[0] as string) : `(${checks.join(' OR ')})`;
    return range === undefined ? check : `(CASE WHEN (${value}) BETWEEN ${range[0]} AND ${range[1]} THEN ${check} ELSE false END)`;
  };
  const isSpace = (n: Node | undefined): boolean => n !== undefined && 'ColumnRef' in n && resolveColumn(n.ColumnRef, scope)?.column === table.spaceColumn && resolveColumn(n.ColumnRef, scope)?.relation === relation;
  // The gate must not depend on the arm's own rows (it would be shipped, naming an access-node
  // relation) nor be volatile (it would be evaluated apart from the WHERE it stands for).
  const independent = (n: Node): boolean => !dependsOnLevel(n, scope) && !containsNode(n, (c) => 'FuncCall' in c && !NON_VOLATILE.has(functionName(c.FuncCall)));
  const pinned = constantPin(stmt.whereClause, isSpace, table, base);
  if (pinned !== undefined) return pinned;
  // Values that read no column (parameters, constants, uncorrelated sub-selects): each arm gets its
  // own list, the values that hash to its shard, as a filter on the space column. It ships (an
  // InitPlan parameter beside a column), so the arm stays a foreign scan postgres_fdw can push an
  // aggregate or LIMIT into; a boolean gate on the arm would be a one-time filter, with which
  // PostgreSQL 16 and later push neither.
  const space = `${quoteIdent(relation.refName)}.${quoteIdent(table.spaceColumn)}`;
  const keyed = (values: string, what: string, conjunct: Node): Gate => ({
    test: () => 'true',
    filter: (shard) => `${space} = ANY (ARRAY(SELECT _hs_key.v FROM unnest(${values}) AS _hs_key(v) WHERE ${hashes('_hs_key.v', shard)}))`,
    detail: `${what}: each shard is sent only the values that hash to it (a shard none hash to returns nothing at once)`,
    outside: false,
    replaces: conjunct,
  });
  // Free of columns: none outside sub-selects, and each sub-select reads only its own FROM.
  const free = (n: Node): boolean => {
    if (!independent(n)) return false;
    let ok = true;
    replaceTop(n, (c) => {
      if ('ColumnRef' in c) ok = false;
      else if ('SubLink' in c) {
        const sub = c.SubLink.subselect;
        if (sub === undefined || !('SelectStmt' in sub) || correlation(sub.SelectStmt) !== undefined) ok = false;
        return c;
      }
      return undefined;
    });
    return ok;
  };
  for (const conjunct of conjuncts(stmt.whereClause)) {
    if (!('A_Expr' in conjunct)) continue;
    const e = conjunct.A_Expr;
    const op = operatorName(e);
    if (op !== '=' || e.lexpr === undefined || e.rexpr === undefined) continue;
    if (e.kind === 'AEXPR_OP') {
      const value = isSpace(e.lexpr) ? e.rexpr : isSpace(e.rexpr) ? e.lexpr : undefined;
      if (value !== undefined && free(value)) return keyed(`ARRAY[(${deparse(value)})::${base}]`, `${table.spaceColumn} = ${deparse(value)}`, conjunct);
    }
    if (e.kind === 'AEXPR_IN' && isSpace(e.lexpr) && 'List' in e.rexpr) {
      const items = e.rexpr.List.items ?? [];
      if (items.length > 0 && items.every(free)) return keyed(`ARRAY[${items.map((i) => `(${deparse(i)})::${base}`).join(', ')}]`, `${table.spaceColumn} IN (${items.map((i) => deparse(i)).join(', ')})`, conjunct);
    }
    if (e.kind === 'AEXPR_OP_ANY' && isSpace(e.lexpr) && free(e.rexpr)) {
      // Without the conjunct an untyped parameter or literal would have no type: an empty array of
      // the column's type before it gives it the one the conjunct gave, and leaves a typed one its
      // own (a wider type is widened to, never cast from).
      const values = 'TypeCast' in e.rexpr || 'SubLink' in e.rexpr ? deparse(e.rexpr) : `CAST(ARRAY[] AS ${base}[]) || (${deparse(e.rexpr)})`;
      return keyed(values, `${table.spaceColumn} = ANY(${deparse(e.rexpr)})`, conjunct);
    }
  }
  for (const conjunct of conjuncts(stmt.whereClause)) {
    if (!('A_Expr' in conjunct)) continue;
    const e = conjunct.A_Expr;
    const op = operatorName(e);
    if (op !== '=' || e.lexpr === undefined || e.rexpr === undefined) continue;
    if (e.kind === 'AEXPR_OP') {
      const [column, value] = isSpace(e.lexpr) ? [e.lexpr, e.rexpr] : isSpace(e.rexpr) ? [e.rexpr, e.lexpr] : [undefined, undefined];
      if (column === undefined || value === undefined || !independent(value)) continue;
      const v = deparse(value);
      return { test: (shard) => hashes(v, shard), detail: `${table.spaceColumn} = ${v}: only the shard that value hashes to is read`, outside: true };
    }
    if (e.kind === 'AEXPR_IN' && isSpace(e.lexpr) && 'List' in e.rexpr) {
      const items = e.rexpr.List.items ?? [];
      if (items.length === 0 || !items.every(independent)) continue;
      const values = items.map((i) => deparse(i));
      return {
        test: (shard) => `(${values.map((v) => hashes(v, shard)).join(' OR ')})`,
        detail: `${table.spaceColumn} IN (${values.join(', ')}): only the shards those values hash to are read`,
        outside: false,
      };
    }
    if (e.kind === 'AEXPR_OP_ANY' && isSpace(e.lexpr) && independent(e.rexpr)) {
      const array = deparse(e.rexpr);
      return {
        test: (shard) => `EXISTS (SELECT FROM unnest(${array}) AS _hs_key(v) WHERE ${hashes('_hs_key.v', shard)})`,
        detail: `${table.spaceColumn} = ANY(${array}): a shard none of the values hash to answers at once`,
        outside: false,
      };
    }
  }
  return undefined;
}

function conjuncts(node: Node): Node[] {
  if ('BoolExpr' in node && node.BoolExpr.boolop === 'AND_EXPR') return (node.BoolExpr.args ?? []).flatMap(conjuncts);
  return [node];
}

/**
 * Does the expression read a column of this query level? Unqualified names count outside
 * sub-selects; inside them, only names qualified with one of this level's relations.
 */
function dependsOnLevel(node: Node, scope: Scope): boolean {
  const ours = (ref: ColumnRef, nested: boolean): boolean => {
    const path = columnPath(ref);
    if (path === undefined || path.length === 1) return !nested;
    return scope.relations.some((r) => r.refName === path[path.length - 2]);
  };
  if ('ColumnRef' in node) return ours(node.ColumnRef, false);
  let found = false;
  if ('SubLink' in node) {
    walk(node, (c) => {
      if ('ColumnRef' in c && ours(c.ColumnRef, true)) found = true;
      return !found;
    });
    return found;
  }
  const visit = (n: Node, nested: boolean): void => {
    walk(n, (c) => {
      if (found) return false;
      if ('ColumnRef' in c && ours(c.ColumnRef, nested)) found = true;
      if ('SubLink' in c && !nested) {
        visit(c, true);
        return false;
      }
      return undefined;
    });
  };
  visit(node, false);
  return found;
}

function onlyColumnsOf(node: Node, scope: Scope, relation: Relation): boolean {
  return !containsNode(node, (n) => 'ColumnRef' in n && resolveColumn(n.ColumnRef, scope)?.relation !== relation);
}

/** Qualifies this level's bare column names, so equal expressions deparse equally. */
function normalizeColumns(stmt: SelectStmt, scope: Scope): void {
  const qualify = (node: Node): Node => qualified(node, scope);
  const list = outputs(stmt, scope);
  // ORDER BY and DISTINCT ON prefer output names (implicit ones too): a name standing for an
  // output other than the input column of that name stays bare. GROUP BY prefers input columns.
  const keep = (node: Node, clause: 'ORDER BY' | 'DISTINCT ON'): Node => {
    const resolved = bareName(node) === undefined ? undefined : resolveItem(node, list, scope, clause);
    const input = qualify(node);
    return resolved !== undefined && typeof resolved !== 'string' && resolved.output && deparse(qualify(resolved.expr)) !== deparse(input) ? node : input;
  };
  stmt.targetList = (stmt.targetList ?? []).map(qualify);
  if (stmt.whereClause !== undefined) stmt.whereClause = qualify(stmt.whereClause);
  if (stmt.havingClause !== undefined) stmt.havingClause = qualify(stmt.havingClause);
  if (stmt.groupClause !== undefined) stmt.groupClause = stmt.groupClause.map(qualify);
  if (stmt.sortClause !== undefined) stmt.sortClause = stmt.sortClause.map((s) => ('SortBy' in s && s.SortBy.node !== undefined ? { SortBy: { ...s.SortBy, node: keep(s.SortBy.node, 'ORDER BY') } } : s));
  if (stmt.distinctClause !== undefined) stmt.distinctClause = stmt.distinctClause.map((d) => (Object.keys(d).length === 0 ? d : keep(d, 'DISTINCT ON')));
}

function containsAggregate(node: Node, scope: Scope): boolean {
  return containsNode(node, (n) => 'FuncCall' in n && isAggregateCall(n.FuncCall, scope));
}

function containsWindow(stmt: SelectStmt): boolean {
  return [...(stmt.targetList ?? []), ...(stmt.sortClause ?? [])].some((t) => containsNode(t, (n) => 'FuncCall' in n && n.FuncCall.over !== undefined));
}

/** The first reason one of these expressions would not be shipped. */
export function firstUnshippable(nodes: readonly (Node | undefined)[], scope: Scope): string | undefined {
  for (const n of nodes) {
    const reason = n === undefined ? undefined : unshippable(n, scope);
    if (reason !== undefined) return reason;
  }
  return undefined;
}

/**
 * `space = c` or `space IN (c, …)` with integer constants: the shards those keys hash to, computed
 * as PostgreSQL's hash partitioning does (src/route/hash.ts), so only their arms are made. A key
 * outside the column's range matches no row and reaches no shard.
 */
function constantPin(where: Node, isSpace: (n: Node | undefined) => boolean, table: DistributedTable, base: string): Gate | undefined {
  const moduli = new Set(table.shards.map((s) => s.modulus));
  if (moduli.size !== 1) return undefined;
  const modulus = table.shards[0]?.modulus ?? 1;
  const range = base === 'smallint' ? [-32768, 32767] : [-2147483648, 2147483647];
  for (const conjunct of conjuncts(where)) {
    if (!('A_Expr' in conjunct)) continue;
    const e = conjunct.A_Expr;
    const op = operatorName(e);
    if (op !== '=' || e.lexpr === undefined || e.rexpr === undefined) continue;
    let values: (number | undefined)[] | undefined;
    // Beside the column, an untyped string (`device_id = '5'`, as a driver's untyped value is
    // written) is read as the column's type, as PostgreSQL resolves it: one out of that type's
    // range is its error, not an empty answer, so it pins nothing.
    const column = (v: number | undefined): number | undefined => (v !== undefined && v >= (range[0] as number) && v <= (range[1] as number) ? v : undefined);
    const key = (n: Node): number | undefined => constantInteger(n) ?? column(untypedInteger(n));
    if (e.kind === 'AEXPR_OP' && isSpace(e.lexpr)) values = [key(e.rexpr)];
    else if (e.kind === 'AEXPR_OP' && isSpace(e.rexpr)) values = [key(e.lexpr)];
    else if (e.kind === 'AEXPR_IN' && isSpace(e.lexpr) && 'List' in e.rexpr) values = (e.rexpr.List.items ?? []).map(key);
    else if (e.kind === 'AEXPR_OP_ANY' && isSpace(e.lexpr)) values = integerArray(e.rexpr)?.map((v) => column(v));
    if (values === undefined || values.length === 0 || values.some((v) => v === undefined)) continue;
    const only = new Set<number>();
    for (const v of values as number[]) {
      if (v < (range[0] as number) || v > (range[1] as number)) continue;
      const remainder = remainderOf(rowHash(hashUint32(v >>> 0)), modulus);
      const shard = table.shards.find((s) => s.remainder === remainder);
      if (shard !== undefined) only.add(shard.index);
    }
    const list = values.join(', ');
    return {
      only,
      test: () => 'true',
      detail: `${table.spaceColumn} ${values.length === 1 ? `= ${list}` : `IN (${list})`}: only ${only.size === 1 ? 'the shard' : `the ${only.size} shards`} ${values.length === 1 ? 'that value hashes' : 'those values hash'} to ${only.size === 1 ? 'is' : 'are'} read`,
      outside: false,
    };
  }
  return undefined;
}

/**
 * An integer constant, maybe cast (`5`, `-5`, `5::int`), or a string cast to an integer type
 * (`'5'::int`, as a bound value is written); undefined otherwise (int8 literals beyond int4 included).
 */
function constantInteger(node: Node | undefined): number | undefined {
  if (node !== undefined && 'TypeCast' in node) {
    const arg = node.TypeCast.arg;
    const type = stringValue(node.TypeCast.typeName?.names?.at(-1))?.toLowerCase() ?? '';
    if (INTEGER_TYPES.has(type) && (node.TypeCast.typeName?.arrayBounds ?? []).length === 0) {
      const value = untypedInteger(arg);
      if (value !== undefined) return value;
    }
    return constantInteger(arg);
  }
  return integerConstant(node);
}

/**
 * The elements of an array constant of integers: `'{3,4}'` (untyped, read as the column's array
 * type beside `= ANY`), cast to an integer array type, or `ARRAY[3, 4]`; undefined otherwise
 * (NULL elements, a comma or backslash inside a quoted element, other dimensions).
 */
function integerArray(node: Node): (number | undefined)[] | undefined {
  if ('A_ArrayExpr' in node) return (node.A_ArrayExpr.elements ?? []).map(constantInteger);
  let text: string | undefined;
  if ('TypeCast' in node) {
    const type = stringValue(node.TypeCast.typeName?.names?.at(-1))?.toLowerCase() ?? '';
    const arg = node.TypeCast.arg;
    if (!INTEGER_TYPES.has(type) || (node.TypeCast.typeName?.arrayBounds ?? []).length !== 1 || arg === undefined) return undefined;
    if ('A_ArrayExpr' in arg) return integerArray(arg);
    text = 'A_Const' in arg ? arg.A_Const.sval?.sval : undefined;
  } else text = 'A_Const' in node ? node.A_Const.sval?.sval : undefined;
  const body = text === undefined ? undefined : /^[ \t\n\r\v\f]*\{([^{}\\]*)\}[ \t\n\r\v\f]*$/.exec(text)?.[1];
  if (body === undefined || body.trim() === '') return undefined;
  // An element bare or double-quoted (node-postgres quotes every one): its text either way.
  const element = (item: string): string => /^[ \t\n\r\v\f]*"([^"]*)"[ \t\n\r\v\f]*$/.exec(item)?.[1] ?? item;
  return body.split(',').map((item) => untypedInteger({ A_Const: { sval: { sval: element(item) } } } as Node));
}

/**
 * A string constant whose text an integer type reads as an int4 (`'5'`, `' -5 '`; not the hex,
 * octal or `1_000` forms PostgreSQL 16 reads too); undefined otherwise.
 */
function untypedInteger(node: Node | undefined): number | undefined {
  const text = node !== undefined && 'A_Const' in node ? node.A_Const.sval?.sval : undefined;
  if (text === undefined || !/^[ \t\n\r\v\f]*[-+]?[0-9]{1,10}[ \t\n\r\v\f]*$/.test(text)) return undefined;
  const value = Number(text);
  return value >= -(2 ** 31) && value < 2 ** 31 ? value : undefined;
}

const INTEGER_TYPES: ReadonlySet<string> = new Set(['int2', 'int4', 'int8', 'smallint', 'integer', 'int', 'bigint']);
