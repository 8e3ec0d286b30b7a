/**
 * Truth of the rewriter's words (issue 13, item 1): what a rewrite says it did, and why it left
 * something alone, checked against the EXPLAIN (VERBOSE) of the statement that runs, read by the
 * audit's rules (src/audit/analyze.ts) on the real plan.
 *
 *   - a statement whose plan leaves row-level work on the access node (audit incomplete) comes
 *     with at least one reason from the rewriter, and never with "already ships"; one whose plan
 *     leaves none (complete) with no reason saying an aggregate or a join with the shards' rows
 *     stays on the access node;
 *   - each rewrite's claim holds in the plan: a stable expression made a constant is shipped (no
 *     filter on the access node reads an InitPlan), a partial aggregate's shards return groups
 *     (an aggregate pushed, no partial aggregation left), a per-shard LIMIT is in the Remote SQL,
 *     a reference join runs beside the shard (in a pushed join), a time bucket ships, lastpoint
 *     rows come from the lastpoint views, an IS [NOT] TRUE put in shipped words leaves no such filter behind.
 */
import type { QueryAudit } from '../../src/audit/analyze.js';
import type { FindingCode } from '../../src/audit/findings.js';
import type { RewriteKind, RewriteResult } from '../../src/rewrite/model.js';

/** Findings that contradict a rewrite of this kind, when no reason explains them. */
const CONTRADICTS: Partial<Record<RewriteKind, readonly FindingCode[]>> = {
  'partial-aggregate': ['PARTIAL_AGGREGATE', 'AGGREGATE_NOT_PUSHED', 'SINGLE_SHARD_AGGREGATE_NOT_PUSHED'],
  'limit-per-shard': ['LIMIT_NOT_PUSHED'],
  'distinct-on-per-shard': ['DISTINCT_NOT_PUSHED', 'LIMIT_NOT_PUSHED'],
  'reference-join': ['LOCAL_JOIN'],
  'time-bucket': [],
};

/**
 * How a reason says rows are worked on by the access node: a FROM item joined with the rows the
 * shards send (rewrite.ts's localJoins), an expression postgres_fdw keeps there over every row.
 */
const LOCAL_WORK_REASON = /is joined on the access node with every hypertable row|on the access node, over every row/;

/** Findings of plans the planner chose by cost where a shipped one was on offer: nothing kept them local. */
const PLANNER_CHOICES = new Set<FindingCode>(['AGGREGATE_NOT_PUSHED', 'SINGLE_SHARD_AGGREGATE_NOT_PUSHED', 'LIMIT_NOT_PUSHED', 'PARTIAL_AGGREGATE']);

/**
 * Whether a contradiction is the planner's choice by cost: every error is an aggregate or LIMIT
 * left unpushed, or a join with a reference copy made on the access node, and no filter stayed on
 * the access node (the shape could ship; the planner, estimating few rows, fetched them instead).
 * Such plans differ between data sizes and versions; the runs bound their share.
 */
export function plannersChoice(audit: QueryAudit): boolean {
  const errors = audit.findings.filter((f) => f.severity === 'error');
  const referenceJoin = audit.foreignScans.some((s) => s.tables.some((t) => t.referenceCopyOf !== undefined));
  const byCost = (code: FindingCode): boolean => PLANNER_CHOICES.has(code) || (code === 'LOCAL_JOIN' && referenceJoin);
  return errors.length > 0 && errors.every((f) => byCost(f.code)) && audit.foreignScans.every((s) => s.localFilter === undefined);
}

export function truthProblems(rewrite: RewriteResult, audit: QueryAudit): string[] {
  const problems: string[] = [];
  const errors = audit.findings.filter((f) => f.severity === 'error');
  const codes = errors.map((f) => f.code);
  const explained = rewrite.unchanged.some((u) => u.kind !== 'statement' || u.reason !== 'reads no distributed hypertable');
  const claimsAll = rewrite.unchanged.some((u) => u.reason.startsWith('postgres_fdw already ships'));
  if (!audit.complete && (!explained || claimsAll)) problems.push(`the plan leaves work on the access node (${codes.join(', ')}) but the rewriter ${claimsAll ? 'says postgres_fdw already ships it' : 'gives no reason'}`);
  if (claimsAll && !audit.complete) problems.push('"already ships" said of an incomplete statement');

  // The other way: a reason that says rows are aggregated or joined on the access node, of a plan that leaves no such work there.
  const claimsLocal = rewrite.unchanged.filter((u) => u.kind === 'partial-aggregate' || LOCAL_WORK_REASON.test(u.reason));
  if (audit.complete && claimsLocal.length > 0) problems.push(`the plan leaves no row-level work on the access node, yet the rewriter says: ${claimsLocal.map((u) => u.reason).join('; ')}`);

  const kinds = new Set(rewrite.rewrites.map((r) => r.kind));
  for (const kind of kinds) {
    const against = (CONTRADICTS[kind] ?? []).filter((c) => codes.includes(c));
    if (against.length > 0 && rewrite.unchanged.length === 0) problems.push(`${kind} is claimed, yet the plan shows ${against.join(', ')}`);
  }
  if (kinds.has('stable-expression')) {
    const local = audit.foreignScans.filter((s) => s.localFilter?.includes('InitPlan') === true || /\$\d/.test(s.localFilter ?? ''));
    if (local.length > 0) problems.push(`stable-expression says the value is shipped as a constant, yet the filter \`${local[0]?.localFilter ?? ''}\` stays on the access node`);
  }
  if (kinds.has('local-field')) {
    const local = audit.foreignScans.filter((s) => /date_bin|date_part|EXTRACT/i.test(s.localFilter ?? ''));
    if (local.length > 0) problems.push(`local-field says the filter on the local hour or minute ships, yet \`${local[0]?.localFilter ?? ''}\` stays on the access node`);
  }
  if (kinds.has('boolean-test')) {
    const local = audit.foreignScans.filter((s) => /\bIS (NOT )?(TRUE|FALSE|UNKNOWN)\b/.test(s.localFilter ?? ''));
    if (local.length > 0) problems.push(`boolean-test says IS [NOT] TRUE was put in a shipped form, yet \`${local[0]?.localFilter ?? ''}\` stays on the access node`);
  }
  if (kinds.has('partial-aggregate') && !audit.foreignScans.some((s) => s.kind === 'aggregate') && audit.foreignScans.length > 0) {
    problems.push('partial-aggregate says each shard aggregates, yet no foreign scan returns an aggregate');
  }
  if (kinds.has('limit-per-shard') && !audit.foreignScans.some((s) => s.pushed.includes('LIMIT')) && audit.foreignScans.length > 0) {
    problems.push('limit-per-shard says each shard returns its first rows, yet no Remote SQL has a LIMIT');
  }
  if (kinds.has('reference-join') && !audit.foreignScans.some((s) => s.tables.some((t) => t.referenceCopyOf !== undefined) && s.kind !== 'scan')) {
    problems.push('reference-join says the join runs beside each shard, yet no foreign scan runs a join with a reference copy');
  }
  if (kinds.has('lastpoint') && audit.foreignScans.length > 0 && !audit.foreignScans.some((s) => s.tables.some((t) => t.name.endsWith('_last')))) {
    problems.push('lastpoint says the newest rows come from the lastpoint views, yet no foreign scan reads one');
  }
  if (kinds.has('time-bucket') && !rewrite.unchanged.some((u) => u.kind === 'time-bucket') && errors.some((f) => /date_trunc|time_bucket/.test(f.message))) {
    problems.push('time-bucket says the bucket ships, yet the plan keeps a date_trunc or time_bucket on the access node');
  }
  return problems;
}
