/**
 * Router reads: a SELECT whose rewrite reads exactly one shard's foreign table (and perhaps
 * reference-table copies on that shard's server) is sent straight to the shard's data node, as
 * the data node's own table names: the access node's fixed cost per shard asked (postgres_fdw's
 * remote transaction, cursor and planning on both sides, docs/benchmarks.md) is then not paid;
 * Citus calls these router queries. One router for the gateway (which relays the answer,
 * src/gateway/routerReads.ts) and hypershard/pg (src/pg/client.ts).
 *
 * Only when the answer and the privileges are provably those of the access node's path:
 *   - planRouterRead (here, from the rewritten text alone): one plain SELECT, no locking clause,
 *     INTO or data-modifying CTE, no parameter, only node kinds known to be harmless, no function
 *     that reads the session, the node or the clock (DENIED), no system column, no collation
 *     clause, no reg* cast; every relation one shard's foreign table, a reference table, or a
 *     reference copy on the same server;
 *   - checkSql (on the client's own access-node session, as its role, one round trip):
 *     the rewrite's guards hold (privileges and row security as for the per-shard rewrite, the
 *     keys of a key sub-select unchanged), no user-defined function, operator or type carries a
 *     name the statement uses (so each resolves to a built-in, as on the data node with
 *     search_path = pg_catalog), the shard is not being moved (its routed-write lock, taken as a
 *     move takes it, src/route/lock.ts), where the foreign tables point now (routerTarget), the
 *     session's settings that change results (routerConnection puts the data node's connection
 *     in them), and the access node's now() and the statement's clock bounds.
 */
import type { Node, SelectStmt } from '@pgsql/types';
import type pg from 'pg';
import { DatabaseError } from 'pg-protocol';
import type { IngestCluster } from '../ingest/cluster.js';
import type { QualifiedName } from '../plan/layout.js';
import { GUARD_NAME, guardCondition } from '../rewrite/access.js';
import { columnPath, containsNode, functionName, functionSchema, stringValue, transform, walk } from '../rewrite/ast.js';
import type { ClusterMetadata, DistributedTable, ReferenceTable, ShardTarget } from '../rewrite/model.js';
import { deparse, parseExpression, parseStatements } from '../rewrite/parser.js';
import { DATE_SPAN_GUARD_NAME } from '../rewrite/dates.js';
import { KEYS_GUARD_NAME } from '../rewrite/referenceKeys.js';
import type { SessionSettings } from '../rewrite/session.js';
import { quoteLiteral } from '../sql/quote.js';
import { Lru } from '../pg/lru.js';
import { shardLockKey } from './lock.js';
import { remoteTable, serverDataNode } from './placement.js';

/** Node kinds a routed statement may hold; anything else is left to the access node. */
const ALLOWED_NODES = new Set([
  'SelectStmt', 'ResTarget', 'ColumnRef', 'String', 'Integer', 'Float', 'Boolean', 'BitString', 'A_Const', 'A_Star', 'A_Expr',
  'BoolExpr', 'FuncCall', 'TypeCast', 'SubLink', 'RangeVar', 'RangeSubselect', 'RangeFunction', 'JoinExpr', 'SortBy', 'WindowDef',
  'CaseExpr', 'CaseWhen', 'CoalesceExpr', 'MinMaxExpr', 'NullTest', 'BooleanTest', 'A_ArrayExpr', 'RowExpr', 'A_Indirection',
  'A_Indices', 'List', 'WithClause', 'CommonTableExpr', 'GroupingSet', 'GroupingFunc', 'SQLValueFunction',
]);

/**
 * The transaction's start time, by the functions and SQL keywords that read it: the access node's
 * `now()` is read in the check (a moment between the client's request and its answer, as the
 * statement's own start would be) and put in as a constant, so the data node's clock is never read.
 */
const NOW_FUNCTIONS = new Set(['now', 'transaction_timestamp', 'statement_timestamp']);
const NOW_KEYWORDS: Readonly<Record<string, string>> = { SVFOP_CURRENT_TIMESTAMP: 'pg_catalog.timestamptz', SVFOP_CURRENT_DATE: 'pg_catalog.date', SVFOP_LOCALTIMESTAMP: 'pg_catalog.timestamp' };

/** Built-in functions whose answer depends on the session, the node, the clock or chance, or that act beyond the query. */
const DENIED_FUNCTIONS = new Set([
  'clock_timestamp', 'timeofday', 'age', 'random', 'random_normal', 'setseed',
  'gen_random_uuid', 'uuidv4', 'uuidv7', 'version', 'user', 'getdatabaseencoding', 'getpgusername', 'row_security_active',
  'obj_description', 'col_description', 'shobj_description', 'nextval', 'currval', 'lastval', 'setval', 'format_type',
  'query_to_xml', 'query_to_xml_and_xmlschema', 'query_to_xmlschema', 'table_to_xml', 'table_to_xml_and_xmlschema', 'table_to_xmlschema',
  'cursor_to_xml', 'cursor_to_xmlschema', 'schema_to_xml', 'schema_to_xml_and_xmlschema', 'schema_to_xmlschema',
  'database_to_xml', 'database_to_xml_and_xmlschema', 'database_to_xmlschema', 'loread', 'lowrite',
]);
const DENIED_PREFIXES = ['pg_', 'current_', 'session_', 'set_', 'has_', 'txid', 'inet_', 'lo_', 'dblink', 'to_reg', 'brin_', 'gin_', 'binary_upgrade', 'xid', 'mxid'];

