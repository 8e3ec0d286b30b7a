/**
 * The differential harness (issue 5, "proof of equivalence"): a query's answer on a plain
 * single-node table against the rewritten query's answer through the access node, over the same
 * rows.
 *
 * The single-node copies live on the access node itself, in their own schema under the same names
 * (`single.metrics` beside the hypertable `public.metrics`). A case's SQL names its tables
 * unqualified; the original runs with that schema first in the search_path, the rewritten SQL with
 * the distributed search_path, both in one REPEATABLE READ READ ONLY transaction, so `now()` is
 * one instant for both. Answers are read as PostgreSQL's text output, so every value is compared
 * exactly, except floats (and numeric averages and variances, which a combination of per-shard
 * parts may round differently) within FLOAT_TOLERANCE.
 *
 * How far the order is compared follows from the original statement's parse tree (pgsql-parser,
 * the server's own grammar): rows come in ORDER BY order, rows the ORDER BY leaves tied are
 * compared as a multiset, and of a tie group that LIMIT or OFFSET may have cut only the ORDER BY
 * keys are compared (see `compareTextResults`); such answers, and those ordered by keys they do not
 * show, are then checked row by row against the full answer's tie groups (fullOrder.ts).
 */
import type pg from 'pg';
import { deparse, parse } from 'pgsql-parser';
import { analyzePlan } from '../../src/audit/analyze.js';
import type { AuditCatalog } from '../../src/audit/catalog.js';
import type { ExplainResult } from '../../src/audit/plan.js';
import type { ClusterMetadata, Rewrite, RewriteKind, RewriteResult, RoleAccess } from '../../src/rewrite/model.js';
import { rewriteSql } from '../../src/rewrite/rewrite.js';
import type { ZoneGrid } from '../../src/rewrite/zoneGrid.js';
import { compareTextResults, FLOAT_TOLERANCE, type ResultDifference, type ResultShape, type TextResult, type TextRow } from './compare.js';
import { checkFullOrder, type FullOrderQuery, fullOrderSql } from './fullOrder.js';
import { plannersChoice, truthProblems } from './truth.js';

export interface DifferentialCase {
  readonly id: string;
  /** Names tables unqualified: the search_path picks the single-node copy or the hypertable. */
  readonly sql: string;
  readonly params?: readonly unknown[];
}

export interface DifferentialTarget {
  /** Connections to the access node; cases are spread over them. */
  readonly clients: readonly pg.Client[];
  readonly metadata: ClusterMetadata;
  /** The schema holding a plain copy of each hypertable under the same name. */
  readonly singleSchema: string;
  /** The rewritten statement's search_path; the original's has `singleSchema` in front. */
  readonly searchPath: readonly string[];
  /** The session TimeZone both statements run under, passed to the rewriter too. */
  readonly timeZone: string;
  /**
   * Connections through the gateway (one per client, in the target's TimeZone and search_path):
   * each case is sent as written on one, outside a transaction (so router reads may answer it),
   * and its answer compared with the single node's just before it, or, when they differ (a now()
   * window moved between the two), just after it.
   */
  readonly through?: readonly pg.Client[];
  /** Instead of `rewriteSql`: the harness's self-check feeds it deliberately wrong rewrites. */
  readonly rewrite?: (sql: string) => RewriteResult;
  /** What the connected role may have rewritten per shard, passed to the rewriter. */
  readonly access?: RoleAccess;
  /** The session zone's grid (zoneGrid.ts), passed to the rewriter. */
  readonly zoneGrid?: ZoneGrid | undefined;
  /**
   * With it, every rewrite's words are checked against the EXPLAIN (VERBOSE) of the rewritten
   * statement (truth.ts): the statement is rewritten again with its tables renamed to bigger
   * copies (`scaled`: name → copy; plans chosen by cost differ on a few thousand rows from those at
   * scale), and that is explained.
   */
  readonly truth?: { readonly catalog: AuditCatalog; readonly scaled: Readonly<Record<string, string>> };
}

export interface Mismatch {
  readonly id: string;
  readonly timeZone: string;
  readonly original: string;
  readonly rewritten: string;
  readonly rewrites: readonly Rewrite[];
  readonly params: readonly unknown[];
  readonly columns: readonly string[];
  readonly difference: ResultDifference;
}

