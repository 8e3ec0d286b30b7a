/**
 * Every finding the audit can report: a stable code, its severity, and the fix. Codes are part of
 * the JSON output and `--fail-on`, so they never change meaning.
 */
export type Severity = 'error' | 'warning' | 'info';

export interface FindingKind {
  readonly severity: Severity;
  readonly title: string;
  /** What to do about it, in general; a finding adds specifics. */
  readonly fix: string;
}

export const FINDINGS = {
  STABLE_EXPRESSION_LOCAL: {
    severity: 'error',
    title: 'a stable expression (such as now()) is evaluated on the access node, so its filter is not sent to the data nodes',
    fix: 'compute the value in the application or a prior statement and pass it as a parameter or literal (e.g. time > $1), or let the hypershard rewriter do it',
  },
  NON_SHIPPABLE_FUNCTION: {
    severity: 'error',
    title: 'a function or operator that postgres_fdw cannot ship keeps work on the access node',
    fix: 'use an immutable built-in equivalent (date_bin instead of date_trunc on timestamptz, literal bounds instead of timestamptz ± interval), or move the expression out of WHERE/GROUP BY',
  },
  COLLATION_NOT_SHIPPABLE: {
    severity: 'error',
    title: 'an expression with a text constant is not shipped (postgres_fdw only ships collatable operations whose collation comes from a foreign column)',
    fix: 'avoid text arguments built from constants in filters and grouping (e.g. bucket with date_bin(interval, time, origin) instead of date_trunc(unit, time, zone))',
  },
  PARTIAL_AGGREGATE: {
    severity: 'error',
    title: 'the aggregate is computed in parts: raw rows are shipped and the aggregate is finalized on the access node',
    fix: 'group by the space column as well (then each shard aggregates whole), or aggregate per shard and combine (what the hypershard rewriter does)',
  },
  AGGREGATE_NOT_PUSHED: {
    severity: 'error',
    title: 'an aggregate runs on the access node over raw rows from the data nodes',
    fix: 'make every GROUP BY key and aggregate argument shippable (immutable built-ins), and make sure the foreign tables have statistics',
  },
  SINGLE_SHARD_AGGREGATE_NOT_PUSHED: {
    severity: 'error',
    title: 'the query is pruned to one shard, yet its aggregate is not pushed to it',
    fix: 'group by the space column too, or query the shard\'s foreign table directly (the hypershard rewriter does this for queries pinned to one shard)',
  },
  LIMIT_NOT_PUSHED: {
    severity: 'error',
    title: 'ORDER BY … LIMIT is applied on the access node above the shards, so every shard sends more rows than the limit',
    fix: 'send ORDER BY … LIMIT n to every shard and merge (a UNION ALL of per-shard queries with the same LIMIT, or the hypershard rewriter)',
  },
  DISTINCT_NOT_PUSHED: {
    severity: 'error',
    title: 'DISTINCT / DISTINCT ON runs on the access node over raw rows (postgres_fdw never ships it)',
    fix: 'express it as GROUP BY with the space column (e.g. max(time) per device, which ships whole to each shard), joining back for other columns where needed',
  },
  LOCAL_JOIN: {
    severity: 'error',
    title: 'a join with a table on the access node ships the shard rows to the access node',
    fix: 'filter by values (WHERE key IN (…) with constants or parameters), or make the small table a reference table replicated to every data node',
  },
  LOCAL_ROW_WORK: {
    severity: 'error',
    title: 'row-level work (window functions, subplans, projections of raw rows) stays on the access node',
    fix: 'restructure the query so the data nodes return final per-shard results',
  },
  SHARED_CONNECTION: {
    severity: 'warning',
    title: 'several shards in the query use one FDW server, so they share one connection and are scanned one after another',
    fix: 'give every shard its own SERVER (hypershard generates one per shard slot); several servers may point at the same host',
  },
  NOT_ASYNC: {
    severity: 'warning',
    title: 'shards are scanned one after another instead of concurrently',
    fix: 'keep async_capable on the FDW servers and enable_async_append on; an ordered Append (Merge Append) is never asynchronous, so sort after aggregating',
  },
  NO_STATISTICS: {
    severity: 'warning',
    title: 'foreign tables without statistics: autovacuum never analyzes them, and pushdown choices depend on them',
    fix: 'run ANALYZE on the hypertable on the access node after loading (and regularly)',
  },
  ESTIMATED_ROWS: {
    severity: 'info',
    title: 'rows shipped are the planner\'s estimate',
    fix: 'run with --analyze (read-only queries) for actual rows',
  },
} as const satisfies Record<string, FindingKind>;

export type FindingCode = keyof typeof FINDINGS;

export interface Finding {
  readonly code: FindingCode;
  readonly severity: Severity;
  /** The cause, specific to this query (names the function, shard, node …). */
  readonly message: string;
  readonly fix: string;
}

/** LOCAL_ROW_WORK's fix for a window function: where it does run on a data node. */
export const WINDOW_FIX =
  "keep the statement to one space-key value (`WHERE <space key> = 3`): it then reads one shard, and through the gateway or hypershard/pg with router reads it runs whole on that shard's data node; over several shards the window runs on the access node";

export function finding(code: FindingCode, detail: string, fix?: string): Finding {
  const kind = FINDINGS[code];
  return { code, severity: kind.severity, message: `${kind.title}: ${detail}`, fix: fix ?? kind.fix };
}

export const SEVERITY_RANK: Record<Severity, number> = { info: 0, warning: 1, error: 2 };
