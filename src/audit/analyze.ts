/**
 * Pure rules over an EXPLAIN plan: which shards and data nodes a query touches, what each foreign
 * scan pushed, what work stays on the access node, rows shipped, findings and the verdict.
 */
import type { AuditCatalog, ForeignTableInfo } from './catalog.js';
import { finding, WINDOW_FIX, type Finding } from './findings.js';
import { descendants, isForeignScan, rowsOf, walk, type ExplainResult, type PlanNode } from './plan.js';

export interface ForeignScanReport {
  /** Foreign tables (shards) this scan reads; several when a join was pushed. */
  readonly tables: readonly ForeignTableInfo[];
  readonly server: string | undefined;
  readonly dataNode: string;
  /** `aggregate` and `join` mean the data node ran them; `scan` ships rows. */
  readonly kind: 'aggregate' | 'join' | 'scan';
  /** Clauses in the Remote SQL: WHERE, GROUP BY, HAVING, ORDER BY, LIMIT. */
  readonly pushed: readonly string[];
  readonly remoteSql: string;
  /** A filter applied on the access node to the rows this scan ships. */
  readonly localFilter: string | undefined;
  /** Rows the data node sent. */
  readonly rows: number;
  /**
   * Rows the access node took from them: fewer when a Limit above stopped the scan, after
   * postgres_fdw had fetched a whole batch (fetch_size rows a round trip), so `rows` is then an estimate.
   */
  readonly rowsUsed: number;
  readonly async: boolean;
}

export interface QueryAudit {
  /** No row-level work left on the access node beyond merging per-shard results. */
  readonly complete: boolean;
  readonly rowsShipped: number;
  readonly rowsShippedEstimated: boolean;
  /**
   * The estimate is a lower bound: a filter the access node applies to a scan whose Remote SQL
   * also filters (the planner's row count is after both). Without a remote WHERE the estimate is
   * the shard's whole table instead.
   */
  readonly rowsShippedAtLeast: boolean;
  readonly shards: readonly { readonly hypertable: string | undefined; readonly shard: number | undefined; readonly foreignTable: string; readonly dataNode: string }[];
  readonly dataNodes: readonly string[];
  readonly foreignScans: readonly ForeignScanReport[];
  /** Plan nodes above the foreign scans, outermost first, e.g. `Finalize Aggregate (Hashed)`. */
  readonly accessNodeWork: readonly string[];
  readonly findings: readonly Finding[];
}

const CLAUSES = ['WHERE', 'GROUP BY', 'HAVING', 'ORDER BY', 'LIMIT'] as const;
/** Nodes reported for the raw rows they consume, so a sort feeding one is not reported again. */
const REDUCERS = new Set(['Aggregate', 'Unique', 'Limit', 'WindowAgg', 'Group', 'SetOp', 'Hash Join', 'Nested Loop', 'Merge Join', 'Hash']);
const JOINS = new Set(['Hash Join', 'Nested Loop', 'Merge Join']);
const LOCAL_SCANS = new Set(['Seq Scan', 'Index Scan', 'Index Only Scan', 'Bitmap Heap Scan', 'Function Scan', 'Values Scan', 'CTE Scan', 'Tid Scan']);
/** Stable or volatile expressions PostgreSQL prints without a function call. */
const STABLE_WORDS = ['now()', 'CURRENT_TIMESTAMP', 'CURRENT_DATE', 'LOCALTIMESTAMP', 'CURRENT_TIME', 'LOCALTIME', 'statement_timestamp()', 'transaction_timestamp()', 'clock_timestamp()'];

/**
 * Function calls in an expression as EXPLAIN prints it, as `name/nargs` (overloads differ in
 * volatility: date_trunc(text, timestamptz) is STABLE, date_trunc(text, timestamptz, text) is
 * IMMUTABLE from PostgreSQL 16). A light scan of deparsed text, not a parser: it only names causes.
 */