export interface CaseOutcome {
  readonly id: string;
  readonly rewrite: RewriteResult;
  /** Rows in the expected answer. */
  readonly rows: number;
  /** How the answers were compared (absent when a statement failed). */
  readonly shape?: ResultShape;
  readonly mismatch?: Mismatch;
  /** What the rewriter said that the rewritten statement's plan contradicts (with `truth`). */
  readonly untrue?: readonly string[];
  /** The contradiction is the planner's choice by cost (an aggregate or LIMIT it could have shipped, see truth.ts). */
  readonly plannersChoice?: boolean;
  /**
   * Cut by LIMIT/OFFSET or ordered by keys it does not output: `checked` when every returned row
   * was found in its tie group of the full answer (fullOrder.ts), else why that could not be run.
   */
  readonly fullOrder?: string;
  /** The audit of the rewritten statement's plan (with `truth`): the findings it reports, and whether it calls it complete. */
  readonly audit?: { readonly complete: boolean; readonly findings: readonly string[] };
}

export interface DifferentialRun {
  readonly timeZone: string;
  readonly outcomes: readonly CaseOutcome[];
  readonly mismatches: readonly Mismatch[];
  /** Cases whose rewrite said something its plan contradicts, formatted (the planner's choices apart). */
  readonly untrue: readonly string[];
  /** Contradictions that are the planner's choice by cost, formatted. */
  readonly plannerChoices: readonly string[];
  readonly seconds: number;
}

/** Every value as the server printed it (NULL as null): no parser rounds a float or a timestamp. */
const TEXT_VALUES: pg.CustomTypesConfig = { getTypeParser: () => (value: string) => value };

async function textQuery(client: pg.Client, sql: string, params: readonly unknown[]): Promise<TextResult> {
  const result = await client.query<(string | null)[]>({ text: sql, values: [...params], rowMode: 'array', types: TEXT_VALUES });
  return { columns: result.fields.map((f) => ({ name: f.name, typeId: f.dataTypeID })), rows: result.rows };
}

const message = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? `${error.message} (SQLSTATE ${code})` : error.message;
};

