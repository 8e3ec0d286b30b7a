/** EXPLAIN (FORMAT JSON) plans as typed, read-only nodes: the fields the audit reads. */
export interface PlanNode {
  readonly 'Node Type': string;
  readonly Plans?: readonly PlanNode[];
  readonly 'Parent Relationship'?: string;
  readonly 'Relation Name'?: string;
  readonly Schema?: string;
  readonly Alias?: string;
  /** Set when a foreign scan replaces a join or an aggregate (pushed down). */
  readonly Relations?: string;
  readonly 'Remote SQL'?: string;
  readonly Operation?: string;
  readonly Filter?: string;
  readonly 'Join Filter'?: string;
  readonly 'Hash Cond'?: string;
  readonly 'Group Key'?: readonly string[];
  readonly 'Sort Key'?: readonly string[];
  readonly Output?: readonly string[];
  readonly Strategy?: string;
  readonly 'Partial Mode'?: string;
  readonly 'Async Capable'?: boolean;
  readonly 'Subplans Removed'?: number;
  readonly 'Plan Rows'?: number;
  readonly 'Actual Rows'?: number;
  readonly 'Actual Loops'?: number;
  /** Rows a node read and then dropped with its Filter (ANALYZE only). */
  readonly 'Rows Removed by Filter'?: number;
}

export interface ExplainResult {
  readonly Plan: PlanNode;
  readonly 'Planning Time'?: number;
  readonly 'Execution Time'?: number;
}

export const isForeignScan = (node: PlanNode): boolean => node['Node Type'] === 'Foreign Scan';

/** Every node under `node` (itself first), with its ancestors, outermost first. */
export function* walk(node: PlanNode, ancestors: readonly PlanNode[] = []): Generator<{ node: PlanNode; ancestors: readonly PlanNode[] }> {
  yield { node, ancestors };
  for (const child of node.Plans ?? []) yield* walk(child, [...ancestors, node]);
}

export function descendants(node: PlanNode): PlanNode[] {
  return [...walk(node)].slice(1).map((w) => w.node);
}

/**
 * Rows a node received: actual with ANALYZE (returned plus those its own Filter dropped, × loops;
 * for a foreign scan, a Filter runs on the access node, so those rows crossed the wire too), else
 * the planner's estimate of what it returns.
 */
export function rowsOf(node: PlanNode): { rows: number; estimated: boolean } {
  const actual = node['Actual Rows'];
  if (actual === undefined) return { rows: node['Plan Rows'] ?? 0, estimated: true };
  return { rows: (actual + (node['Rows Removed by Filter'] ?? 0)) * (node['Actual Loops'] ?? 1), estimated: false };
}