export function functionCalls(expression: string): string[] {
  const calls = new Set<string>();
  for (const match of expression.matchAll(/(?<!["'.\w])([a-z_][a-z0-9_]*)\(/g)) {
    calls.add(`${match[1] as string}/${countArguments(expression, (match.index ?? 0) + match[0].length)}`);
  }
  return [...calls];
}

/** Top-level commas between the parenthesis opened at `start` and its match, skipping quoted text. */
function countArguments(text: string, start: number): number {
  let depth = 0;
  let args = 0;
  let quote: string | undefined;
  let empty = true;
  for (let i = start; i < text.length; i += 1) {
    const c = text[i] as string;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      continue;
    }
    if (c === "'" || c === '"') quote = c;
    else if (c === '(') depth += 1;
    else if (c === ')') {
      if (depth === 0) return empty ? 0 : args + 1;
      depth -= 1;
    } else if (c === ',' && depth === 0) args += 1;
    if (c !== ' ') empty = false;
  }
  return args + 1;
}

/** Names of all functions in the plan's expressions, for the catalog lookup. */
export function planFunctionNames(explain: ExplainResult): string[] {
  const names = new Set<string>();
  for (const { node } of walk(explain.Plan)) {
    for (const text of expressions(node)) for (const call of functionCalls(text)) names.add(call.split('/')[0] as string);
  }
  return [...names].sort();
}

function expressions(node: PlanNode): string[] {
  return [node.Filter, node['Join Filter'], ...(node['Group Key'] ?? []), ...(isForeignScan(node) ? [] : (node.Output ?? []))].filter((e): e is string => e !== undefined);
}

export function analyzePlan(explain: ExplainResult, catalog: AuditCatalog): QueryAudit {
  const all = [...walk(explain.Plan)];
  const scans = all.filter((w) => isForeignScan(w.node));
  // A lastpoint view's rows are one per space key of its shard, reduced on the data node: not raw.
  const rawScan = (node: PlanNode): boolean => isRawScan(node) && catalog.foreignTables.get(`${node.Schema ?? ''}.${node['Relation Name'] ?? ''}`)?.lastpointOf === undefined;
  const reachesRawScan = (node: PlanNode): boolean => (isForeignScan(node) ? rawScan(node) : PASS_THROUGH.has(node['Node Type']) && (node.Plans ?? []).some(reachesRawScan));
  // Raw scans a Limit above stops early, their Remote SQL having none: the data node sent whole fetch batches.
  const limitedBy = (limit: PlanNode): PlanNode[] =>
    descendants(limit).some((d) => d['Node Type'] === 'Aggregate') ? [] : descendants(limit).filter(rawScan).filter((s) => !(s['Remote SQL'] ?? '').includes(' LIMIT '));
  const limited = new Set(all.filter((w) => w.node['Node Type'] === 'Limit').flatMap((w) => limitedBy(w.node)));
  const reports = scans.map((w) => foreignScanReport(w.node, catalog, limited.has(w.node)));
  const findings: Finding[] = [];
  const hasRawScanBelow = (node: PlanNode): boolean => descendants(node).some(rawScan);

  // 1. Filters the data nodes never saw.
  const filtered = new Set<string>();
  reports.forEach((r) => {
    if (r.localFilter !== undefined && !filtered.has(r.localFilter)) {
      filtered.add(r.localFilter);
      findings.push(
        classifyExpression(r.localFilter, catalog, 'filter') ??
          finding('NON_SHIPPABLE_FUNCTION', `the filter \`${r.localFilter}\` is applied on the access node to the rows the shards send`),
      );
    }
  });

  // 2. Aggregates, DISTINCT, joins, sorts, limits and windows over raw rows.
  let partialReported = false;
  let joinReported = false;
  let sortReported = false;
  for (const { node, ancestors } of all) {
    if (isForeignScan(node) || !hasRawScanBelow(node)) continue;
    const type = node['Node Type'];
    const directRaw = (node.Plans ?? []).some((child) => reachesRawScan(child));
    if (type === 'Aggregate' || type === 'Group') {
      const mode = node['Partial Mode'];
      if ((mode === 'Partial' || mode === 'Finalize') && !partialReported) {
        partialReported = true;
        findings.push(finding('PARTIAL_AGGREGATE', `${mode} Aggregate${groupKeyText(node)}; the GROUP BY does not contain the space column, so no shard can finish it`));
      } else if (mode === 'Simple' || mode === undefined) {
        const shardsBelow = descendants(node).filter(isForeignScan).length;
        // A grouping key that cannot ship is the reason the aggregate stayed here: report that.
        const keyIssue = (node['Group Key'] ?? []).map((k) => classifyExpression(k, catalog, 'group key')).find((f) => f !== undefined);
        if (keyIssue !== undefined) findings.push(keyIssue);
        else if (scans.length === 1 && shardsBelow === 1) {
          findings.push(finding('SINGLE_SHARD_AGGREGATE_NOT_PUSHED', `Aggregate${groupKeyText(node)} above the one remaining shard (${reports[0]?.tables.map(tableName).join(', ') ?? '?'})`));
        } else if (directRaw) {
          findings.push(aggregateNotPushed(node, shardsBelow, descendants(node).filter(rawScan), catalog));
        }
      }
    } else if (type === 'Unique') {
      findings.push(finding('DISTINCT_NOT_PUSHED', `Unique on ${(node.Output ?? []).slice(0, 3).join(', ') || 'its input'} above raw shard rows`));
    } else if (JOINS.has(type) && !joinReported) {
      // Raw rows reach the join: from a shard, or from a reference copy the join was not pushed with.
      const raw = (node.Plans ?? []).filter(reachesRawScan).flatMap((p) => [p, ...descendants(p)].filter(rawScan));
      const local = descendants(node).filter((d) => LOCAL_SCANS.has(d['Node Type']) && !descendants(node).some((x) => isForeignScan(x) && descendants(x).includes(d)));
      if (raw.length > 0) {
        joinReported = true;
        const named = (n: PlanNode): string => (n['Relation Name'] === undefined ? n['Node Type'] : `${n.Schema === undefined ? '' : `${n.Schema}.`}${n['Relation Name']}`);
        const others = [...new Set([...local.map(named), ...descendants(node).filter((d) => isForeignScan(d) && !raw.includes(d)).map(named)])];
        findings.push(finding('LOCAL_JOIN', `${type} on the access node of the rows ${[...new Set(raw.map(named))].join(', ')} send${others.length === 0 ? '' : `, with ${others.join(', ')}`}`));
      }
    } else if ((type === 'Sort' || type === 'Incremental Sort') && directRaw && !sortReported && !REDUCERS.has(ancestors.at(-1)?.['Node Type'] ?? '')) {
      // (A sort feeding an aggregate, join, limit or DISTINCT is reported as that.)
      sortReported = true;
      const below = descendants(node).filter(rawScan).length;
      findings.push(finding('LOCAL_ROW_WORK', `${type} on the access node of the rows ${below} shard scan${below === 1 ? '' : 's'} send (each data node could sort its own: postgres_fdw sends ORDER BY, and the access node then only merges)`));
    } else if (type === 'Limit') {
      const below = limitedBy(node);
      if (below.length > 0) {
        findings.push(finding('LIMIT_NOT_PUSHED', `Limit above ${below.length} shard scan${below.length === 1 ? '' : 's'} whose Remote SQL has no LIMIT`));
      }
    } else if (type === 'WindowAgg') {
      findings.push(finding('LOCAL_ROW_WORK', 'WindowAgg over raw shard rows (postgres_fdw ships no window function)', WINDOW_FIX));
    } else if (node['Parent Relationship'] === 'SubPlan') {
      findings.push(finding('LOCAL_ROW_WORK', `${type} over raw shard rows`));
    }
  }

  // 3. Concurrency.
  const byServer = new Map<string, ForeignScanReport[]>();
  for (const r of reports) if (r.server !== undefined) byServer.set(r.server, [...(byServer.get(r.server) ?? []), r]);
  for (const [server, list] of byServer) {
    // The same shard scanned twice (e.g. a self-join) is not two shards sharing a connection.
    const tables = [...new Set(list.flatMap((r) => r.tables.map(tableName)))];
    if (tables.length > 1) findings.push(finding('SHARED_CONNECTION', `server ${server} serves ${tables.join(', ')}`));
  }
  for (const { node } of all) {
    const children = (node.Plans ?? []).filter(isForeignScan);
    if ((node['Node Type'] === 'Append' || node['Node Type'] === 'Merge Append') && children.length > 1 && children.some((c) => c['Async Capable'] !== true)) {
      const cause =
        node['Node Type'] === 'Merge Append'
          ? 'an ordered Append (Merge Append) is never asynchronous'
          : !catalog.asyncAppend
            ? 'enable_async_append is off'
            : reports.some((r) => r.server !== undefined && catalog.asyncServers.get(r.server) === false)
              ? 'async_capable is off on a server'
              : 'the planner did not make the shard scans async';
      findings.push(finding('NOT_ASYNC', `${children.length} shard scans under a ${node['Node Type']}: ${cause}`));
    }
  }

  // 4. Statistics.
  const unanalyzed = [...new Set(reports.flatMap((r) => r.tables).filter((t) => !t.analyzed).map(tableName))];
  if (unanalyzed.length > 0) findings.push(finding('NO_STATISTICS', unanalyzed.join(', ')));

  const estimated = scans.some((w) => rowsOf(w.node).estimated);
  if (estimated && scans.length > 0) findings.push(finding('ESTIMATED_ROWS', 'run without ANALYZE'));
  const unique = dedupe(findings);
  // Reference copies are read like shards, but are not shards; a node view reads each of its shards.
  const shards = reports.flatMap((r) =>
    r.tables.filter((t) => t.referenceCopyOf === undefined).flatMap((t) => (t.nodeViewShards ?? [t.shardIndex]).map((shard) => ({ hypertable: t.hypertable, shard, foreignTable: tableName(t), dataNode: t.dataNode }))),
  );
  return {
    complete: !unique.some((f) => f.severity === 'error'),
    rowsShipped: reports.reduce((sum, r) => sum + r.rows, 0),
    rowsShippedEstimated: estimated || reports.some((r) => r.rowsUsed < r.rows),
    rowsShippedAtLeast: estimated && reports.some((r) => r.localFilter !== undefined && r.pushed.includes('WHERE')),
    shards,
    dataNodes: [...new Set(shards.map((s) => s.dataNode))].sort(),
    foreignScans: reports,
    accessNodeWork: accessNodeWork(explain.Plan),
    findings: unique,
  };
}

/**
 * One finding per cause: the same filter or grouping key repeats once per shard, under the
 * partition aliases PostgreSQL gives them (metrics, metrics_1, …).
 */
function dedupe(findings: readonly Finding[]): Finding[] {
  const seen = new Map<string, Finding>();
  for (const f of findings) {
    const key = `${f.code}:${f.message.replace(/\b([a-z_][a-z0-9_]*)_\d+\./g, '$1.')}`;
    if (!seen.has(key)) seen.set(key, { ...f, message: f.message.replace(/\b([a-z_][a-z0-9_]*)_\d+\./g, '$1.') });
  }
  return [...seen.values()];
}

/** Nodes that pass rows through without reducing them to per-shard results. */
const PASS_THROUGH = new Set(['Append', 'Merge Append', 'Sort', 'Incremental Sort', 'Result', 'Subquery Scan', 'Materialize', 'Memoize', 'Gather', 'Gather Merge', 'Hash']);

/**
 * A foreign scan that ships rows as they are: neither an aggregate or join the data node ran, nor
 * bounded by a LIMIT it applied (a per-shard top-n is a per-shard result).
 */
function isRawScan(node: PlanNode): boolean {
  return isForeignScan(node) && node.Relations === undefined && !(node['Remote SQL'] ?? '').includes(' LIMIT ');
}

/**
 * An aggregate over raw shard rows, with its cause: a GROUP BY without the space column (no shard
 * holds a whole group, so no shard can finish one), else keys or arguments that do not ship.
 */
function aggregateNotPushed(node: PlanNode, shardsBelow: number, raw: readonly PlanNode[], catalog: AuditCatalog): Finding {
  const where = `Aggregate${groupKeyText(node)} over ${shardsBelow} shard scan${shardsBelow === 1 ? '' : 's'}`;
  const filtered = raw.find((s) => s.Filter !== undefined);
  if (filtered !== undefined) {
    return finding('AGGREGATE_NOT_PUSHED', `${where}: the filter \`${filtered.Filter as string}\` stays on the access node, so the shards send rows, not groups`, 'make the filter shippable (see its finding); the aggregate then runs on the data nodes');
  }
  const hypertables = [...new Set(raw.map((s) => catalog.foreignTables.get(`${s.Schema ?? ''}.${s['Relation Name'] ?? ''}`)?.hypertable).filter((h) => h !== undefined))];
  const space = hypertables.length === 1 ? catalog.spaceColumns?.get(hypertables[0] as string) : undefined;
  if (space === undefined) return finding('AGGREGATE_NOT_PUSHED', where);
  const keys = node['Group Key'] ?? [];
  const grouped = keys.some((k) => new RegExp(`(^|[.(\\s])"?${space.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"?($|[)\\s,])`).test(k));
  if (grouped) return finding('AGGREGATE_NOT_PUSHED', `${where}, grouped by the space column ${space}: a key or aggregate argument did not ship`);
  return finding(
    'AGGREGATE_NOT_PUSHED',
    `${where}: ${keys.length === 0 ? 'the aggregate has no GROUP BY' : 'the GROUP BY lacks'} the space column ${space}, so no shard holds a whole group and none can finish it`,
    `group by ${space} too (each shard then finishes its groups), or run the statement through the hypershard rewriter (hypershard/pg, the gateway), which aggregates per shard and combines on the access node`,
  );
}

function foreignScanReport(node: PlanNode, catalog: AuditCatalog, stoppedByLimit: boolean): ForeignScanReport {
  const relations = node.Relations;
  const tables =
    relations === undefined
      ? [catalog.foreignTables.get(`${node.Schema ?? ''}.${node['Relation Name'] ?? ''}`)].filter((t): t is ForeignTableInfo => t !== undefined)
      : [...catalog.foreignTables.values()].filter((t) => mentions(relations, t));
  const remoteSql = node['Remote SQL'] ?? '';
  const used = rowsOf(node);
  // Without ANALYZE the planner's count is after the access node's filter: a shard whose Remote
  // SQL has no WHERE sends its whole table.
  const wholeTable = used.estimated && node.Filter !== undefined && !remoteSql.includes(' WHERE ') && relations === undefined ? tables[0]?.tableRows : undefined;
  return {
    tables,
    server: tables[0]?.server,
    dataNode: tables[0]?.dataNode ?? '?',
    kind: relations?.startsWith('Aggregate on') === true ? 'aggregate' : relations === undefined ? 'scan' : 'join',
    pushed: CLAUSES.filter((c) => remoteSql.includes(` ${c} `)),
    remoteSql,
    localFilter: node.Filter,
    rows: wholeTable !== undefined && wholeTable > used.rows ? wholeTable : stoppedByLimit && !used.estimated ? rowsFetched(used.rows, node['Plan Rows'], tables[0]?.fetchSize ?? POSTGRES_FDW_FETCH_SIZE) : used.rows,
    rowsUsed: used.rows,
    async: node['Async Capable'] === true,
  };
}

/** postgres_fdw's fetch_size when neither the server nor the table sets one. */
const POSTGRES_FDW_FETCH_SIZE = 100;

/**
 * Rows a scan under a Limit sent: postgres_fdw fetches `fetchSize` rows a round trip, so whole
 * batches up to what the shard holds (the planner's estimate of the scan's rows), and at least
 * what the access node took. A scan that gave no row had none to send (a Limit asks every scan
 * under a merge for its first row).
 */
function rowsFetched(used: number, planned: number | undefined, fetchSize: number): number {
  if (used === 0) return 0;
  const batches = Math.ceil(used / fetchSize);
  return Math.max(used, Math.min(batches * fetchSize, Math.round(planned ?? used)));
}

/** PostgreSQL prints a name bare when it is a plain lower-case identifier (ignoring its keyword list). */
function display(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

/**
 * Whether EXPLAIN's `Relations` text names this table: VERBOSE prints `schema.name alias`, plain
 * EXPLAIN `name alias`, and the alias is left out when it equals the name.
 */
function mentions(relations: string, table: ForeignTableInfo): boolean {
  const qualified = `${display(table.schema)}.${display(table.name)}`;
  const bare = `(${display(table.name)}`;
  return [' ', ')'].some((end) => relations.includes(`${qualified}${end}`) || relations.includes(`${bare}${end}`));
}

function tableName(t: ForeignTableInfo): string {
  return `${t.schema}.${t.name}`;
}

function groupKeyText(node: PlanNode): string {
  const keys = node['Group Key'];
  return keys === undefined || keys.length === 0 ? '' : ` grouped by ${keys.join(', ')}`;
}

/**
 * Why an expression cannot ship: a stable value, a non-immutable function or operator, or the
 * collation rule; undefined when none of these is visible in it.
 */
export function classifyExpression(expression: string, catalog: AuditCatalog, where: 'filter' | 'group key'): Finding | undefined {
  const stable = STABLE_WORDS.find((w) => expression.includes(w));
  if (stable !== undefined) {
    return finding('STABLE_EXPRESSION_LOCAL', `${stable} in the ${where} \`${expression}\` is STABLE, so postgres_fdw keeps the whole ${where} on the access node`);
  }
  // A text constant that is a time zone: `t AT TIME ZONE 'UTC'`, date_trunc(unit, t, 'UTC').
  if (expression.includes(" AT TIME ZONE '") || functionCalls(expression).includes('date_trunc/3')) {
    return finding('COLLATION_NOT_SHIPPABLE', `the ${where} \`${expression}\` passes a time zone as a text constant, whose collation does not come from a foreign column`);
  }
  const volatile = functionCalls(expression).filter((f) => catalog.volatility.get(f) !== undefined && catalog.volatility.get(f) !== 'i');
  if (volatile.length > 0) {
    const described = volatile.map((f) => `${f.split('/')[0] as string}() is ${catalog.volatility.get(f) === 'v' ? 'VOLATILE' : 'STABLE'}`).join(', ');
    const hint = volatile.some((f) => f.startsWith('date_trunc/')) ? ' (date_trunc on timestamptz depends on the session time zone); bucket with date_bin(interval, time, origin)' : '';
    return finding('NON_SHIPPABLE_FUNCTION', `${described} in the ${where} \`${expression}\`${hint}`);
  }
  if (/[+-] '[^']*'::interval/.test(expression)) {
    return finding('NON_SHIPPABLE_FUNCTION', `timestamptz ± interval is STABLE (it depends on the session time zone) in the ${where} \`${expression}\`; compute the bound first and pass it as a literal or parameter`);
  }
  // A column compared with a text constant takes the column's collation, and ships (`region = 'eu'::text`).
  const columnCompared = /(?:"(?:[^"]|"")*"|\w+)(?:\.(?:"(?:[^"]|"")*"|\w+))* (?:=|<>|<|>|<=|>=|~~|!~~|~~\*|!~~\*) '(?:[^']|'')*'::text/g;
  if (/'[^']*'::text/.test(expression.replace(columnCompared, '')) || expression.includes('COLLATE')) {
    return finding('COLLATION_NOT_SHIPPABLE', `the ${where} \`${expression}\` has a text constant whose collation does not come from a foreign column`);
  }
  return undefined;
}

function accessNodeWork(root: PlanNode): string[] {
  const work: string[] = [];
  const visit = (node: PlanNode): void => {
    if (isForeignScan(node)) return;
    const mode = node['Partial Mode'] !== undefined && node['Partial Mode'] !== 'Simple' ? `${node['Partial Mode']} ` : '';
    const strategy = node['Node Type'] === 'Aggregate' && node.Strategy !== undefined ? ` (${node.Strategy})` : '';
    work.push(`${mode}${node['Node Type']}${strategy}`);
    node.Plans?.forEach(visit);
  };
  visit(root);
  return work;
}