async function runCase(client: pg.Client, target: DifferentialTarget, c: DifferentialCase, via?: pg.Client): Promise<CaseOutcome> {
  const params = c.params ?? [];
  const failed = (rewrite: RewriteResult, why: string, expected?: TextResult): CaseOutcome => ({
    id: c.id,
    rewrite,
    rows: expected?.rows.length ?? 0,
    mismatch: mismatch(target, c, rewrite, expected, { message: why }),
  });
  let rewrite: RewriteResult;
  try {
    rewrite = (target.rewrite ?? ((sql: string) => rewriteSql(sql, target.metadata, { timeZone: target.timeZone, searchPath: target.searchPath, access: target.access, zoneGrid: target.zoneGrid })))(c.sql);
  } catch (error) {
    return failed({ sql: c.sql, changed: false, touchesHypertable: false, rewrites: [], unchanged: [] }, `rewriteSql threw: ${message(error)}`);
  }

  const path = (schemas: readonly string[]): string => schemas.map((s) => client.escapeIdentifier(s)).join(', ');
  let expected: TextResult;
  let actual: TextResult;
  let shape: ResultShape;
  let order: { query: FullOrderQuery; full: TextResult } | string | undefined;
  let untrue: string[] | undefined;
  let choice = false;
  let audited: CaseOutcome['audit'];
  // One snapshot (one now()), the session's zone, the single node's copies first on the path.
  const begin = (): Promise<unknown> =>
    client.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL TimeZone = ${client.escapeLiteral(target.timeZone)}; SET LOCAL search_path = ${path([target.singleSchema, ...target.searchPath])}`);
  await begin();
  try {
    try {
      expected = await textQuery(client, c.sql, params);
    } catch (error) {
      return failed(rewrite, `the original failed on the single-node table (an invalid case): ${message(error)}`);
    }
    shape = await resultShape(c.sql, params, expected);
    // Cut through ties, or placed by keys the answer does not show: the full answer, with its keys.
    const query = await fullOrderSql(c.sql, params, expected.columns.length);
    if (typeof query !== 'string' && (shape.cutAfter || shape.cutBefore || shape.orderedBy.length < query.keys)) {
      await client.query('SAVEPOINT full_order');
      try {
        order = { query, full: await textQuery(client, query.sql, params) };
        await client.query('RELEASE SAVEPOINT full_order');
      } catch (error) {
        await client.query('ROLLBACK TO SAVEPOINT full_order');
        order = `the full answer failed: ${message(error)}`;
      }
    }
    await client.query(`SET LOCAL search_path = ${path(target.searchPath)}`);
    try {
      actual = via === undefined ? await textQuery(client, rewrite.sql, params) : await textQuery(via, c.sql, params);
    } catch (error) {
      return failed(rewrite, `the ${via === undefined ? 'rewritten statement' : 'statement through the gateway'} failed: ${message(error)}`, expected);
    }
    if (target.truth !== undefined && target.rewrite === undefined) {
      const atScale = rewriteSql(await renamed(c.sql, target.truth.scaled), target.metadata, { timeZone: target.timeZone, searchPath: target.searchPath, access: target.access, zoneGrid: target.zoneGrid });
      const { rows } = await client.query<{ 'QUERY PLAN': ExplainResult[] }>(`EXPLAIN (VERBOSE, FORMAT JSON) ${atScale.sql}`, [...params]);
      const plan = rows[0]?.['QUERY PLAN'][0];
      if (plan !== undefined) {
        const audit = analyzePlan(plan, target.truth.catalog);
        audited = { complete: audit.complete, findings: audit.findings.map((f) => f.code) };
        untrue = truthProblems(atScale, audit);
        choice = plannersChoice(audit);
        if (untrue.length > 0) {
          untrue.push(`plan: ${audit.accessNodeWork.join(' → ')}; ${audit.foreignScans.map((f) => `${f.kind}${f.localFilter === undefined ? '' : ' (local filter)'}: ${f.remoteSql.slice(0, 160)}`).join(' | ')}`);
        }
      }
    }
  } finally {
    await client.query('ROLLBACK');
  }
  const differs = (want: TextResult, full: typeof order): ResultDifference | undefined =>
    compareTextResults(want, actual, shape) ?? (typeof full === 'object' ? checkFullOrder(full.query, full.full, actual, shape.tolerant) : undefined);
  let difference = differs(expected, order);
  if (difference !== undefined && via !== undefined) {
    // The gateway's statement ran after the single node's: the single node's answer again, after it.
    await begin();
    try {
      const after = await textQuery(client, c.sql, params);
      const full = typeof order === 'object' ? { query: order.query, full: await textQuery(client, order.query.sql, params) } : order;
      if (differs(after, full) === undefined) difference = undefined;
    } finally {
      await client.query('ROLLBACK');
    }
  }
  return {
    id: c.id,
    rewrite,
    rows: expected.rows.length,
    shape,
    ...(order === undefined ? {} : { fullOrder: typeof order === 'string' ? order : 'checked' }),
    ...(difference === undefined ? {} : { mismatch: mismatch(target, c, rewrite, expected, difference) }),
    ...(untrue === undefined || untrue.length === 0 ? {} : { untrue, plannersChoice: choice }),
    ...(audited === undefined ? {} : { audit: audited }),
  };
}

function mismatch(target: DifferentialTarget, c: DifferentialCase, rewrite: RewriteResult, expected: TextResult | undefined, difference: ResultDifference): Mismatch {
  return {
    id: c.id,
    timeZone: target.timeZone,
    original: c.sql,
    rewritten: rewrite.sql,
    rewrites: rewrite.rewrites,
    params: c.params ?? [],
    columns: expected?.columns.map((col) => col.name) ?? [],
    difference,
  };
}

/** The statement reading other tables: unqualified names in `names` renamed, keeping the name they were read by as the alias. */
async function renamed(sql: string, names: Readonly<Record<string, string>>): Promise<string> {
  const tree = (await parse(sql)) as unknown;
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(visit);
    if (typeof v !== 'object' || v === null) return;
    const rangeVar = (v as { RangeVar?: { relname?: string; schemaname?: string; alias?: { aliasname: string } } }).RangeVar;
    const to = rangeVar?.relname === undefined || rangeVar.schemaname !== undefined ? undefined : names[rangeVar.relname];
    if (rangeVar !== undefined && to !== undefined) {
      rangeVar.alias ??= { aliasname: rangeVar.relname as string };
      rangeVar.relname = to;
    }
    Object.values(v).forEach(visit);
  };
  visit(tree);
  return deparse(tree as Parameters<typeof deparse>[0]);
}

/** Runs every case (spread over the target's connections) and collects every mismatch. */
export async function runDifferential(target: DifferentialTarget, cases: readonly DifferentialCase[]): Promise<DifferentialRun> {
  const t0 = performance.now();
  const outcomes: CaseOutcome[] = Array.from<CaseOutcome>({ length: cases.length });
  let next = 0;
  await Promise.all(
    target.clients.map(async (client, k) => {
      for (let i = next++; i < cases.length; i = next++) outcomes[i] = await runCase(client, target, cases[i]!, target.through?.[k]);
    }),
  );
  return {
    timeZone: target.timeZone,
    outcomes,
    mismatches: outcomes.flatMap((o) => (o.mismatch === undefined ? [] : [o.mismatch])),
    untrue: outcomes.flatMap((o, i) => (o.untrue === undefined || o.plannersChoice === true ? [] : [formatUntrue(o, cases[i], target.timeZone)])),
    plannerChoices: outcomes.flatMap((o, i) => (o.untrue === undefined || o.plannersChoice !== true ? [] : [formatUntrue(o, cases[i], target.timeZone)])),
    seconds: (performance.now() - t0) / 1000,
  };
}

function formatUntrue(o: CaseOutcome, c: DifferentialCase | undefined, timeZone: string): string {
  const rewrite = `${o.rewrite.rewrites.map((r) => r.kind).join(', ') || 'none'}; not: ${o.rewrite.unchanged.map((u) => `${u.kind}: ${u.reason}`).join(' | ') || 'nothing'}`;
  return `✗ ${o.id} (TimeZone ${timeZone}${o.plannersChoice === true ? ', the planner’s choice' : ''}): ${(o.untrue ?? []).join('; ')}\n  original:  ${c?.sql ?? ''}\n  rewritten: ${o.rewrite.sql}\n  rewrites:  ${rewrite}`;
}

/** One line for the test log: cases, mismatches, and how many cases each kind of rewrite touched. */
export function summaryLine(label: string, run: DifferentialRun): string {
  const byKind = new Map<RewriteKind, number>();
  for (const o of run.outcomes) for (const kind of new Set(o.rewrite.rewrites.map((r) => r.kind))) byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
  const rewritten = run.outcomes.filter((o) => o.rewrite.changed).length;
  const kinds = [...byKind].sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${k} ${n}`);
  const count = (test: (o: CaseOutcome) => boolean): number => run.outcomes.filter(test).length;
  return (
    `${label} (TimeZone ${run.timeZone}): ${run.outcomes.length} cases in ${run.seconds.toFixed(1)} s, ${run.mismatches.length} mismatches; ` +
    `${rewritten} rewritten${kinds.length === 0 ? '' : ` (${kinds.join(', ')})`}, ${run.outcomes.length - rewritten} unchanged; ` +
    `${run.untrue.length} untrue words, ${run.plannerChoices.length} plans the planner chose by cost against the words; ` +
    `${run.outcomes.reduce((s, o) => s + o.rows, 0)} rows compared, ${count((o) => o.rows === 0)} empty answers, ` +
    `${count((o) => (o.shape?.orderedBy.length ?? 0) > 0)} in ORDER BY order (${count((o) => o.shape?.total === true && o.shape.orderedBy.length > 0)} total), ` +
    `${count((o) => o.shape?.cutAfter === true || o.shape?.cutBefore === true)} cut by LIMIT/OFFSET, ` +
    `${count((o) => o.fullOrder === 'checked')} checked against the full answer's tie groups (${count((o) => o.fullOrder !== undefined && o.fullOrder !== 'checked')} could not be); floats within ${FLOAT_TOLERANCE} relative`
  );
}