/** Columns whose values are the node's, not the row's. */
const SYSTEM_COLUMNS = new Set(['tableoid', 'ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'oid']);

/** Types whose text resolves names on the node it is read on. */
const NAME_TYPES = /^reg[a-z]*$/;

/**
 * Session settings that change an answer's text or what a statement means, set on the data-node
 * connection to the client session's values (search_path is pg_catalog there: every relation is
 * named by its schema, so only built-ins resolve unqualified).
 */
export const RESULT_SETTINGS = [
  'TimeZone', 'DateStyle', 'IntervalStyle', 'extra_float_digits', 'bytea_output', 'lc_monetary', 'lc_numeric', 'lc_time',
  'default_text_search_config', 'transform_null_equals', 'xmloption', 'xmlbinary', 'timezone_abbreviations', 'array_nulls',
  'statement_timeout', 'lock_timeout',
] as const;

/** The first OID a user-defined object gets (FirstNormalObjectId). */
export const FIRST_USER_OID = 16384;

/** What a rewritten statement reads, when it may be a router read. */
export interface RouterPlan {
  readonly hypertable: DistributedTable;
  readonly shard: ShardTarget;
  /** Foreign tables whose data-node table the statement reads (the shard's first), `schema.name`. */
  readonly foreignTables: readonly QualifiedName[];
  /** The tables a client must be able to read whole, without row security (the hypertable, reference tables). */
  readonly readTables: readonly QualifiedName[];
  /** The rewrite's guards, as expressions, each with the value it has when it holds. */
  readonly guards: readonly { readonly sql: string; readonly holds: boolean }[];
  readonly functions: readonly string[];
  readonly operators: readonly string[];
  readonly types: readonly string[];
  /**
   * Stable bounds of the clock (`(SELECT now() - interval '1 hour')`, the rewriter's scalar
   * sub-selects of constants and now()), as expressions: the check evaluates each on the access
   * node, and the data node gets its value as a literal, which its planner prunes chunks by
   * (an expression of `timestamptz - interval` is stable there: pruned only as it runs, every
   * chunk planned).
   */
  readonly bounds: readonly string[];
  /**
   * The bounds with the clock read as the check's instant: `coalesce($1, now())`, where $1 is the
   * clock a read sent ahead was given (RouterPredictions), else null. Evaluated by the check.
   */
  readonly clockBounds: readonly string[];
  /**
   * Whether the data node's statement holds the access node's clock (now(), a bound): a new text
   * each time; its check then takes one parameter, the clock a read sent ahead was given, or null.
   */
  readonly readsClock: boolean;
  /**
   * The statement for the data node, given each foreign table's table there (keyed `schema.name`),
   * the access node's now() (ISO, UTC) and the bounds' values as SQL literals (else each bound is
   * sent as an expression of that now()).
   */
  build(remote: ReadonlyMap<string, QualifiedName>, now: string, bounds?: readonly string[]): string;
  /** checkSql of this plan. */
  check(): string;
}

const key = (t: QualifiedName): string => `${t.schema}.${t.name}`;

/** Plans by metadata, search path and rewritten text: parsing and deparsing cost milliseconds, a repeated statement pays them once. */
const PLANS = new WeakMap<ClusterMetadata, Map<string, RouterPlan | string>>();
const MAX_PLANS = 1000;

/** planRouterRead, remembered; its statements for the data node too (per placement, the time put in by text). */
export function cachedRouterPlan(sql: string, metadata: ClusterMetadata, settings: SessionSettings): RouterPlan | string {
  let plans = PLANS.get(metadata);
  if (plans === undefined) {
    plans = new Map();
    PLANS.set(metadata, plans);
  }
  const k = `${settings.searchPath.join('\u0000')}\u0001${sql}`;
  let plan = plans.get(k);
  if (plan === undefined) {
    if (plans.size >= MAX_PLANS) plans.clear();
    plan = planRouterRead(sql, metadata, settings);
    if (typeof plan !== 'string') plan = remembered(plan, sql);
    plans.set(k, plan);
  }
  return plan;
}

function remembered(plan: RouterPlan, sql: string): RouterPlan {
  // The access node's now() and the bounds' values go in by text: tokens the statement cannot hold.
  let token = `hypershard_now_${Math.random().toString(36).slice(2)}`;
  while (sql.includes(token)) token += 'x';
  const boundTokens = plan.bounds.map((_, i) => quoteLiteral(`${token}_bound_${i}`));
  const built = new Map<string, string>();
  let check: string | undefined;
  return {
    ...plan,
    build: (remote, now, bounds) => {
      const k = `${JSON.stringify([...remote])}${bounds === undefined ? '' : '\u0000bounds'}`;
      let text = built.get(k);
      if (text === undefined) {
        text = plan.build(remote, token, bounds === undefined ? undefined : boundTokens);
        built.set(k, text);
      }
      // The bounds' tokens first: each holds the now token.
      for (const [i, value] of (bounds ?? []).entries()) text = text.split(boundTokens[i] as string).join(value);
      return text.split(token).join(now);
    },
    check: () => (check ??= plan.check()),
  };
}

/**
 * Whether `sql` (a rewrite) may be read from one data node, and what that takes.
 * @returns the plan, or why not (a metric label)
 */
export function planRouterRead(sql: string, metadata: ClusterMetadata, settings: SessionSettings): RouterPlan | string {
  let parsed;
  try {
    parsed = parseStatements(sql);
  } catch {
    return 'unparsable';
  }
  const only = parsed[0]?.stmt;
  if (parsed.length !== 1 || only === undefined || !('SelectStmt' in only)) return 'not-select';
  // Unqualified names must mean the built-ins: pg_catalog is searched first (after pg_temp, for relations and types).
  if (settings.searchPath.find((s) => !s.startsWith('pg_temp')) !== 'pg_catalog') return 'search-path';

  const shards = new Map<string, { table: DistributedTable; shard: ShardTarget }>();
  for (const h of metadata.hypertables) for (const s of h.shards) shards.set(key(s.table), { table: h, shard: s });
  const copies = new Map<string, { table: ReferenceTable; server: string }>();
  for (const r of metadata.referenceTables) for (const c of r.copies) copies.set(key(c.table), { table: r, server: c.server });

  const ctes = new Set<string>();
  const functions = new Set<string>();
  const operators = new Set<string>();
  const types = new Set<string>();
  const guards: { sql: string; holds: boolean }[] = [];
  const guardNodes = new Map<object, boolean>();
  const bounds: string[] = [];
  const clockBounds: string[] = [];
  /** Each bound's index, by where its sub-link is in the text (the transform keeps locations). */
  const boundAt = new Map<number, number>();
  const refs: { rv: { schemaname?: string; relname?: string }; kind: 'shard' | 'copy' | 'reference'; name: QualifiedName; server?: string; owner: DistributedTable | ReferenceTable }[] = [];
  let refusal: string | undefined;
  const refuse = (reason: string): false => {
    refusal ??= reason;
    return false;
  };

  const visit = (node: Node): boolean => {
    const kind = Object.keys(node)[0] as string;
    if (!ALLOWED_NODES.has(kind)) return refuse(`node:${kind}`);
    if ('SelectStmt' in node) {
      const s: SelectStmt = node.SelectStmt;
      if (s.intoClause !== undefined) return refuse('select-into');
      if ((s.lockingClause ?? []).length > 0) return refuse('locking-clause');
      for (const c of s.withClause?.ctes ?? []) {
        if (!('CommonTableExpr' in c)) return refuse('cte');
        const q = c.CommonTableExpr.ctequery;
        if (q === undefined || !('SelectStmt' in q)) return refuse('writable-cte');
        if (c.CommonTableExpr.ctename !== undefined) ctes.add(c.CommonTableExpr.ctename);
      }
    } else if ('SubLink' in node) {
      const guard = guardKind(node);
      if (guard !== undefined) {
        guards.push({ sql: deparse(node), holds: guard });
        guardNodes.set(node.SubLink, guard);
        return false;
      }
      // A date's span guard (dates.ts): its condition is checked on the access node, its midnight sent.
      const span = dateSpanGuard(node);
      if (span !== undefined) {
        guards.push({ sql: `(SELECT ${deparse(span.when)})`, holds: true });
        for (const part of [span.when, span.midnight]) if (visit(part)) walk(part, visit);
        return false;
      }
      const bound = clockBound(node);
      const at = node.SubLink.location;
      if (bound !== undefined && at !== undefined && !boundAt.has(at)) {
        boundAt.set(at, bounds.length);
        bounds.push(deparse(bound));
        clockBounds.push(deparse(atCheckInstant(bound)));
      }
    } else if ('RangeVar' in node) {
      const rv = node.RangeVar;
      const relname = rv.relname ?? '';
      if (rv.catalogname !== undefined) return refuse('catalog-name');
      if (rv.schemaname === undefined && ctes.has(relname)) return true;
      const name = resolve(rv.schemaname, relname, metadata, settings.searchPath);
      if (name === undefined) return refuse('other-relation');
      const shard = shards.get(key(name));
      const copy = copies.get(key(name));
      const reference = metadata.referenceTables.find((r) => key(r.table) === key(name));
      if (shard !== undefined) refs.push({ rv, kind: 'shard', name, owner: shard.table, server: shard.shard.server });
      else if (copy !== undefined) refs.push({ rv, kind: 'copy', name, owner: copy.table, server: copy.server });
      else if (reference !== undefined) refs.push({ rv, kind: 'reference', name, owner: reference });
      else return refuse('other-relation');
    } else if ('SQLValueFunction' in node) {
      const type = NOW_KEYWORDS[node.SQLValueFunction.op ?? ''];
      if (type === undefined || (node.SQLValueFunction.typmod ?? -1) !== -1) return refuse(`keyword:${node.SQLValueFunction.op ?? '?'}`);
    } else if ('FuncCall' in node) {
      const call = node.FuncCall;
      const schema = functionSchema(call);
      const name = functionName(call);
      if (schema !== undefined && schema !== 'pg_catalog') return refuse('function-schema');
      if (NOW_FUNCTIONS.has(name) && (call.args ?? []).length > 0) return refuse(`function:${name}`);
      if (DENIED_FUNCTIONS.has(name) || DENIED_PREFIXES.some((p) => name.startsWith(p))) return refuse(`function:${name}`);
      functions.add(name);
    } else if ('A_Expr' in node) {
      const names = (node.A_Expr.name ?? []).map((n) => stringValue(n) ?? '');
      if (names.length > 1 && names[0] !== 'pg_catalog') return refuse('operator-schema');
      const op = names.at(-1);
      if (op !== undefined && op !== '') operators.add(op);
    } else if ('TypeCast' in node) {
      const names = (node.TypeCast.typeName?.names ?? []).map((n) => stringValue(n) ?? '');
      if (names.length > 1 && names[0] !== 'pg_catalog') return refuse('type-schema');
      const type = (names.at(-1) ?? '').toLowerCase();
      if (NAME_TYPES.test(type) || type === 'oid') return refuse(`type:${type}`);
      types.add(type);
    } else if ('ColumnRef' in node) {
      const last = columnPath(node.ColumnRef)?.at(-1);
      if (last !== undefined && SYSTEM_COLUMNS.has(last)) return refuse('system-column');
    } else if ('RangeFunction' in node) {
      if (node.RangeFunction.coldeflist !== undefined) return refuse('column-definitions');
    }
    return true;
  };
  // walk visits what is below the statement; the statement itself first.
  if (visit(only)) walk(only, visit);
  if (refusal !== undefined) return refusal;

  const shardRefs = refs.filter((r) => r.kind === 'shard');
  const shardTables = new Set(shardRefs.map((r) => key(r.name)));
  const first = shardRefs[0];
  if (first === undefined) return 'no-shard';
  if (shardTables.size !== 1) return 'several-shards';
  const pinned = shards.get(key(first.name));
  if (pinned === undefined) return 'no-shard';
  const server = pinned.shard.server;
  const foreign = new Map<string, QualifiedName>([[key(pinned.shard.table), pinned.shard.table]]);
  const targets = new Map<object, QualifiedName>();
  for (const r of refs) {
    let table: QualifiedName | undefined;
    if (r.kind === 'shard') table = r.name;
    else if (r.kind === 'copy') table = r.server === server ? r.name : undefined;
    else table = (r.owner as ReferenceTable).copies.find((c) => c.server === server)?.table;
    if (table === undefined) return 'reference-copy';
    foreign.set(key(table), table);
    targets.set(r.rv, table);
  }
  const readTables = new Map<string, QualifiedName>();
  for (const r of refs) readTables.set(key(r.owner.table), r.owner.table);

  const plan: RouterPlan = {
    check: () => checkSql(plan),
    hypertable: pinned.table,
    shard: pinned.shard,
    foreignTables: [...foreign.values()],
    readTables: [...readTables.values()],
    guards,
    functions: [...functions],
    operators: [...operators],
    types: [...types],
    bounds,
    clockBounds,
    readsClock: bounds.length > 0 || containsNode(only, clockNode),
    build: (remote, now, values) => {
      const clock = (type: string): Node => parseExpression(`${quoteLiteral(`${now}+00`)}::pg_catalog.timestamptz${type === 'pg_catalog.timestamptz' ? '' : `::${type}`}`);
      const rebuilt = transform(only, (node) => {
        if ('SQLValueFunction' in node) {
          const type = NOW_KEYWORDS[node.SQLValueFunction.op ?? ''];
          return type === undefined ? undefined : clock(type);
        }
        if (clockNode(node)) return clock('pg_catalog.timestamptz');
        if ('SubLink' in node) {
          for (const [original, holds] of guardNodes) {
            if (deparse({ SubLink: original } as Node) === deparse(node)) return { A_Const: { boolval: { boolval: holds } } } as Node;
          }
          const span = dateSpanGuard(node);
          if (span !== undefined) return span.midnight;
          const value = constantScalar(node);
          const bound = node.SubLink.location === undefined ? undefined : boundAt.get(node.SubLink.location);
          const literal = bound === undefined ? undefined : values?.[bound];
          return literal === undefined || value === undefined ? value : parseExpression(literal);
        }
        if (!('RangeVar' in node)) return undefined;
        const rv = node.RangeVar;
        const table = [...targets].find(([original]) => sameRangeVar(original as typeof rv, rv))?.[1];
        const there = table === undefined ? undefined : remote.get(key(table));
        if (there === undefined) return undefined;
        // Named as written when it has no alias, so qualified column references still resolve.
        return { RangeVar: { ...rv, schemaname: there.schema, relname: there.name, alias: rv.alias ?? { aliasname: rv.relname } } } as Node;
      }, true);
      return deparse(rebuilt);
    },
  };
  return plan;
}

/**
 * The span guard dates.ts puts around a date's midnight in a zone with daylight saving,
 * `(SELECT CASE WHEN d BETWEEN first AND last THEN midnight ELSE <error> END)`: its condition and
 * its midnight. (The condition goes into the check, as the client's role; the data node gets the
 * midnight alone, which its planner then sees.)
 */
function dateSpanGuard(node: Node): { readonly when: Node; readonly midnight: Node } | undefined {
  const value = scalarSubselect(node);
  if (value === undefined || !('CaseExpr' in value)) return undefined;
  const only = value.CaseExpr.args?.length === 1 ? value.CaseExpr.args[0] : undefined;
  const otherwise = value.CaseExpr.defresult;
  if (only === undefined || !('CaseWhen' in only) || only.CaseWhen.expr === undefined || only.CaseWhen.result === undefined || otherwise === undefined) return undefined;
  const named = containsNode(otherwise, (n) => 'A_Const' in n && n.A_Const.sval?.sval === `"${DATE_SPAN_GUARD_NAME}"`);
  return named ? { when: only.CaseWhen.expr, midnight: only.CaseWhen.result } : undefined;
}

/** Node kinds of an expression made of constants and operators only (now() is a constant by then). */
const CONSTANT_NODES = new Set(['A_Const', 'TypeCast', 'TypeName', 'String', 'Integer', 'Float', 'List', 'A_Expr']);

/**
 * `(SELECT e)` with no FROM, `e` constants and operators: `e` itself. The rewriter wraps stable
 * bounds such as `now() - interval '1 hour'` in a sub-select so the access node evaluates them
 * once; sent to a data node as they are, they would hide their value from its planner until run
 * time (a time bound estimated at a third of the rows chose the time index over (key, time) and
 * read every row of the window: 14 ms against 0.6 ms), where the expression is estimated, and
 * its chunks pruned, at planning.
 */
function constantScalar(node: Node): Node | undefined {
  const value = scalarSubselect(node);
  const other = (n: Node): boolean => !CONSTANT_NODES.has(Object.keys(n)[0] as string) || ('A_Expr' in n && n.A_Expr.kind !== 'AEXPR_OP');
  return value === undefined || containsNode(value, other) ? undefined : value;
}

/** `e` of `(SELECT e)` when `e` is constants, operators and the clock (now() and its keywords): a bound the check evaluates. */
function clockBound(node: Node): Node | undefined {
  const value = scalarSubselect(node);
  if (value === undefined) return undefined;
  const other = (n: Node): boolean => !clockNode(n) && (!CONSTANT_NODES.has(Object.keys(n)[0] as string) || ('A_Expr' in n && n.A_Expr.kind !== 'AEXPR_OP'));
  return containsNode(value, clockNode) && !containsNode(value, other) ? value : undefined;
}

/** The instant a check evaluates the clock at: the clock given to a read sent ahead ($1), else the access node's now(). */
const CHECK_INSTANT = 'COALESCE($1::pg_catalog.timestamptz, pg_catalog.now())';

/** An expression of the clock, with the clock read as the check's instant. */
function atCheckInstant(node: Node): Node {
  return transform(node, (n) => {
    if ('SQLValueFunction' in n) {
      const type = NOW_KEYWORDS[n.SQLValueFunction.op ?? ''];
      return type === undefined ? undefined : parseExpression(type === 'pg_catalog.timestamptz' ? CHECK_INSTANT : `${CHECK_INSTANT}::${type}`);
    }
    return clockNode(n) ? parseExpression(CHECK_INSTANT) : undefined;
  });
}

/** now() and the SQL keywords that read the transaction's start, the access node's clock in a router read. */
function clockNode(n: Node): boolean {
  return ('FuncCall' in n && NOW_FUNCTIONS.has(functionName(n.FuncCall)) && (n.FuncCall.args ?? []).length === 0) || ('SQLValueFunction' in n && NOW_KEYWORDS[n.SQLValueFunction.op ?? ''] !== undefined);
}

/** `e` of a scalar sub-select `(SELECT e)` that has nothing but its one target (no FROM, WHERE, GROUP BY …). */
function scalarSubselect(node: Node): Node | undefined {
  if (!('SubLink' in node) || node.SubLink.subLinkType !== 'EXPR_SUBLINK') return undefined;
  const select = node.SubLink.subselect;
  if (select === undefined || !('SelectStmt' in select)) return undefined;
  const s = select.SelectStmt;
  const only = s.targetList?.length === 1 ? s.targetList[0] : undefined;
  const plain = s.fromClause === undefined && s.whereClause === undefined && s.groupClause === undefined && s.havingClause === undefined
    && s.windowClause === undefined && s.distinctClause === undefined && s.sortClause === undefined && s.limitCount === undefined
    && s.limitOffset === undefined && s.valuesLists === undefined && s.withClause === undefined && (s.op ?? 'SETOP_NONE') === 'SETOP_NONE';
  return plain && only !== undefined && 'ResTarget' in only ? only.ResTarget.val : undefined;
}

/** A RangeVar and its copy, rebuilt by transform: same place in the text, same name. */
function sameRangeVar(a: { schemaname?: string; relname?: string; location?: number }, b: { schemaname?: string; relname?: string; location?: number }): boolean {
  return a.location === b.location && a.relname === b.relname && a.schemaname === b.schemaname;
}

/**
 * A guard the rewriter put in (access.ts's, referenceKeys.ts's), by the relation name its error
 * names: the value its sub-select has when it holds (false and true), else undefined.
 */
function guardKind(node: Node): boolean | undefined {
  let found: boolean | undefined;
  walk(node, (n) => {
    if ('A_Const' in n) {
      const s = n.A_Const.sval?.sval;
      if (s === `"${GUARD_NAME}"`) found = false;
      if (s === `"${KEYS_GUARD_NAME}"`) found = true;
    }
  });
  return found;
}

/** The relation a name means: qualified as written, else the first schema on the path holding one of that name (from the catalogs). */
function resolve(schema: string | undefined, name: string, metadata: ClusterMetadata, searchPath: readonly string[]): QualifiedName | undefined {
  if (schema !== undefined) return { schema, name };
  const holders = metadata.relationSchemas?.[name];
  if (holders === undefined) return undefined;
  const found = searchPath.find((s) => holders.includes(s));
  return found === undefined ? undefined : { schema: found, name };
}

/**
 * The in-band check, one statement on the client's session (its role, its search_path): the
 * guards, the settings, whether the shard is free (a move holds its lock exclusively), where each
 * foreign table points now, and whether any user-defined function, operator or type has a name
 * the statement uses.
 */
export function checkSql(plan: RouterPlan): string {
  const textArray = (values: readonly string[]): string => `ARRAY[${values.map(quoteLiteral).join(',')}]::pg_catalog.text[]`;
  const guards = [guardCondition(plan.readTables), ...plan.guards.map((g) => g.sql)];
  const tables = plan.foreignTables.map((t) => `(${quoteLiteral(t.schema)}, ${quoteLiteral(t.name)})`).join(', ');
  return `SELECT pg_catalog.current_setting('server_version_num') AS version,
  pg_catalog.to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS now,
  ARRAY[${RESULT_SETTINGS.map((s) => `pg_catalog.current_setting(${quoteLiteral(s)})`).join(', ')}]::pg_catalog.text[] AS settings,
  pg_catalog.current_setting('standard_conforming_strings') AS scs,
  ARRAY[${guards.map((g) => `(${g.startsWith('(SELECT') ? g : `SELECT ${g}`})`).join(', ')}]::pg_catalog.bool[] AS guards,
  ARRAY[${plan.bounds.map((b) => `pg_catalog.quote_nullable((${b})::pg_catalog.text) || '::' || pg_catalog.pg_typeof(${b})::pg_catalog.text`).join(', ')}]::pg_catalog.text[] AS bounds,
  pg_catalog.pg_try_advisory_xact_lock_shared(${shardLockKey(plan.hypertable.table)}, ${plan.shard.remainder}) AS free,${plan.readsClock ? clockColumns(plan) : ''}
  NOT EXISTS (SELECT FROM pg_catalog.pg_proc WHERE oid >= ${FIRST_USER_OID} AND proname = ANY (${textArray(plan.functions)}))
    AND NOT EXISTS (SELECT FROM pg_catalog.pg_operator WHERE oid >= ${FIRST_USER_OID} AND oprname = ANY (${textArray(plan.operators)}))
    AND NOT EXISTS (SELECT FROM pg_catalog.pg_type WHERE oid >= ${FIRST_USER_OID} AND typname = ANY (${textArray(plan.types)})) AS builtin,
  (SELECT pg_catalog.json_agg(pg_catalog.json_build_object('schema', t.schema, 'name', t.name, 'server', s.srvname, 'server_options', s.srvoptions, 'table_options', ft.ftoptions,
      'renamed', EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND a.attfdwoptions IS NOT NULL)))
   FROM (VALUES ${tables}) AS t(schema, name)
   JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema
   JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.name
   JOIN pg_catalog.pg_foreign_table ft ON ft.ftrelid = c.oid
   JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver) AS tables`;
}

/** How a check writes an instant: UTC, to the microsecond (clockMicros reads it). */
const CLOCK_FORMAT = `'YYYY-MM-DD HH24:MI:SS.US'`;

/**
 * A check's clock columns (plans that read the clock): the instant it evaluated the clock at and
 * each bound there, in UTC to the microsecond, or null when the bound is not a timestamptz (a
 * read is not sent ahead then). The bound is compared by its type's name, and read back through
 * its text (in the session's DateStyle, as written), so every bound's type can be named here.
 */
function clockColumns(plan: RouterPlan): string {
  const utc = (e: string): string => `pg_catalog.to_char(${e} AT TIME ZONE 'UTC', ${CLOCK_FORMAT})`;
  const bound = (b: string): string => `CASE WHEN pg_catalog.pg_typeof(${b}) = 'pg_catalog.timestamptz'::pg_catalog.regtype THEN ${utc(`((${b})::pg_catalog.text)::pg_catalog.timestamptz`)} END`;
  return `
  ${utc(CHECK_INSTANT)} AS clock,
  ARRAY[${plan.clockBounds.map(bound).join(', ')}]::pg_catalog.text[] AS clock_bounds,`;
}

export interface CheckRow {
  version: string;
  now: string;
  /** Plans that read the clock: the instant the check evaluated it at (the clock a read was sent ahead with, else `now`). */
  clock?: string;
  /** Plans that read the clock: each bound at `clock` (UTC, microseconds), null when not a timestamptz. */
  clock_bounds?: (string | null)[];
  settings: string[];
  scs: string;
  guards: (boolean | null)[];
  /** Each of the plan's bounds, as a literal of its type (in the session's settings, which the data node's connection gets). */
  bounds: string[];
  free: boolean;
  builtin: boolean;
  tables: { schema: string; name: string; server: string; server_options: string[] | null; table_options: string[] | null; renamed: boolean }[] | null;
}

/** Where a router read goes: the data node, the statement for it, and what its connection must match (the check's row). */
export interface RouterTarget {
  readonly node: string;
  readonly text: string;
  /** The access node's server_version_num: the data node's major version must be the same. */
  readonly version: string;
  /** The session's RESULT_SETTINGS, for the data node's connection. */
  readonly settings: readonly string[];
}

/**
 * Where a router read goes, from its check's row; or why it may not go (a fallback reason, the
 * statement then goes through the access node).
 */
export function routerTarget(plan: RouterPlan, row: CheckRow | undefined, cluster: IngestCluster, state: RouterReadState, clock?: Clock): RouterTarget | string {
  if (row === undefined) return 'check-failed';
  if (!row.free) return 'shard-moving';
  if (!row.builtin) return 'user-defined-name';
  if (row.scs !== 'on') return 'standard-conforming-strings';
  const expected = [false, ...plan.guards.map((g) => g.holds)];
  if (row.guards.length !== expected.length || row.guards.some((g, i) => g !== expected[i])) return 'guard';
  const tables = row.tables ?? [];
  const shardRow = tables.find((t) => t.schema === plan.shard.table.schema && t.name === plan.shard.table.name);
  if (shardRow === undefined || tables.length !== plan.foreignTables.length) return 'placement';
  // Where the shard is now (a move switches its foreign table's server); its reference copies must be there too.
  if (tables.some((t) => t.renamed || t.server !== shardRow.server)) return 'placement';
  const node = serverDataNode(cluster.spec, shardRow.server_options);
  if (node === undefined || !cluster.targets.dataNodes.has(node.name)) return 'placement';
  if (state.unreachable(node.name)) return 'data-node-unavailable';
  const remote = new Map<string, QualifiedName>(tables.map((t) => [`${t.schema}.${t.name}`, remoteTable(t, t.table_options)]));
  const { now, bounds } = clock ?? row;
  if (bounds.length !== plan.bounds.length) return 'check-failed';
  return { node: node.name, text: plan.build(remote, now, bounds), version: row.version, settings: row.settings };
}

/** The access node's clock a statement is given (UTC, `YYYY-MM-DD HH:MI:SS.US`) and its bounds there, as literals. */
export interface Clock {
  readonly now: string;
  readonly bounds: readonly string[];
}

/** What RouterPredictions.predict says of a read, before its check is sent. */
export interface Prediction {
  /** When it was made (performance.now()): before the check is sent. */
  readonly at: number;
  /** Where the read goes with its check, when an earlier check covered its tables. */
  readonly target?: RouterTarget;
  /** The access node's clock it was given, when it reads the clock: the check's parameter (else null). */
  readonly clock?: string;
}

/** What RouterPredictions.confirm decides of a read, by its check's row. */
export interface Confirmation {
  readonly target: RouterTarget | string;
  /** The target is the predicted one to the letter: the answer of the read sent ahead may be used. */
  readonly ahead: boolean;
  /** Not before this (performance.now()) may the client have the whole answer: the clock it was given has come by then. */
  readonly notBefore: number;
}

/**
 * How far the access node's clock may run from this process's monotonic clock, per unit of time,
 * for a clock estimated from an earlier check: NTP keeps servers' rates within a few parts per
 * million, 500 at most while it slews; 100 is added to every estimate's elapsed time.
 */
const CLOCK_RATE_MARGIN = 1e-4;
/** An estimate from a check older than this is not made: the rate margin grows with the age. */
const CLOCK_REFERENCE_MAX_MS = 10_000;
/** A given clock this far past the check's is not waited for: asking again costs less (or the clock stepped back). */
const CLOCK_WAIT_MAX_MS = 1;

/**
 * One session's last check row per set of foreign tables: where its next router read over them
 * would go, known before that read's own check answers, so the data node can be asked at the
 * same time. A prediction only: the read's check decides (confirm), and an answer from the
 * predicted target is used only when the check names that very target.
 *
 * A statement that reads the access node's clock (now(), a bound of it) is given, when sent
 * ahead, an estimate of that clock at the moment of the prediction: an earlier check's now() plus
 * the time since that check was sent (and CLOCK_RATE_MARGIN), at or after the access node's
 * clock at that moment, since that now() was read after the check was sent; of the session's
 * recent checks, the one that gives the least (the one the access node began soonest after it was
 * sent), so the estimate is rarely past the read's own check's now(). The read's own check
 * evaluates the statement's bounds at that very estimate, so the statement sent is checked to the
 * letter, and reads the access node's now(): the estimate must not be before it by more than the
 * check took (else the clock stepped forward), and when it is after it, the client gets its whole
 * answer only once that much time has passed since the check answered. The clock a statement
 * sees is then one the access node's clock shows while the client waits for it, as on the access
 * node's path.
 */
export class RouterPredictions {
  readonly #rows: Lru<string, CheckRow>;
  /** A recent check's now() (microseconds since the epoch) and when it was sent (performance.now()): the one giving the least estimate. */
  #clock: { readonly micros: number; readonly at: number } | undefined;
  /**
   * Per plan that reads the clock: the last check's clock and bounds there (microseconds), and
   * which bounds held still between its last two checks (today's midnight) rather than moving
   * with the clock (an hour ago).
   */
  readonly #bounds = new WeakMap<RouterPlan, { readonly clock: number; readonly values: readonly number[]; readonly still: readonly boolean[] }>();

  constructor(max = 32) {
    this.#rows = new Lru(max);
  }

  predict(plan: RouterPlan, cluster: IngestCluster, state: RouterReadState): Prediction {
    const at = performance.now();
    const row = this.#rows.get(tablesKey(plan));
    if (row === undefined) return { at };
    if (!plan.readsClock) {
      const target = routerTarget(plan, row, cluster, state);
      return typeof target === 'string' ? { at } : { at, target };
    }
    const reference = this.#clock;
    const learned = this.#bounds.get(plan);
    if (reference === undefined || learned === undefined || at - reference.at > CLOCK_REFERENCE_MAX_MS) return { at };
    const estimate = estimateAt(reference, at);
    const clock = clockText(estimate);
    const bounds = learned.values.map((b, i) => clockLiteral(clockText(learned.still[i] === true ? b : estimate - (learned.clock - b))));
    const target = routerTarget(plan, row, cluster, state, { now: clock, bounds });
    return typeof target === 'string' ? { at } : { at, target, clock };
  }

  /** The check's parameters: the clock a read sent ahead was given, or null; none when the plan does not read the clock. */
  checkValues(plan: RouterPlan, prediction: Prediction): (string | null)[] | undefined {
    return plan.readsClock ? [prediction.clock === undefined ? null : `${prediction.clock}+00`] : undefined;
  }

  /**
   * Where the read goes by its check's row (routerTarget), remembered for the next read over its
   * tables (forgotten when the check refused); `ahead` when that is the predicted target to the
   * letter (data node, statement, session settings, server version), so its answer may be used.
   */
  confirm(plan: RouterPlan, row: CheckRow | undefined, prediction: Prediction, cluster: IngestCluster, state: RouterReadState): Confirmation {
    const checked = performance.now();
    const k = tablesKey(plan);
    const now = row === undefined ? Number.NaN : clockMicros(row.now);
    if (row !== undefined && Number.isFinite(now)) {
      // Each check bounds the access node's clock from above; the least bound is kept while it is young.
      const best = this.#clock;
      const candidate = { micros: now, at: prediction.at };
      if (best === undefined || checked - best.at > CLOCK_REFERENCE_MAX_MS / 2 || estimateAt(candidate, checked) <= estimateAt(best, checked)) this.#clock = candidate;
      this.#learn(plan, row);
    }
    // The clock given to the read sent ahead, when the check's clock bears it out.
    let clock: Clock | undefined;
    let waitMs = 0;
    if (prediction.clock !== undefined && row?.clock === prediction.clock && Number.isFinite(now)) {
      const given = clockMicros(prediction.clock);
      const bounds = (row.clock_bounds ?? []).map((b) => (b === null ? undefined : clockLiteral(b)));
      const behind = now - given;
      const tookMicros = (checked - prediction.at) * 1000 * (1 + CLOCK_RATE_MARGIN);
      if (behind <= tookMicros && -behind <= CLOCK_WAIT_MAX_MS * 1000 && bounds.every((b) => b !== undefined)) {
        clock = { now: prediction.clock, bounds: bounds as string[] };
        waitMs = Math.max(0, -behind / 1000) * (1 + CLOCK_RATE_MARGIN);
      }
    }
    const target = routerTarget(plan, row, cluster, state, clock);
    if (typeof target === 'string' || row === undefined) {
      this.#rows.delete(k);
      return { target, ahead: false, notBefore: checked };
    }
    this.#rows.set(k, row);
    const predicted = prediction.target;
    const same = predicted !== undefined && predicted.node === target.node && predicted.text === target.text && predicted.version === target.version
      && predicted.settings.length === target.settings.length && predicted.settings.every((v, i) => v === target.settings[i]);
    return { target, ahead: same, notBefore: checked + waitMs };
  }

  /** The bounds at a check's clock, and which held still since the last; none when a bound is not a timestamptz. */
  #learn(plan: RouterPlan, row: CheckRow): void {
    if (!plan.readsClock) return;
    const clock = row.clock === undefined ? Number.NaN : clockMicros(row.clock);
    const values = (row.clock_bounds ?? []).map((b) => (b === null ? Number.NaN : clockMicros(b)));
    if (values.length !== plan.bounds.length || !values.every(Number.isFinite) || !Number.isFinite(clock)) {
      this.#bounds.delete(plan);
      return;
    }
    const last = this.#bounds.get(plan);
    this.#bounds.set(plan, { clock, values, still: values.map((b, i) => last !== undefined && last.clock !== clock && last.values[i] === b) });
  }
}

/** The access node's clock at `at` (performance.now()) by a check's now() and when it was sent: at or after it. */
function estimateAt(reference: { readonly micros: number; readonly at: number }, at: number): number {
  return reference.micros + Math.ceil((at - reference.at) * 1000 * (1 + CLOCK_RATE_MARGIN));
}

/** Microseconds since the epoch of a check's instant (`YYYY-MM-DD HH:MI:SS.US`, UTC); NaN when it is not one. */
export function clockMicros(text: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\.(\d{6})$/.exec(text);
  if (m === null) return Number.NaN;
  const [, y, mo, d, h, mi, sec, us] = m.map(Number) as number[];
  return Date.UTC(y as number, (mo as number) - 1, d, h, mi, sec) * 1000 + (us as number);
}

/** A check's instant from microseconds since the epoch (UTC). */
export function clockText(micros: number): string {
  const ms = Math.floor(micros / 1000);
  const date = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  return `${date.slice(0, 10)} ${date.slice(11, 19)}.${String(micros - Math.floor(micros / 1_000_000) * 1_000_000).padStart(6, '0')}`;
}

/**
 * Resolves once performance.now() reaches `notBefore` (Confirmation.notBefore): a wait of
 * microseconds yields to the event loop until then, a longer one sleeps.
 */
export async function clockReached(notBefore: number): Promise<void> {
  for (let left = notBefore - performance.now(); left > 0; left = notBefore - performance.now()) {
    await new Promise<void>((done) => (left < 1 ? setImmediate(done) : setTimeout(done, Math.ceil(left))));
  }
}

/** A bound at a known instant (a check's UTC text), as the statement gets it. */
const clockLiteral = (instant: string): string => `${quoteLiteral(`${instant}+00`)}::pg_catalog.timestamptz`;

const tablesKey = (plan: RouterPlan): string => plan.foreignTables.map(key).join('\u0000');

/**
 * A connection to the target's data node, in the session's settings and of the access node's
 * major version; or why there is none (the read then goes through the access node). A node that
 * cannot be reached is left out for a while (RouterReadState).
 */
export async function routerConnection(cluster: IngestCluster, state: RouterReadState, target: RouterTarget): Promise<pg.Client | string> {
  const { node } = target;
  let client: pg.Client;
  try {
    client = await cluster.acquireReader(node);
  } catch {
    state.failed(node);
    return 'data-node-unavailable';
  }
  try {
    const version = await state.version(client);
    if (Math.floor(version / 10_000) !== Math.floor(Number(target.version) / 10_000)) {
      cluster.releaseReader(node, client, true);
      return 'version';
    }
    await state.applySettings(client, target.settings);
    return client;
  } catch (error) {
    cluster.releaseReader(node, client, false);
    // A setting the data node refuses (a locale it lacks) is this session's business; no answer is the node's.
    if (error instanceof DatabaseError) return 'data-node-settings';
    state.failed(node);
    return 'data-node-failed';
  }
}

/** `SELECT set_config(…)` putting a data-node connection in the client session's settings. */
export function settingsSql(values: readonly string[]): string {
  const sets = RESULT_SETTINGS.map((name, i) => `pg_catalog.set_config(${quoteLiteral(name)}, ${quoteLiteral(values[i] ?? '')}, false)`);
  return `SELECT ${sets.join(', ')}, pg_catalog.set_config('search_path', 'pg_catalog', false)`;
}

/** Data nodes a router read could not reach, skipped until the time given (ms since the epoch). */
export class RouterReadState {
  readonly #unreachable = new Map<string, number>();
  readonly #versions = new WeakMap<pg.Client, number>();
  readonly #settings = new WeakMap<pg.Client, string>();

  /** How long a data node that failed is left out of router reads. */
  static readonly BACKOFF_MS = 30_000;

  unreachable(node: string): boolean {
    const until = this.#unreachable.get(node);
    if (until === undefined) return false;
    if (Date.now() < until) return true;
    this.#unreachable.delete(node);
    return false;
  }

  failed(node: string): void {
    this.#unreachable.set(node, Date.now() + RouterReadState.BACKOFF_MS);
  }

  /** server_version_num of a data-node connection, read once. */
  async version(client: pg.Client): Promise<number> {
    const known = this.#versions.get(client);
    if (known !== undefined) return known;
    const { rows } = await client.query<{ v: string }>(`SELECT pg_catalog.current_setting('server_version_num') AS v`);
    const v = Number(rows[0]?.v ?? 0);
    this.#versions.set(client, v);
    return v;
  }

  /** Sets the client session's settings on a data-node connection, unless it has them already. */
  async applySettings(client: pg.Client, values: readonly string[]): Promise<void> {
    const wanted = JSON.stringify(values);
    if (this.#settings.get(client) === wanted) return;
    this.#settings.delete(client);
    await client.query(settingsSql(values));
    this.#settings.set(client, wanted);
  }
}

/** Per ingest cluster: its data-node connections' settings and unreachable nodes are the cluster's, whoever reads through it. */
const STATES = new WeakMap<IngestCluster, RouterReadState>();

/** The router-read state of an ingest cluster's connections (one per cluster). */
export function routerStateOf(cluster: IngestCluster): RouterReadState {
  let state = STATES.get(cluster);
  if (state === undefined) {
    state = new RouterReadState();
    STATES.set(cluster, state);
  }
  return state;
}
