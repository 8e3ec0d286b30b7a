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

/** Rows a node returned: actual (× loops) with ANALYZE, else the planner's estimate. */
export function rowsOf(node: PlanNode): { rows: number; estimated: boolean } {
  const actual = node['Actual Rows'];
  return actual === undefined ? { rows: node['Plan Rows'] ?? 0, estimated: true } : { rows: actual * (node['Actual Loops'] ?? 1), estimated: false };
}