const showRow = (row: TextRow): string => `(${row.map((v) => (v === null ? 'NULL' : v)).join(', ')})`;

/** A mismatch in full: enough to reproduce it and to turn it into a fixed case. */
export function formatMismatch(m: Mismatch): string {
  const d = m.difference;
  return [
    `✗ ${m.id} (TimeZone ${m.timeZone}): ${d.message}`,
    `  original:  ${m.original}`,
    `  rewritten: ${m.rewritten === m.original ? '(unchanged)' : m.rewritten}`,
    `  rewrites:  ${m.rewrites.length === 0 ? 'none' : m.rewrites.map((r) => `${r.kind}: ${r.detail}`).join('; ')}`,
    `  params:    ${JSON.stringify(m.params)}`,
    ...(m.columns.length === 0 ? [] : [`  columns:   ${m.columns.join(', ')}`]),
    ...(d.expected === undefined ? [] : [`  expected row ${d.expected.index}: ${showRow(d.expected.row)}`]),
    ...(d.actual === undefined ? [] : [`  returned row ${d.actual.index}: ${showRow(d.actual.row)}`]),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// What the original statement determines about its answer, from its parse tree.

type Node = { readonly [key: string]: unknown };
const asNode = (v: unknown): Node | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Node) : undefined);
const items = (v: unknown): readonly unknown[] => (Array.isArray(v) ? v : []);
/** The body of a tagged node: `{ ColumnRef: {…} }` → `{…}`. */
const tagged = (v: unknown, tag: string): Node | undefined => asNode(asNode(v)?.[tag]);
/** Structural identity of two expressions: the tree without source positions. */
const treeKey = (v: unknown): string => JSON.stringify(v, (key, value: unknown) => (key === 'location' ? undefined : value));

const AGGREGATES = new Set([
  'count', 'sum', 'min', 'max', 'avg', 'bool_and', 'bool_or', 'every', 'stddev', 'stddev_samp', 'stddev_pop', 'variance',
  'var_samp', 'var_pop', 'percentile_cont', 'percentile_disc', 'mode', 'array_agg', 'string_agg', 'json_agg', 'jsonb_agg',
  'bit_and', 'bit_or', 'bit_xor', 'corr', 'covar_pop', 'covar_samp', 'any_value',
]);
/**
 * Aggregates whose numeric result per-shard parts may round differently: a square root, taken to
 * the variance's scale as PostgreSQL does but by sqrt() and round(), may differ in its last digit.
 * (avg and the variances are the same quotients PostgreSQL divides, digit for digit.)
 */
const QUOTIENTS = new Set(['stddev', 'stddev_samp', 'stddev_pop']);
const NUMERIC_TYPE_ID = 1700;

const funcName = (call: Node): string => {
  const last = items(call.funcname).at(-1);
  const name = tagged(last, 'String')?.sval;
  return typeof name === 'string' ? name : '';
};

/** Whether an expression calls an aggregate matching `test`, outside sub-selects and window calls. */
function callsAggregate(v: unknown, test: (name: string, call: Node) => boolean): boolean {
  if (Array.isArray(v)) return v.some((x) => callsAggregate(x, test));
  const node = asNode(v);
  if (node === undefined) return false;
  for (const [key, value] of Object.entries(node)) {
    if (key === 'SubLink' || key === 'RangeSubselect') continue;
    const call = key === 'FuncCall' ? asNode(value) : undefined;
    if (call !== undefined && call.over === undefined && test(funcName(call), call)) return true;
    if (callsAggregate(value, test)) return true;
  }
  return false;
}
const isAggregateCall = (name: string, call: Node): boolean =>
  AGGREGATES.has(name) || call.agg_star === true || call.agg_distinct === true || call.agg_filter !== undefined || call.agg_within_group === true;

/** An integer constant (a zero's `ival` is empty: protobuf omits zeros), a parameter's value, null for NULL / ALL. */
function integerValue(v: unknown, params: readonly unknown[]): number | null | 'unknown' {
  const constant = tagged(v, 'A_Const');
  if (constant !== undefined) {
    if (constant.isnull === true) return null;
    const ival = asNode(constant.ival);
    return ival === undefined ? 'unknown' : typeof ival.ival === 'number' ? ival.ival : 0;
  }
  const param = tagged(v, 'ParamRef');
  if (param !== undefined && typeof param.number === 'number') {
    const value = params[param.number - 1];
    if (value === null) return null;
    const n = Number(value);
    return Number.isInteger(n) ? n : 'unknown';
  }
  const cast = tagged(v, 'TypeCast');
  return cast === undefined ? 'unknown' : integerValue(cast.arg, params);
}

/** The select list's expressions, and whether a `*` makes output positions unknowable from it. */
function selectList(select: Node): { targets: unknown[]; star: boolean } {
  const targets = items(select.targetList).map((t) => tagged(t, 'ResTarget')?.val);
  const star = targets.some((val) => items(tagged(val, 'ColumnRef')?.fields).some((f) => asNode(f)?.A_Star !== undefined));
  return { targets, star };
}

/**
 * ORDER BY / GROUP BY / DISTINCT ON items to output columns, as PostgreSQL resolves them (an
 * ordinal; a bare name: ORDER BY tries output names first, GROUP BY input columns, here the
 * selected expressions; else an expression repeated from the select list). With `*` in the list,
 * expressions cannot be placed, and a column reference is matched by a name only one output
 * column has.
 */
function outputResolver(select: Node, names: readonly string[]): (item: unknown, clause: 'order' | 'group') => number | undefined {
  const { targets, star } = selectList(select);
  const uniqueName = (name: unknown): number | undefined => {
    const at = names.flatMap((n, i) => (n === name ? [i] : []));
    return at.length === 1 ? at[0] : undefined;
  };
  const byExpression = (item: unknown): number | undefined => {
    if (star) return undefined;
    const key = treeKey(item);
    const at = targets.findIndex((val) => treeKey(val) === key);
    return at === -1 ? undefined : at;
  };
  return (item, clause) => {
    const ordinal = tagged(item, 'A_Const') === undefined ? undefined : integerValue(item, []);
    if (typeof ordinal === 'number') return ordinal >= 1 && ordinal <= names.length ? ordinal - 1 : undefined;
    const fields = items(tagged(item, 'ColumnRef')?.fields).map((f) => tagged(f, 'String')?.sval);
    const bare = fields.length === 1 ? fields[0] : undefined;
    const byName = bare === undefined ? undefined : uniqueName(bare);
    const found = clause === 'order' ? (byName ?? byExpression(item)) : (byExpression(item) ?? byName);
    if (found !== undefined || !star || fields.length === 0) return found;
    return uniqueName(fields.at(-1));
  };
}

/** What the original statement determines about its answer (see `ResultShape`). */
export async function resultShape(sql: string, params: readonly unknown[], answer: TextResult): Promise<ResultShape> {
  const tree = asNode(await parse(sql));
  const statements = items(tree?.stmts);
  const select = tagged(asNode(statements[0])?.stmt, 'SelectStmt');
  if (statements.length !== 1 || select === undefined) throw new Error(`the harness compares one SELECT at a time: ${sql}`);
  const names = answer.columns.map((c) => c.name);
  const resolve = outputResolver(select, names);

  const orderedBy: number[] = [];
  for (const sortBy of items(select.sortClause)) {
    const column = resolve(tagged(sortBy, 'SortBy')?.node, 'order');
    if (column === undefined) break; // keys after one the answer does not show cannot be checked
    orderedBy.push(column);
  }
  const keys = new Set(orderedBy);
  const covered = (list: readonly unknown[], clause: 'order' | 'group'): boolean =>
    list.every((item) => {
      const column = resolve(item, clause);
      return column !== undefined && keys.has(column);
    });
  const groupBy = items(select.groupClause);
  const distinct = items(select.distinctClause);
  const setOperation = select.op !== undefined && select.op !== 'SETOP_NONE';
  const aggregated = callsAggregate(select.targetList, isAggregateCall) || select.havingClause !== undefined;
  const total =
    !setOperation &&
    (groupBy.length > 0
      ? groupBy.every((g) => tagged(g, 'GroupingSet') === undefined) && covered(groupBy, 'group')
      : aggregated // one row at most
        ? true
        : distinct.length > 0 && distinct.every((x) => Object.keys(asNode(x) ?? {}).length === 0)
          ? names.every((_, i) => keys.has(i)) // SELECT DISTINCT
          : distinct.length > 0 && covered(distinct, 'order')); // DISTINCT ON

  const limit = select.limitCount === undefined ? null : integerValue(select.limitCount, params);
  const offset = select.limitOffset === undefined ? null : integerValue(select.limitOffset, params);
  const withTies = select.limitOption === 'LIMIT_OPTION_WITH_TIES';
  const cutAfter = limit !== null && !withTies && (limit === 'unknown' || answer.rows.length >= limit);
  const cutBefore = offset !== null && (offset === 'unknown' || offset > 0);

  // numeric quotients (avg, variance, stddev) of the select list, which per-shard parts may round differently.
  const { targets, star } = selectList(select);
  const tolerant = new Set<number>();
  if (!star) {
    targets.forEach((val, i) => {
      if (answer.columns[i]?.typeId === NUMERIC_TYPE_ID && callsAggregate(val, (name) => QUOTIENTS.has(name))) tolerant.add(i);
    });
  }
  return { orderedBy, total, cutBefore, cutAfter, tolerant };
}
